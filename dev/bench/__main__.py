"""``python -m dev.bench`` (``make bench``): the command line of ``dev.bench.weekly.cli``."""

import sys

from dev.bench.weekly.cli import main

sys.exit(main())
