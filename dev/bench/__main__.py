"""``python -m dev.bench`` (``make bench``): the command line of ``dev.bench.weekly``."""

import sys

from dev.bench.weekly import main

sys.exit(main())
