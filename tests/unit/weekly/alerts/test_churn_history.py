"""The churn history of ``churn_spike`` (``weekly/alerts/churn_history.py``): from the store or the
source, weekly snapshots of the same calendar week only, and the generated spike firing the alert."""

from __future__ import annotations

import os
import secrets
from datetime import datetime, timedelta, timezone

import pendulum
import pytest

from dev.demo_data import loader
from include.investor_metrics.db import connect
from include.investor_metrics.period import calendar_offset, iso_utc, weekly_period
from include.investor_metrics.weekly import extract
from include.investor_metrics.weekly import snapshots as store
from include.investor_metrics.weekly.alerts import churn_history
from include.investor_metrics.weekly.metrics import snapshot as metrics_snapshot
from tests.unit.weekly.alerts.sample_weeks import (
    END,
    fired,
    healthy_snapshot,
    with_values,
)

# --------------------------------------------------------------------------- churn history
SPIKE_WEEK_END = datetime(2026, 11, 15, 9, tzinfo=timezone.utc)  # the generator's spike lies in this week


@pytest.fixture(scope="module")
def source_db(pg_server):
    """The synthetic dataset, 120 days to END, with a churn spike in the week of 8 Nov 2026."""
    name = f"cfx_alerts_{os.getpid()}_{secrets.token_hex(3)}"
    admin = connect(pg_server)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    settings = type(pg_server)(host=pg_server.host, port=pg_server.port, dbname=name, user=pg_server.user,
                               password=pg_server.password)
    try:
        loader.load(settings, end=END, span_days=120, churn_spike_week="2026-11-08", progress=False)
        yield settings
    finally:
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def pipeline_churned(source_conn, end: datetime, tz: str = "UTC") -> int:
    """churned_customers exactly as the weekly DAG computes it for the week ending ``end``."""
    period = weekly_period(end, tz)
    business = extract.extract_business_data(source_conn, period)
    return metrics_snapshot.financial_and_business_health(period, business)[1]["churned_customers"]


def store_churned(metrics_conn, end: datetime, churned: int, tz: str = "UTC") -> None:
    period = weekly_period(end, tz, "backfill")
    snap = {"timestamp": iso_utc(end), "generated_at": iso_utc(end), "period": period.as_dict(),
            "business_health": {"churned_customers": churned}}
    with metrics_conn.cursor() as cur:
        store.upsert_snapshot(cur, snap, period_start=period.start, period_end=period.end, run_id="test")
    metrics_conn.commit()


def test_previous_churned_customers_from_the_store_or_the_source(source_db, metrics_db):
    source, metrics_conn = connect(source_db), connect(metrics_db)
    try:
        period = weekly_period(END, "UTC")
        ends = [END - timedelta(days=7 * k) for k in range(8, 0, -1)]  # oldest first
        expected = [pipeline_churned(source, end) for end in ends]
        assert expected[-1] >= 6  # the spike week is the last of the eight

        from_source = churn_history.previous_churned_customers(metrics_conn, source, period)
        assert from_source == expected

        # Some weeks already have their snapshot (backfill weeks finish in any order): same answer.
        for k in (0, 3, 7):
            store_churned(metrics_conn, ends[k], expected[k])
        assert churn_history.previous_churned_customers(metrics_conn, source, period) == expected
        for k in range(8):
            store_churned(metrics_conn, ends[k], expected[k])
        assert churn_history.previous_churned_customers(metrics_conn, source, period) == expected

        # ... and the stored value is the one read (a marker shows it).
        store_churned(metrics_conn, ends[2], 99)
        marked = churn_history.previous_churned_customers(metrics_conn, source, period)
        assert marked == expected[:2] + [99] + expected[3:]

        # The same through psycopg 3 connections (what PostgresHook hands out).
        psycopg = pytest.importorskip("psycopg")
        with psycopg.connect(metrics_db.dsn()) as metrics3, psycopg.connect(source_db.dsn()) as source3:
            assert churn_history.previous_churned_customers(metrics3, source3, period) == marked
            with metrics3.cursor() as cur:
                cur.execute("DELETE FROM investor_metrics.snapshots")
            metrics3.commit()
            assert churn_history.previous_churned_customers(metrics3, source3, period) == expected
    finally:
        source.close()
        metrics_conn.close()


def test_the_churn_baseline_reads_weekly_snapshots_only(source_db, metrics_db):
    """An on-demand report ending at a previous week's end is not that week (SPEC 2)."""
    source, metrics_conn = connect(source_db), connect(metrics_db)
    try:
        period = weekly_period(END, "UTC")
        ends = [END - timedelta(days=7 * k) for k in range(8, 0, -1)]
        expected = [pipeline_churned(source, end) for end in ends]
        on_demand = weekly_period(ends[5], "UTC", "on_demand")
        snap = {"timestamp": iso_utc(ends[5]), "generated_at": iso_utc(ends[5]),
                "period": on_demand.as_dict(), "business_health": {"churned_customers": 66}}
        with metrics_conn.cursor() as cur:
            store.upsert_snapshot(cur, snap, period_start=on_demand.start, period_end=on_demand.end,
                                  run_id="m")
        metrics_conn.commit()
        assert churn_history.previous_churned_customers(metrics_conn, source, period) == expected
        store_churned(metrics_conn, ends[5], 44)  # the weekly row of that week is read
        assert churn_history.previous_churned_customers(metrics_conn, source, period) == (
            expected[:5] + [44] + expected[6:]
        )
    finally:
        source.close()
        metrics_conn.close()


def test_a_stored_snapshot_of_a_different_calendar_week_is_not_used(source_db, metrics_db):
    source, metrics_conn = connect(source_db), connect(metrics_db)
    try:
        tz = "Europe/Paris"
        period = weekly_period(END, tz)
        ends = [calendar_offset(END, pendulum.timezone(tz), days=7 * k) for k in range(8, 0, -1)]
        # Across the end of summer time (25 Oct 2026) the week ends stay at 10:00 in Paris.
        assert iso_utc(ends[4]) == "2026-10-25T09:00:00Z" and iso_utc(ends[3]) == "2026-10-18T08:00:00Z"
        expected = [pipeline_churned(source, end, tz) for end in ends]
        assert churn_history.previous_churned_customers(metrics_conn, source, period) == expected

        store_churned(metrics_conn, ends[3], 77, tz)  # the same week: used
        # A snapshot ending at the same instant but of another length (a UTC week, 168 h, where the
        # Paris week across the DST change is 169 h) is not the same week: recomputed from the source.
        assert weekly_period(ends[4], "UTC").start != weekly_period(ends[4], tz).start
        store_churned(metrics_conn, ends[4], 55, "UTC")
        assert churn_history.previous_churned_customers(metrics_conn, source, period) == (
            expected[:3] + [77] + expected[4:]
        )
    finally:
        source.close()
        metrics_conn.close()


def test_the_generated_churn_spike_raises_the_alert(source_db, metrics_db):
    source, metrics_conn = connect(source_db), connect(metrics_db)
    try:
        for end, should_fire in ((SPIKE_WEEK_END, True), (SPIKE_WEEK_END - timedelta(days=7), False)):
            period = weekly_period(end, "UTC")
            previous = churn_history.previous_churned_customers(metrics_conn, source, period)
            snap = with_values(healthy_snapshot(iso_utc(end)),
                               business_health__churned_customers=pipeline_churned(source, end))
            found = fired(snap, previous=previous)
            assert ("churn_spike" in found) is should_fire, (end, previous, snap["business_health"])
    finally:
        source.close()
        metrics_conn.close()
