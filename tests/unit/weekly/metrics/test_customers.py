"""Customer metrics (``weekly/metrics/customers.py``): NPS, at-risk, utilisation, churn risk and
trajectory, on hand-made frames (``sample_frames.py``)."""

from __future__ import annotations

from datetime import datetime

import pandas as pd
import pytest

from include.investor_metrics.weekly.metrics.customers import churn_risk, growth_trajectory
from tests.unit.weekly.metrics.sample_frames import (
    LONG_AGO,
    UTC,
    business_health,
    subscriptions,
    usage,
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
