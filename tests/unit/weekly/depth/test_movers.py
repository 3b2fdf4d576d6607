"""The largest movements (weekly/depth/movers.py) on hand-made rows in PostgreSQL.

The week [2026-11-15 09:00Z, 2026-11-22 09:00Z) in UTC; change = MRR(end) − MRR(start):

  customer  start → end       change  kind
  21        $0 → $50            +50   new
  22        $50 → $0            −50   churned (its subscription ended 2026-11-20)
  23        $25 → $75           +50   expansion
  24        $100 → $50          −50   contraction
  25        $500 → $500           0   not listed
  26        $0 → $10            +10   reactivation (a subscription ended 2026-06-01, before start)
  27 … 33   $0 → $10            +10   new
  34        $0 → $10            +10   new: started exactly at start (not active as of start),
                                      ended exactly at end (active as of end)

13 customers move; |change| 50 for 21–24 (ties: ascending id),
then 10 for 26–34: the 10 listed are 21, 22, 23, 24, 26, 27, 28, 29, 30, 31.
"""

from __future__ import annotations

import pandas as pd
import pytest

from include.investor_metrics.period import weekly_period
from include.investor_metrics.weekly.depth.movers import largest_movements, movement_kind
from tests.unit.weekly.depth.source import add_subscriptions, sections, source_connection, utc

END = utc(2026, 11, 22, 9)
PERIOD = weekly_period(END, "UTC")
START = PERIOD.start
LONG_AGO = utc(2025, 1, 1)
IN_WEEK = utc(2026, 11, 18)


@pytest.fixture()
def conn(fresh_database):
    yield from source_connection(fresh_database)


def move(customer_id, kind, mrr_start, mrr_end) -> dict:
    return {"customer_id": customer_id, "name": f"Customer {customer_id}", "kind": kind,
            "mrr_start": mrr_start, "mrr_end": mrr_end, "change": round(mrr_end - mrr_start, 2)}


def test_largest_movements_ties_by_customer_id_and_at_most_10(conn):
    rows = [
        (1, 23, "basic", "month", 2500, LONG_AGO, IN_WEEK),
        (2, 23, "basic", "month", 7500, IN_WEEK, None),
        (3, 24, "basic", "month", 10000, LONG_AGO, IN_WEEK),
        (4, 24, "basic", "month", 5000, IN_WEEK, None),
        (5, 22, "basic", "month", 5000, LONG_AGO, utc(2026, 11, 20)),
        (6, 21, "basic", "month", 5000, IN_WEEK, None),
        (7, 25, "pro", "month", 50000, LONG_AGO, None),
        (8, 26, "basic", "month", 1000, LONG_AGO, utc(2026, 6, 1)),
        (9, 26, "basic", "month", 1000, IN_WEEK, None),
        *[(10 + i, c, "basic", "month", 1000, IN_WEEK, None) for i, c in enumerate(range(27, 34))],
        (20, 34, "basic", "month", 1000, START, END),
    ]
    add_subscriptions(conn, rows)
    assert sections(conn, PERIOD)["movements"] == {"largest": [
        move(21, "new", 0.0, 50.0),
        move(22, "churned", 50.0, 0.0),
        move(23, "expansion", 25.0, 75.0),
        move(24, "contraction", 100.0, 50.0),
        move(26, "reactivation", 0.0, 10.0),
        *[move(c, "new", 0.0, 10.0) for c in range(27, 32)],
    ]}


def test_no_movement_gives_an_empty_list(conn):
    add_subscriptions(conn, [(1, 1, "basic", "month", 1000, LONG_AGO, None)])
    assert sections(conn, PERIOD)["movements"] == {"largest": []}


def test_change_is_rounded_once_from_the_exact_difference():
    # yearly $1000.01 → $0: 100001 twelfths = $83.33416… → mrr_start 83.33, change −83.33; a name
    # missing from customers is null
    customers = pd.DataFrame({"customer_id": [5], "name": [None], "ended_before_start": [False],
                              "mrr_start_twelfths": [100001], "mrr_end_twelfths": [0]})
    assert largest_movements(customers) == [
        {"customer_id": 5, "name": None, "kind": "churned", "mrr_start": 83.33, "mrr_end": 0.0,
         "change": -83.33},
    ]


@pytest.mark.parametrize(("s", "e", "returning", "kind"), [
    (0, 5, False, "new"), (0, 5, True, "reactivation"), (3, 5, True, "expansion"),
    (5, 3, False, "contraction"), (5, 0, False, "churned"), (5, 5, False, None), (0, 0, True, None),
])
def test_movement_kind(s, e, returning, kind):
    assert movement_kind(s, e, returning) == kind
