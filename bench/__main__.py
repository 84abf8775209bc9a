"""`make bench` / `python -m bench`: every benchmark, each against its baseline in one run."""

from bench import signing

raise SystemExit(signing.main())
