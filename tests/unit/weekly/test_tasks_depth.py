"""The depth frames through the DAG's own task functions (``weekly/tasks.py``): staged by
``extract_business_data`` next to the business frames, read back by ``compute_metrics``; and a
refusal of the depth extract waits for ``validate_data``, which names the rule first (SPEC 5)."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import pytest

from dev.bench.weekly.children import stand_in_context
from include.investor_metrics.db import apply_metrics_schema, apply_source_schema, connect
from include.investor_metrics.weekly import tasks
from include.investor_metrics.weekly.metrics.rounding import MoneyRangeError
from tests.unit.weekly.test_extract import insert

LONG_AGO = datetime(2026, 1, 1, tzinfo=timezone.utc)


@pytest.fixture()
def source(fresh_database, monkeypatch, tmp_path):
    conn = connect(fresh_database)
    apply_source_schema(conn)
    apply_metrics_schema(conn)
    insert(conn, "customers", ["customer_id", "name", "plan", "created_at"],
           [(1, "Acme", "pro", LONG_AGO), (2, "Bolt", "pro", LONG_AGO)])
    monkeypatch.setattr(tasks, "source_conn", lambda: connect(fresh_database))
    monkeypatch.setattr(tasks, "metrics_conn", lambda: connect(fresh_database))
    monkeypatch.setattr(tasks, "_require_source_schema", lambda period, tables: None)
    monkeypatch.setattr(tasks, "_configured_services", lambda: None)
    monkeypatch.setenv("INVESTOR_STAGING_DIR", str(tmp_path / "staging"))
    monkeypatch.setenv("INVESTOR_TIMEZONE", "UTC")
    yield conn
    conn.close()


def subscriptions(conn, rows):
    insert(conn, "subscriptions", ["subscription_id", "customer_id", "plan", "billing_interval",
                                   "amount_cents", "started_at", "ended_at"], rows)


def computed(context) -> dict:
    business = tasks.extract_business_data(context)
    ai, health = tasks.extract_ai_metrics(context), tasks.extract_health_checks(context)
    path = tasks.compute_metrics(context, business, ai, health, {"success": True, "warnings": []})
    return json.loads(Path(path).read_text())


def test_the_depth_frames_are_staged_with_the_business_frames_and_computed(source):
    # Acme $100 a month since January; Bolt from 11-18 (in the week ending 11-22 09:00), on "team"
    subscriptions(source, [(1, 1, "pro", "month", 10000, LONG_AGO, None),
                           (2, 2, "team", "month", 5000, datetime(2026, 11, 18, tzinfo=timezone.utc), None)])
    context = stand_in_context("extract_business_data")
    folder = Path(tasks.extract_business_data(context))
    assert {p.stem for p in folder.glob("*.parquet")} >= {"subscriptions", "depth_customers", "depth_cohorts",
                                                          "depth_plan_mrr"}
    snapshot = computed(context)
    assert snapshot["financial"]["mrr"] == 150.0
    assert {plan: one["mrr"] for plan, one in snapshot["segments"]["by_plan"].items()} == {
        "pro": 100.0, "team": 50.0}
    assert [(m["name"], m["kind"], m["change"]) for m in snapshot["movements"]["largest"]] == [
        ("Bolt", "new", 50.0)]
    # a month back (10-22 09:00) only Acme paid, and still pays the same: 100 %
    assert (snapshot["retention"]["nrr_1m"], snapshot["retention"]["grr_1m"]) == (100.0, 100.0)
    assert snapshot["retention"]["nrr_12m"] is None  # nobody paid a year back


def test_a_refused_depth_extract_fails_compute_not_the_extract(source):
    subscriptions(source, [(1, 1, "pro", "month", 2**62, LONG_AGO, None)])  # 12 × 2^62 > int64
    context = stand_in_context("extract_business_data")
    folder = Path(tasks.extract_business_data(context))  # staged: validate_data will name the rule
    assert "beyond int64" in json.loads((folder / tasks.DEPTH_REFUSED).read_text())["message"]
    with pytest.raises(MoneyRangeError, match="beyond int64"):
        computed(context)
