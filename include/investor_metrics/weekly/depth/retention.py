"""Net and gross revenue retention and logo retention (SPEC 4b), pure functions.

``net_revenue_retention`` & co. take two MRR series aligned on the customers (twelfths of a cent):
b, as of the base instant, and e, as of ``end``. The base set B is the customers with b > 0; a
customer who first paid after the base instant is not in B and counts nowhere.
NRR = Σ_B e / Σ_B b × 100, GRR = Σ_B min(e, b) / Σ_B b × 100, logo retention = |{c ∈ B: e > 0}|
/ |B| × 100; 2 decimals half-up, ``None`` when B is empty. ``retention_rates`` reads them from the
``depth_customers`` frame (base instants end − 12 months and end − 1 month).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from include.investor_metrics.weekly.depth.instants import exact_sum
from include.investor_metrics.weekly.metrics.rounding import percentage


def _in_base(base: pd.Series, current: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    b, e = base.to_numpy(dtype="int64"), current.to_numpy(dtype="int64")
    return b[b > 0], e[b > 0]


def net_revenue_retention(base: pd.Series, current: pd.Series) -> float | None:
    b, e = _in_base(base, current)
    return percentage(exact_sum(e), exact_sum(b))


def gross_revenue_retention(base: pd.Series, current: pd.Series) -> float | None:
    b, e = _in_base(base, current)
    return percentage(exact_sum(np.minimum(e, b)), exact_sum(b))


def logo_retention(base: pd.Series, current: pd.Series) -> float | None:
    b, e = _in_base(base, current)
    return percentage(int((e > 0).sum()), len(b))


def retention_rates(customers: pd.DataFrame) -> dict:
    """nrr_12m, grr_12m, nrr_1m, grr_1m and logo_retention_12m from the ``depth_customers`` frame."""
    at_end = customers["mrr_end_twelfths"]
    year_ago, month_ago = customers["mrr_year_ago_twelfths"], customers["mrr_month_ago_twelfths"]
    return {
        "nrr_12m": net_revenue_retention(year_ago, at_end),
        "grr_12m": gross_revenue_retention(year_ago, at_end),
        "nrr_1m": net_revenue_retention(month_ago, at_end),
        "grr_1m": gross_revenue_retention(month_ago, at_end),
        "logo_retention_12m": logo_retention(year_ago, at_end),
    }
