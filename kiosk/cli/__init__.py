"""The `kiosk` command: argument parsing, the composition root, terminal maintenance commands and scenario replay."""
