"""The depth extract (weekly/depth/extract.py) against PostgreSQL: aggregates only, boundaries.

The week [2026-11-15 09:00Z, 2026-11-22 09:00Z) in UTC: end − 1 month = 2026-10-22 09:00Z,
end − 12 months = 2025-11-22 09:00Z; the cohorts are the UTC months 2025-12 … 2026-11 (78
checkpoints: 12 + 11 + … + 1).

Customer 1 has three subscriptions on one plan running at once, and one on another plan; customer
2 one that starts exactly at end (not active as of end) and one that ends exactly at end (active
as of end); customer 3 one that starts exactly at start (not active as of start). What comes back
is one row per customer, per (customer, plan) and per (cohort, checkpoint), never one per
subscription.
"""

from __future__ import annotations

import pytest

from include.investor_metrics.period import weekly_period
from include.investor_metrics.weekly.depth.extract import COHORTS, CUSTOMERS, PLAN_MRR, extract_depth
from include.investor_metrics.weekly.depth.snapshot import depth_sections
from include.investor_metrics.weekly.extract import read_frames, write_frames
from include.investor_metrics.weekly.metrics.rounding import MoneyRangeError
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


def test_the_extract_is_aggregate_one_row_per_customer_pair_and_checkpoint(conn):
    add_subscriptions(conn, ROWS)
    frames = extract_depth(conn, PERIOD)
    customers = frames[CUSTOMERS]
    # customer 1: (1000 + 2000 + 500) × 12 + 1200 × 1 = 43200 twelfths at every instant;
    # customer 2: 300 × 12 = 3600 (the subscription ending at end; the one starting at end is not
    # counted); customer 3: 0 as of start and the two bases, 900 × 12 = 10800 as of end
    assert customers.drop(columns="name").values.tolist() == [
        [1, False, 43200, 43200, 43200, 43200],
        [2, False, 3600, 3600, 3600, 3600],
        [3, False, 0, 10800, 0, 0],
    ]
    assert customers["name"].tolist() == ["Customer 1", "Customer 2", "Customer 3"]
    assert list(customers.columns) == ["customer_id", "name", "ended_before_start", "mrr_start_twelfths",
                                       "mrr_end_twelfths", "mrr_month_ago_twelfths", "mrr_year_ago_twelfths"]
    assert all(str(customers[c].dtype) == "int64" for c in customers.columns if c.startswith("mrr_"))

    plans = frames[PLAN_MRR]
    assert plans[["customer_id", "plan", "mrr_start_twelfths", "mrr_end_twelfths"]].values.tolist() == [
        [1, "basic", 6000, 6000],
        [1, "pro", 37200, 37200],
        [2, "basic", 3600, 3600],
        [3, "basic", 0, 10800],
    ]

    cohorts = frames[COHORTS]
    assert len(cohorts) == 78 and not cohorts.duplicated(["cohort_start", "as_of"]).any()
    # customers 1 and 2 first paid 2025-01-01 (no cohort), customer 3 at START: cohort 2026-11,
    # whose only checkpoint is end: 1 member, active, 10800
    last = cohorts[cohorts["cohort_start"] == utc(2026, 11, 1)]
    assert last[["as_of", "customers", "active", "mrr_twelfths"]].values.tolist() == [[END, 1, 1, 10800]]
    assert cohorts.loc[cohorts["cohort_start"] < utc(2026, 11, 1), "customers"].eq(0).all()


def test_empty_source_gives_typed_frames(conn):
    frames = extract_depth(conn, PERIOD)
    assert len(frames[CUSTOMERS]) == 0 and len(frames[PLAN_MRR]) == 0
    assert len(frames[COHORTS]) == 78 and frames[COHORTS]["customers"].eq(0).all()
    assert str(frames[CUSTOMERS]["mrr_end_twelfths"].dtype) == "int64"
    assert str(frames[PLAN_MRR]["mrr_end_twelfths"].dtype) == "int64"


def test_a_rerun_gives_identical_frames(conn):
    add_subscriptions(conn, ROWS)
    first, second = extract_depth(conn, PERIOD), extract_depth(conn, PERIOD)
    for name, frame in first.items():
        assert frame.equals(second[name]), name


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
        cur.execute("UPDATE subscriptions SET billing_interval = 'month', amount_cents = %s", (2**62,))
    conn.commit()
    with pytest.raises(MoneyRangeError, match="beyond int64"):
        extract_depth(conn, PERIOD)
