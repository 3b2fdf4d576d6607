"""What the synthetic ChatterFix dataset depends on, and the machinery every table shares.

Determinism: every row is a function of ``DatasetParams`` (``scale, seed, end, span_days,
outage_week, churn_spike_week``) and of ``GENERATOR_VERSION`` only. The data covers
``[end − span_days, end)``; ``end`` is always explicit here (the command line defaults it). Randomness
comes from numpy ``Generator(PCG64(...))`` streams seeded with ``SeedSequence([seed, stream, chunk])``
(``stream_rng``): one stream per table and per week, so a table's rows do not depend on how another
table is generated, nor on the COPY chunking. Every instant inside the generator is int64
microseconds, an offset from the window start.

Knobs for tests (each a date, read as 00:00 UTC, whose 7-day window must lie inside the data):

- ``outage_week``: every ``api`` check fails for 12 hours from day 3 of the window (the middle, so
  that any reporting week starting within ±3 days of the date holds the whole outage); the week's
  overall uptime drops to about 98.5 %.
- ``churn_spike_week``: about 10 % (at least 6, when there are) of the customers with MRR > 0 at the
  window start churn between day 1 and day 6 of the window (the middle again, so that a reporting
  week offset by up to a day still sees every one of them).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

import numpy as np

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

# Share of each hour of the week (Monday 00:00 UTC first) relative to the busiest hour.
_DAY_OF_WEEK = np.array([1.0, 1.0, 1.0, 1.0, 0.95, 0.30, 0.25])
_HOUR_OF_DAY = np.array(
    [0.30, 0.25, 0.20, 0.18, 0.18, 0.20, 0.25, 0.35, 0.50, 0.65, 0.75, 0.80,
     0.85, 0.95, 1.00, 1.00, 0.98, 0.95, 0.90, 0.85, 0.75, 0.60, 0.45, 0.35]
)  # fmt: skip
HOUR_OF_WEEK_WEIGHT = np.outer(_DAY_OF_WEEK, _HOUR_OF_DAY).ravel()
MEAN_HOUR_WEIGHT = float(HOUR_OF_WEEK_WEIGHT.mean())
UNIX_EPOCH_WEEKDAY = 3  # 1970-01-01 was a Thursday (Monday = 0)

# Random streams: one per purpose (and per week for the event tables).
(
    S_CUSTOMERS,
    S_SUBSCRIPTIONS,
    S_CHURN_SPIKE,
    S_ADDONS,
    S_LEADS,
    S_USAGE,
    S_AI,
    S_NPS,
    S_INCIDENTS,
    S_CHECKS,
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
            if week is not None and not params.start <= midnight_utc(week) <= params.end - timedelta(days=7):
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


def midnight_utc(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=timezone.utc)


def epoch_us(value: datetime) -> int:
    delta = value - datetime(1970, 1, 1, tzinfo=timezone.utc)
    return (delta.days * 86_400 + delta.seconds) * SECOND + delta.microseconds


@dataclass(frozen=True)
class Window:
    """The data's time window in microseconds since the Unix epoch."""

    start_us: int
    end_us: int

    @classmethod
    def of(cls, params: DatasetParams) -> Window:
        return cls(epoch_us(params.start), epoch_us(params.end))

    @property
    def length(self) -> int:
        return self.end_us - self.start_us

    def offset(self, day: date) -> int:
        """Microseconds from the window start to 00:00 UTC of ``day``."""
        return epoch_us(midnight_utc(day)) - self.start_us


def stream_rng(params: DatasetParams, stream: int, chunk: int = 0) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([params.seed, stream, chunk])))


def quantize(offsets: np.ndarray, unit: int) -> np.ndarray:
    """Offsets floored to whole ``unit``s counted from the window start (never before it)."""
    offsets = np.asarray(offsets, dtype=np.int64)
    return offsets - offsets % unit


def hour_weight(window: Window, offsets: np.ndarray) -> np.ndarray:
    hours = (window.start_us + offsets) // HOUR
    return HOUR_OF_WEEK_WEIGHT[(hours + UNIX_EPOCH_WEEKDAY * 24) % 168]


def choice(rng: np.random.Generator, p: np.ndarray, size: int) -> np.ndarray:
    """``size`` codes (indexes into ``p``) drawn with probabilities ``p``."""
    return np.searchsorted(np.cumsum(p) / p.sum(), rng.random(size), side="right").astype(np.int64)


def row_choice(rng: np.random.Generator, p_rows: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """For each element, a code drawn from the probability row ``p_rows[rows]``."""
    cumulative = np.cumsum(p_rows, axis=1)[rows]
    u = rng.random(len(rows))[:, None] * cumulative[:, -1:]
    return (u >= cumulative).sum(axis=1)
