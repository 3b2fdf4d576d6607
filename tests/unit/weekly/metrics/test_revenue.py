"""Revenue metrics (``weekly/metrics/revenue.py``) on hand-made frames: "as of t", MRR movements,
growth, lead conversion, exact money for every bigint amount (the frames: ``sample_frames.py``)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from include.investor_metrics.weekly.metrics import revenue, rounding
from include.investor_metrics.weekly.metrics.revenue import MrrMovements, mrr_as_of, mrr_movements
from tests.unit.weekly.metrics.sample_frames import (
    END,
    LONG_AGO,
    MID,
    START,
    UTC,
    business_health,
    financial,
    history,
    leads,
    subscriptions,
    usage,
)

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


def test_unknown_billing_interval_is_a_clear_error():
    subs = subscriptions((1, "week", 100, LONG_AGO, None))
    with pytest.raises(ValueError, match="billing_interval"):
        mrr_as_of(subs, END)


def test_subscription_active_exactly_between_instants():
    # started_at < t and ended_at >= t, checked one microsecond either side of both bounds
    subs = subscriptions((1, "month", 100, MID, MID + timedelta(hours=1)))
    tick = timedelta(microseconds=1)
    assert list(revenue.active_as_of(subs, MID)) == [False]
    assert list(revenue.active_as_of(subs, MID + tick)) == [True]
    assert list(revenue.active_as_of(subs, MID + timedelta(hours=1))) == [True]
    assert list(revenue.active_as_of(subs, MID + timedelta(hours=1) + tick)) == [False]


# --- exact money for every bigint amount (SPEC section 5) --------------------------------------

BIGINT_MAX = 2**63 - 1


def test_an_amount_near_the_bigint_maximum_never_wraps_and_is_refused_by_name():
    # 12 x amount leaves int64: numpy wrapped it (MRR $49.99 for these two subscriptions)
    subs = subscriptions((1, "month", BIGINT_MAX - 4000, LONG_AGO, None), (2, "month", 5000, LONG_AGO, None))

    assert mrr_as_of(subs, END) == 12 * (BIGINT_MAX - 4000) + 12 * 5000  # exact, Python integers
    assert revenue.subscription_mrr_twelfths(subs).dtype == object
    # $92,233,720,368,547,768.07 is beyond what a JSON number says to the cent: refused, not rounded
    with pytest.raises(rounding.MoneyRangeError, match="92233720368547768.07 dollars"):
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

    # $10M a month each
    ordinary = subscriptions(*[(c, "month", 10**9, LONG_AGO, None) for c in range(1, 101)])
    assert revenue.subscription_mrr_twelfths(ordinary).dtype == "int64"
    assert mrr_as_of(ordinary, END) == 100 * 12 * 10**9
    # the bound: 24 x largest |amount| x rows <= 2^63 - 1
    limit = BIGINT_MAX // 24
    assert revenue.int64_is_exact(np.array([limit], dtype="int64"))
    assert not revenue.int64_is_exact(np.array([limit + 1], dtype="int64"))
    assert not revenue.int64_is_exact(np.array([-(limit + 1)], dtype="int64"))
    assert not revenue.int64_is_exact(np.array([-(2**63)], dtype="int64"))  # abs() would wrap here
