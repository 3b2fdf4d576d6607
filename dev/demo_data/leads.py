"""The ``leads`` rows: converted leads become customers (``converted_at`` = the sign-up), the rest
never convert; the source mix and conversion rates differ by source."""

from __future__ import annotations

import numpy as np

from dev.demo_data.columns import Chunk, int_column, text_column, timestamp_column
from dev.demo_data.customers import growth_curve_sample
from dev.demo_data.params import (
    DAY,
    NO_END,
    S_LEADS,
    SECOND,
    DatasetParams,
    Window,
    choice,
    quantize,
    stream_rng,
)
from dev.demo_data.subscriptions import Accounts

LEAD_SOURCES = ("organic", "paid_search", "referral", "webinar", "outbound", "partner")
LEAD_SOURCE_SHARE = np.array([0.30, 0.25, 0.10, 0.10, 0.15, 0.10])
LEAD_SOURCE_CONVERSION = np.array([0.14, 0.10, 0.35, 0.18, 0.07, 0.22])
LEAD_CONVERSION = 0.15
CUSTOMERS_FROM_LEADS_P = 0.75


def leads_chunk(params: DatasetParams, window: Window, accounts: Accounts) -> Chunk:
    """Converted leads become customers (converted_at = the sign-up); the rest never convert."""
    rng = stream_rng(params, S_LEADS)
    customers = accounts.customers
    converted = np.flatnonzero(rng.random(len(customers.created)) < CUSTOMERS_FROM_LEADS_P)
    converted_at = customers.created[converted]
    days_to_convert = rng.lognormal(np.log(12.0), 0.8, len(converted))
    created_converted = np.maximum(converted_at - quantize(days_to_convert * DAY, SECOND), 0)
    n_open = round(len(converted) * (1 - LEAD_CONVERSION) / LEAD_CONVERSION)
    created_open = quantize(growth_curve_sample(rng, n_open, window.length), SECOND)
    converting_share = LEAD_SOURCE_SHARE * LEAD_SOURCE_CONVERSION
    source = np.r_[
        choice(rng, converting_share, len(converted)),
        choice(rng, LEAD_SOURCE_SHARE - converting_share, n_open),
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
