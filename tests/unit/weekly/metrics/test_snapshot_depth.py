"""The depth sections in the snapshot (SPEC 4b): ``build_snapshot`` on the extracts of the
end-to-end scenario of ``tests/unit/weekly/test_extract.py``, the depth frames staged and read back as
the DAG does, against figures worked out by hand; and a refusal when they do not add up."""

from __future__ import annotations

import pytest

from include.investor_metrics.weekly.depth.extract import extract_depth
from include.investor_metrics.weekly.extract import (
    extract_ai_metrics,
    extract_business_data,
    extract_health_checks,
    read_frames,
    write_frames,
)
from include.investor_metrics.weekly.metrics.snapshot import build_snapshot
from tests.unit.weekly.test_extract import EXPECTED_SNAPSHOT, PERIOD, conn, load_scenario  # noqa: F401

# MRR in twelfths of a cent (s = as of start 11-15 09:00, e = as of end 11-22 09:00, m = as of
# 10-22 09:00): C1 s = e = m = 120000; C2 s = m = 60000, e = 96000; C3 s = m = 120000, e = 0;
# C4 e = 24000 (new); C6 e = 48000 (back after leaving in June); C7 s = e = 100000 (since 10-30).
EXPECTED_RETENTION = {
    # nobody paid as of 2025-11-22 09:00 (the first subscriptions start 2026-01-01): no base set
    "nrr_12m": None, "grr_12m": None, "logo_retention_12m": None,
    # base set as of 10-22: C1, C2, C3, Σb = 300000; Σe = 120000 + 96000 + 0 = 216000 → 72 %;
    # Σ min(e, b) = 120000 + 60000 + 0 = 180000 → 60 %
    "nrr_1m": 72.0, "grr_1m": 60.0,
}
# first paid: C1, C2 2026-01-01; C3 02-01; C6 03-01; C7 10-30; C4 11-16 (C5 never paid)
EXPECTED_COHORT_SIZES = {"2025-12": 0, "2026-01": 2, "2026-02": 1, "2026-03": 1, "2026-04": 0, "2026-05": 0,
                         "2026-06": 0, "2026-07": 0, "2026-08": 0, "2026-09": 0, "2026-10": 1, "2026-11": 1}
# every subscription of the scenario is on plan "plan": the totals of section 4
EXPECTED_BY_PLAN = {"plan": {
    "mrr": 323.33, "active_customers": 5, "new_mrr": 20.0, "reactivation_mrr": 40.0, "expansion_mrr": 30.0,
    "contraction_mrr": 0.0, "churned_mrr": 100.0, "net_new_mrr": -10.0, "arpa": 64.67,
}}
# |change|: C3 100, C6 40, C2 30, C4 20 (C1, C7 unchanged: not listed)
EXPECTED_LARGEST = [
    (3, "churned", 100.0, 0.0, -100.0),
    (6, "reactivation", 0.0, 40.0, 40.0),
    (2, "expansion", 50.0, 80.0, 30.0),
    (4, "new", 0.0, 20.0, 20.0),
]


def staged_snapshot(source, tmp_path) -> dict:
    frames = {**extract_business_data(source, PERIOD), **extract_depth(source, PERIOD)}
    business = read_frames(write_frames(frames, str(tmp_path / "business")))
    depth = {name: business.pop(name) for name in ("depth_customers", "depth_cohorts", "depth_plan_mrr")}
    ai = extract_ai_metrics(source, PERIOD)
    health = extract_health_checks(source, PERIOD, ["api", "web", "db"])
    return build_snapshot(PERIOD, business, ai, health, ["api", "web", "db"], depth=depth)


def test_the_snapshot_carries_the_depth_sections_worked_out_by_hand(conn, tmp_path):  # noqa: F811
    load_scenario(conn)
    snapshot = staged_snapshot(conn, tmp_path)
    # the sections of section 4 are unchanged by the depth ones, which come after business_health
    assert {k: v for k, v in snapshot.items() if k not in ("retention", "segments", "movements")} == \
        EXPECTED_SNAPSHOT
    assert list(snapshot)[-3:] == ["retention", "segments", "movements"]
    retention = snapshot["retention"]
    assert {k: v for k, v in retention.items() if k != "cohorts"} == EXPECTED_RETENTION
    assert {c["month"]: c["customers"] for c in retention["cohorts"]} == EXPECTED_COHORT_SIZES
    assert snapshot["segments"] == {"by_plan": EXPECTED_BY_PLAN}
    # the plan sums are those of the financial section
    assert EXPECTED_BY_PLAN["plan"]["mrr"] == snapshot["financial"]["mrr"]
    assert EXPECTED_BY_PLAN["plan"]["net_new_mrr"] == snapshot["financial"]["net_new_mrr"]
    largest = [(m["customer_id"], m["kind"], m["mrr_start"], m["mrr_end"], m["change"])
               for m in snapshot["movements"]["largest"]]
    assert largest == EXPECTED_LARGEST
    # a rerun over the same rows gives the same snapshot
    assert staged_snapshot(conn, tmp_path / "again") == snapshot


def test_depth_frames_that_do_not_add_up_to_the_totals_are_refused(conn, tmp_path):  # noqa: F811
    load_scenario(conn)
    business = extract_business_data(conn, PERIOD)
    depth = extract_depth(conn, PERIOD)
    depth["depth_plan_mrr"] = depth["depth_plan_mrr"].iloc[1:]  # a (customer, plan) pair lost
    with pytest.raises(AssertionError, match="MRR by plan sums to"):
        build_snapshot(PERIOD, business, extract_ai_metrics(conn, PERIOD),
                       extract_health_checks(conn, PERIOD), depth=depth)
