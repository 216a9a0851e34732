"""The command line and the shell: their pieces, each on its own."""
