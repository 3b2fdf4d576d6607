"""The weekly bench's data floor (``dev/bench/weekly/floor.py``) reads what the run reads: the
extract SQL files and the depth SQL files of SPEC 4b, each bound as the DAG's extract binds them."""

from __future__ import annotations

from dev.bench.weekly.floor import bench_period, extract_queries, measure_data_floor
from include.investor_metrics.db import apply_metrics_schema, apply_source_schema, connect

DEPTH = {"depth_customers": "depth/customers.sql", "depth_cohorts": "depth/cohorts.sql",
         "depth_plan_mrr": "depth/plan_mrr.sql"}


def test_the_floor_counts_the_depth_queries_in_the_business_extract():
    queries = extract_queries(bench_period(), tasks=())
    business = {label: sql for task, label, sql, _b in queries if task == "extract.extract_business_data"}
    assert {label: business.get(label) for label in DEPTH} == DEPTH
    assert list(business)[:5] == ["subscriptions", "customer_history", "usage", "nps", "leads"]


def test_the_floor_runs_every_query_with_its_binds(fresh_database):
    conn = connect(fresh_database)
    apply_source_schema(conn)
    apply_metrics_schema(conn)
    conn.close()
    floor = measure_data_floor(fresh_database, bench_period(), rounds=1, tasks=())
    assert set(DEPTH) <= set(floor["per_query"])
    assert floor["rows"]["depth_customers"] == floor["rows"]["depth_plan_mrr"] == 0
    assert floor["per_task"]["extract.extract_business_data"] == sum(
        floor["per_query"][label] for task, label, _s, _b in extract_queries(bench_period(), tasks=())
        if task == "extract.extract_business_data")
