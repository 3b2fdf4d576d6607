"""The metrics store: the project's own tables in schema ``investor_metrics`` (SPEC sections 2, 3, 6, 7).

Snapshots are rows keyed by (series, period end) (``series.py``); a rerun UPSERTs its row, never
duplicates it. ``store_period`` stores a period's snapshot and its alerts (``alerts.store``) in one
transaction under the period's advisory lock, so the stored alerts are always those of the snapshot
stored last. Files are published only from committed state (``publish_committed``), under the
session-level ``PUBLISH_LOCK``: the last publisher writes the true latest, and a crash between
COMMIT and the file write leaves a file that lags (a retry repairs it), never one that shows what
the store does not hold (docs/adr/publish-from-the-store.md).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime

from include.investor_metrics.db import apply_metrics_schema, read_sql
from include.investor_metrics.weekly.alerts import store as alert_store
from include.investor_metrics.weekly.series import checked_series, series_of

PUBLISH_LOCK = "investor_metrics.publish"


def ensure_schema(conn) -> None:
    apply_metrics_schema(conn)


def upsert_snapshot(cur, snapshot: dict, *, period_start: datetime, period_end: datetime,
                    run_id: str | None) -> None:
    """UPSERT the row of ``snapshot``'s (series, period end); the caller commits."""
    period_type = snapshot["period"]["type"]
    cur.execute(
        read_sql("snapshots/upsert_snapshot.sql"),
        {
            "series": series_of(period_type),
            "period_end": period_end,
            "period_start": period_start,
            "period_type": period_type,
            "snapshot": json.dumps(snapshot),
            "generated_at": snapshot["generated_at"],
            "run_id": run_id,
        },
    )


def store_period(conn, snapshot: dict, *, period_start: datetime, period_end: datetime, run_id: str | None,
                 alerts: Iterable[Mapping] | None = None) -> list[dict] | None:
    """Store ``snapshot`` and, when ``alerts`` is given (the period's whole evaluation, possibly
    empty), make them the period's current alerts — one transaction under the period's advisory
    lock, committed here. Returns the stored alerts (None when ``alerts`` is None)."""
    series = series_of(snapshot["period"]["type"])
    try:
        with conn.cursor() as cur:
            alert_store.lock_period(cur, period_end, series=series)
            upsert_snapshot(cur, snapshot, period_start=period_start, period_end=period_end, run_id=run_id)
            stored = None
            if alerts is not None:
                stored = alert_store.store_period_alerts(cur, alerts, run_id=run_id, period_end=period_end,
                                                         series=series)
        conn.commit()
    except Exception:
        _rollback(conn)
        raise
    return stored


def _rollback(conn) -> None:
    """Roll back, unless the connection is gone (the server rolled back already)."""
    if not getattr(conn, "closed", False):
        conn.rollback()


def publish_committed(conn, *, period_end: datetime, series: str = "weekly",
                      write_period: Callable[[dict], object] | None = None,
                      write_latest: Callable[[dict], object] | None = None) -> dict:
    """Under the publish lock (session level, taken after any COMMIT of the caller), hand the
    committed snapshot of (``series``, ``period_end``) to ``write_period`` and the newest committed
    snapshot to ``write_latest``. Returns the latest snapshot. Raises LookupError when the store
    holds no snapshot for the period."""
    checked_series(series)
    conn.commit()  # whatever the caller did is committed (or nothing was open): read committed state
    with conn.cursor() as cur:
        cur.execute("SELECT pg_advisory_lock(hashtext(%(key)s::text))", {"key": PUBLISH_LOCK})
    try:
        own = snapshot_for(conn, period_end, series=series)
        if own is None:
            raise LookupError(f"the metrics store holds no {series} snapshot for the period ending "
                              f"{period_end.isoformat()}")
        if write_period is not None:
            write_period(own)
        latest = latest_snapshot(conn)
        if write_latest is not None:
            write_latest(latest)
        conn.commit()
    except Exception:
        _rollback(conn)
        raise
    finally:
        if not getattr(conn, "closed", False):  # a lost connection has released the lock already
            with conn.cursor() as cur:
                cur.execute("SELECT pg_advisory_unlock(hashtext(%(key)s::text))", {"key": PUBLISH_LOCK})
            conn.commit()
    return latest


def publish(conn, snapshot: dict, *, period_start: datetime, period_end: datetime, run_id: str | None,
            write_latest=None, write_period=None, alerts: Iterable[Mapping] | None = None) -> dict:
    """``store_period`` then ``publish_committed``: store (and commit) ``snapshot`` (with its
    ``alerts`` when given), then publish the files from the committed state. Returns the latest."""
    store_period(conn, snapshot, period_start=period_start, period_end=period_end, run_id=run_id,
                 alerts=alerts)
    return publish_committed(conn, period_end=period_end, series=series_of(snapshot["period"]["type"]),
                             write_period=write_period, write_latest=write_latest)


def latest_snapshot(conn) -> dict | None:
    """The snapshot with the greatest period end of either series (a tie: the weekly one)."""
    with conn.cursor() as cur:
        cur.execute(read_sql("snapshots/latest_snapshot.sql"))
        row = cur.fetchone()
    return row[0] if row else None


def snapshot_row(conn, period_end: datetime, *, series: str = "weekly") -> dict | None:
    """The stored row of (``series``, ``period_end``): ``snapshot``, ``run_id``, ``period_type``."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT snapshot, run_id, period_type FROM investor_metrics.snapshots "
            "WHERE series = %(series)s AND period_end = %(period_end)s",
            {"series": checked_series(series), "period_end": period_end},
        )
        row = cur.fetchone()
    if row is None:
        return None
    if isinstance(row, Mapping):
        return dict(row)
    return {"snapshot": row[0], "run_id": row[1], "period_type": row[2]}


def snapshot_for(conn, period_end: datetime, *, series: str = "weekly") -> dict | None:
    """The stored snapshot of the period ending ``period_end`` in ``series`` (default the weeks)."""
    row = snapshot_row(conn, period_end, series=series)
    return row["snapshot"] if row else None


def history(conn, limit: int, *, before: datetime | None = None, until: datetime | None = None,
            series: str = "weekly", types: tuple[str, ...] | None = None) -> list[dict]:
    """Up to ``limit`` snapshots of ``series`` (default the weekly series), newest first;
    optionally only those ending before ``before`` or at/before ``until``, and only of the given
    period ``types``."""
    with conn.cursor() as cur:
        cur.execute(
            read_sql("snapshots/history.sql"),
            {"series": checked_series(series), "before": before, "until": until,
             "types": list(types) if types else None, "limit": limit},
        )
        return [row[0] for row in cur.fetchall()]
