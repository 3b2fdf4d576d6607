"""The conf of a manual run (``include/investor_metrics/api/collect.py``), without a server; the
route that queues it is tested in ``test_routes.py``."""

from __future__ import annotations

from datetime import datetime

import pytest

from include.investor_metrics import period
from include.investor_metrics.api import collect
from tests.unit.api.fixtures import UTC


def test_collect_conf():
    now = datetime(2026, 11, 24, 10, tzinfo=UTC)
    assert collect.collect_conf(None, False, now=now) == {"send_email": False}
    assert collect.collect_conf("2026-11-22T10:00:00.5+01:00", True, now=now) == {
        "send_email": True, "period_end": "2026-11-22T09:00:00.500000Z"}
    assert collect.collect_conf("2026-11-24T10:04:00Z", False, now=now)["period_end"] == (
        "2026-11-24T10:04:00Z")
    with pytest.raises(period.InstantInFuture, match="future"):
        collect.collect_conf("2026-11-24T10:06:00Z", False, now=now)
