"""The computed part of a snapshot (SPEC section 7): every section from the extract's frames, and
the depth sections of SPEC 4b (``retention``, ``segments``, ``movements``) from the depth frames,
checked against the exact totals the financial section computed."""

from __future__ import annotations

import pandas as pd

from include.investor_metrics.period import Period, iso_utc, to_utc
from include.investor_metrics.weekly.depth.snapshot import depth_sections
from include.investor_metrics.weekly.metrics.ai_platform import ai_platform
from include.investor_metrics.weekly.metrics.customers import (
    at_risk,
    churn_risk,
    growth_trajectory,
    net_promoter_score,
    platform_utilization,
)
from include.investor_metrics.weekly.metrics.revenue import (
    active_customers_as_of,
    arpa,
    churned_customers,
    growth_rate,
    lead_conversion_rate,
    logo_churn_rate,
    mrr_as_of,
    mrr_movements,
    quick_ratio,
    revenue_churn_rate,
)
from include.investor_metrics.weekly.metrics.rounding import dollars
from include.investor_metrics.weekly.metrics.system_health import system_health


def financial_and_business_health(period: Period, business: dict[str, pd.DataFrame]) -> tuple[dict, dict]:
    financial, business_health, _totals = _financial_sections(period, business)
    return financial, business_health


def _financial_sections(period: Period, business: dict[str, pd.DataFrame]) -> tuple[dict, dict, dict]:
    """``financial``, ``business_health`` and the exact totals the depth sections must add up to
    (``mrr_twelfths``, ``net_new_mrr_twelfths``: twelfths of a cent)."""
    subscriptions = business["subscriptions"]
    start, end = to_utc(period.start), to_utc(period.end)
    month_ago, since_28d = period.offset(months=1), period.offset(days=28)

    mrr = mrr_as_of(subscriptions, end)
    mrr_start = mrr_as_of(subscriptions, start)
    active = active_customers_as_of(subscriptions, end)
    movements = mrr_movements(subscriptions, business["customer_history"], start, end)
    if movements.net_new != mrr - mrr_start:  # an invariant of the definitions, exact integers
        raise AssertionError(f"net new MRR {movements.net_new} != {mrr} - {mrr_start} (twelfths of a cent)")
    mrr_growth = growth_rate(mrr, mrr_as_of(subscriptions, month_ago))
    churn_28d = logo_churn_rate(subscriptions, since_28d, end)
    risky_customers, risky_mrr = at_risk(subscriptions, business["usage"], business["nps"], end)
    nps, responses = net_promoter_score(business["nps"])

    financial = {
        "mrr": dollars(mrr),
        "arr": dollars(12 * mrr),
        "active_customers": active,
        "mrr_growth_rate": mrr_growth,
        "customer_growth_rate": growth_rate(active, active_customers_as_of(subscriptions, month_ago)),
        "new_mrr": dollars(movements.new),
        "reactivation_mrr": dollars(movements.reactivation),
        "expansion_mrr": dollars(movements.expansion),
        "contraction_mrr": dollars(movements.contraction),
        "churned_mrr": dollars(movements.churned),
        "net_new_mrr": dollars(movements.net_new),
        "quick_ratio": quick_ratio(movements),
        "arpa": arpa(mrr, active),
        "lead_conversion_rate": lead_conversion_rate(business["leads"]),
    }
    business_health = {
        "churn_risk": churn_risk(churn_28d, risky_mrr, mrr),
        "growth_trajectory": growth_trajectory(mrr_growth),
        "churned_customers": churned_customers(subscriptions, start, end),
        "logo_churn_rate": logo_churn_rate(subscriptions, start, end),
        "revenue_churn_rate": revenue_churn_rate(movements, mrr_start),
        "churn_rate_28d": churn_28d,
        "customer_satisfaction": {"nps": nps, "responses": responses},
        "platform_utilization": platform_utilization(subscriptions, business["usage"], end),
        "at_risk_customers": risky_customers,
        "mrr_at_risk": dollars(risky_mrr),
    }
    totals = {"mrr_twelfths": mrr, "net_new_mrr_twelfths": movements.net_new}
    return financial, business_health, totals


def build_snapshot(
    period: Period,
    business: dict[str, pd.DataFrame],
    ai: pd.DataFrame,
    health: pd.DataFrame,
    services: list[str] | None = None,
    depth: dict[str, pd.DataFrame] | None = None,
) -> dict:
    """The computed part of a snapshot (SPEC section 7), plain JSON-serialisable Python; the DAG
    adds ``generated_at``, ``data_quality`` and ``alerts``. With ``depth`` (the frames of
    ``depth/extract.py``; the DAG always passes them) it also holds ``retention``, ``segments`` and
    ``movements``, whose plan and customer sums are asserted against this snapshot's own totals."""
    financial, business_health, totals = _financial_sections(period, business)
    snapshot = {
        "timestamp": iso_utc(period.end),
        "period": period.as_dict(),
        "system_health": system_health(health, services),
        "ai_platform": ai_platform(ai),
        "financial": financial,
        "business_health": business_health,
    }
    if depth is not None:
        snapshot.update(depth_sections(period, depth, **totals))
    return snapshot
