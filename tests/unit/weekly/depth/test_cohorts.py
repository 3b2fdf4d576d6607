"""Cohorts (weekly/depth/cohorts.py, instants.py) in Europe/Berlin, on hand-made rows in PostgreSQL.

The week ends Sunday 2026-11-22 09:00 Berlin = 08:00Z. Berlin leaves summer time on the last
Sunday of October (2026-10-25), so the October cohort is the local month [2026-10-01 00:00 CEST,
2026-11-01 00:00 CET) = [2026-09-30 22:00Z, 2026-10-31 23:00Z): 31 days and one hour long. The
12 cohorts are 2025-12 … 2026-11; 2026-11 (start 2026-10-31 23:00Z) has only the checkpoint end.

  customer  first paid (UTC)         local                 cohort   MRR, ended
  1         2026-09-30 21:59:59      Sep 30 23:59:59 CEST  2026-09  $20, running
  2         2026-09-30 22:00:00      Oct 1 00:00 CEST      2026-10  $100, running
  3         2026-10-31 22:30:00      Oct 31 23:30 CET      2026-10  $50, ended 2026-11-10
  4         (free since 08-01) 10-15 Oct 15                2026-10  $40, running
  5         2026-10-31 23:00:00      Nov 1 00:00 CET       2026-11  $30, running
  6         2026-11-05               Nov 5                 2026-11  $10, ended 2026-11-12
  7         2026-11-22 08:00 (= end) Nov 22 09:00          none: not before end

2026-09 (1 member): checkpoints 2026-09-30T22:00Z (Oct 1 00:00 local; customer 1 started 1 s
  before: active), 2026-10-31T23:00Z, end: active 1, $20, 100 %, 100 % each.
2026-10 (3 members): 2026-10-31T23:00Z: active 3 ($100 + $50 + $40 = $190; 3 started before it),
  logo 100, mrr 100; end: active 2 ($140), logo 2/3 = 66.67, mrr 140/190 = 73.684… → 73.68.
2026-11 (2 members), only end: active 1 ($30), logo 50.0, mrr_retention 100.0 (its own first).
2025-12 … 2026-08: customers 0, every checkpoint active 0, mrr 0.0, null rates; 2025-12 has
  12 checkpoints (2026-01 … 2026-11 starts, then end), the first 2025-12-31T23:00:00Z.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from include.investor_metrics.period import weekly_period
from include.investor_metrics.weekly.depth.instants import cohort_months
from tests.unit.weekly.depth.source import add_subscriptions, sections, source_connection, utc

END = utc(2026, 11, 22, 8)
PERIOD = weekly_period(END, "Europe/Berlin")
OCT_START, NOV_START = utc(2026, 9, 30, 22), utc(2026, 10, 31, 23)
SECOND = timedelta(seconds=1)


@pytest.fixture()
def conn(fresh_database):
    yield from source_connection(fresh_database)


def point(as_of, active, mrr, logo, mrr_retention) -> dict:
    return {"as_of": as_of, "active": active, "mrr": mrr, "logo_retention": logo,
            "mrr_retention": mrr_retention}


def test_cohorts_across_the_october_dst_change(conn):
    add_subscriptions(conn, [
        (1, 1, "basic", "month", 2000, OCT_START - SECOND, None),
        (2, 2, "pro", "month", 10000, OCT_START, None),
        (3, 3, "basic", "month", 5000, utc(2026, 10, 31, 22, 30), utc(2026, 11, 10)),
        (4, 4, "free", "month", 0, utc(2026, 8, 1), None),
        (5, 4, "basic", "month", 4000, utc(2026, 10, 15), None),
        (6, 5, "basic", "month", 3000, NOV_START, None),
        (7, 6, "basic", "month", 1000, utc(2026, 11, 5), utc(2026, 11, 12)),
        (8, 7, "basic", "month", 9000, END, None),
    ])
    cohorts = sections(conn, PERIOD)["retention"]["cohorts"]
    assert [c["month"] for c in cohorts] == [
        "2025-12", "2026-01", "2026-02", "2026-03", "2026-04", "2026-05",
        "2026-06", "2026-07", "2026-08", "2026-09", "2026-10", "2026-11",
    ]
    by_month = {c["month"]: c for c in cohorts}
    assert by_month["2026-09"] == {"month": "2026-09", "customers": 1, "checkpoints": [
        point("2026-09-30T22:00:00Z", 1, 20.0, 100.0, 100.0),
        point("2026-10-31T23:00:00Z", 1, 20.0, 100.0, 100.0),
        point("2026-11-22T08:00:00Z", 1, 20.0, 100.0, 100.0),
    ]}
    assert by_month["2026-10"] == {"month": "2026-10", "customers": 3, "checkpoints": [
        point("2026-10-31T23:00:00Z", 3, 190.0, 100.0, 100.0),
        point("2026-11-22T08:00:00Z", 2, 140.0, 66.67, 73.68),
    ]}
    assert by_month["2026-11"] == {"month": "2026-11", "customers": 2, "checkpoints": [
        point("2026-11-22T08:00:00Z", 1, 30.0, 50.0, 100.0),
    ]}
    empty = by_month["2025-12"]
    assert empty["customers"] == 0 and len(empty["checkpoints"]) == 12
    assert empty["checkpoints"][0]["as_of"] == "2025-12-31T23:00:00Z"
    for month in cohorts[:9]:
        assert month["customers"] == 0
        assert all(p["active"] == 0 and p["mrr"] == 0.0 and p["logo_retention"] is None
                   and p["mrr_retention"] is None for p in month["checkpoints"])


def test_no_data_gives_12_empty_cohorts(conn):
    cohorts = sections(conn, PERIOD)["retention"]["cohorts"]
    assert len(cohorts) == 12 and all(c["customers"] == 0 for c in cohorts)
    assert cohorts[-1]["checkpoints"] == [point("2026-11-22T08:00:00Z", 0, 0.0, None, None)]


def test_cohort_months_when_end_is_exactly_a_month_start():
    # end = 2026-11-01 00:00 Berlin (= 2026-10-31 23:00Z): November has not begun before end, so the
    # newest cohort is October, whose only checkpoint is end itself (Oct 1 + 1 month = end).
    months = cohort_months(NOV_START, "Europe/Berlin")
    assert [m.label for m in months][-2:] == ["2026-09", "2026-10"]
    assert months[-1].start == OCT_START and months[-1].checkpoints == (NOV_START,)
    assert months[-2].checkpoints == (OCT_START, NOV_START)
    assert months[0].label == "2025-11"


def test_cohort_months_across_the_spring_dst_change():
    # Berlin springs forward on 2026-03-29: March starts 2026-02-28 23:00Z (CET), April starts
    # 2026-03-31 22:00Z (CEST); the months of the UTC calendar would be an hour off.
    march = {m.label: m for m in cohort_months(END, "Europe/Berlin")}["2026-03"]
    assert (march.start, march.next_start) == (utc(2026, 2, 28, 23), utc(2026, 3, 31, 22))
    assert march.checkpoints[0] == utc(2026, 3, 31, 22)
    assert len(march.checkpoints) == 9  # April … November starts (8), then end
