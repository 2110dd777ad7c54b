"""`python -m kiosk.cli`: the same start as the `kiosk` command, stop signals held first."""
from kiosk.cli.entry import main

raise SystemExit(main())
