"""`python -m satchel_server` is the same as the `satchel` command."""

from satchel_server.cli import main

raise SystemExit(main())
