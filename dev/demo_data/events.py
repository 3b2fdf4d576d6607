"""Customer activity: a Poisson process per active subscription, thinned by the hour of the week
(quiet weekends) and fading before a churn; the ``usage_events`` and ``nps_responses`` rows."""

from __future__ import annotations

import numpy as np

from dev.demo_data.columns import Chunk, int_column, text_column, timestamp_column
from dev.demo_data.params import (
    DAY,
    MEAN_HOUR_WEIGHT,
    NO_END,
    REFERENCE_SPAN_DAYS,
    S_NPS,
    S_USAGE,
    SECOND,
    WEEK,
    DatasetParams,
    Window,
    choice,
    hour_weight,
    quantize,
    stream_rng,
)
from dev.demo_data.subscriptions import Accounts, Subscriptions

EVENT_TYPES = ("work_order_created", "work_order_completed", "asset_viewed", "ai_chat", "report_exported")
EVENT_TYPE_P = np.array([0.28, 0.22, 0.32, 0.12, 0.06])
FADE_BEFORE_CHURN = 21 * DAY
FADE_FACTOR = 0.3

NPS_EVERY_DAYS = 120
NPS_SCORE_P = np.array([0.005, 0.005, 0.005, 0.01, 0.02, 0.03, 0.05, 0.13, 0.22, 0.27, 0.255])
NPS_UNHAPPY_SCORE_P = np.array([0.06, 0.05, 0.08, 0.10, 0.12, 0.14, 0.15, 0.12, 0.10, 0.05, 0.03])
NPS_UNHAPPY_BEFORE_CHURN = 60 * DAY


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
    keep_p = hour_weight(window, offsets) * np.where(offsets >= fade_from[rows][owner], FADE_FACTOR, 1.0)
    kept = rng.random(len(owner)) < keep_p
    owner, offsets = owner[kept], np.maximum(quantize(offsets[kept], 1000), lo[owner[kept]])
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
    rng = stream_rng(params, S_USAGE, week)
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
            text_column("event_type", EVENT_TYPES, choice(rng, EVENT_TYPE_P, len(rows))),
            timestamp_column("occurred_at", window, offsets),
        ],
    )


def nps_chunk(
    params: DatasetParams,
    window: Window,
    accounts: Accounts,
    week: int,
    chunk: tuple[int, int],
    ids: IdCounter,
) -> Chunk:
    rng = stream_rng(params, S_NPS, week)
    rates = np.full(len(accounts.main.started), 1.0 / NPS_EVERY_DAYS)
    never_fades = np.full(len(accounts.main.started), NO_END)
    rows, offsets = sample_event_times(rng, window, accounts.main, rates, never_fades, chunk)
    unhappy = offsets >= fade_start(accounts, NPS_UNHAPPY_BEFORE_CHURN)[rows]
    scores = np.where(
        unhappy, choice(rng, NPS_UNHAPPY_SCORE_P, len(rows)), choice(rng, NPS_SCORE_P, len(rows))
    )
    return Chunk(
        "nps_responses",
        [
            int_column("response_id", ids.take(len(rows))),
            int_column("customer_id", accounts.main.customer[rows] + 1),
            int_column("score", scores, ">i2"),
            timestamp_column("responded_at", window, quantize(offsets, SECOND)),
        ],
    )
