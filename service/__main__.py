"""`python -m service` is the same as the `satchel` command."""

from service.cli import main

raise SystemExit(main())
