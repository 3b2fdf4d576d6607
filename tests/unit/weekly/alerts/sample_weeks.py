"""Sample weeks for the alert tests: a snapshot in which nothing fires, and ways to make rules fire."""

from __future__ import annotations

import copy
from datetime import datetime, timedelta, timezone

from include.investor_metrics.period import iso_utc
from include.investor_metrics.weekly.alerts import evaluate

END = datetime(2026, 11, 22, 9, tzinfo=timezone.utc)
END_ISO = "2026-11-22T09:00:00Z"

# SPEC section 6, as the table says.
SPEC_TABLE = {
    "uptime_below_target": ("high", "system"),
    "critical_system_failure": ("critical", "system"),
    "mrr_growth_below_target": ("medium", "financial"),
    "net_revenue_retention_below_target": ("medium", "financial"),
    "churn_spike": ("high", "business"),
    "api_response_time_above_target": ("medium", "system"),
    "ai_accuracy_below_target": ("medium", "ai"),
    "services_degraded": ("low", "system"),
}
QUIET_HISTORY = [1, 0, 1, 0, 1, 0, 1, 0]  # mean 0.5: the bound is the floor, 2


def healthy_snapshot(end: str = END_ISO) -> dict:
    """A week in which nothing fires (SPEC section 7 shape)."""
    end_dt = datetime.fromisoformat(end.replace("Z", "+00:00"))
    return {
        "timestamp": end,
        "generated_at": "2026-11-22T09:03:12Z",
        "period": {"start": iso_utc(end_dt - timedelta(days=7)), "end": end, "type": "weekly"},
        "system_health": {
            "uptime_percentage": 99.7, "status": "healthy", "services_total": 3, "services_healthy": 3,
            "avg_response_time_ms": 194.0, "p95_response_time_ms": 410.0, "error_rate": 0.3,
            "services": {
                "api": {"uptime_percentage": 99.9, "avg_response_time_ms": 120.5, "healthy": True},
                "web": {"uptime_percentage": 99.6, "avg_response_time_ms": 220.0, "healthy": True},
                "database": {"uptime_percentage": 99.6, "avg_response_time_ms": 20.0, "healthy": True},
            },
        },
        "ai_platform": {"total_requests": 18211, "accuracy_rate": 94.7, "error_rate": 0.8, "providers": {}},
        "financial": {"mrr": 42500.0, "arr": 510000.0, "active_customers": 127, "mrr_growth_rate": 8.2},
        "business_health": {"churned_customers": 1, "churn_risk": "low"},
        "retention": {"nrr_12m": 104.2, "grr_12m": 93.1, "nrr_1m": 100.4, "grr_1m": 99.2,
                      "logo_retention_12m": 88.0, "cohorts": []},
        "data_quality": {"success": True, "warnings": []},
        "alerts": [],
    }


def with_values(snapshot: dict, **paths) -> dict:
    """A copy with ``section__key=value`` replaced (``system_health__status="critical"``)."""
    snap = copy.deepcopy(snapshot)
    for path, value in paths.items():
        section, key = path.split("__")
        snap[section][key] = value
    return snap


def fired(snapshot: dict, *, previous=QUIET_HISTORY, thresholds=None) -> dict[str, dict]:
    found = evaluate.evaluate(snapshot, thresholds=thresholds or {}, previous_churned=list(previous))
    return {a["rule"]: a for a in found}


def period_alerts(end: datetime, **values) -> list[dict]:
    snap = with_values(healthy_snapshot(iso_utc(end)), **values)
    return evaluate.evaluate(snap, thresholds={}, previous_churned=QUIET_HISTORY)


# A week raising three alerts (high, medium, medium).
BAD_WEEK = {"system_health__uptime_percentage": 98.0, "financial__mrr_growth_rate": 1.0,
            "ai_platform__accuracy_rate": 80.0}

