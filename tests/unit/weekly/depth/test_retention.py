"""NRR, GRR and logo retention (weekly/depth/retention.py) on hand-made rows in a real PostgreSQL.

The week [2026-11-15 09:00Z, 2026-11-22 09:00Z) in UTC: end − 12 months = 2025-11-22 09:00Z (BASE),
end − 1 month = 2026-10-22 09:00Z. MRR in twelfths of a cent (monthly cents × 12, yearly × 1).

  customer                                      b (12m)   e (end)   b (1m)
  1 $100/mo, then $80/mo from 2026-11-01         120000     96000   120000   contraction
  2 $100/mo, then $150/mo from 2026-06-01        120000    180000   180000   expansion in the base set
  3 $200/mo until 2026-03-01, back with $50/mo   240000     60000    60000   churns, comes back
    from 2026-05-01
  4 $100/mo until 2026-09-01                     120000         0        0   churned
  5 $300/mo from 2026-01-10, $400 from 11-10          -    480000   360000   first paid after BASE
  6 $1000/yr (100000 cents) since 2025-10-01     100000    100000   100000   yearly, not / 12
  7 $500/mo started exactly at BASE                   -    600000   600000   not active as of BASE
  8 $70/mo ended exactly at BASE                  84000         0        0   active as of BASE

12 months: B = {1, 2, 3, 4, 6, 8}, Σb = 784000, Σe = 436000, Σmin(e, b) = 376000:
  nrr_12m = 436000 / 784000 = 55.612… → 55.61; grr_12m = 376000 / 784000 = 47.959… → 47.96;
  logo_retention_12m = 4 of 6 (1, 2, 3, 6) = 66.67.
1 month: B = {1, 2, 3, 5, 6, 7}, Σb = 1420000, Σe = 1516000, Σmin = 1396000:
  nrr_1m = 106.760… → 106.76; grr_1m = 98.309… → 98.31.
"""

from __future__ import annotations

import pandas as pd
import pytest

from include.investor_metrics.period import weekly_period
from include.investor_metrics.weekly.depth.retention import (
    gross_revenue_retention,
    logo_retention,
    net_revenue_retention,
)
from tests.unit.weekly.depth.source import add_subscriptions, sections, source_connection, utc

END = utc(2026, 11, 22, 9)
PERIOD = weekly_period(END, "UTC")
BASE = utc(2025, 11, 22, 9)
LONG_AGO = utc(2025, 1, 1)


@pytest.fixture()
def conn(fresh_database):
    yield from source_connection(fresh_database)

ROWS = [
    (1, 1, "basic", "month", 10000, LONG_AGO, utc(2026, 11, 1)),
    (2, 1, "basic", "month", 8000, utc(2026, 11, 1), None),
    (3, 2, "basic", "month", 10000, LONG_AGO, utc(2026, 6, 1)),
    (4, 2, "pro", "month", 15000, utc(2026, 6, 1), None),
    (5, 3, "basic", "month", 20000, LONG_AGO, utc(2026, 3, 1)),
    (6, 3, "basic", "month", 5000, utc(2026, 5, 1), None),
    (7, 4, "basic", "month", 10000, utc(2025, 6, 1), utc(2026, 9, 1)),
    (8, 5, "pro", "month", 30000, utc(2026, 1, 10), utc(2026, 11, 10)),
    (9, 5, "pro", "month", 40000, utc(2026, 11, 10), None),
    (10, 6, "pro", "year", 100000, utc(2025, 10, 1), None),
    (11, 7, "pro", "month", 50000, BASE, None),
    (12, 8, "basic", "month", 7000, LONG_AGO, BASE),
]


def test_retention_over_12_months_and_1_month(conn):
    add_subscriptions(conn, ROWS)
    retention = sections(conn, PERIOD)["retention"]
    assert {k: v for k, v in retention.items() if k != "cohorts"} == {
        "nrr_12m": 55.61,
        "grr_12m": 47.96,
        "nrr_1m": 106.76,
        "grr_1m": 98.31,
        "logo_retention_12m": 66.67,
    }


def test_zero_denominators_are_null(conn):
    # no customer paid as of either base: B is empty; a free subscription does not make one paying
    add_subscriptions(conn, [(1, 1, "free", "month", 0, LONG_AGO, None)])
    retention = sections(conn, PERIOD)["retention"]
    rates = ("nrr_12m", "grr_12m", "nrr_1m", "grr_1m", "logo_retention_12m")
    assert [retention[k] for k in rates] == [None] * 5


def test_the_pure_functions_on_hand_made_series():
    # customers 1, 2, 3 with b = 1200, 2400, 0 and e = 3600, 0, 9999 (3 is not in B):
    # NRR 3600 / 3600 = 100, GRR min(3600, 1200) / 3600 = 33.33, logo 1 of 2 = 50
    base = pd.Series([1200, 2400, 0])
    current = pd.Series([3600, 0, 9999])
    assert net_revenue_retention(base, current) == 100.0
    assert gross_revenue_retention(base, current) == 33.33
    assert logo_retention(base, current) == 50.0
    nobody = pd.Series([0, 0, 0])
    assert net_revenue_retention(nobody, current) is None
    assert gross_revenue_retention(nobody, current) is None
    assert logo_retention(nobody, current) is None
