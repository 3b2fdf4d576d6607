"""Cohort retention (SPEC 4b ``retention.cohorts``), a pure function.

A cohort is a calendar month of ``INVESTOR_TIMEZONE`` (``instants.cohort_months``: the 12 most
recent whose start is before ``end``, oldest first); its members are the customers whose first paid
instant (earliest ``started_at`` of a subscription with ``amount_cents > 0``) lies in
[month start, next month start) and before ``end``. At each checkpoint (``month start + k months``
before ``end``, then ``end``): ``as_of`` (ISO 8601 UTC), ``active`` (members with MRR > 0 as of it),
``mrr`` (their MRR, dollars), ``logo_retention`` (active / customers × 100) and ``mrr_retention``
(mrr / the first checkpoint's mrr × 100). A month without members is listed with ``customers`` 0
and ``null`` rates.
"""

from __future__ import annotations

import pandas as pd

from include.investor_metrics.period import iso_utc, to_utc
from include.investor_metrics.weekly.depth.instants import CohortMonth, DepthInstants, exact_sum, mrr_at
from include.investor_metrics.weekly.metrics import dollars, percentage


def cohort_members(customers: pd.DataFrame, month: CohortMonth, end) -> pd.Index:
    """The customer ids whose first paid instant is in [month.start, min(month.next_start, end))."""
    first_paid = customers["first_paid_at"]
    until = min(to_utc(month.next_start), to_utc(end))
    inside = first_paid.notna() & (first_paid >= pd.Timestamp(to_utc(month.start))) & (
        first_paid < pd.Timestamp(until)
    )
    return pd.Index(customers.loc[inside, "customer_id"].astype("int64").unique(), name="customer_id")


def cohort(month: CohortMonth, members: pd.Index, mrr_by_checkpoint: dict) -> dict:
    """One cohort's entry; ``mrr_by_checkpoint``: {checkpoint: per-customer MRR series}."""
    points = []
    first_mrr = None
    for point in month.checkpoints:
        mrr = mrr_by_checkpoint[point]
        member_mrr = mrr[mrr.index.isin(members) & (mrr > 0)]
        total = exact_sum(member_mrr)
        first_mrr = total if first_mrr is None else first_mrr
        points.append({
            "as_of": iso_utc(point),
            "active": int(len(member_mrr)),
            "mrr": dollars(total),
            "logo_retention": percentage(len(member_mrr), len(members)),
            "mrr_retention": percentage(total, first_mrr),
        })
    return {"month": month.label, "customers": int(len(members)), "checkpoints": points}


def cohorts(customers: pd.DataFrame, customer_mrr: pd.DataFrame, instants: DepthInstants) -> list[dict]:
    """The 12 cohorts, oldest first, from the ``customers`` and ``customer_mrr`` frames."""
    points = {p for month in instants.cohorts for p in month.checkpoints}
    mrr_by_checkpoint = {p: mrr_at(customer_mrr, p) for p in points}
    return [
        cohort(month, cohort_members(customers, month, instants.end), mrr_by_checkpoint)
        for month in instants.cohorts
    ]
