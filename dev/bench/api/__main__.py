"""``python -m dev.bench.api``: the command line of ``dev.bench.api.cli``."""

import sys

from dev.bench.api.cli import main

sys.exit(main())
