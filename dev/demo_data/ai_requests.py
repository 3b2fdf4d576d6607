"""The ``ai_requests`` rows: each customer's AI assistant traffic (chat and API, four providers,
cache hits, errors, rated answers, some requests with no customer), on the activity process."""

from __future__ import annotations

import numpy as np

from dev.demo_data.columns import Chunk, bool_column, int_column, text_column, timestamp_column
from dev.demo_data.events import FADE_BEFORE_CHURN, IdCounter, fade_start, sample_event_times
from dev.demo_data.params import S_AI, DatasetParams, Window, choice, stream_rng
from dev.demo_data.subscriptions import Accounts

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


def ai_chunk(
    params: DatasetParams,
    window: Window,
    accounts: Accounts,
    rates: np.ndarray,
    week: int,
    chunk: tuple[int, int],
    ids: IdCounter,
) -> Chunk:
    rng = stream_rng(params, S_AI, week)
    fade = fade_start(accounts, FADE_BEFORE_CHURN)
    rows, offsets = sample_event_times(rng, window, accounts.main, rates, fade, chunk)
    n = len(rows)
    customer_id = accounts.main.customer[rows] + 1
    anonymous = rng.random(n) < ANONYMOUS_AI_P
    provider = choice(rng, PROVIDER_P, n)
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
