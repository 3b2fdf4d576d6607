"""The depth extract (weekly/depth/extract.py) against PostgreSQL: aggregates only, boundaries.

The week [2026-11-15 09:00Z, 2026-11-22 09:00Z) in UTC; its instants are start, end, end − 1 month
(2026-10-22 09:00Z), end − 12 months (2025-11-22 09:00Z) and the cohort checkpoints (the month
starts 2026-01-01 … 2026-11-01, 00:00Z): 15 instants.

Customer 1 has three subscriptions on one plan running at once, and one on another plan; customer
2 one that starts exactly at end (not active as of end) and one that ends exactly at end (active
as of end). What comes back is one row per (customer, instant), per customer and per
(customer, plan), never one per subscription.
"""

from __future__ import annotations

import pandas as pd
import pytest

from include.investor_metrics.period import weekly_period
from include.investor_metrics.weekly.depth.extract import (
    CUSTOMER_MRR,
    CUSTOMERS,
    PLAN_MRR,
    extract_depth,
)
from include.investor_metrics.weekly.depth.instants import depth_instants
from include.investor_metrics.weekly.depth.snapshot import depth_sections
from include.investor_metrics.weekly.extract import read_frames, write_frames
from include.investor_metrics.weekly.metrics import MoneyRangeError
from tests.unit.weekly.depth.source import add_subscriptions, source_connection, utc

END = utc(2026, 11, 22, 9)
PERIOD = weekly_period(END, "UTC")
START = PERIOD.start
LONG_AGO = utc(2025, 1, 1)

ROWS = [
    (1, 1, "pro", "month", 1000, LONG_AGO, None),
    (2, 1, "pro", "month", 2000, LONG_AGO, None),
    (3, 1, "pro", "year", 1200, LONG_AGO, None),
    (4, 1, "basic", "month", 500, LONG_AGO, None),
    (5, 2, "basic", "month", 700, END, None),  # starts at end: not active as of end
    (6, 2, "basic", "month", 300, LONG_AGO, END),  # ends at end: active as of end
    (7, 3, "basic", "month", 900, START, None),  # starts at start: not active as of start
]


@pytest.fixture()
def conn(fresh_database):
    yield from source_connection(fresh_database)


def test_the_extract_is_aggregate_one_row_per_customer_instant_and_pair(conn):
    add_subscriptions(conn, ROWS)
    frames = extract_depth(conn, PERIOD)
    instants = depth_instants(PERIOD).all()
    assert len(instants) == 15
    mrr = frames[CUSTOMER_MRR]
    assert not mrr.duplicated(["customer_id", "as_of"]).any()
    assert len(mrr) <= 3 * len(instants) < len(ROWS) * len(instants)
    at = {(int(r.customer_id), r.as_of): int(r.mrr_twelfths) for r in mrr.itertuples()}
    # customer 1 as of end: (1000 + 2000 + 500) × 12 + 1200 × 1 = 43200 twelfths, one row
    assert at[(1, pd.Timestamp(END))] == 43200
    # customer 2 as of end: only the subscription ending at end: 300 × 12 = 3600
    assert at[(2, pd.Timestamp(END))] == 3600
    # customer 3 started at start: no row as of start, 900 × 12 = 10800 as of end
    assert (3, pd.Timestamp(START)) not in at and at[(3, pd.Timestamp(END))] == 10800
    assert list(mrr.dtypes.astype(str)) == ["int64", "datetime64[us, UTC]", "int64"]

    customers = frames[CUSTOMERS]
    assert customers["customer_id"].tolist() == [1, 2, 3]
    assert customers["name"].tolist() == ["Customer 1", "Customer 2", "Customer 3"]
    assert customers["first_paid_at"].tolist() == [pd.Timestamp(LONG_AGO)] * 2 + [pd.Timestamp(START)]
    assert not customers["ended_before_start"].any()

    plans = frames[PLAN_MRR]
    assert not plans.duplicated(["customer_id", "plan"]).any()
    assert plans[["customer_id", "plan", "mrr_start_twelfths", "mrr_end_twelfths"]].values.tolist() == [
        [1, "basic", 6000, 6000],
        [1, "pro", 37200, 37200],
        [2, "basic", 3600, 3600],
        [3, "basic", 0, 10800],
    ]


def test_empty_source_gives_typed_empty_frames(conn):
    frames = extract_depth(conn, PERIOD)
    assert all(len(f) == 0 for f in frames.values())
    assert str(frames[CUSTOMER_MRR]["mrr_twelfths"].dtype) == "int64"
    assert str(frames[PLAN_MRR]["mrr_end_twelfths"].dtype) == "int64"


def test_frames_survive_parquet_between_tasks(conn, tmp_path):
    add_subscriptions(conn, ROWS)
    frames = extract_depth(conn, PERIOD)
    back = read_frames(write_frames(frames, str(tmp_path / "depth")))
    # totals of ROWS as of end: 43200 + 3600 + 10800 = 57600; as of start: 43200 + 3600 = 46800
    direct = depth_sections(PERIOD, frames, mrr_twelfths=57600, net_new_mrr_twelfths=10800)
    assert depth_sections(PERIOD, back, mrr_twelfths=57600, net_new_mrr_twelfths=10800) == direct


def test_totals_that_do_not_add_up_are_refused(conn):
    add_subscriptions(conn, ROWS)
    frames = extract_depth(conn, PERIOD)
    with pytest.raises(AssertionError, match="per-customer MRR sums to 57600"):
        depth_sections(PERIOD, frames, mrr_twelfths=57601, net_new_mrr_twelfths=10800)


def test_unknown_interval_and_money_beyond_int64_are_refused(conn):
    add_subscriptions(conn, [(1, 1, "pro", "week", 1000, LONG_AGO, None)])
    with pytest.raises(ValueError, match="billing_interval"):
        extract_depth(conn, PERIOD)
    with conn.cursor() as cur:
        cur.execute("UPDATE subscriptions SET billing_interval = 'month', amount_cents = %s",
                    (2**62,))
    conn.commit()
    with pytest.raises(MoneyRangeError, match="beyond int64"):
        extract_depth(conn, PERIOD)
