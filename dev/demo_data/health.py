"""The ``investor_metrics.service_health_checks`` rows: every 5 minutes on the absolute 5-minute
grid, for five services, with short random incidents, isolated failed probes and the
``outage_week`` knob's 12-hour ``api`` outage."""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np

from dev.demo_data.columns import Chunk, bool_column, int_column, text_column, timestamp_column
from dev.demo_data.params import (
    DAY,
    HOUR,
    MINUTE,
    S_CHECKS,
    S_INCIDENTS,
    WEEK,
    DatasetParams,
    Window,
    hour_weight,
    stream_rng,
)
from include.investor_metrics.contract import HEALTH_TABLE

SERVICES = ("api", "web", "database", "ai_gateway", "notifications")
SERVICE_MEDIAN_MS = np.array([120.0, 180.0, 15.0, 450.0, 90.0])
CHECK_EVERY = 5 * MINUTE
INCIDENTS_PER_WEEK = 0.3  # per service
INCIDENT_MAX_CHECKS = 9
BLIP_P = 0.0003  # an isolated failed probe
CHECK_ERRORS = (  # (error text, status code or None)
    ("HTTP 503 Service Unavailable", 503),
    ("timeout: no response within 10000 ms", None),
    ("connection refused", None),
)
OUTAGE_SERVICE = "api"
OUTAGE_OFFSET = 3 * DAY
OUTAGE_LENGTH = 12 * HOUR


def check_grid(window: Window) -> tuple[int, int]:
    """(offset of the first 5-minute grid point at or after the start, number of grid points)."""
    first = -(window.start_us % CHECK_EVERY) % CHECK_EVERY
    return first, max(0, (window.length - first + CHECK_EVERY - 1) // CHECK_EVERY)


def failure_plan(params: DatasetParams, window: Window) -> np.ndarray:
    """Per (service, grid point): -1 ok, else the index of the error in ``CHECK_ERRORS``."""
    rng = stream_rng(params, S_INCIDENTS)
    first, points = check_grid(window)
    plan = np.full((len(SERVICES), points), -1, dtype=np.int8)
    weeks = window.length / WEEK
    for service in range(len(SERVICES)):
        incidents = rng.poisson(INCIDENTS_PER_WEEK * weeks)
        starts = rng.integers(0, points, incidents)
        lengths = np.minimum(1 + rng.geometric(0.35, incidents), INCIDENT_MAX_CHECKS)
        kinds = rng.integers(0, len(CHECK_ERRORS), incidents)
        for s, length, kind in zip(starts.tolist(), lengths.tolist(), kinds.tolist(), strict=True):
            plan[service, s : s + length] = kind
        blips = np.flatnonzero(rng.random(points) < BLIP_P)
        plan[service, blips] = rng.integers(0, len(CHECK_ERRORS), len(blips))
    if params.outage_week is not None:
        begin = window.offset(params.outage_week) + OUTAGE_OFFSET
        lo = (begin - first + CHECK_EVERY - 1) // CHECK_EVERY
        hi = (begin + OUTAGE_LENGTH - first + CHECK_EVERY - 1) // CHECK_EVERY
        plan[SERVICES.index(OUTAGE_SERVICE), lo:hi] = 0  # HTTP 503
    return plan


def health_chunks(params: DatasetParams, window: Window, chunk_points: int = 8064) -> Iterator[Chunk]:
    """Checks ordered by (checked_at, service), 4 weeks of grid points at a time."""
    first, points = check_grid(window)
    plan = failure_plan(params, window)
    n_services = len(SERVICES)
    for number, lo in enumerate(range(0, points, chunk_points)):
        rng = stream_rng(params, S_CHECKS, number)
        grid = np.arange(lo, min(lo + chunk_points, points))
        offsets = np.repeat(first + grid * CHECK_EVERY, n_services)
        service = np.tile(np.arange(n_services), len(grid))
        failure = plan[:, grid].T.ravel()
        busy = 1.0 + 0.4 * hour_weight(window, offsets)
        response = rng.lognormal(np.log(SERVICE_MEDIAN_MS[service]), 0.35) * busy
        codes = np.array([code or 0 for _text, code in CHECK_ERRORS] + [200])
        ok = failure < 0
        yield Chunk(
            HEALTH_TABLE,
            [
                text_column("service", SERVICES, service),
                timestamp_column("checked_at", window, offsets),
                bool_column("ok", ok),
                int_column("response_ms", response.astype(np.int64), ">i4", null=~ok),
                int_column("status_code", codes[failure], ">i4", null=codes[failure] == 0),
                text_column("error", [text for text, _code in CHECK_ERRORS], failure),
            ],
        )


def health_chunk_count(window: Window, chunk_points: int = 8064) -> int:
    return math.ceil(check_grid(window)[1] / chunk_points)
