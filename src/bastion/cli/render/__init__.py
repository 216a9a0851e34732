"""What the CLI prints: results as table, JSON, JSON lines, CSV or YAML on stdout
(``formats``, ``records``), progress on stderr (``progress``). No command logic here."""
