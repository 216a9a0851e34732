"""``bastion shell``: the prompt loop, its completer and the PowerShell-form parser."""
