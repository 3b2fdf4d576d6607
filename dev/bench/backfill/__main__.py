"""``python -m dev.bench.backfill``: the command line of ``dev.bench.backfill.cli``."""

import sys

from dev.bench.backfill.cli import main

sys.exit(main())
