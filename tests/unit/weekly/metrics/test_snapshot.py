"""The computed snapshot (``weekly/metrics/snapshot.py``): every zero denominator null, the SPEC
keys, plain JSON."""

from __future__ import annotations

import json

from include.investor_metrics.weekly.metrics.snapshot import build_snapshot
from tests.unit.weekly.metrics.sample_frames import (
    LONG_AGO,
    MID,
    PERIOD,
    ai,
    business,
    health,
    leads,
    nps,
    subscriptions,
    usage,
)

# --- zero denominators, JSON -------------------------------------------------------------------


def test_every_rate_with_a_zero_denominator_is_null():
    snapshot = build_snapshot(
        PERIOD,
        business(subscriptions()),
        ai((None, True, 0, 0, 0, 0, 0, 0, 0, 0, None, None)),
        health((None, True, 0, 0, 0, None, None, None)),
        ["api"],
    )
    fin, bh, sh, ap = (snapshot[k] for k in ("financial", "business_health", "system_health", "ai_platform"))
    for key in ("mrr_growth_rate", "customer_growth_rate", "quick_ratio", "arpa", "lead_conversion_rate"):
        assert fin[key] is None, key
    for key in ("logo_churn_rate", "revenue_churn_rate", "churn_rate_28d", "platform_utilization"):
        assert bh[key] is None, key
    assert bh["customer_satisfaction"] == {"nps": None, "responses": 0}
    for key in ("uptime_percentage", "error_rate", "avg_response_time_ms", "p95_response_time_ms"):
        assert sh[key] is None, key
    assert sh["services"]["api"]["uptime_percentage"] is None
    for key in ("cache_hit_rate", "error_rate", "accuracy_rate", "avg_latency_ms", "p95_latency_ms"):
        assert ap[key] is None, key
    assert (fin["mrr"], fin["active_customers"], bh["at_risk_customers"]) == (0.0, 0, 0)
    assert bh["growth_trajectory"] == "flat" and bh["churn_risk"] == "low"


def _plain(value) -> bool:
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_plain(v) for v in value)
    return value is None or type(value) in (str, int, float, bool)


def test_snapshot_has_the_spec_keys_and_is_plain_json():
    subs = subscriptions((1, "year", 100000, LONG_AGO, None), (2, "month", 5000, MID, None))
    snapshot = build_snapshot(
        PERIOD,
        business(subs, usage=usage((1, 3, 3)), nps=nps((1, 1, 1, 0, 9)), leads=leads(("web", 2, 1))),
        ai(
            ("a", False, 1, 1, 0, 0, 0, 1, 1, 0, 10.0, 10.0), (None, True, 1, 1, 0, 0, 0, 1, 1, 0, 10.0, 10.0)
        ),
        health(("api", False, 1, 1, 0, 5.0, 5.0, True), (None, True, 1, 1, 0, 5.0, 5.0, None)),
        ["api"],
    )
    assert list(snapshot) == [
        "timestamp",
        "period",
        "system_health",
        "ai_platform",
        "financial",
        "business_health",
    ]
    assert snapshot["timestamp"] == "2026-11-22T09:00:00Z"
    assert snapshot["period"] == {
        "start": "2026-11-15T09:00:00Z",
        "end": "2026-11-22T09:00:00Z",
        "type": "weekly",
    }
    assert set(snapshot["system_health"]) == {
        "uptime_percentage", "status", "services_total", "services_healthy", "avg_response_time_ms",
        "p95_response_time_ms", "error_rate", "services",
    }  # fmt: skip
    assert set(snapshot["ai_platform"]) == {
        "total_requests", "chat_requests", "api_requests", "cache_hit_rate", "error_rate",
        "active_providers", "accuracy_rate", "avg_latency_ms", "p95_latency_ms", "providers",
    }  # fmt: skip
    assert set(snapshot["financial"]) == {
        "mrr", "arr", "active_customers", "mrr_growth_rate", "customer_growth_rate", "new_mrr",
        "reactivation_mrr", "expansion_mrr", "contraction_mrr", "churned_mrr", "net_new_mrr",
        "quick_ratio", "arpa", "lead_conversion_rate",
    }  # fmt: skip
    assert set(snapshot["business_health"]) == {
        "churn_risk", "growth_trajectory", "churned_customers", "logo_churn_rate", "revenue_churn_rate",
        "churn_rate_28d", "customer_satisfaction", "platform_utilization", "at_risk_customers",
        "mrr_at_risk",
    }  # fmt: skip
    assert _plain(snapshot), snapshot
    assert json.loads(json.dumps(snapshot, allow_nan=False)) == snapshot
    # $83.33 + $50.00; the exact MRR is 100000 + 60000 = 160000 twelfths = $133.333… → 133.33
    assert snapshot["financial"]["mrr"] == 133.33
    assert snapshot["financial"]["arr"] == 1600.0
