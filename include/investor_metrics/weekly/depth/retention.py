"""Net and gross revenue retention and logo retention (SPEC 4b), pure functions.

Inputs are per-customer MRR series (twelfths of a cent, index customer_id, customers with MRR > 0
only; ``instants.mrr_at``) as of the base instant and as of ``end``. The base set B is the
customers with MRR > 0 as of the base instant; a customer who first paid after it is not in B and
counts nowhere. With b(c), e(c) a customer's MRR as of the base instant and as of ``end``:
NRR = Σ_B e / Σ_B b × 100, GRR = Σ_B min(e, b) / Σ_B b × 100, logo retention = |{c ∈ B: e > 0}|
/ |B| × 100; 2 decimals half-up, ``None`` when B is empty.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from include.investor_metrics.weekly.depth.instants import DepthInstants, exact_sum, mrr_at
from include.investor_metrics.weekly.metrics import percentage


def _base_and_current(base: pd.Series, current: pd.Series) -> tuple[pd.Series, pd.Series]:
    b = base[base > 0]
    return b, current.reindex(b.index, fill_value=0).astype("int64")


def net_revenue_retention(base: pd.Series, current: pd.Series) -> float | None:
    b, e = _base_and_current(base, current)
    return percentage(exact_sum(e), exact_sum(b))


def gross_revenue_retention(base: pd.Series, current: pd.Series) -> float | None:
    b, e = _base_and_current(base, current)
    return percentage(exact_sum(np.minimum(e.to_numpy(), b.to_numpy())), exact_sum(b))


def logo_retention(base: pd.Series, current: pd.Series) -> float | None:
    b, e = _base_and_current(base, current)
    return percentage(int((e > 0).sum()), len(b))


def retention_rates(customer_mrr: pd.DataFrame, instants: DepthInstants) -> dict:
    """nrr_12m, grr_12m, nrr_1m, grr_1m and logo_retention_12m from the ``customer_mrr`` frame."""
    at_end = mrr_at(customer_mrr, instants.end)
    year_ago = mrr_at(customer_mrr, instants.base_12m)
    month_ago = mrr_at(customer_mrr, instants.base_1m)
    return {
        "nrr_12m": net_revenue_retention(year_ago, at_end),
        "grr_12m": gross_revenue_retention(year_ago, at_end),
        "nrr_1m": net_revenue_retention(month_ago, at_end),
        "grr_1m": gross_revenue_retention(month_ago, at_end),
        "logo_retention_12m": logo_retention(year_ago, at_end),
    }
