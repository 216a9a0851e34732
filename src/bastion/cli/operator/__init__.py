"""The operator's commands (``serve``, ``demo``, ``tenant``, ``user``, ``client``,
``audit``): run where the server runs, on its data directory and database. They may import
server parts; nothing on the client side imports them (decision 0031)."""
