"""Cohort retention (SPEC 4b ``retention.cohorts``), a pure function.

A cohort is a calendar month of ``INVESTOR_TIMEZONE`` (``instants.cohort_months``: the 12 most
recent whose start is before ``end``, oldest first); its members are the customers whose first paid
instant (earliest ``started_at`` of a subscription with ``amount_cents > 0``) lies in
[month start, next month start) and before ``end``; PostgreSQL counts them per checkpoint (the
``depth_cohorts`` frame). At each checkpoint (``month start + k months`` before ``end``, then
``end``): ``as_of`` (ISO 8601 UTC), ``active`` (members with MRR > 0 as of it), ``mrr`` (their MRR,
dollars), ``logo_retention`` (active / customers × 100) and ``mrr_retention`` (mrr / the first
checkpoint's mrr × 100). A month without members is listed with ``customers`` 0 and ``null`` rates.
"""

from __future__ import annotations

import pandas as pd

from include.investor_metrics.period import iso_utc, to_utc
from include.investor_metrics.weekly.depth.instants import CohortMonth, DepthInstants
from include.investor_metrics.weekly.metrics.rounding import dollars, percentage


def cohort(month: CohortMonth, rows: dict) -> dict:
    """One cohort's entry; ``rows``: {checkpoint (UTC): (customers, active, mrr twelfths)}."""
    customers = next(iter(rows.values()))[0] if rows else 0  # the same on every row of a cohort
    points, first_mrr = [], None
    for point in month.checkpoints:
        _, active, mrr = rows.get(pd.Timestamp(to_utc(point)), (customers, 0, 0))
        first_mrr = mrr if first_mrr is None else first_mrr
        points.append({
            "as_of": iso_utc(point),
            "active": active,
            "mrr": dollars(mrr),
            "logo_retention": percentage(active, customers),
            "mrr_retention": percentage(mrr, first_mrr),
        })
    return {"month": month.label, "customers": customers, "checkpoints": points}


def cohorts(frame: pd.DataFrame, instants: DepthInstants) -> list[dict]:
    """The 12 cohorts, oldest first, from the ``depth_cohorts`` frame."""
    by_cohort: dict = {}
    for start, as_of, customers, active, mrr in zip(
        *(frame[c].tolist() for c in ("cohort_start", "as_of", "customers", "active", "mrr_twelfths")),
        strict=True,
    ):
        by_cohort.setdefault(start, {})[as_of] = (int(customers), int(active), int(mrr))
    return [cohort(month, by_cohort.get(pd.Timestamp(to_utc(month.start)), {}))
            for month in instants.cohorts]
