"""A deterministic synthetic ChatterFix dataset: the SPEC section 3 source tables plus health checks.

What it writes (one database, the one ``settings`` or ``--dsn`` points at):

- ``customers``, ``subscriptions``, ``leads``, ``nps_responses``, ``usage_events``, ``ai_requests``
  (created with ``include.investor_metrics.db.apply_source_schema``);
- ``investor_metrics.service_health_checks`` (created with ``include.investor_metrics.db.apply_metrics_schema``);
- ``investor_metrics.demo_dataset``: one row saying which dataset is loaded (created here).

Determinism: every row is a function of ``(scale, seed, end, span_days, outage_week,
churn_spike_week)`` and of ``GENERATOR_VERSION`` only. The data covers ``[end − span_days, end)``;
``end`` is always explicit in the library (the command line defaults it to now floored to the UTC
hour, and prints it). Randomness comes from numpy ``Generator(PCG64(...))`` streams seeded with
``SeedSequence([seed, stream, chunk])``: one stream per table and per week, so a table's rows do not
depend on how another table is generated, nor on the COPY chunking.

Shapes: customers sign up along an S-curve; plans ``free`` / ``starter`` / ``professional`` /
``enterprise`` ($0 / $49 / $199 / $799 a month, some customers with a negotiated discount), billed
monthly or yearly (10 × the monthly price in one annual amount, often not divisible by 12). Plan and
billing changes end a subscription and start its replacement at the same instant; churn (about
1–2 % of paying customers a month, annual plans at a renewal date) ends every subscription of the
customer; some churned customers come back weeks later (reactivation); some tenures carry a
concurrent ``ai_addon`` subscription. Usage events and AI requests follow each customer's
subscriptions with a weekly and daily rhythm (quiet weekends), and fade before a churn.
Health checks: every 5 minutes on the absolute 5-minute grid, for five services, with short random
incidents.

Knobs for tests (each a date, read as 00:00 UTC, whose 7-day window must lie inside the data):

- ``outage_week``: every ``api`` check fails for 12 hours from day 3 of the window (the middle, so
  that any reporting week starting within ±3 days of the date holds the whole outage); the week's
  overall uptime drops to about 98.5 %.
- ``churn_spike_week``: about 10 % (at least 6, when there are) of the customers with MRR > 0 at the
  window start churn between day 1 and day 6 of the window (the middle again, so that a reporting
  week offset by up to a day still sees every one of them).

"Unless already loaded": ``load`` records what it loaded in ``investor_metrics.demo_dataset``. When
the recorded dataset has the same parameters (and generator version) and ``customers`` /
``subscriptions`` still hold the recorded row counts, ``load`` does nothing and returns a summary
with ``loaded=False``. Otherwise it truncates the source tables and the health checks and reloads,
all in ONE transaction (readers see the old dataset or the new one, never half of one). Source
tables that hold rows this module did not record (a real application database, hand-made test rows)
are never truncated unless ``force=True``; ``force=True`` always reloads.

Loading uses binary ``COPY ... FROM STDIN`` in chunks of at most ``COPY_CHUNK_ROWS`` rows, generated
week by week, so memory stays flat whatever the scale; the tables' non-unique indexes are dropped
before the COPY and recreated after it, then the tables are analysed.

Command line::

    python -m dev.demo_data.generator --scale demo --seed 42 [--end 2026-11-22T09:00:00Z]
        [--span-days 730] [--outage-week 2026-10-05] [--churn-spike-week 2026-09-14] [--force]
        [--dsn "host=... dbname=..."] [--no-progress]

Without ``--dsn`` the database comes from the seed's ``DB_*`` variables.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import math
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone

import numpy as np

from include.investor_metrics.contract import HEALTH_TABLE
from include.investor_metrics.db import apply_metrics_schema, apply_source_schema, connect
from include.investor_metrics.period import iso_utc
from include.investor_metrics.settings import PostgresSettings, postgres_settings_from_env

log = logging.getLogger(__name__)

GENERATOR_VERSION = 1  # bump when the generated rows change: a recorded dataset is then reloaded

# ----------------------------------------------------------------------------------------------
# Time: every instant is int64 microseconds, as an offset from the window start.
# ----------------------------------------------------------------------------------------------
SECOND = 1_000_000
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE
DAY = 24 * HOUR
WEEK = 7 * DAY
MONTH = int(30.436875 * DAY)
YEAR = 365 * DAY
NO_END = np.iinfo(np.int64).max  # "ended_at is null" inside the generator
UNIX_TO_PG_EPOCH = 946_684_800 * SECOND  # 2000-01-01, the zero of PostgreSQL's binary timestamps

# ----------------------------------------------------------------------------------------------
# Business shapes
# ----------------------------------------------------------------------------------------------
PLANS = ("free", "starter", "professional", "enterprise")
FREE, STARTER, PROFESSIONAL, ENTERPRISE = range(4)
ADDON_PLAN = "ai_addon"
ADDON_MONTHLY_CENTS = 4_900
PLAN_MONTHLY_DOLLARS = np.array([0, 49, 199, 799])
SIGNUP_PLAN_P = np.array([0.18, 0.45, 0.28, 0.09])
SIGNUP_ANNUAL_P = np.array([0.0, 0.20, 0.30, 0.50])
MONTHLY_CHURN = np.array([0.04, 0.026, 0.017, 0.010])  # hazard of leaving, per month
MEAN_MONTHS_TO_CHANGE = np.array([5.0, 18.0, 20.0, 30.0])  # plan or billing change
# A change's new plan (rows: from; columns: to). The diagonal is a billing-interval switch.
PLAN_CHANGE_P = np.array(
    [
        [0.00, 0.80, 0.18, 0.02],
        [0.10, 0.10, 0.72, 0.08],
        [0.02, 0.30, 0.12, 0.56],
        [0.00, 0.05, 0.80, 0.15],
    ]
)
GROWTH_MIDPOINT, GROWTH_STEEPNESS = 0.62, 5.0  # sign-up S-curve, on the span scaled to [0, 1]
REACTIVATION_P = 0.20
REACTIVATION_GAP_DAYS = (21, 120)
DISCOUNT_P = 0.22  # share of customers with a negotiated price
DISCOUNTS = np.array([0.05, 0.10, 0.15, 0.20, 0.25])
ADDON_P = np.array([0.0, 0.04, 0.15, 0.25])  # per tenure, by the tenure's first plan
USERS_PER_CUSTOMER = np.array([[1, 3], [2, 6], [4, 15], [10, 40]])  # inclusive range by plan

EVENT_TYPES = ("work_order_created", "work_order_completed", "asset_viewed", "ai_chat", "report_exported")
EVENT_TYPE_P = np.array([0.28, 0.22, 0.32, 0.12, 0.06])
DORMANT_P = 0.06  # customers who pay but barely use the product (the at-risk list)
FADE_BEFORE_CHURN = 21 * DAY
FADE_FACTOR = 0.3

PROVIDERS = ("openai", "anthropic", "google", "local")
PROVIDER_P = np.array([0.45, 0.30, 0.15, 0.10])
PROVIDER_MEDIAN_MS = np.array([750.0, 850.0, 600.0, 280.0])
PROVIDER_ACCURACY = np.array([0.95, 0.96, 0.93, 0.90])
REQUEST_TYPES = ("chat", "api")
CHAT_P = 0.82
CACHE_HIT_P = 0.30
AI_ERROR_P = 0.01
FEEDBACK_P = 0.30  # share of ok chat answers the user rates
ANONYMOUS_AI_P = 0.07  # requests with no customer (public widget, internal jobs)
STATUSES = ("ok", "error")
FEEDBACK = ("correct", "incorrect")

NPS_EVERY_DAYS = 120
NPS_SCORE_P = np.array([0.005, 0.005, 0.005, 0.01, 0.02, 0.03, 0.05, 0.13, 0.22, 0.27, 0.255])
NPS_UNHAPPY_SCORE_P = np.array([0.06, 0.05, 0.08, 0.10, 0.12, 0.14, 0.15, 0.12, 0.10, 0.05, 0.03])
NPS_UNHAPPY_BEFORE_CHURN = 60 * DAY

LEAD_SOURCES = ("organic", "paid_search", "referral", "webinar", "outbound", "partner")
LEAD_SOURCE_SHARE = np.array([0.30, 0.25, 0.10, 0.10, 0.15, 0.10])
LEAD_SOURCE_CONVERSION = np.array([0.14, 0.10, 0.35, 0.18, 0.07, 0.22])
LEAD_CONVERSION = 0.15
CUSTOMERS_FROM_LEADS_P = 0.75

SERVICES = ("api", "web", "database", "ai_gateway", "notifications")
SERVICE_MEDIAN_MS = np.array([120.0, 180.0, 15.0, 450.0, 90.0])
CHECK_EVERY = 5 * MINUTE
INCIDENTS_PER_WEEK = 0.3  # per service
INCIDENT_MAX_CHECKS = 9
BLIP_P = 0.0003  # an isolated failed probe
CHECK_ERRORS = (  # (error text, status code or None)
    ("HTTP 503 Service Unavailable", 503),
    ("timeout: no response within 10000 ms", None),
    ("connection refused", None),
)
OUTAGE_SERVICE = "api"
OUTAGE_OFFSET = 3 * DAY
OUTAGE_LENGTH = 12 * HOUR
CHURN_SPIKE_SHARE = 0.10
CHURN_SPIKE_MIN = 6
CHURN_SPIKE_FROM, CHURN_SPIKE_TO = 1 * DAY, 6 * DAY

# Share of each hour of the week (Monday 00:00 UTC first) relative to the busiest hour.
_DAY_OF_WEEK = np.array([1.0, 1.0, 1.0, 1.0, 0.95, 0.30, 0.25])
_HOUR_OF_DAY = np.array(
    [0.30, 0.25, 0.20, 0.18, 0.18, 0.20, 0.25, 0.35, 0.50, 0.65, 0.75, 0.80,
     0.85, 0.95, 1.00, 1.00, 0.98, 0.95, 0.90, 0.85, 0.75, 0.60, 0.45, 0.35]
)  # fmt: skip
HOUR_OF_WEEK_WEIGHT = np.outer(_DAY_OF_WEEK, _HOUR_OF_DAY).ravel()
MEAN_HOUR_WEIGHT = float(HOUR_OF_WEEK_WEIGHT.mean())
UNIX_EPOCH_WEEKDAY = 3  # 1970-01-01 was a Thursday (Monday = 0)

_NAME_PREFIXES = (
    "North", "Blue", "Iron", "Summit", "Pioneer", "Harbor", "Granite", "Cedar", "Evergreen", "Atlas",
    "Apex", "Keystone", "Riverside", "Lakeview", "Prairie", "Redwood", "Silver", "Pacific", "Frontier",
    "Oakridge", "Bayside", "Copper", "Sterling", "Highland", "Coastal", "Eagle", "Union", "Liberty",
)  # fmt: skip
_NAME_CORES = (
    "Manufacturing", "Facilities", "Logistics", "Foods", "Energy", "Plastics", "Hospitality",
    "Property Management", "Machining", "Utilities", "Packaging", "Health", "Brewing", "Metals",
    "Aviation Services", "Cold Storage", "Textiles", "Hotels", "Schools", "Water Works",
)  # fmt: skip
_NAME_SUFFIXES = ("Inc.", "LLC", "Co.", "Group", "Ltd.", "Corp.", "Partners", "Holdings")

# Random streams: one per purpose (and per week for the event tables).
(
    _S_CUSTOMERS,
    _S_SUBSCRIPTIONS,
    _S_CHURN_SPIKE,
    _S_ADDONS,
    _S_LEADS,
    _S_USAGE,
    _S_AI,
    _S_NPS,
    _S_INCIDENTS,
    _S_CHECKS,
) = range(1, 11)


@dataclass(frozen=True)
class Scale:
    """How big a dataset is. Event volumes are for a 730-day span and scale with the span."""

    customers: int
    usage_events: int
    ai_requests: int


SCALES = {
    "demo": Scale(customers=150, usage_events=250_000, ai_requests=80_000),
    "bench": Scale(customers=100_000, usage_events=24_000_000, ai_requests=12_000_000),
    # The bench's memory-flatness check: the same customers, twice the event tables.
    "bench2x": Scale(customers=100_000, usage_events=48_000_000, ai_requests=24_000_000),
}
REFERENCE_SPAN_DAYS = 730

SOURCE_TABLES = ("customers", "subscriptions", "leads", "nps_responses", "usage_events", "ai_requests")
DATASET_TABLE = "investor_metrics.demo_dataset"
LOADED_TABLES = (*SOURCE_TABLES, HEALTH_TABLE)
COPY_CHUNK_ROWS = 500_000

# ----------------------------------------------------------------------------------------------
# Parameters
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DatasetParams:
    """Everything the rows depend on."""

    end: datetime
    scale: str = "demo"
    seed: int = 42
    span_days: int = REFERENCE_SPAN_DAYS
    outage_week: date | None = None
    churn_spike_week: date | None = None

    @classmethod
    def build(
        cls,
        *,
        end: datetime,
        scale: str = "demo",
        seed: int = 42,
        span_days: int = REFERENCE_SPAN_DAYS,
        outage_week: date | str | None = None,
        churn_spike_week: date | str | None = None,
    ) -> DatasetParams:
        """Validated parameters; a clear ``ValueError`` names the bad one."""
        if not isinstance(end, datetime) or end.tzinfo is None:
            raise ValueError(f"end must be a timezone-aware datetime, got {end!r}")
        if scale not in SCALES:
            raise ValueError(f"scale must be one of {', '.join(SCALES)}, got {scale!r}")
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
        if isinstance(span_days, bool) or not isinstance(span_days, int) or span_days < 14:
            raise ValueError(f"span_days must be an integer of at least 14, got {span_days!r}")
        params = cls(
            end=end.astimezone(timezone.utc),
            scale=scale,
            seed=seed,
            span_days=span_days,
            outage_week=_as_date(outage_week, "outage_week"),
            churn_spike_week=_as_date(churn_spike_week, "churn_spike_week"),
        )
        for name in ("outage_week", "churn_spike_week"):
            week = getattr(params, name)
            if week is not None and not params.start <= _midnight_utc(week) <= params.end - timedelta(days=7):
                raise ValueError(
                    f"{name} {week.isoformat()}: its 7 days must lie inside the data, "
                    f"[{params.start.isoformat()}, {params.end.isoformat()})"
                )
        return params

    @property
    def start(self) -> datetime:
        return self.end - timedelta(days=self.span_days)

    def as_record(self) -> dict:
        """The parameters as ``demo_dataset`` stores them."""
        return {
            "scale": self.scale,
            "seed": self.seed,
            "end_at": self.end,
            "span_days": self.span_days,
            "outage_week": self.outage_week,
            "churn_spike_week": self.churn_spike_week,
            "generator_version": GENERATOR_VERSION,
        }


def _as_date(value: date | str | None, name: str) -> date | None:
    if value is None or isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise ValueError(f"{name} must be a date such as 2026-10-05, got {value!r}")


def _midnight_utc(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=timezone.utc)


def _epoch_us(value: datetime) -> int:
    delta = value - datetime(1970, 1, 1, tzinfo=timezone.utc)
    return (delta.days * 86_400 + delta.seconds) * SECOND + delta.microseconds


@dataclass(frozen=True)
class Window:
    """The data's time window in microseconds since the Unix epoch."""

    start_us: int
    end_us: int

    @classmethod
    def of(cls, params: DatasetParams) -> Window:
        return cls(_epoch_us(params.start), _epoch_us(params.end))

    @property
    def length(self) -> int:
        return self.end_us - self.start_us

    def offset(self, day: date) -> int:
        """Microseconds from the window start to 00:00 UTC of ``day``."""
        return _epoch_us(_midnight_utc(day)) - self.start_us


def _rng(params: DatasetParams, stream: int, chunk: int = 0) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([params.seed, stream, chunk])))


def _quantize(offsets: np.ndarray, unit: int) -> np.ndarray:
    """Offsets floored to whole ``unit``s counted from the window start (never before it)."""
    offsets = np.asarray(offsets, dtype=np.int64)
    return offsets - offsets % unit


def _hour_weight(window: Window, offsets: np.ndarray) -> np.ndarray:
    hours = (window.start_us + offsets) // HOUR
    return HOUR_OF_WEEK_WEIGHT[(hours + UNIX_EPOCH_WEEKDAY * 24) % 168]


def _choice(rng: np.random.Generator, p: np.ndarray, size: int) -> np.ndarray:
    """``size`` codes (indexes into ``p``) drawn with probabilities ``p``."""
    return np.searchsorted(np.cumsum(p) / p.sum(), rng.random(size), side="right").astype(np.int64)


def _row_choice(rng: np.random.Generator, p_rows: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """For each element, a code drawn from the probability row ``p_rows[rows]``."""
    cumulative = np.cumsum(p_rows, axis=1)[rows]
    u = rng.random(len(rows))[:, None] * cumulative[:, -1:]
    return (u >= cumulative).sum(axis=1)


# ----------------------------------------------------------------------------------------------
# Customers and subscriptions
# ----------------------------------------------------------------------------------------------


@dataclass
class Customers:
    created: np.ndarray  # offset µs, ascending (customer_id = index + 1)
    signup_plan: np.ndarray
    signup_annual: np.ndarray
    discount: np.ndarray  # fraction off the list price
    users: np.ndarray  # number of users
    engagement: np.ndarray  # relative usage rate
    ai_propensity: np.ndarray  # relative AI request rate
    names: list[str]

    @property
    def ids(self) -> np.ndarray:
        return np.arange(1, len(self.created) + 1, dtype=np.int64)


@dataclass
class Subscriptions:
    customer: np.ndarray  # customer index
    plan: np.ndarray  # index into PLANS, or -1 for the add-on
    annual: np.ndarray
    amount: np.ndarray
    started: np.ndarray
    ended: np.ndarray  # NO_END when still running

    def take(self, rows: np.ndarray) -> Subscriptions:
        return Subscriptions(*(getattr(self, f)[rows] for f in _SUBSCRIPTION_FIELDS))

    @classmethod
    def concat(cls, parts: Sequence[Subscriptions]) -> Subscriptions:
        return cls(*(np.concatenate([getattr(p, f) for p in parts]) for f in _SUBSCRIPTION_FIELDS))


_SUBSCRIPTION_FIELDS = ("customer", "plan", "annual", "amount", "started", "ended")


def growth_curve_sample(rng: np.random.Generator, size: int, length: int) -> np.ndarray:
    """Offsets in [0, length) along an S-curve of sign-ups (slow start, fast middle, slowing end)."""
    x = np.linspace(0.0, 1.0, 1001)
    logistic = 1.0 / (1.0 + np.exp(-GROWTH_STEEPNESS * (x - GROWTH_MIDPOINT)))
    cdf = (logistic - logistic[0]) / (logistic[-1] - logistic[0])
    fraction = np.interp(rng.random(size), cdf, x)
    return np.minimum((fraction * length).astype(np.int64), length - 1)


def generate_customers(params: DatasetParams, window: Window) -> Customers:
    rng = _rng(params, _S_CUSTOMERS)
    n = SCALES[params.scale].customers
    created = np.sort(_quantize(growth_curve_sample(rng, n, window.length), SECOND))
    plan = _choice(rng, SIGNUP_PLAN_P, n)
    annual = rng.random(n) < SIGNUP_ANNUAL_P[plan]
    discount = np.where(rng.random(n) < DISCOUNT_P, DISCOUNTS[_choice(rng, np.ones(5), n)], 0.0)
    low, high = USERS_PER_CUSTOMER[plan, 0], USERS_PER_CUSTOMER[plan, 1]
    users = rng.integers(low, high + 1)
    dormant = rng.random(n) < DORMANT_P
    engagement = users**0.7 * rng.lognormal(0.0, 0.5, n) * np.where(dormant, 0.02, 1.0)
    ai_propensity = engagement * rng.lognormal(0.0, 0.7, n) * np.where(plan == FREE, 0.3, 1.0)
    names = _company_names(rng, n)
    return Customers(created, plan, annual, discount, users, engagement, ai_propensity, names)


def _company_names(rng: np.random.Generator, n: int) -> list[str]:
    prefix = rng.integers(0, len(_NAME_PREFIXES), n)
    core = rng.integers(0, len(_NAME_CORES), n)
    suffix = rng.integers(0, len(_NAME_SUFFIXES), n)
    return [
        f"{_NAME_PREFIXES[p]} {_NAME_CORES[c]} {_NAME_SUFFIXES[s]}"
        for p, c, s in zip(prefix.tolist(), core.tolist(), suffix.tolist(), strict=True)
    ]


def subscription_amount(plan: np.ndarray, annual: np.ndarray, discount: np.ndarray) -> np.ndarray:
    """Cents: the (discounted, whole-dollar) monthly price, or 10 × it for a year."""
    monthly_dollars = np.rint(PLAN_MONTHLY_DOLLARS[plan] * (1.0 - discount)).astype(np.int64)
    return monthly_dollars * 100 * np.where(annual, 10, 1)


def simulate_subscriptions(params: DatasetParams, window: Window, customers: Customers) -> Subscriptions:
    """Each customer's chain of main subscriptions: sign-up, plan/billing changes (the replacement
    starts the instant the previous one ends), churn, and sometimes a reactivation weeks later."""
    rng = _rng(params, _S_SUBSCRIPTIONS)
    live = np.arange(len(customers.created))
    plan, annual, t = customers.signup_plan.copy(), customers.signup_annual.copy(), customers.created.copy()
    parts: list[Subscriptions] = []
    for _round in range(500):
        if not live.size:
            break
        k = live.size
        to_churn = rng.exponential(MONTH / MONTHLY_CHURN[plan])
        to_churn = np.where(annual, np.ceil(to_churn / YEAR) * YEAR, to_churn)  # leave at renewal
        to_change = rng.exponential(MONTH * MEAN_MONTHS_TO_CHANGE[plan])
        changes = to_change < to_churn
        ends = t + np.maximum(_quantize(np.minimum(to_churn, to_change), SECOND), SECOND)
        still_running = ends >= window.length
        amount = subscription_amount(plan, annual, customers.discount[live])
        parts.append(Subscriptions(live, plan, annual, amount, t, np.where(still_running, NO_END, ends)))

        new_plan, new_annual = _changed_plan(rng, plan, annual)
        gap = _quantize(rng.uniform(*REACTIVATION_GAP_DAYS, k) * DAY, SECOND)
        reactivates = ~changes & (rng.random(k) < REACTIVATION_P)
        next_start = np.where(changes, ends, ends + gap)
        go_on = ~still_running & (changes | reactivates) & (next_start < window.length)
        plan = np.where(changes, new_plan, plan)[go_on]
        annual = np.where(changes, new_annual, annual)[go_on]
        live, t = live[go_on], next_start[go_on]
    else:  # pragma: no cover - every round moves time forward by at least a second
        raise RuntimeError("subscription simulation did not converge")
    return Subscriptions.concat(parts)


def _changed_plan(
    rng: np.random.Generator, plan: np.ndarray, annual: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The plan after a change; staying on the same plan means switching the billing interval."""
    new_plan = _row_choice(rng, PLAN_CHANGE_P, plan)
    to_annual = rng.random(len(plan)) < SIGNUP_ANNUAL_P[new_plan]
    new_annual = np.where(new_plan == plan, ~annual, np.where(plan == FREE, to_annual, annual))
    return new_plan, new_annual & (new_plan != FREE)


def is_active_as_of(subs: Subscriptions, t: int) -> np.ndarray:
    """SPEC section 4: started before t and not ended before t."""
    return (subs.started < t) & (subs.ended >= t)


def apply_churn_spike(params: DatasetParams, window: Window, subs: Subscriptions) -> Subscriptions:
    """~10 % of the customers with MRR > 0 at the spike week's start churn in its middle."""
    if params.churn_spike_week is None:
        return subs
    rng = _rng(params, _S_CHURN_SPIKE)
    week_start = window.offset(params.churn_spike_week)
    paying = np.unique(subs.customer[is_active_as_of(subs, week_start) & (subs.amount > 0)])
    how_many = min(len(paying), max(CHURN_SPIKE_MIN, round(CHURN_SPIKE_SHARE * len(paying))))
    chosen = np.sort(rng.choice(paying, size=how_many, replace=False))
    churn_at = np.full(int(subs.customer.max()) + 1, NO_END, dtype=np.int64)
    spread = rng.integers(CHURN_SPIKE_FROM, CHURN_SPIKE_TO, how_many)
    churn_at[chosen] = week_start + _quantize(spread, SECOND)
    cut = churn_at[subs.customer]
    kept = subs.take(np.flatnonzero(subs.started < cut))
    kept.ended = np.minimum(kept.ended, cut[subs.started < cut])
    return kept


@dataclass
class Tenures:
    """Per main subscription: when the customer's unbroken run of subscriptions ends."""

    end: np.ndarray  # NO_END while still a customer
    first: np.ndarray  # index of the tenure's first subscription (for each subscription)


def tenures_of(subs: Subscriptions) -> Tenures:
    """Main subscriptions must be sorted by (customer, started)."""
    same_customer = np.r_[False, subs.customer[1:] == subs.customer[:-1]]
    continues = same_customer & np.r_[False, subs.started[1:] == subs.ended[:-1]]
    tenure = np.cumsum(~continues) - 1
    first = np.flatnonzero(~continues)
    last = np.r_[first[1:] - 1, len(subs.started) - 1]
    return Tenures(end=subs.ended[last][tenure], first=first[tenure])


def generate_addons(
    params: DatasetParams, window: Window, subs: Subscriptions, tenures: Tenures
) -> Subscriptions:
    """A concurrent ``ai_addon`` subscription on some tenures, running until the tenure ends."""
    rng = _rng(params, _S_ADDONS)
    firsts = np.unique(tenures.first)
    start, end = subs.started[firsts], tenures.end[firsts]
    length = np.minimum(end, window.length) - start
    wanted = (rng.random(len(firsts)) < ADDON_P[subs.plan[firsts]]) & (length >= 2 * SECOND)
    delay = _quantize(rng.random(len(firsts)) * 0.5 * length, SECOND)
    rows = np.flatnonzero(wanted)
    n = len(rows)
    return Subscriptions(
        customer=subs.customer[firsts][rows],
        plan=np.full(n, -1),
        annual=np.zeros(n, dtype=bool),
        amount=np.full(n, ADDON_MONTHLY_CENTS, dtype=np.int64),
        started=start[rows] + delay[rows],
        ended=end[rows],
    )


@dataclass
class Accounts:
    """Customers with their subscriptions: what every event table hangs off."""

    customers: Customers
    main: Subscriptions  # sorted by (customer, started)
    tenures: Tenures
    subscriptions: Subscriptions  # main + add-ons, in subscription_id order
    current_plan: np.ndarray  # per customer, the plan of the latest main subscription


def generate_accounts(params: DatasetParams, window: Window) -> Accounts:
    customers = generate_customers(params, window)
    main = simulate_subscriptions(params, window, customers)
    main = apply_churn_spike(params, window, main)
    main = main.take(np.lexsort((main.started, main.customer)))
    tenures = tenures_of(main)
    addons = generate_addons(params, window, main, tenures)
    everything = Subscriptions.concat([main, addons])
    order = np.lexsort((everything.plan < 0, everything.customer, everything.started))
    last_of_customer = np.r_[main.customer[1:] != main.customer[:-1], True]
    current_plan = np.empty(len(customers.created), dtype=np.int64)
    current_plan[main.customer[last_of_customer]] = main.plan[last_of_customer]
    return Accounts(customers, main, tenures, everything.take(order), current_plan)


# ----------------------------------------------------------------------------------------------
# Events: a Poisson process per active subscription, thinned by the hour of the week
# ----------------------------------------------------------------------------------------------


def weekly_chunks(window: Window) -> list[tuple[int, int]]:
    return [(t0, min(t0 + WEEK, window.length)) for t0 in range(0, window.length, WEEK)]


def exposure_days(subs: Subscriptions, window: Window) -> np.ndarray:
    return (np.minimum(subs.ended, window.length) - subs.started) / DAY


def sample_event_times(
    rng: np.random.Generator,
    window: Window,
    subs: Subscriptions,
    rate_per_day: np.ndarray,
    fade_from: np.ndarray,
    chunk: tuple[int, int],
) -> tuple[np.ndarray, np.ndarray]:
    """Events in ``chunk`` for each subscription (its row index, the time), sorted by time.

    ``rate_per_day`` is the mean daily rate of each subscription; within the week the events follow
    ``HOUR_OF_WEEK_WEIGHT``, and after ``fade_from`` they thin out (a customer about to leave).
    """
    t0, t1 = chunk
    rows = np.flatnonzero((subs.started < t1) & (subs.ended > t0) & (rate_per_day > 0))
    lo = np.maximum(subs.started[rows], t0)
    hi = np.minimum(np.minimum(subs.ended[rows], window.length), t1)
    proposals = rng.poisson(rate_per_day[rows] * (hi - lo) / DAY / MEAN_HOUR_WEIGHT)
    owner = np.repeat(np.arange(len(rows)), proposals)
    offsets = lo[owner] + (rng.random(len(owner)) * (hi - lo)[owner]).astype(np.int64)
    offsets = np.minimum(offsets, hi[owner] - 1)  # a float product may round up to ``hi``
    keep_p = _hour_weight(window, offsets) * np.where(offsets >= fade_from[rows][owner], FADE_FACTOR, 1.0)
    kept = rng.random(len(owner)) < keep_p
    owner, offsets = owner[kept], np.maximum(_quantize(offsets[kept], 1000), lo[owner[kept]])
    order = np.argsort(offsets, kind="stable")
    return rows[owner[order]], offsets[order]


def fade_start(accounts: Accounts, before: int) -> np.ndarray:
    """Per main subscription: from when its customer's tenure is ending in a churn."""
    ends = accounts.tenures.end
    return np.where(ends == NO_END, NO_END, ends - before)


def per_day_rates(accounts: Accounts, window: Window, weight: np.ndarray, total: float) -> np.ndarray:
    """Daily rates per main subscription, proportional to ``weight``, expecting ``total`` events in all."""
    per_subscription = weight[accounts.main.customer]
    exposure = float((per_subscription * exposure_days(accounts.main, window)).sum())
    return per_subscription * (total / exposure if exposure > 0 else 0.0)


def target_volume(params: DatasetParams, per_reference_span: int) -> float:
    return per_reference_span * params.span_days / REFERENCE_SPAN_DAYS


# ----------------------------------------------------------------------------------------------
# Rows, as columns ready for a binary COPY
# ----------------------------------------------------------------------------------------------


@dataclass
class Column:
    """One column of a COPY: per-row big-endian bytes and the byte length (-1 for NULL)."""

    name: str
    data: np.ndarray  # (rows, width) uint8
    lengths: np.ndarray  # (rows,) int32

    def take(self, start: int, stop: int) -> Column:
        return Column(self.name, self.data[start:stop], self.lengths[start:stop])


def int_column(name: str, values: np.ndarray, dtype: str = ">i8", null: np.ndarray | None = None) -> Column:
    data = np.ascontiguousarray(values, dtype=dtype)
    n = len(data)
    lengths = np.full(n, data.itemsize, dtype=np.int32)
    if null is not None:
        lengths[null] = -1
    return Column(name, data.view(np.uint8).reshape(n, data.itemsize), lengths)


def timestamp_column(name: str, window: Window, offsets: np.ndarray) -> Column:
    """Offsets from the window start; ``NO_END`` becomes NULL."""
    offsets = np.asarray(offsets, dtype=np.int64)
    null = offsets == NO_END
    pg_us = np.where(null, 0, offsets + (window.start_us - UNIX_TO_PG_EPOCH))
    return int_column(name, pg_us, ">i8", null=null if null.any() else None)


def bool_column(name: str, values: np.ndarray) -> Column:
    return int_column(name, np.asarray(values, dtype=np.uint8), "u1")


def text_column(name: str, labels: Sequence[str], codes: np.ndarray) -> Column:
    """Text from a small vocabulary; code -1 is NULL."""
    encoded = [label.encode() for label in labels]
    width = max(len(b) for b in encoded)
    table = np.zeros((len(encoded) + 1, width), dtype=np.uint8)  # last row: NULL
    for i, b in enumerate(encoded):
        table[i, : len(b)] = np.frombuffer(b, dtype=np.uint8)
    label_lengths = np.array([len(b) for b in encoded] + [-1], dtype=np.int32)
    codes = np.where(np.asarray(codes) < 0, len(encoded), codes)
    return Column(name, table[codes], label_lengths[codes])


def free_text_column(name: str, values: Sequence[str]) -> Column:
    encoded = np.array([v.encode() for v in values], dtype=bytes)
    n, width = len(encoded), max(encoded.dtype.itemsize, 1)
    data = np.frombuffer(encoded.tobytes(), dtype=np.uint8).reshape(n, width) if n else np.zeros((0, width))
    lengths = np.array([len(v) for v in encoded], dtype=np.int32)
    return Column(name, data.astype(np.uint8), lengths)


PG_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + bytes(8)  # signature, flags, header extension length
PG_COPY_TRAILER = b"\xff\xff"


def encode_binary_copy(columns: Sequence[Column]) -> bytes:
    """PostgreSQL's binary COPY format for these rows: each row is laid out in a padded matrix,
    then the padding is dropped in one vectorised selection (no Python loop over rows)."""
    n = len(columns[0].lengths)
    widths = [4 + c.data.shape[1] for c in columns]
    rows = np.empty((n, 2 + sum(widths)), dtype=np.uint8)
    keep = np.empty(rows.shape, dtype=bool)
    rows[:, :2] = np.frombuffer(len(columns).to_bytes(2, "big"), dtype=np.uint8)
    keep[:, :2] = True
    at = 2
    for column, width in zip(columns, widths, strict=True):
        rows[:, at : at + 4] = column.lengths.astype(">i4").view(np.uint8).reshape(n, 4)
        rows[:, at + 4 : at + width] = column.data
        keep[:, at : at + width] = np.arange(width) < (4 + np.maximum(column.lengths, 0))[:, None]
        at += width
    return PG_COPY_HEADER + rows[keep].tobytes() + PG_COPY_TRAILER


@dataclass
class Chunk:
    """Rows of one table."""

    table: str
    columns: list[Column]

    @property
    def rows(self) -> int:
        return len(self.columns[0].lengths)


def customers_chunk(window: Window, accounts: Accounts) -> Chunk:
    c = accounts.customers
    return Chunk(
        "customers",
        [
            int_column("customer_id", c.ids),
            free_text_column("name", c.names),
            text_column("plan", PLANS, accounts.current_plan),
            timestamp_column("created_at", window, c.created),
        ],
    )


def subscriptions_chunk(window: Window, accounts: Accounts) -> Chunk:
    s = accounts.subscriptions
    plans = (*PLANS, ADDON_PLAN)
    return Chunk(
        "subscriptions",
        [
            int_column("subscription_id", np.arange(1, len(s.started) + 1)),
            int_column("customer_id", s.customer + 1),
            text_column("plan", plans, np.where(s.plan < 0, len(PLANS), s.plan)),
            text_column("billing_interval", ("month", "year"), s.annual.astype(np.int64)),
            int_column("amount_cents", s.amount),
            timestamp_column("started_at", window, s.started),
            timestamp_column("ended_at", window, s.ended),
        ],
    )


def leads_chunk(params: DatasetParams, window: Window, accounts: Accounts) -> Chunk:
    """Converted leads become customers (converted_at = the sign-up); the rest never convert."""
    rng = _rng(params, _S_LEADS)
    customers = accounts.customers
    converted = np.flatnonzero(rng.random(len(customers.created)) < CUSTOMERS_FROM_LEADS_P)
    converted_at = customers.created[converted]
    days_to_convert = rng.lognormal(np.log(12.0), 0.8, len(converted))
    created_converted = np.maximum(converted_at - _quantize(days_to_convert * DAY, SECOND), 0)
    n_open = round(len(converted) * (1 - LEAD_CONVERSION) / LEAD_CONVERSION)
    created_open = _quantize(growth_curve_sample(rng, n_open, window.length), SECOND)
    converting_share = LEAD_SOURCE_SHARE * LEAD_SOURCE_CONVERSION
    source = np.r_[
        _choice(rng, converting_share, len(converted)),
        _choice(rng, LEAD_SOURCE_SHARE - converting_share, n_open),
    ]
    created = np.r_[created_converted, created_open]
    converted_at = np.r_[converted_at, np.full(n_open, NO_END)]
    customer_id = np.r_[converted + 1, np.zeros(n_open, dtype=np.int64)]
    order = np.lexsort((customer_id, created))
    return Chunk(
        "leads",
        [
            int_column("lead_id", np.arange(1, len(created) + 1)),
            text_column("source", LEAD_SOURCES, source[order]),
            timestamp_column("created_at", window, created[order]),
            timestamp_column("converted_at", window, converted_at[order]),
            int_column("customer_id", customer_id[order], null=customer_id[order] == 0),
        ],
    )


class IdCounter:
    """Sequential ids across chunks."""

    def __init__(self) -> None:
        self.next = 1

    def take(self, n: int) -> np.ndarray:
        ids = np.arange(self.next, self.next + n, dtype=np.int64)
        self.next += n
        return ids


def usage_chunk(
    params: DatasetParams,
    window: Window,
    accounts: Accounts,
    rates: np.ndarray,
    week: int,
    chunk: tuple[int, int],
    ids: IdCounter,
) -> Chunk:
    rng = _rng(params, _S_USAGE, week)
    fade = fade_start(accounts, FADE_BEFORE_CHURN)
    rows, offsets = sample_event_times(rng, window, accounts.main, rates, fade, chunk)
    customer = accounts.main.customer[rows]
    user = (customer + 1) * 1000 + 1 + (accounts.customers.users[customer] * rng.random(len(rows)) ** 2)
    return Chunk(
        "usage_events",
        [
            int_column("event_id", ids.take(len(rows))),
            int_column("customer_id", customer + 1),
            int_column("user_id", user.astype(np.int64)),
            text_column("event_type", EVENT_TYPES, _choice(rng, EVENT_TYPE_P, len(rows))),
            timestamp_column("occurred_at", window, offsets),
        ],
    )


def ai_chunk(
    params: DatasetParams,
    window: Window,
    accounts: Accounts,
    rates: np.ndarray,
    week: int,
    chunk: tuple[int, int],
    ids: IdCounter,
) -> Chunk:
    rng = _rng(params, _S_AI, week)
    fade = fade_start(accounts, FADE_BEFORE_CHURN)
    rows, offsets = sample_event_times(rng, window, accounts.main, rates, fade, chunk)
    n = len(rows)
    customer_id = accounts.main.customer[rows] + 1
    anonymous = rng.random(n) < ANONYMOUS_AI_P
    provider = _choice(rng, PROVIDER_P, n)
    chat = rng.random(n) < CHAT_P
    error = rng.random(n) < AI_ERROR_P
    cache_hit = (rng.random(n) < CACHE_HIT_P) & ~error
    latency = _ai_latency(rng, provider, cache_hit, error)
    rated = chat & ~error & (rng.random(n) < FEEDBACK_P)
    correct = rng.random(n) < PROVIDER_ACCURACY[provider]
    feedback = np.where(rated, np.where(correct, 0, 1), -1)
    return Chunk(
        "ai_requests",
        [
            int_column("request_id", ids.take(n)),
            int_column("customer_id", customer_id, null=anonymous),
            text_column("provider", PROVIDERS, provider),
            text_column("request_type", REQUEST_TYPES, np.where(chat, 0, 1)),
            timestamp_column("requested_at", window, offsets),
            int_column("latency_ms", latency, ">i4"),
            bool_column("cache_hit", cache_hit),
            text_column("status", STATUSES, error.astype(np.int64)),
            text_column("feedback", FEEDBACK, feedback),
        ],
    )


def _ai_latency(
    rng: np.random.Generator, provider: np.ndarray, cache_hit: np.ndarray, error: np.ndarray
) -> np.ndarray:
    n = len(provider)
    answered = rng.lognormal(np.log(PROVIDER_MEDIAN_MS[provider]), 0.55)
    cached = rng.lognormal(np.log(35.0), 0.4, n)
    failed = rng.lognormal(np.log(2500.0), 0.9, n)
    return np.where(error, failed, np.where(cache_hit, cached, answered)).astype(np.int64)


def nps_chunk(
    params: DatasetParams,
    window: Window,
    accounts: Accounts,
    week: int,
    chunk: tuple[int, int],
    ids: IdCounter,
) -> Chunk:
    rng = _rng(params, _S_NPS, week)
    rates = np.full(len(accounts.main.started), 1.0 / NPS_EVERY_DAYS)
    never_fades = np.full(len(accounts.main.started), NO_END)
    rows, offsets = sample_event_times(rng, window, accounts.main, rates, never_fades, chunk)
    unhappy = offsets >= fade_start(accounts, NPS_UNHAPPY_BEFORE_CHURN)[rows]
    scores = np.where(
        unhappy, _choice(rng, NPS_UNHAPPY_SCORE_P, len(rows)), _choice(rng, NPS_SCORE_P, len(rows))
    )
    return Chunk(
        "nps_responses",
        [
            int_column("response_id", ids.take(len(rows))),
            int_column("customer_id", accounts.main.customer[rows] + 1),
            int_column("score", scores, ">i2"),
            timestamp_column("responded_at", window, _quantize(offsets, SECOND)),
        ],
    )


# ----------------------------------------------------------------------------------------------
# Health checks
# ----------------------------------------------------------------------------------------------


def check_grid(window: Window) -> tuple[int, int]:
    """(offset of the first 5-minute grid point at or after the start, number of grid points)."""
    first = -(window.start_us % CHECK_EVERY) % CHECK_EVERY
    return first, max(0, (window.length - first + CHECK_EVERY - 1) // CHECK_EVERY)


def failure_plan(params: DatasetParams, window: Window) -> np.ndarray:
    """Per (service, grid point): -1 ok, else the index of the error in ``CHECK_ERRORS``."""
    rng = _rng(params, _S_INCIDENTS)
    first, points = check_grid(window)
    plan = np.full((len(SERVICES), points), -1, dtype=np.int8)
    weeks = window.length / WEEK
    for service in range(len(SERVICES)):
        incidents = rng.poisson(INCIDENTS_PER_WEEK * weeks)
        starts = rng.integers(0, points, incidents)
        lengths = np.minimum(1 + rng.geometric(0.35, incidents), INCIDENT_MAX_CHECKS)
        kinds = rng.integers(0, len(CHECK_ERRORS), incidents)
        for s, length, kind in zip(starts.tolist(), lengths.tolist(), kinds.tolist(), strict=True):
            plan[service, s : s + length] = kind
        blips = np.flatnonzero(rng.random(points) < BLIP_P)
        plan[service, blips] = rng.integers(0, len(CHECK_ERRORS), len(blips))
    if params.outage_week is not None:
        begin = window.offset(params.outage_week) + OUTAGE_OFFSET
        lo = (begin - first + CHECK_EVERY - 1) // CHECK_EVERY
        hi = (begin + OUTAGE_LENGTH - first + CHECK_EVERY - 1) // CHECK_EVERY
        plan[SERVICES.index(OUTAGE_SERVICE), lo:hi] = 0  # HTTP 503
    return plan


def health_chunks(params: DatasetParams, window: Window, chunk_points: int = 8064) -> Iterator[Chunk]:
    """Checks ordered by (checked_at, service), 4 weeks of grid points at a time."""
    first, points = check_grid(window)
    plan = failure_plan(params, window)
    n_services = len(SERVICES)
    for number, lo in enumerate(range(0, points, chunk_points)):
        rng = _rng(params, _S_CHECKS, number)
        grid = np.arange(lo, min(lo + chunk_points, points))
        offsets = np.repeat(first + grid * CHECK_EVERY, n_services)
        service = np.tile(np.arange(n_services), len(grid))
        failure = plan[:, grid].T.ravel()
        busy = 1.0 + 0.4 * _hour_weight(window, offsets)
        response = rng.lognormal(np.log(SERVICE_MEDIAN_MS[service]), 0.35) * busy
        codes = np.array([code or 0 for _text, code in CHECK_ERRORS] + [200])
        ok = failure < 0
        yield Chunk(
            HEALTH_TABLE,
            [
                text_column("service", SERVICES, service),
                timestamp_column("checked_at", window, offsets),
                bool_column("ok", ok),
                int_column("response_ms", response.astype(np.int64), ">i4", null=~ok),
                int_column("status_code", codes[failure], ">i4", null=codes[failure] == 0),
                text_column("error", [text for text, _code in CHECK_ERRORS], failure),
            ],
        )


def health_chunk_count(window: Window, chunk_points: int = 8064) -> int:
    return math.ceil(check_grid(window)[1] / chunk_points)


# ----------------------------------------------------------------------------------------------
# The whole dataset, chunk by chunk (no database needed)
# ----------------------------------------------------------------------------------------------


def generate(params: DatasetParams) -> Iterator[Chunk]:
    """Every row of the dataset, table chunk by table chunk."""
    window = Window.of(params)
    scale = SCALES[params.scale]
    accounts = generate_accounts(params, window)
    yield customers_chunk(window, accounts)
    yield subscriptions_chunk(window, accounts)
    yield leads_chunk(params, window, accounts)
    usage_rates = per_day_rates(
        accounts, window, accounts.customers.engagement, target_volume(params, scale.usage_events)
    )
    ai_rates = per_day_rates(
        accounts, window, accounts.customers.ai_propensity, target_volume(params, scale.ai_requests)
    )
    usage_ids, ai_ids, nps_ids = IdCounter(), IdCounter(), IdCounter()
    for week, chunk in enumerate(weekly_chunks(window)):
        yield usage_chunk(params, window, accounts, usage_rates, week, chunk, usage_ids)
        yield ai_chunk(params, window, accounts, ai_rates, week, chunk, ai_ids)
        yield nps_chunk(params, window, accounts, week, chunk, nps_ids)
    yield from health_chunks(params, window)


def chunk_count(params: DatasetParams) -> int:
    window = Window.of(params)
    return 3 + 3 * len(weekly_chunks(window)) + health_chunk_count(window)


# ----------------------------------------------------------------------------------------------
# Loading
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LoadSummary:
    """What ``load`` did. ``loaded`` is False when the same dataset was already there."""

    params: DatasetParams
    loaded: bool
    counts: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def describe(self) -> str:
        p = self.params
        what = (
            f"ChatterFix {p.scale} dataset (seed {p.seed}, {iso_utc(p.start)} → {iso_utc(p.end)}{_knobs_text(p)})"
        )
        head = (
            f"Loaded {what} in {self.seconds:.1f} s"
            if self.loaded
            else f"{what} is already loaded; nothing to do (force=True / --force reloads it)"
        )
        width = max(len(t) for t in self.counts) if self.counts else 0
        lines = [f"  {table:<{width}}  {count:>12,}" for table, count in self.counts.items()]
        return "\n".join([head + ":", *lines])


def _knobs_text(p: DatasetParams) -> str:
    knobs = [f"{n} {getattr(p, n)}" for n in ("outage_week", "churn_spike_week") if getattr(p, n)]
    return "; " + ", ".join(knobs) if knobs else ""


class DatasetError(RuntimeError):
    """The database holds data this module did not load; it will not truncate it unasked."""


DATASET_DDL = """
CREATE TABLE IF NOT EXISTS investor_metrics.demo_dataset (
    dataset           text PRIMARY KEY DEFAULT 'chatterfix',
    scale             text        NOT NULL,
    seed              bigint      NOT NULL,
    end_at            timestamptz NOT NULL,
    span_days         integer     NOT NULL,
    outage_week       date,
    churn_spike_week  date,
    generator_version integer     NOT NULL,
    row_counts        jsonb       NOT NULL,
    seconds           double precision NOT NULL,
    loaded_at         timestamptz NOT NULL DEFAULT now()
)
"""
RECORDED_SQL = """
SELECT scale, seed, end_at, span_days, outage_week, churn_spike_week, generator_version, row_counts
  FROM investor_metrics.demo_dataset WHERE dataset = 'chatterfix'
"""
RECORD_SQL = """
INSERT INTO investor_metrics.demo_dataset
       (dataset, scale, seed, end_at, span_days, outage_week, churn_spike_week, generator_version,
        row_counts, seconds, loaded_at)
VALUES ('chatterfix', %(scale)s, %(seed)s, %(end_at)s, %(span_days)s, %(outage_week)s,
        %(churn_spike_week)s, %(generator_version)s, %(row_counts)s, %(seconds)s, now())
ON CONFLICT (dataset) DO UPDATE SET
       scale = EXCLUDED.scale, seed = EXCLUDED.seed, end_at = EXCLUDED.end_at,
       span_days = EXCLUDED.span_days, outage_week = EXCLUDED.outage_week,
       churn_spike_week = EXCLUDED.churn_spike_week, generator_version = EXCLUDED.generator_version,
       row_counts = EXCLUDED.row_counts, seconds = EXCLUDED.seconds, loaded_at = EXCLUDED.loaded_at
"""
SECONDARY_INDEXES_SQL = """
SELECT n.nspname, c.relname, pg_get_indexdef(i.indexrelid)
  FROM pg_index i
  JOIN pg_class c ON c.oid = i.indexrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE i.indrelid = ANY(%s::text[]::regclass[]) AND NOT i.indisunique
 ORDER BY n.nspname, c.relname
"""
# The tables a still-valid dataset must hold its recorded row counts in (cheap to count).
CHECKED_TABLES = ("customers", "subscriptions")


def load(
    settings: PostgresSettings,
    *,
    end: datetime,
    scale: str = "demo",
    seed: int = 42,
    span_days: int = REFERENCE_SPAN_DAYS,
    outage_week: date | str | None = None,
    churn_spike_week: date | str | None = None,
    force: bool = False,
    progress: bool = True,
) -> LoadSummary:
    """Load the dataset of these parameters into ``settings``' database, unless already loaded."""
    params = DatasetParams.build(
        end=end,
        scale=scale,
        seed=seed,
        span_days=span_days,
        outage_week=outage_week,
        churn_spike_week=churn_spike_week,
    )
    began = time.monotonic()
    conn = connect(settings)
    try:
        prepare_tables(conn)
        with conn.cursor() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(hashtext('investor_metrics.demo_dataset'))")
            recorded = recorded_dataset(cur)
            if not force and is_loaded(cur, params, recorded):
                conn.rollback()
                counts = {table: recorded["row_counts"][table] for table in LOADED_TABLES}
                summary = LoadSummary(params, False, counts, time.monotonic() - began)
                log.info("%s", summary.describe())
                return summary
            if recorded is None and not force:
                refuse_foreign_rows(cur)
            counts = replace_dataset(cur, params, progress)
            seconds = time.monotonic() - began
            record_dataset(cur, params, counts, seconds)
        conn.commit()
    finally:
        conn.close()
    summary = LoadSummary(params, True, counts, seconds)
    log.info("%s", summary.describe())
    return summary


def prepare_tables(conn) -> None:
    apply_source_schema(conn)
    apply_metrics_schema(conn)
    with conn.cursor() as cur:
        cur.execute(DATASET_DDL)
    conn.commit()


def recorded_dataset(cur) -> dict | None:
    cur.execute(RECORDED_SQL)
    row = cur.fetchone()
    if row is None:
        return None
    names = [d[0] for d in cur.description]
    return dict(zip(names, row, strict=True))


def is_loaded(cur, params: DatasetParams, recorded: dict | None) -> bool:
    if recorded is None:
        return False
    wanted = params.as_record()
    if any(recorded[key] != value for key, value in wanted.items()):
        return False
    if not set(LOADED_TABLES) <= set(recorded["row_counts"]):
        return False
    return all(count_rows(cur, table) == recorded["row_counts"].get(table) for table in CHECKED_TABLES)


def count_rows(cur, table: str) -> int:
    from psycopg2 import sql

    cur.execute(sql.SQL("SELECT count(*) FROM {}").format(_identifier(table)))
    return cur.fetchone()[0]


def refuse_foreign_rows(cur) -> None:
    from psycopg2 import sql

    for table in SOURCE_TABLES:
        cur.execute(sql.SQL("SELECT EXISTS (SELECT 1 FROM {})").format(_identifier(table)))
        if cur.fetchone()[0]:
            raise DatasetError(
                f"table {table} holds rows that dev.demo_data.generator did not load (no record in "
                f"{DATASET_TABLE}); refusing to truncate it. Use force=True (--force) to replace them."
            )


def _identifier(table: str):
    from psycopg2 import sql

    return sql.Identifier(*table.split("."))


def replace_dataset(cur, params: DatasetParams, progress: bool) -> dict[str, int]:
    """Truncate, COPY the new rows in (secondary indexes off meanwhile), rebuild, analyse."""
    from psycopg2 import sql
    from tqdm import tqdm

    cur.execute(sql.SQL("TRUNCATE {}").format(sql.SQL(", ").join(map(_identifier, LOADED_TABLES))))
    cur.execute("SET LOCAL maintenance_work_mem = '256MB'")
    indexes = drop_secondary_indexes(cur)
    counts = dict.fromkeys(LOADED_TABLES, 0)
    with tqdm(total=chunk_count(params) + 1, unit="chunk", disable=not progress, file=sys.stderr) as bar:
        for chunk in generate(params):
            bar.set_description(chunk.table.rpartition(".")[2])
            copy_chunk(cur, chunk)
            counts[chunk.table] += chunk.rows
            bar.update()
        bar.set_description("indexes")
        for definition in indexes:
            cur.execute(definition)
        cur.execute(sql.SQL("ANALYZE {}").format(sql.SQL(", ").join(map(_identifier, LOADED_TABLES))))
        bar.update()
    return counts


def drop_secondary_indexes(cur) -> list[str]:
    """Drop the loaded tables' non-unique indexes; returns the statements that recreate them."""
    from psycopg2 import sql

    cur.execute(SECONDARY_INDEXES_SQL, (list(LOADED_TABLES),))
    found = cur.fetchall()
    for schema, name, _definition in found:
        cur.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(schema, name)))
    return [definition for _schema, _name, definition in found]


def copy_chunk(cur, chunk: Chunk) -> None:
    """Binary COPY in pieces of at most ``COPY_CHUNK_ROWS`` rows. FREEZE: the tables were
    truncated in this transaction, so the rows can be written frozen (no later hint-bit rewrite)."""
    from psycopg2 import sql

    statement = sql.SQL("COPY {} ({}) FROM STDIN WITH (FORMAT binary, FREEZE true)").format(
        _identifier(chunk.table), sql.SQL(", ").join(sql.Identifier(c.name) for c in chunk.columns)
    )
    for start in range(0, chunk.rows, COPY_CHUNK_ROWS):
        piece = [c.take(start, start + COPY_CHUNK_ROWS) for c in chunk.columns]
        cur.copy_expert(statement, io.BytesIO(encode_binary_copy(piece)), size=1 << 20)


def record_dataset(cur, params: DatasetParams, counts: dict[str, int], seconds: float) -> None:
    cur.execute(RECORD_SQL, {**params.as_record(), "row_counts": json.dumps(counts), "seconds": seconds})


# ----------------------------------------------------------------------------------------------
# Command line
# ----------------------------------------------------------------------------------------------


def default_end(now: datetime | None = None) -> datetime:
    """Now, floored to the UTC hour (the command line's default ``--end``)."""
    now = (now or datetime.now(timezone.utc)).astimezone(timezone.utc)
    return now.replace(minute=0, second=0, microsecond=0)


def settings_from_dsn(dsn: str) -> PostgresSettings:
    import psycopg2.extensions

    parts = psycopg2.extensions.parse_dsn(dsn)
    return PostgresSettings(
        host=parts.get("host", "localhost"),
        port=int(parts.get("port", 5432)),
        dbname=parts.get("dbname", "postgres"),
        user=parts.get("user"),
        password=parts.get("password"),
    )


def _parse_end(raw: str) -> datetime:
    from include.investor_metrics.period import parse_period_end

    try:
        return parse_period_end(raw)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err).replace("period_end", "--end")) from None


def _parse_day(raw: str) -> date:
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{raw!r} is not a date such as 2026-10-05") from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m dev.demo_data.generator",
        description="Load a deterministic synthetic ChatterFix dataset (unless already loaded).",
    )
    parser.add_argument("--scale", choices=sorted(SCALES), default="demo")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--end", type=_parse_end, help="end of the data, ISO 8601 (default: now, floored to the hour)"
    )
    parser.add_argument("--span-days", type=int, default=REFERENCE_SPAN_DAYS)
    parser.add_argument(
        "--outage-week", type=_parse_day, help="a 12-hour api outage in the 7 days from this date"
    )
    parser.add_argument(
        "--churn-spike-week", type=_parse_day, help="~10%% of customers churn in these 7 days"
    )
    parser.add_argument("--force", action="store_true", help="reload even when already loaded")
    parser.add_argument("--dsn", help="libpq DSN or URL (default: the DB_* environment variables)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    settings = settings_from_dsn(args.dsn) if args.dsn else postgres_settings_from_env()
    end = args.end or default_end()
    print(f"end: {iso_utc(end)}{'' if args.end else ' (now, floored to the UTC hour)'}")
    print(f"database: {settings.public_description()}")
    try:
        summary = load(
            settings,
            end=end,
            scale=args.scale,
            seed=args.seed,
            span_days=args.span_days,
            outage_week=args.outage_week,
            churn_spike_week=args.churn_spike_week,
            force=args.force,
            progress=not args.no_progress,
        )
    except (ValueError, DatasetError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(summary.describe())
    return 0


if __name__ == "__main__":
    sys.exit(main())
