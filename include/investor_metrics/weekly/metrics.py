"""Investor metric definitions (SPEC section 4): one small pure function per metric, frames in,
numbers out. This module is the one place where each metric is defined.

Inputs are the frames of ``include/investor_metrics/weekly/extract.py`` (its docstring has their contracts); ``start`` and
``end`` are the period, "as of t" is the state just before t: a subscription is active as of t when
``started_at < t`` and (``ended_at`` is null or ``ended_at >= t``). Offsets (14, 28, 90 days,
1 month) are calendar offsets in the investor time zone (``Period.offset``).

Exact money: a subscription's MRR is kept as an integer number of *twelfths of a cent* (a monthly
amount × 12, a yearly amount × 1), so sums and differences are exact; it becomes dollars only at
the end, rounded to cents half away from zero (``ROUND_HALF_UP``). The integers are int64 (numpy,
vectorised) when no sum or difference of the frame's MRR can leave int64 (24 × the largest
|amount| × the rows ≤ 2^63 − 1: always at the bench's scale), else Python integers (an object
column), so no bigint amount ever wraps. A dollar figure that a JSON number (a float) cannot carry
to the cent (beyond ~$10^13) is refused with ``MoneyRangeError``, never rounded silently; the
validation step's ceiling on ``amount_cents`` keeps real data far below that. Percentages and ratios are also
computed exactly (fractions) and rounded once, the same way, to 2 decimals; a rate whose
denominator is 0 is ``None``. Millisecond figures are rounded to 2 decimals. Thresholds
(``status``, ``churn_risk``, ``growth_trajectory``) compare the reported, rounded percentages, so a
reader (and the alert rules) see the same number the classification used; the MRR-at-risk share
is compared exactly.

financial
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

business_health
- churned_customers: customers with MRR > 0 as of start and 0 as of end.
- logo_churn_rate: churned_customers in % of the customers with MRR > 0 as of start.
- revenue_churn_rate: (churned_mrr + contraction_mrr) in % of mrr as of start.
- churn_rate_28d: the logo churn rate between end − 28 days and end.
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

system_health (health checks in the period; the services counted are the configured ones, or
when none are configured those with checks)
- uptime_percentage: ok checks in % of all checks; per service the same, in ``services``.
- services_total: services counted (a configured service without checks counts, not healthy);
  services_healthy: services whose latest check in the period is ok.
- avg_response_time_ms / p95_response_time_ms: mean / continuous 95th percentile
  (``percentile_cont``, computed in PostgreSQL) of the ok checks' response times.
- error_rate: failed checks in % of all checks.
- status: critical if no service is healthy or some service's uptime < 90, else healthy if
  uptime ≥ 99.5 and every service is healthy, else degraded.

ai_platform (AI requests in the period)
- total_requests, chat_requests, api_requests: request counts (all, by type).
- cache_hit_rate / error_rate: cache hits / errors in % of all requests.
- active_providers: distinct providers with ≥ 1 ok request.
- accuracy_rate: correct in % of the requests with feedback (correct + incorrect).
- avg_latency_ms / p95_latency_ms: mean / continuous 95th percentile (PostgreSQL
  ``percentile_cont``) of the latency of every request with one, errors included.
- providers: the same figures per provider (a request without a provider is under "unknown").
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction

import numpy as np
import pandas as pd

from include.investor_metrics.period import Period, iso_utc, to_utc

TWELFTHS_PER_DOLLAR = 12 * 100
MRR_FACTOR = {"month": 12, "year": 1}  # amount_cents → twelfths of a cent per month
UNKNOWN_PROVIDER = "unknown"
INT64_MAX = int(np.iinfo(np.int64).max)
# A sum of MRR, or the difference of two such sums (movements), never exceeds 2 x 12 x the sum
# of |amount_cents| over the frame: within int64 below this, the vectorised path is exact.
_INT64_HEADROOM = 2 * MRR_FACTOR["month"]


class MoneyRangeError(ValueError):
    """A money figure too large to be reported exactly to the cent (SPEC section 5)."""


# --- rounding: the one place numbers become reported values -------------------------------------


def round_half_up(value: Fraction | int, places: int = 2) -> float:
    """Exact ``value`` rounded to ``places`` decimals, halves away from zero, as a float."""
    return float(_half_up(value, places))


def _half_up(value: Fraction | int, places: int) -> Decimal:
    scaled = Fraction(value) * 10**places
    units = math.floor(abs(scaled) + Fraction(1, 2))
    return Decimal(units if scaled >= 0 else -units).scaleb(-places)


def dollars(twelfths: int) -> float:
    """Twelfths of a cent → dollars rounded to cents; ``MoneyRangeError`` when the float that
    carries it into the snapshot (JSON) would not say the exact cents (beyond ~$10^13)."""
    exact = _half_up(Fraction(int(twelfths), TWELFTHS_PER_DOLLAR), 2)
    value = float(exact)
    if Decimal(repr(value)) != exact:
        raise MoneyRangeError(
            f"a money figure of {exact} dollars cannot be reported exactly to the cent (a JSON number "
            f"would say {value!r}): check subscriptions.amount_cents"
        )
    return value


def percentage(numerator, denominator) -> float | None:
    """``numerator / denominator × 100`` to 2 decimals; None when the denominator is 0."""
    if denominator == 0:
        return None
    return round_half_up(Fraction(numerator) * 100 / Fraction(denominator))


def milliseconds(value) -> float | None:
    """A millisecond figure from PostgreSQL (float) to 2 decimals; None when there is none."""
    if value is None or pd.isna(value):
        return None
    return float(Decimal(repr(float(value))).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def _ids(values: pd.Series) -> set[int]:
    return {int(v) for v in values.dropna()}


# --- subscriptions and MRR -------------------------------------------------------------------------


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
    returning = _ids(customer_history.loc[customer_history["ended_before_start"].astype(bool), "customer_id"])
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


# --- customers: satisfaction, usage, risk ------------------------------------------------------


def net_promoter_score(nps: pd.DataFrame) -> tuple[float | None, int]:
    """(NPS, number of responses) over the extract's 90-day window."""
    responses = int(nps["responses"].sum())
    return percentage(int(nps["promoters"].sum()) - int(nps["detractors"].sum()), responses), responses


def platform_utilization(subscriptions: pd.DataFrame, usage: pd.DataFrame, end: datetime) -> float | None:
    paying = set(paying_customers_as_of(subscriptions, end).index)
    used = _ids(usage.loc[usage["events_in_period"] > 0, "customer_id"])
    return percentage(len(paying & used), len(paying))


def at_risk(
    subscriptions: pd.DataFrame, usage: pd.DataFrame, nps: pd.DataFrame, end: datetime
) -> tuple[int, int]:
    """(customers at risk, their MRR in twelfths): active as of end, and quiet for 14 days or
    whose latest NPS score in 90 days is ≤ 6."""
    paying = paying_customers_as_of(subscriptions, end)
    recently_used = _ids(usage.loc[usage["events_last_14d"] > 0, "customer_id"])
    unhappy = _ids(nps.loc[nps["latest_score"].notna() & (nps["latest_score"] <= 6), "customer_id"])
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


# --- system health -----------------------------------------------------------------------------


def _total_row(frame: pd.DataFrame) -> pd.Series | None:
    totals = frame[frame["is_total"].astype(bool)]
    return totals.iloc[0] if len(totals) else None


def _count(row: pd.Series | None, column: str) -> int:
    return 0 if row is None else int(row[column])


def service_health(row: pd.Series | None) -> dict:
    """One service's figures; ``row`` None for a service without checks in the period."""
    if row is None:
        return {"uptime_percentage": None, "avg_response_time_ms": None, "healthy": False}
    latest_ok = row["latest_ok"]
    return {
        "uptime_percentage": percentage(int(row["ok_checks"]), int(row["checks"])),
        "avg_response_time_ms": milliseconds(row["avg_response_ms"]),
        "healthy": bool(not pd.isna(latest_ok) and latest_ok),
    }


def system_status(
    uptime_percentage: float | None, services: dict[str, dict], services_healthy: int, services_total: int
) -> str:
    if services_healthy == 0 or any(
        s["uptime_percentage"] is not None and s["uptime_percentage"] < 90 for s in services.values()
    ):
        return "critical"
    if uptime_percentage is not None and uptime_percentage >= 99.5 and services_healthy == services_total:
        return "healthy"
    return "degraded"


def system_health(health: pd.DataFrame, services: list[str] | None = None) -> dict:
    """The ``system_health`` section from the health-checks extract. ``services``: the configured
    services (the extract must have been restricted to the same list)."""
    per_service = health[~health["is_total"].astype(bool)]
    rows = {str(r["service"]): r for _, r in per_service.iterrows()}
    if services:
        unexpected = sorted(set(rows) - set(services))
        if unexpected:
            raise ValueError(
                f"health checks of unconfigured services {unexpected}: extract with the same list"
            )
        names = list(services)
    else:
        names = sorted(rows)
    by_service = {name: service_health(rows.get(name)) for name in names}
    healthy = sum(s["healthy"] for s in by_service.values())
    total = _total_row(health)
    checks = _count(total, "checks")
    uptime = percentage(_count(total, "ok_checks"), checks)
    return {
        "uptime_percentage": uptime,
        "status": system_status(uptime, by_service, healthy, len(names)),
        "services_total": len(names),
        "services_healthy": healthy,
        "avg_response_time_ms": None if total is None else milliseconds(total["avg_response_ms"]),
        "p95_response_time_ms": None if total is None else milliseconds(total["p95_response_ms"]),
        "error_rate": percentage(_count(total, "failed_checks"), checks),
        "services": by_service,
    }


# --- AI platform -------------------------------------------------------------------------------


def ai_figures(row: pd.Series | None) -> dict:
    """Request counts and rates of one extract row (a provider or the total)."""
    total = _count(row, "total_requests")
    return {
        "total_requests": total,
        "chat_requests": _count(row, "chat_requests"),
        "api_requests": _count(row, "api_requests"),
        "cache_hit_rate": percentage(_count(row, "cache_hits"), total),
        "error_rate": percentage(_count(row, "errors"), total),
        "accuracy_rate": percentage(
            _count(row, "correct"), _count(row, "correct") + _count(row, "incorrect")
        ),
        "avg_latency_ms": None if row is None else milliseconds(row["avg_latency_ms"]),
        "p95_latency_ms": None if row is None else milliseconds(row["p95_latency_ms"]),
    }


def active_providers(ai: pd.DataFrame) -> int:
    rows = ai[~ai["is_total"].astype(bool) & ai["provider"].notna()]
    return int((rows["ok_requests"] > 0).sum())


def ai_platform(ai: pd.DataFrame) -> dict:
    figures = ai_figures(_total_row(ai))
    providers = {
        (UNKNOWN_PROVIDER if pd.isna(r["provider"]) else str(r["provider"])): ai_figures(r)
        for _, r in ai[~ai["is_total"].astype(bool)].iterrows()
    }
    return {
        "total_requests": figures["total_requests"],
        "chat_requests": figures["chat_requests"],
        "api_requests": figures["api_requests"],
        "cache_hit_rate": figures["cache_hit_rate"],
        "error_rate": figures["error_rate"],
        "active_providers": active_providers(ai),
        "accuracy_rate": figures["accuracy_rate"],
        "avg_latency_ms": figures["avg_latency_ms"],
        "p95_latency_ms": figures["p95_latency_ms"],
        "providers": providers,
    }


# --- the snapshot ------------------------------------------------------------------------------


def financial_and_business_health(period: Period, business: dict[str, pd.DataFrame]) -> tuple[dict, dict]:
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
    return financial, business_health


def build_snapshot(
    period: Period,
    business: dict[str, pd.DataFrame],
    ai: pd.DataFrame,
    health: pd.DataFrame,
    services: list[str] | None = None,
) -> dict:
    """The computed part of a snapshot (SPEC section 7), plain JSON-serialisable Python; the DAG
    adds ``generated_at``, ``data_quality`` and ``alerts``."""
    financial, business_health = financial_and_business_health(period, business)
    return {
        "timestamp": iso_utc(period.end),
        "period": period.as_dict(),
        "system_health": system_health(health, services),
        "ai_platform": ai_platform(ai),
        "financial": financial,
        "business_health": business_health,
    }
