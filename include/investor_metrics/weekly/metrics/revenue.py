"""Revenue metrics: the financial section and the churn figures of business_health.

- mrr: Σ MRR of the subscriptions active as of end; arr: 12 × the exact mrr.
- active_customers: customers whose MRR as of end is > 0 (a free plan does not make one active).
- mrr_growth_rate / customer_growth_rate: change of mrr / active_customers between end − 1 month
  and end, in % of the earlier value.
- new_mrr / reactivation_mrr / expansion_mrr / contraction_mrr / churned_mrr: per customer, MRR as
  of start (s) vs as of end (e): s = 0 < e is new (or reactivation when some subscription of the
  customer ended before start), 0 < s < e expansion (e − s), 0 < e < s contraction (s − e),
  e = 0 < s churned (s).
- net_new_mrr: new + reactivation + expansion − contraction − churned, which equals
  mrr(end) − mrr(start) exactly (asserted on the exact integers before rounding).
- arpa: mrr / active_customers.
- quick_ratio: (new + reactivation + expansion) / (contraction + churned), 2 decimals.
- lead_conversion_rate: % of the leads created in [end − 28 days, end) that converted before end.
- churned_customers: customers with MRR > 0 as of start and 0 as of end.
- logo_churn_rate: churned_customers in % of the customers with MRR > 0 as of start.
- revenue_churn_rate: (churned_mrr + contraction_mrr) in % of mrr as of start.
- churn_rate_28d: the logo churn rate between end − 28 days and end.

Exact money: a subscription's MRR is an integer number of twelfths of a cent (a monthly amount
× 12, a yearly amount × 1), so sums and differences are exact (dollars: ``rounding.dollars``). The
integers are int64 (numpy, vectorised) when no sum or difference of the frame's MRR can leave int64
(24 × the largest |amount| × the rows ≤ 2^63 − 1: always at the bench's scale), else Python
integers (an object column), so no bigint amount ever wraps.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from fractions import Fraction

import numpy as np
import pandas as pd

from include.investor_metrics.period import to_utc
from include.investor_metrics.weekly.metrics.frames import customer_ids
from include.investor_metrics.weekly.metrics.rounding import TWELFTHS_PER_DOLLAR, percentage, round_half_up

MRR_FACTOR = {"month": 12, "year": 1}  # amount_cents → twelfths of a cent per month
INT64_MAX = int(np.iinfo(np.int64).max)
# A sum of MRR, or the difference of two such sums (movements), never exceeds 2 x 12 x the sum
# of |amount_cents| over the frame: within int64 below this, the vectorised path is exact.
_INT64_HEADROOM = 2 * MRR_FACTOR["month"]


def subscription_mrr_twelfths(subscriptions: pd.DataFrame) -> pd.Series:
    """Each subscription's MRR in twelfths of a cent (exact integers)."""
    interval = subscriptions["billing_interval"].to_numpy(dtype=object)
    monthly, yearly = interval == "month", interval == "year"
    if not (monthly | yearly).all():
        unknown = subscriptions.loc[~(monthly | yearly), "billing_interval"]
        raise ValueError(f"billing_interval must be month or year, got {sorted(set(map(str, unknown)))}")
    # vectorised (a Series.map on a pandas 3 string column costs ~30x more, and this runs per instant)
    factor = np.where(monthly, MRR_FACTOR["month"], MRR_FACTOR["year"]).astype("int64")
    amounts = subscriptions["amount_cents"].astype("int64").to_numpy()
    if int64_is_exact(amounts):
        return pd.Series(amounts * factor, index=subscriptions.index, dtype="int64")
    exact = [int(a) * int(f) for a, f in zip(amounts.tolist(), factor.tolist(), strict=True)]
    return pd.Series(exact, index=subscriptions.index, dtype=object)


def int64_is_exact(amounts: np.ndarray) -> bool:
    """Whether every MRR sum and movement over subscriptions with these ``amount_cents`` fits
    int64 (else the module computes with Python integers)."""
    if len(amounts) == 0:
        return True
    largest = max(int(amounts.max()), -int(amounts.min()))
    return _INT64_HEADROOM * largest * len(amounts) <= INT64_MAX


def _as_integers(mrr: pd.Series) -> pd.Series:
    """A sum of MRR back to int64, or kept as Python integers when it is exact only that way."""
    return mrr if mrr.dtype == object else mrr.astype("int64")


def active_as_of(subscriptions: pd.DataFrame, t: datetime) -> pd.Series:
    """Which subscriptions are active as of ``t``: started before t, not ended before t."""
    t = pd.Timestamp(to_utc(t))
    ended_at = subscriptions["ended_at"]
    return (subscriptions["started_at"] < t) & (ended_at.isna() | (ended_at >= t))


def mrr_by_customer_as_of(subscriptions: pd.DataFrame, t: datetime) -> pd.Series:
    """MRR (twelfths of a cent) per customer with an active subscription as of ``t`` (0 for a
    customer on free plans only); index customer_id."""
    active = subscriptions[active_as_of(subscriptions, t)]
    mrr = subscription_mrr_twelfths(active).groupby(active["customer_id"].astype("int64")).sum()
    return _as_integers(mrr).rename("mrr_twelfths")


def mrr_as_of(subscriptions: pd.DataFrame, t: datetime) -> int:
    """Total MRR as of ``t`` in twelfths of a cent."""
    return int(mrr_by_customer_as_of(subscriptions, t).sum())


def paying_customers_as_of(subscriptions: pd.DataFrame, t: datetime) -> pd.Series:
    """MRR per customer whose MRR as of ``t`` is > 0 (the "active customers")."""
    mrr = mrr_by_customer_as_of(subscriptions, t)
    return mrr[mrr > 0]


def active_customers_as_of(subscriptions: pd.DataFrame, t: datetime) -> int:
    return len(paying_customers_as_of(subscriptions, t))


@dataclass(frozen=True)
class MrrMovements:
    """MRR movements between two instants, in twelfths of a cent."""

    new: int
    reactivation: int
    expansion: int
    contraction: int
    churned: int

    @property
    def net_new(self) -> int:
        return self.new + self.reactivation + self.expansion - self.contraction - self.churned


def mrr_movements(
    subscriptions: pd.DataFrame, customer_history: pd.DataFrame, start: datetime, end: datetime
) -> MrrMovements:
    """Per customer, MRR as of ``start`` (s) vs as of ``end`` (e), summed by kind of movement."""
    as_of_start = mrr_by_customer_as_of(subscriptions, start)
    as_of_end = mrr_by_customer_as_of(subscriptions, end)
    # aligned with 0 for a missing customer, without NaN (a float would round big integers)
    customers = as_of_start.index.union(as_of_end.index)
    s, e = as_of_start.reindex(customers, fill_value=0), as_of_end.reindex(customers, fill_value=0)
    ended_before = customer_history["ended_before_start"].astype(bool)
    returning = customer_ids(customer_history.loc[ended_before, "customer_id"])
    starting = (s == 0) & (e > 0)
    is_returning = customers.isin(list(returning))
    return MrrMovements(
        new=int(e[starting & ~is_returning].sum()),
        reactivation=int(e[starting & is_returning].sum()),
        expansion=int((e - s)[(s > 0) & (e > s)].sum()),
        contraction=int((s - e)[(e > 0) & (e < s)].sum()),
        churned=int(s[(s > 0) & (e == 0)].sum()),
    )


def churned_customers(subscriptions: pd.DataFrame, since: datetime, until: datetime) -> int:
    """Customers with MRR > 0 as of ``since`` and 0 as of ``until``."""
    before = set(paying_customers_as_of(subscriptions, since).index)
    after = set(paying_customers_as_of(subscriptions, until).index)
    return len(before - after)


def logo_churn_rate(subscriptions: pd.DataFrame, since: datetime, until: datetime) -> float | None:
    """Churned customers in % of the customers with MRR > 0 as of ``since``."""
    return percentage(
        churned_customers(subscriptions, since, until), active_customers_as_of(subscriptions, since)
    )


def revenue_churn_rate(movements: MrrMovements, mrr_start_twelfths: int) -> float | None:
    return percentage(movements.churned + movements.contraction, mrr_start_twelfths)


def growth_rate(current, previous) -> float | None:
    """Change from ``previous`` to ``current`` in % of ``previous``."""
    return percentage(current - previous, previous)


def quick_ratio(movements: MrrMovements) -> float | None:
    lost = movements.contraction + movements.churned
    if lost == 0:
        return None
    return round_half_up(Fraction(movements.new + movements.reactivation + movements.expansion, lost))


def arpa(mrr_twelfths: int, active_customers: int) -> float | None:
    """Average MRR per active customer, in dollars."""
    if active_customers == 0:
        return None
    return round_half_up(Fraction(mrr_twelfths, TWELFTHS_PER_DOLLAR * active_customers))


def lead_conversion_rate(leads: pd.DataFrame) -> float | None:
    return percentage(int(leads["converted"].sum()), int(leads["leads"].sum()))
