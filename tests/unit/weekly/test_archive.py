"""Archive files and the metrics store: atomic files, one row per period, the latest pointer."""

from __future__ import annotations

import json
import os
import random
import threading
from datetime import datetime, timedelta, timezone

import pytest

from include.investor_metrics.db import apply_metrics_schema, connect
from include.investor_metrics.weekly import archive
from include.investor_metrics.weekly import snapshots as store
from include.investor_metrics.weekly.series import series_of


def _snapshot(end: datetime, period_type: str = "backfill", mrr: float = 100.0) -> dict:
    start = end - timedelta(days=7)
    return {
        "timestamp": end.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "generated_at": "2026-11-26T10:00:00Z",
        "period": {"start": start.strftime("%Y-%m-%dT%H:%M:%SZ"), "end": end.strftime("%Y-%m-%dT%H:%M:%SZ"),
                   "type": period_type},
        "financial": {"mrr": mrr},
    }


def _publish(settings, location, snap):
    end = datetime.fromisoformat(snap["period"]["end"].replace("Z", "+00:00"))
    conn = connect(settings)
    try:
        store.publish(conn, snap, period_start=end - timedelta(days=7), period_end=end, run_id="test",
                      write_latest=lambda latest: archive.write_latest(location, latest))
    finally:
        conn.close()
    archive.write_period_file(location, snap, end)


@pytest.fixture()
def metrics_db(fresh_database):
    conn = connect(fresh_database)
    apply_metrics_schema(conn)
    apply_metrics_schema(conn)  # idempotent
    conn.close()
    return fresh_database


def test_period_file_name_is_the_end_in_utc():
    end = datetime(2026, 11, 22, 10, 0, tzinfo=timezone(timedelta(hours=1)))
    assert archive.period_file_name(end) == "metrics_2026-11-22_09-00-00.json"


def test_write_atomic_leaves_no_temporary_file(tmp_path):
    target = archive.archive_path(str(tmp_path / "a")) / "x.json"
    archive.write_atomic(target, b'{"a": 1}\n')
    archive.write_atomic(target, b'{"a": 2}\n')
    assert json.loads((tmp_path / "a" / "x.json").read_text()) == {"a": 2}
    assert [p.name for p in (tmp_path / "a").iterdir()] == ["x.json"]


def test_a_failed_write_keeps_the_previous_file(tmp_path, monkeypatch):
    target = archive.archive_path(str(tmp_path)) / "x.json"
    archive.write_atomic(target, b"old\n")

    def boom(*_args, **_kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(archive.os, "replace", boom)
    with pytest.raises(OSError):
        archive.write_atomic(target, b"new\n")
    assert (tmp_path / "x.json").read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["x.json"]


def test_rerun_replaces_the_period_row(metrics_db, tmp_path):
    end = datetime(2026, 11, 22, 9, tzinfo=timezone.utc)
    _publish(metrics_db, str(tmp_path), _snapshot(end, mrr=1.0))
    _publish(metrics_db, str(tmp_path), _snapshot(end, mrr=2.0))
    conn = connect(metrics_db)
    with conn.cursor() as cur:
        cur.execute("SELECT count(*), max((snapshot->'financial'->>'mrr')::numeric) "
                    "FROM investor_metrics.snapshots")
        assert cur.fetchone() == (1, 2)
    conn.close()
    assert json.loads((tmp_path / "metrics_2026-11-22_09-00-00.json").read_text())["financial"]["mrr"] == 2.0


def test_an_older_period_never_moves_the_latest_pointer_back(metrics_db, tmp_path):
    new = datetime(2026, 11, 22, 9, tzinfo=timezone.utc)
    _publish(metrics_db, str(tmp_path), _snapshot(new, "weekly"))
    _publish(metrics_db, str(tmp_path), _snapshot(new - timedelta(days=70), "backfill"))
    latest = archive.read_json(str(tmp_path), archive.LATEST_NAME)
    assert latest["period"]["end"] == "2026-11-22T09:00:00Z"


def test_concurrent_runs_finish_in_any_order_and_the_latest_is_the_newest(metrics_db, tmp_path):
    first = datetime(2026, 1, 4, 9, tzinfo=timezone.utc)
    ends = [first + timedelta(weeks=i) for i in range(16)]
    random.Random(7).shuffle(ends)
    errors = []

    def worker(chunk):
        try:
            for end in chunk:
                _publish(metrics_db, str(tmp_path), _snapshot(end))
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(ends[i::4],)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    latest = archive.read_json(str(tmp_path), archive.LATEST_NAME)
    assert latest["period"]["end"] == max(ends).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert len(list(tmp_path.glob("metrics_2026-*.json"))) == 16
    conn = connect(metrics_db)
    assert len(store.history(conn, 100)) == 16
    assert [s["period"]["end"] for s in store.history(conn, 3)] == [
        e.strftime("%Y-%m-%dT%H:%M:%SZ") for e in sorted(ends, reverse=True)[:3]
    ]
    conn.close()


# --------------------------------------------------------------------------- weekly vs on-demand
def test_series_of_period_types():
    assert [series_of(t) for t in ("weekly", "backfill", "on_demand")] == ["weekly", "weekly", "on_demand"]
    with pytest.raises(ValueError, match="period type"):
        series_of("manual")


def test_an_on_demand_report_never_replaces_the_week_of_the_same_end(metrics_db, tmp_path):
    end = datetime(2026, 11, 22, 9, tzinfo=timezone.utc)
    location = str(tmp_path)
    _publish(metrics_db, location, _snapshot(end - timedelta(days=7), "backfill", mrr=1.0))
    _publish(metrics_db, location, _snapshot(end, "weekly", mrr=2.0))
    _publish(metrics_db, location, _snapshot(end, "on_demand", mrr=3.0))
    conn = connect(metrics_db)
    try:
        assert store.snapshot_for(conn, end)["financial"]["mrr"] == 2.0
        assert store.snapshot_for(conn, end, series="on_demand")["financial"]["mrr"] == 3.0
        assert [s["financial"]["mrr"] for s in store.history(conn, 10)] == [2.0, 1.0]
        assert [s["financial"]["mrr"] for s in store.history(conn, 10, series="on_demand")] == [3.0]
        assert store.latest_snapshot(conn)["period"]["type"] == "weekly"  # a tie: the week
        later = end + timedelta(hours=5)
        _publish(metrics_db, location, _snapshot(later, "on_demand", mrr=4.0))
        assert store.latest_snapshot(conn)["period"]["type"] == "on_demand"  # the freshest view
        assert store.history(conn, 1, until=later)[0]["financial"]["mrr"] == 2.0
    finally:
        conn.close()
    assert json.loads((tmp_path / "metrics_2026-11-22_09-00-00.json").read_text())["financial"]["mrr"] == 2.0
    assert json.loads((tmp_path / "on_demand" / "metrics_2026-11-22_09-00-00.json").read_text())[
        "financial"]["mrr"] == 3.0
    latest = archive.read_json(location, archive.LATEST_NAME)
    assert (latest["period"]["type"], latest["financial"]["mrr"]) == ("on_demand", 4.0)


def test_migration_of_a_snapshots_table_keyed_by_period_end(fresh_database):
    """A store created before the series existed: rows keep their data and get their series."""
    conn = connect(fresh_database)
    try:
        with conn.cursor() as cur:
            cur.execute("""
                CREATE SCHEMA investor_metrics;
                CREATE TABLE investor_metrics.snapshots (
                    period_end timestamptz PRIMARY KEY, period_start timestamptz NOT NULL,
                    period_type text NOT NULL, snapshot json NOT NULL, generated_at timestamptz NOT NULL,
                    run_id text, updated_at timestamptz NOT NULL DEFAULT now());
                CREATE TABLE investor_metrics.alerts (
                    id text PRIMARY KEY, dedup_key text NOT NULL UNIQUE, rule text NOT NULL,
                    severity text NOT NULL, category text NOT NULL, title text NOT NULL,
                    message text NOT NULL,
                    metric text, value double precision, threshold double precision,
                    period_start timestamptz NOT NULL, period_end timestamptz NOT NULL,
                    triggered_at timestamptz NOT NULL, run_id text, notified boolean NOT NULL DEFAULT false,
                    service text, resolved_at timestamptz, updated_at timestamptz NOT NULL DEFAULT now());
            """)
            for k, kind in enumerate(("backfill", "weekly", "on_demand")):
                end = datetime(2026, 11, 8, 9, tzinfo=timezone.utc) + timedelta(days=7 * k)
                cur.execute(
                    "INSERT INTO investor_metrics.snapshots (period_end, period_start, period_type, snapshot,"
                    " generated_at) VALUES (%s, %s, %s, %s, %s)",
                    (end, end - timedelta(days=7), kind, json.dumps(_snapshot(end, kind)), end),
                )
        conn.commit()
        apply_metrics_schema(conn)
        apply_metrics_schema(conn)  # idempotent
        with conn.cursor() as cur:
            cur.execute("SELECT series, period_type FROM investor_metrics.snapshots ORDER BY period_end")
            assert cur.fetchall() == [("weekly", "backfill"), ("weekly", "weekly"),
                                      ("on_demand", "on_demand")]
            cur.execute("SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid"
                        " AND a.attnum = ANY(i.indkey)"
                        " WHERE i.indrelid = 'investor_metrics.snapshots'::regclass"
                        " AND i.indisprimary ORDER BY array_position(i.indkey, a.attnum)")
            assert [r[0] for r in cur.fetchall()] == ["series", "period_end"]
            cur.execute("SELECT column_name FROM information_schema.columns WHERE table_schema ="
                        " 'investor_metrics' AND table_name = 'alerts'"
                        " AND column_name IN ('series', 'superseded_at')"
                        " ORDER BY column_name")
            assert [r[0] for r in cur.fetchall()] == ["series", "superseded_at"]
        conn.commit()
        # the migrated table takes an on-demand report of a week's end next to the week
        week_end = datetime(2026, 11, 15, 9, tzinfo=timezone.utc)
        store.publish(conn, _snapshot(week_end, "on_demand", mrr=9.0),
                      period_start=week_end - timedelta(days=7), period_end=week_end, run_id="m")
        assert store.snapshot_for(conn, week_end)["period"]["type"] == "weekly"
        assert store.snapshot_for(conn, week_end, series="on_demand")["financial"]["mrr"] == 9.0
    finally:
        conn.close()


# --------------------------------------------------------------------------- permissions
def test_archive_files_and_folders_are_not_world_readable(tmp_path, monkeypatch):
    old = archive.os.umask(0o002)  # a permissive umask must not leak into the archive
    try:
        location = str(tmp_path / "investors")
        end = datetime(2026, 11, 22, 9, tzinfo=timezone.utc)
        week = archive.write_period_file(location, _snapshot(end, "weekly"), end)
        report = archive.write_period_file(location, _snapshot(end, "on_demand"), end)
        latest = archive.write_latest(location, _snapshot(end, "weekly"))
    finally:
        archive.os.umask(old)
    for path in (week, report, latest):
        assert oct(os.stat(path.removeprefix("file://")).st_mode & 0o777) == oct(archive.FILE_MODE), path
    for folder in (tmp_path / "investors", tmp_path / "investors" / "on_demand"):
        assert oct(os.stat(folder).st_mode & 0o777) == oct(archive.DIR_MODE), folder
