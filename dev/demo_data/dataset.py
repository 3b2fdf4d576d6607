"""The whole synthetic dataset, table chunk by table chunk, with no database needed."""

from __future__ import annotations

from collections.abc import Iterator

from dev.demo_data.ai_requests import ai_chunk
from dev.demo_data.columns import Chunk
from dev.demo_data.events import (
    IdCounter,
    nps_chunk,
    per_day_rates,
    target_volume,
    usage_chunk,
    weekly_chunks,
)
from dev.demo_data.health import health_chunk_count, health_chunks
from dev.demo_data.leads import leads_chunk
from dev.demo_data.params import SCALES, DatasetParams, Window
from dev.demo_data.subscriptions import customers_chunk, generate_accounts, subscriptions_chunk


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
