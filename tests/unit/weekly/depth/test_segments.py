"""MRR by plan (weekly/depth/segments.py) on hand-made rows in PostgreSQL.

The week [2026-11-15 09:00Z, 2026-11-22 09:00Z) in UTC. MRR in twelfths of a cent; per
(customer, plan) pair, s = MRR as of start, e = as of end:

  customer  subscriptions                                     pair          s        e      kind
  1         basic $50 until 2026-11-18, pro $120 from then    (1, basic)  60000        0  churned
            (a plan switch at one instant)                    (1, pro)        0   144000  new
  2         pro $200 since 2025                               (2, pro)   240000   240000  -
  3         basic $30 and a free plan ($0), both running      (3, basic)  36000    36000  -
                                                              (3, free)       0        0  -
  4         basic $40 2026-01-01…05-01, basic $45 from 11-20  (4, basic)      0    54000  reactivation
  5         pro $1000/yr since 2025                           (5, pro)   100000   100000  -
  6         basic $100 until 11-17, basic $70 from then       (6, basic) 120000    84000  contraction
  7         basic $25 until 2026-03-01, pro $60 from 11-16    (7, pro)        0    72000  new (on pro;
                                                                                         reactivation
                                                                                         for customer 7)

basic: mrr 174000 = $145.00, active 3, reactivation $45, contraction $30, churned $50, net new
  54000 − 36000 − 60000 = −42000 = −$35.00, arpa 174000 / 3 / 1200 = 48.33.
pro: mrr 556000 = $463.33, active 4, new 216000 = $180.00, net new $180.00, arpa 556000 / 4 / 1200
  = 115.83. free: all 0, active 0, arpa null.
Σ mrr = 730000 = the total (144000 + 240000 + 36000 + 54000 + 100000 + 84000 + 72000);
Σ net new = −42000 + 216000 = 174000 = 730000 − 556000, the total.
"""

from __future__ import annotations

import pandas as pd
import pytest

from include.investor_metrics.period import weekly_period
from include.investor_metrics.weekly.depth.segments import assert_plan_sums, plan_figures
from tests.unit.weekly.depth.source import (
    add_subscriptions,
    sections,
    source_connection,
    utc,
    weekly_totals,
)

END = utc(2026, 11, 22, 9)
PERIOD = weekly_period(END, "UTC")
LONG_AGO = utc(2025, 1, 1)
SWITCH = utc(2026, 11, 18)

ROWS = [
    (1, 1, "basic", "month", 5000, utc(2026, 1, 1), SWITCH),
    (2, 1, "pro", "month", 12000, SWITCH, None),
    (3, 2, "pro", "month", 20000, LONG_AGO, None),
    (4, 3, "basic", "month", 3000, LONG_AGO, None),
    (5, 3, "free", "month", 0, LONG_AGO, None),
    (6, 4, "basic", "month", 4000, utc(2026, 1, 1), utc(2026, 5, 1)),
    (7, 4, "basic", "month", 4500, utc(2026, 11, 20), None),
    (8, 5, "pro", "year", 100000, LONG_AGO, None),
    (9, 6, "basic", "month", 10000, LONG_AGO, utc(2026, 11, 17)),
    (10, 6, "basic", "month", 7000, utc(2026, 11, 17), None),
    (11, 7, "basic", "month", 2500, LONG_AGO, utc(2026, 3, 1)),
    (12, 7, "pro", "month", 6000, utc(2026, 11, 16), None),
]


@pytest.fixture()
def conn(fresh_database):
    yield from source_connection(fresh_database)


def figures(mrr, active, new, reactivation, expansion, contraction, churned, net_new, arpa) -> dict:
    return {"mrr": mrr, "active_customers": active, "new_mrr": new, "reactivation_mrr": reactivation,
            "expansion_mrr": expansion, "contraction_mrr": contraction, "churned_mrr": churned,
            "net_new_mrr": net_new, "arpa": arpa}


def test_mrr_by_plan_with_a_plan_switch_at_one_instant(conn):
    add_subscriptions(conn, ROWS)
    assert weekly_totals(conn, PERIOD) == (730000, 174000)
    assert sections(conn, PERIOD)["segments"] == {"by_plan": {
        "basic": figures(145.0, 3, 0.0, 45.0, 0.0, 30.0, 50.0, -35.0, 48.33),
        "free": figures(0.0, 0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, None),
        "pro": figures(463.33, 4, 180.0, 0.0, 0.0, 0.0, 0.0, 180.0, 115.83),
    }}


def test_plan_sums_that_do_not_match_the_totals_are_refused():
    plan_mrr = pd.DataFrame({"customer_id": [1, 1], "plan": ["basic", "pro"],
                             "mrr_start_twelfths": [60000, 0], "mrr_end_twelfths": [0, 144000],
                             "ended_before_start": [False, False]})
    per_plan = plan_figures(plan_mrr)
    assert_plan_sums(per_plan, 144000, 84000)  # exact: no error
    with pytest.raises(AssertionError, match="sums to 144000"):
        assert_plan_sums(per_plan, 144001, 84000)
    with pytest.raises(AssertionError, match="net new 84000"):
        assert_plan_sums(per_plan, 144000, 84001)


def test_no_subscription_gives_no_plan(conn):
    assert sections(conn, PERIOD)["segments"] == {"by_plan": {}}
