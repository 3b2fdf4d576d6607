"""Customer metrics of business_health: satisfaction, utilisation and risk.

- customer_satisfaction.nps: % promoters (9–10) − % detractors (0–6) over the responses in
  [end − 90 days, end); customer_satisfaction.responses: their count.
- platform_utilization: % of the active customers (MRR > 0 as of end) with ≥ 1 usage event in the
  period.
- at_risk_customers / mrr_at_risk: active customers with no usage event in [end − 14 days, end) or
  whose latest NPS score in [end − 90 days, end) is ≤ 6, and their MRR.
- churn_risk: high if churn_rate_28d ≥ 5 or mrr_at_risk ≥ 15 % of mrr, else medium if
  churn_rate_28d ≥ 2 or mrr_at_risk ≥ 7.5 % of mrr, else low (with mrr = 0 the share is undefined
  and does not count).
- growth_trajectory: mrr_growth_rate ≥ 5 strong, ≥ 1 steady, > −1 flat (also when null), else
  declining.
"""

from __future__ import annotations

from datetime import datetime
from fractions import Fraction

import pandas as pd

from include.investor_metrics.weekly.metrics.frames import customer_ids
from include.investor_metrics.weekly.metrics.revenue import paying_customers_as_of
from include.investor_metrics.weekly.metrics.rounding import percentage


def net_promoter_score(nps: pd.DataFrame) -> tuple[float | None, int]:
    """(NPS, number of responses) over the extract's 90-day window."""
    responses = int(nps["responses"].sum())
    return percentage(int(nps["promoters"].sum()) - int(nps["detractors"].sum()), responses), responses


def platform_utilization(subscriptions: pd.DataFrame, usage: pd.DataFrame, end: datetime) -> float | None:
    paying = set(paying_customers_as_of(subscriptions, end).index)
    used = customer_ids(usage.loc[usage["events_in_period"] > 0, "customer_id"])
    return percentage(len(paying & used), len(paying))


def at_risk(
    subscriptions: pd.DataFrame, usage: pd.DataFrame, nps: pd.DataFrame, end: datetime
) -> tuple[int, int]:
    """(customers at risk, their MRR in twelfths): active as of end, and quiet for 14 days or
    whose latest NPS score in 90 days is ≤ 6."""
    paying = paying_customers_as_of(subscriptions, end)
    recently_used = customer_ids(usage.loc[usage["events_last_14d"] > 0, "customer_id"])
    unhappy = customer_ids(nps.loc[nps["latest_score"].notna() & (nps["latest_score"] <= 6), "customer_id"])
    risky = paying[[(c not in recently_used) or (c in unhappy) for c in paying.index]]
    return len(risky), int(risky.sum())


def churn_risk(churn_rate_28d: float | None, mrr_at_risk_twelfths: int, mrr_twelfths: int) -> str:
    share = Fraction(mrr_at_risk_twelfths, mrr_twelfths) if mrr_twelfths else None

    def reaches(rate_threshold, share_threshold) -> bool:
        return (churn_rate_28d is not None and churn_rate_28d >= rate_threshold) or (
            share is not None and share >= share_threshold
        )

    if reaches(5, Fraction(15, 100)):
        return "high"
    if reaches(2, Fraction(75, 1000)):
        return "medium"
    return "low"


def growth_trajectory(mrr_growth_rate: float | None) -> str:
    if mrr_growth_rate is None:
        return "flat"
    if mrr_growth_rate >= 5:
        return "strong"
    if mrr_growth_rate >= 1:
        return "steady"
    if mrr_growth_rate > -1:
        return "flat"
    return "declining"
