"""`python -m satchel issue ...` and `python -m satchel presign ...`."""

import sys

from satchel.cli import main

sys.exit(main())
