"""Archive files and the metrics store: atomic files, one row per period, the latest pointer."""

from __future__ import annotations

import json
import random
import threading
from datetime import datetime, timedelta, timezone

import pytest

from include import archive, store
from include.db import apply_metrics_schema, connect


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
        cur.execute("SELECT count(*), max((snapshot->'financial'->>'mrr')::numeric) FROM investor_metrics.snapshots")
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
