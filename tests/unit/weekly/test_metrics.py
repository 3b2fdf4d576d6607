"""Metric definitions (include/investor_metrics/weekly/metrics.py) on hand-made frames; no database.

Every expected number is worked out by hand in a comment. MRR is in twelfths of a cent:
a monthly plan of N cents is 12·N twelfths, a yearly plan of N cents is N twelfths, and
dollars = twelfths / 1200.

The period of these tests is the UTC week [2026-11-15 09:00, 2026-11-22 09:00): end − 1 month is
2026-10-22 09:00, end − 28 days 2026-10-25 09:00, end − 14 days 2026-11-08 09:00.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pandas as pd
import pytest

from include.investor_metrics.period import weekly_period
from include.investor_metrics.weekly import metrics
from include.investor_metrics.weekly.metrics import (
    MrrMovements,
    build_snapshot,
    churn_risk,
    growth_trajectory,
    mrr_as_of,
    mrr_movements,
    system_health,
    system_status,
)

UTC = timezone.utc
END = datetime(2026, 11, 22, 9, tzinfo=UTC)
PERIOD = weekly_period(END, "UTC")
START = PERIOD.start
LONG_AGO = datetime(2026, 1, 1, tzinfo=UTC)
MID = datetime(2026, 11, 18, tzinfo=UTC)  # inside the period


# --- hand-made frames, with the extract's columns --------------------------------------------------


def subscriptions(*rows) -> pd.DataFrame:
    """rows: (customer_id, billing_interval, amount_cents, started_at, ended_at or None)."""
    frame = pd.DataFrame(
        rows, columns=["customer_id", "billing_interval", "amount_cents", "started_at", "ended_at"]
    )
    frame.insert(0, "subscription_id", range(1, len(frame) + 1))
    for column in ("subscription_id", "customer_id", "amount_cents"):
        frame[column] = frame[column].astype("int64")
    frame["billing_interval"] = frame["billing_interval"].astype("str")
    for column in ("started_at", "ended_at"):
        frame[column] = pd.to_datetime(frame[column], utc=True).dt.as_unit("us")
    return frame


def history(ended_before_start: dict[int, bool] | None = None) -> pd.DataFrame:
    items = (ended_before_start or {}).items()
    return pd.DataFrame(
        {
            "customer_id": pd.Series([c for c, _ in items], dtype="int64"),
            "ended_before_start": pd.Series([b for _, b in items], dtype="bool"),
        }
    )


def usage(*rows) -> pd.DataFrame:
    """rows: (customer_id, events_in_period, events_last_14d)."""
    return pd.DataFrame(rows, columns=["customer_id", "events_in_period", "events_last_14d"]).astype("int64")


def nps(*rows) -> pd.DataFrame:
    """rows: (customer_id, responses, promoters, detractors, latest_score)."""
    columns = ["customer_id", "responses", "promoters", "detractors", "latest_score"]
    return pd.DataFrame(rows, columns=columns).astype("int64")


def leads(*rows) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["source", "leads", "converted"])
    return frame.astype({"source": "str", "leads": "int64", "converted": "int64"})


AI_COLUMNS = [
    "provider", "is_total", "total_requests", "chat_requests", "api_requests", "cache_hits", "errors",
    "ok_requests", "correct", "incorrect", "avg_latency_ms", "p95_latency_ms",
]  # fmt: skip
HEALTH_COLUMNS = [
    "service", "is_total", "checks", "ok_checks", "failed_checks", "avg_response_ms",
    "p95_response_ms", "latest_ok",
]  # fmt: skip


def ai(*rows) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=AI_COLUMNS)
    return frame.astype({"provider": "str", "is_total": "bool"})


def health(*rows) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=HEALTH_COLUMNS)
    return frame.astype({"service": "str", "is_total": "bool", "latest_ok": "boolean"})


def business(subs: pd.DataFrame, hist: pd.DataFrame | None = None, **frames) -> dict:
    return {
        "subscriptions": subs,
        "customer_history": hist if hist is not None else history(),
        "usage": frames.get("usage", usage()),
        "nps": frames.get("nps", nps()),
        "leads": frames.get("leads", leads()),
    }


def financial(subs, hist=None, **frames) -> dict:
    return build_snapshot(PERIOD, business(subs, hist, **frames), ai(), health())["financial"]


def business_health(subs, hist=None, **frames) -> dict:
    return build_snapshot(PERIOD, business(subs, hist, **frames), ai(), health())["business_health"]


# --- "as of t" boundaries ------------------------------------------------------------------------


def test_subscription_ending_exactly_at_end_is_active_at_end_one_starting_at_end_is_not():
    subs = subscriptions(
        (1, "month", 5000, LONG_AGO, END),  # ended_at == end: still active as of end
        (2, "month", 7000, END, None),  # started_at == end: not yet active as of end
    )
    # Only customer 1: 5000 cents = $50.00.
    assert mrr_as_of(subs, END) == 5000 * 12
    result = financial(subs)
    assert result["mrr"] == 50.0
    assert result["active_customers"] == 1
    # Customer 1 was already paying $50 as of start and still is: no movement at all.
    assert result["net_new_mrr"] == 0.0 and result["new_mrr"] == 0.0


def test_subscription_ending_exactly_at_start_counts_as_of_start():
    # Active as of start (ended_at >= start), gone as of end: churned $30, one churned customer.
    subs = subscriptions((1, "month", 3000, LONG_AGO, START))
    result = financial(subs)
    assert result["churned_mrr"] == 30.0
    assert business_health(subs)["churned_customers"] == 1


# --- movements ---------------------------------------------------------------------------------


def test_upgrade_and_downgrade_at_one_instant_are_expansion_and_contraction():
    subs = subscriptions(
        # customer 1 upgrades $100 → $150 at MID: s = $100, e = $150 → expansion $50
        (1, "month", 10000, LONG_AGO, MID),
        (1, "month", 15000, MID, None),
        # customer 2 downgrades $100 → $40 at MID: s = $100, e = $40 → contraction $60
        (2, "month", 10000, LONG_AGO, MID),
        (2, "month", 4000, MID, None),
    )
    result = financial(subs, history({1: True, 2: True}))  # their old plans ended before end, not start
    assert result["expansion_mrr"] == 50.0
    assert result["contraction_mrr"] == 60.0
    assert result["new_mrr"] == result["reactivation_mrr"] == result["churned_mrr"] == 0.0
    assert result["net_new_mrr"] == -10.0  # 50 − 60
    assert result["active_customers"] == 2
    assert business_health(subs)["churned_customers"] == 0


def test_cancelling_one_of_two_subscriptions_is_contraction_not_churn():
    subs = subscriptions(
        (1, "month", 3000, LONG_AGO, None),
        (1, "month", 2000, LONG_AGO, MID),  # cancelled inside the period
    )
    # s = $50, e = $30 → contraction $20; the customer is still paying, so not churned.
    result = financial(subs)
    assert result["contraction_mrr"] == 20.0
    assert result["churned_mrr"] == 0.0
    assert result["active_customers"] == 1
    health_ = business_health(subs)
    assert health_["churned_customers"] == 0
    assert health_["logo_churn_rate"] == 0.0  # 0 churned / 1 paying as of start
    # revenue churn = (churned 0 + contraction 2000·12) / (5000·12) = 40 %
    assert health_["revenue_churn_rate"] == 40.0


def test_reactivation_versus_new():
    subs = subscriptions(
        (1, "month", 3000, datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 6, 1, tzinfo=UTC)),
        (1, "month", 4000, MID, None),  # came back: reactivation $40
        (2, "month", 2500, MID, None),  # first subscription ever: new $25
    )
    result = financial(subs, history({1: True, 2: False}))
    assert result["reactivation_mrr"] == 40.0
    assert result["new_mrr"] == 25.0
    assert result["net_new_mrr"] == 65.0
    # quick ratio = (25 + 40) / (0 + 0): nothing lost → null
    assert result["quick_ratio"] is None


def test_customer_missing_from_history_is_new():
    subs = subscriptions((7, "month", 1000, MID, None))
    assert mrr_movements(subs, history(), START, END) == MrrMovements(12000, 0, 0, 0, 0)


def test_free_plan_is_not_an_active_customer_and_not_in_arpa():
    subs = subscriptions(
        (1, "month", 0, LONG_AGO, None),  # free plan
        (2, "month", 9000, LONG_AGO, None),
    )
    result = financial(subs)
    assert result["active_customers"] == 1
    assert result["mrr"] == 90.0
    assert result["arpa"] == 90.0  # $90 / 1 customer, not / 2
    # The free customer used the product, the paying one did not: utilization = 0 / 1 paying.
    result = business_health(subs, usage=usage((1, 5, 5)))
    assert result["platform_utilization"] == 0.0
    # ... and the free customer is not "at risk", the quiet paying one is (MRR $90).
    assert result["at_risk_customers"] == 1 and result["mrr_at_risk"] == 90.0


def test_annual_plan_not_divisible_by_twelve():
    subs = subscriptions((1, "year", 100000, LONG_AGO, None))
    result = financial(subs)
    # 100000 twelfths / 1200 = 83.333… → $83.33; ARR = 12 × exact MRR = $1000.00 (not 12 × 83.33)
    assert result["mrr"] == 83.33
    assert result["arr"] == 1000.0
    assert result["arpa"] == 83.33


def test_net_new_mrr_is_exactly_mrr_end_minus_mrr_start_with_annual_plans():
    subs = subscriptions(
        (1, "year", 100000, MID, None),  # new: 100000 twelfths ($83.333…)
        (2, "year", 50000, LONG_AGO, MID),  # churned: 50000 twelfths ($41.666…)
        (3, "month", 5000, LONG_AGO, MID),  # upgrade $50 → $70 at MID:
        (3, "month", 7000, MID, None),  # expansion 12·2000 = 24000 twelfths
    )
    hist = history({1: False, 2: True, 3: True})
    moves = mrr_movements(subs, hist, START, END)
    assert moves == MrrMovements(new=100000, reactivation=0, expansion=24000, contraction=0, churned=50000)
    mrr_end, mrr_start = mrr_as_of(subs, END), mrr_as_of(subs, START)
    assert (mrr_end, mrr_start) == (184000, 110000)
    assert moves.net_new == mrr_end - mrr_start == 74000  # exact, in twelfths of a cent
    result = financial(subs, hist)
    assert result["mrr"] == 153.33  # 184000 / 1200 = 153.333…
    assert result["new_mrr"] == 83.33 and result["churned_mrr"] == 41.67 and result["expansion_mrr"] == 20.0
    # net new = 74000 / 1200 = 61.666… → $61.67, computed on the exact values; rounding the two
    # MRRs first would give 153.33 − 91.67 = 61.66.
    assert result["net_new_mrr"] == 61.67


def test_money_rounds_half_up_to_cents():
    # 1206 twelfths = 1.005 dollars exactly → 1.01 (Python's round(1.005, 2) would give 1.0)
    assert metrics.dollars(1206) == 1.01
    assert metrics.dollars(-1206) == -1.01  # half away from zero
    assert metrics.percentage(1, 8) == 12.5
    assert metrics.percentage(1, 3) == 33.33
    assert metrics.percentage(2, 3) == 66.67
    assert metrics.percentage(1, 0) is None
    assert metrics.milliseconds(100.005) == 100.01
    assert metrics.milliseconds(float("nan")) is None


# --- growth, conversion, satisfaction, risk ----------------------------------------------------


def test_growth_rates_against_one_calendar_month_earlier():
    subs = subscriptions(
        (1, "month", 10000, LONG_AGO, None),
        (2, "month", 10000, datetime(2026, 11, 1, tzinfo=UTC), None),  # after end − 1 month
        (3, "month", 5000, LONG_AGO, datetime(2026, 10, 22, 9, tzinfo=UTC)),  # active as of 10-22 09:00
    )
    # as of 2026-10-22 09:00: customers 1 and 3, $150; as of end: customers 1 and 2, $200.
    result = financial(subs)
    assert result["mrr_growth_rate"] == 33.33  # (200 − 150) / 150
    assert result["customer_growth_rate"] == 0.0  # (2 − 2) / 2


def test_lead_conversion_rate_sums_all_sources():
    # (1 + 2) converted of (3 + 5) leads = 37.5 %
    assert (
        financial(subscriptions(), leads=leads(("web", 3, 1), ("referral", 5, 2)))["lead_conversion_rate"]
        == 37.5
    )


def test_nps_and_at_risk():
    subs = subscriptions(
        (1, "month", 1000, LONG_AGO, None),  # used recently, latest NPS 6 → at risk
        (2, "month", 2000, LONG_AGO, None),  # used recently, latest NPS 7 → fine
        (3, "month", 3000, LONG_AGO, None),  # no event in 14 days → at risk
        (4, "month", 4000, LONG_AGO, None),  # used recently, no NPS → fine
    )
    frames = {
        "usage": usage((1, 2, 2), (2, 1, 1), (3, 0, 0), (4, 0, 3)),
        # customer 1: 3 responses, 1 promoter, 2 detractors, latest 6; customer 2: 2 responses,
        # 1 promoter, latest 7; responses without a customer (null id): 1 promoter.
        # Total 6 responses, 3 promoters, 2 detractors.
        "nps": pd.DataFrame(
            {
                "customer_id": pd.Series([1, 2, None], dtype="Int64"),
                "responses": [3, 2, 1],
                "promoters": [1, 1, 1],
                "detractors": [2, 0, 0],
                "latest_score": [6, 7, 10],
            }
        ),
    }
    result = business_health(subs, **frames)
    # promoters 3/6 = 50 %, detractors 2/6 = 33.33 % → NPS 16.67 (from the exact 1/6)
    assert result["customer_satisfaction"] == {"nps": 16.67, "responses": 6}
    # at risk: customers 1 ($10) and 3 ($30)
    assert result["at_risk_customers"] == 2
    assert result["mrr_at_risk"] == 40.0
    # utilization: customers 1, 2 used the product in the period (3 and 4 did not) → 2 / 4
    assert result["platform_utilization"] == 50.0


@pytest.mark.parametrize(
    "rate, expected",
    [
        (5.0, "strong"), (4.99, "steady"), (1.0, "steady"), (0.99, "flat"), (-0.99, "flat"),
        (-1.0, "declining"), (None, "flat"),
    ],
)  # fmt: skip
def test_growth_trajectory_thresholds(rate, expected):
    assert growth_trajectory(rate) == expected


@pytest.mark.parametrize(
    "churn_rate_28d, at_risk, mrr, expected",
    [
        (5.0, 0, 1000, "high"),
        (4.99, 0, 1000, "medium"),
        (2.0, 0, 1000, "medium"),
        (1.99, 0, 1000, "low"),
        (None, 0, 1000, "low"),
        (0.0, 150, 1000, "high"),  # exactly 15 % of MRR
        (0.0, 149, 1000, "medium"),
        (0.0, 75, 1000, "medium"),  # exactly 7.5 %
        (0.0, 74, 1000, "low"),
        (None, 0, 0, "low"),  # no MRR: the share is undefined, not "≥ 15 %"
    ],
)
def test_churn_risk_thresholds(churn_rate_28d, at_risk, mrr, expected):
    assert churn_risk(churn_rate_28d, at_risk, mrr) == expected


def test_churn_risk_uses_churn_rate_28d_from_the_snapshot():
    # 20 paying customers as of end − 28 days, 1 churned since → churn_rate_28d = 5 % → high.
    rows = [(c, "month", 1000, LONG_AGO, None) for c in range(1, 20)]
    rows.append((20, "month", 1000, LONG_AGO, datetime(2026, 11, 1, tzinfo=UTC)))
    subs = subscriptions(*rows)
    used = usage(*[(c, 1, 1) for c in range(1, 21)])
    result = business_health(subs, usage=used)
    assert result["churn_rate_28d"] == 5.0
    assert result["churn_risk"] == "high"
    assert result["churned_customers"] == 0  # it churned before this week's start


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


# --- AI platform -------------------------------------------------------------------------------


def test_ai_platform_figures_and_active_providers():
    frame = ai(
        # a: 10 requests (7 chat, 3 api), 4 cache hits, 1 error, 9 ok, 6 correct, 2 incorrect
        ("a", False, 10, 7, 3, 4, 1, 9, 6, 2, 812.004, 2210.0),
        # b: only errors → not an active provider
        ("b", False, 2, 0, 2, 0, 2, 0, 0, 0, 100.0, 100.0),
        (None, True, 12, 7, 5, 4, 3, 9, 6, 2, 693.3366, 2100.0),
    )
    result = metrics.ai_platform(frame)
    assert result["active_providers"] == 1
    assert result["total_requests"] == 12 and result["chat_requests"] == 7 and result["api_requests"] == 5
    assert result["cache_hit_rate"] == 33.33  # 4 / 12
    assert result["error_rate"] == 25.0  # 3 / 12
    assert result["accuracy_rate"] == 75.0  # 6 / (6 + 2)
    assert result["avg_latency_ms"] == 693.34 and result["p95_latency_ms"] == 2100.0
    assert result["providers"]["a"] == {
        "total_requests": 10, "chat_requests": 7, "api_requests": 3, "cache_hit_rate": 40.0,
        "error_rate": 10.0, "accuracy_rate": 75.0, "avg_latency_ms": 812.0, "p95_latency_ms": 2210.0,
    }  # fmt: skip
    assert result["providers"]["b"]["accuracy_rate"] is None  # no feedback at all
    assert result["providers"]["b"]["error_rate"] == 100.0


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


def test_unknown_billing_interval_is_a_clear_error():
    subs = subscriptions((1, "week", 100, LONG_AGO, None))
    with pytest.raises(ValueError, match="billing_interval"):
        mrr_as_of(subs, END)


def test_subscription_active_exactly_between_instants():
    # started_at < t and ended_at >= t, checked one microsecond either side of both bounds
    subs = subscriptions((1, "month", 100, MID, MID + timedelta(hours=1)))
    tick = timedelta(microseconds=1)
    assert list(metrics.active_as_of(subs, MID)) == [False]
    assert list(metrics.active_as_of(subs, MID + tick)) == [True]
    assert list(metrics.active_as_of(subs, MID + timedelta(hours=1))) == [True]
    assert list(metrics.active_as_of(subs, MID + timedelta(hours=1) + tick)) == [False]


# --- exact money for every bigint amount (SPEC section 5) --------------------------------------

BIGINT_MAX = 2**63 - 1


def test_an_amount_near_the_bigint_maximum_never_wraps_and_is_refused_by_name():
    # 12 x amount leaves int64: numpy wrapped it (MRR $49.99 for these two subscriptions)
    subs = subscriptions((1, "month", BIGINT_MAX - 4000, LONG_AGO, None), (2, "month", 5000, LONG_AGO, None))

    assert mrr_as_of(subs, END) == 12 * (BIGINT_MAX - 4000) + 12 * 5000  # exact, Python integers
    assert metrics.subscription_mrr_twelfths(subs).dtype == object
    # $92,233,720,368,547,768.07 is beyond what a JSON number says to the cent: refused, not rounded
    with pytest.raises(metrics.MoneyRangeError, match="92233720368547768.07 dollars"):
        financial(subs)


def test_amounts_beyond_int64_sums_give_exact_rates():
    # Customer 1 paid 2^62 cents a month until 10 days before the period: 12 x 2^62 = 3 x 2^64
    # wraps to exactly 0 in int64, which made it a non-paying customer a month ago.
    subs = subscriptions(
        (1, "month", 2**62, LONG_AGO, START - timedelta(days=10)),
        (2, "month", 5000, LONG_AGO, None),
    )
    result, health_ = financial(subs), business_health(subs)

    assert result["mrr"] == 50.0 and result["active_customers"] == 1
    assert result["mrr_growth_rate"] == -100.0  # (60000 - (3·2^64 + 60000)) / (3·2^64 + 60000), 2 decimals
    assert result["customer_growth_rate"] == -50.0
    assert health_["churn_rate_28d"] == 50.0  # customer 1 paid at end - 28 days


def test_int64_stays_the_path_at_ordinary_scale():
    import numpy as np

    ordinary = subscriptions(*[(c, "month", 10**9, LONG_AGO, None) for c in range(1, 101)])  # $10M a month each
    assert metrics.subscription_mrr_twelfths(ordinary).dtype == "int64"
    assert mrr_as_of(ordinary, END) == 100 * 12 * 10**9
    # the bound: 24 x largest |amount| x rows <= 2^63 - 1
    limit = BIGINT_MAX // 24
    assert metrics.int64_is_exact(np.array([limit], dtype="int64"))
    assert not metrics.int64_is_exact(np.array([limit + 1], dtype="int64"))
    assert not metrics.int64_is_exact(np.array([-(limit + 1)], dtype="int64"))
    assert not metrics.int64_is_exact(np.array([-(2**63)], dtype="int64"))  # abs() would wrap here


def test_the_largest_figure_a_snapshot_carries_exactly():
    assert metrics.dollars(12 * (10**15 - 1)) == 9999999999999.99  # $10^13 less a cent: exact
    with pytest.raises(metrics.MoneyRangeError):
        metrics.dollars(12 * (2**60 + 1))
