"""The system_health section (``weekly/metrics/system_health.py``) on hand-made frames."""

from __future__ import annotations

import pytest

from include.investor_metrics.weekly.metrics.system_health import system_health, system_status
from tests.unit.weekly.metrics.sample_frames import (
    health,
)

# --- system health -----------------------------------------------------------------------------


def _service(uptime):
    return {"uptime_percentage": uptime, "avg_response_time_ms": None, "healthy": True}


@pytest.mark.parametrize(
    "uptime, services, healthy, total, expected",
    [
        (99.5, {"a": _service(99.5)}, 1, 1, "healthy"),
        (99.49, {"a": _service(99.49)}, 1, 1, "degraded"),
        (99.9, {"a": _service(99.9), "b": _service(100.0)}, 1, 2, "degraded"),  # one not healthy
        (99.9, {"a": _service(99.9)}, 0, 1, "critical"),  # no service healthy
        (95.0, {"a": _service(90.0), "b": _service(100.0)}, 2, 2, "degraded"),  # 90 is not < 90
        (94.99, {"a": _service(89.99), "b": _service(100.0)}, 2, 2, "critical"),
        (None, {}, 0, 0, "critical"),  # nothing to count: no healthy service
    ],
)
def test_system_status_thresholds(uptime, services, healthy, total, expected):
    assert system_status(uptime, services, healthy, total) == expected


def test_system_health_counts_configured_services_without_checks():
    frame = health(
        # api: 200 checks, 199 ok → 99.5 %; latest ok
        ("api", False, 200, 199, 1, 120.5, 300.0, True),
        (None, True, 200, 199, 1, 120.5, 300.0, None),
    )
    result = system_health(frame, ["api", "web"])
    assert result["services"] == {
        "api": {"uptime_percentage": 99.5, "avg_response_time_ms": 120.5, "healthy": True},
        "web": {"uptime_percentage": None, "avg_response_time_ms": None, "healthy": False},
    }
    assert (result["services_total"], result["services_healthy"]) == (2, 1)
    assert result["uptime_percentage"] == 99.5
    assert result["error_rate"] == 0.5
    assert result["status"] == "degraded"  # uptime ≥ 99.5 but web is not healthy
    # Without a configured list, the services are those with checks: api alone → healthy.
    only_checked = system_health(frame, None)
    assert only_checked["services_total"] == 1 and only_checked["status"] == "healthy"


def test_system_health_refuses_checks_of_unconfigured_services():
    frame = health(("other", False, 1, 1, 0, 1.0, 1.0, True), (None, True, 1, 1, 0, 1.0, 1.0, None))
    with pytest.raises(ValueError, match="unconfigured"):
        system_health(frame, ["api"])
