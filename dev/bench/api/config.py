"""What the API benchmark measures and against which targets: the routes, the phases, the
databases it creates, the latest snapshot's end."""

from __future__ import annotations

from datetime import datetime, timezone
from functools import partial

from dev.bench.common import say as _say

ROUTES = {
    "metrics": "/api/investor/metrics",
    "health": "/api/v2/monitor/health",
}
P99_TARGET_MS = 25.0
RATIO_TARGET = 1.5
PHASES = ("open", "closed")  # the order they run in
TARGET_PHASE = "open"  # where the targets are checked (see the docstring)
DEFAULT_RATE = 100.0  # open loop, requests/s per route in total
DB_NAME = "cfx_bench_api"
AF_DB_NAME = "cfx_bench_api_af"
LATEST_END = datetime(2026, 11, 22, 9, tzinfo=timezone.utc)
TOKEN_ENV = "CFX_BENCH_API_TOKEN"

say = partial(_say, tag="bench-api")
