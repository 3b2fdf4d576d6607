"""The metrics store: the project's own tables in schema ``investor_metrics`` (SPEC sections 3, 7).

Snapshots are rows keyed by period end (an UPSERT: a rerun replaces, never duplicates). Publishing
the latest pointer happens inside the same transaction as the upsert, under an advisory lock, so
concurrent runs serialise there and each writes the snapshot with the greatest period end that the
store holds at that moment: the last writer always writes the true latest.
"""

from __future__ import annotations

import json
from datetime import datetime

from include.db import read_sql

PUBLISH_LOCK = "investor_metrics.publish"


def ensure_schema(conn) -> None:
    from include.db import apply_metrics_schema

    apply_metrics_schema(conn)


def upsert_snapshot(cur, snapshot: dict, *, period_start: datetime, period_end: datetime, run_id: str | None) -> None:
    cur.execute(
        read_sql("store_upsert_snapshot.sql"),
        {
            "period_end": period_end,
            "period_start": period_start,
            "period_type": snapshot["period"]["type"],
            "snapshot": json.dumps(snapshot),
            "generated_at": snapshot["generated_at"],
            "run_id": run_id,
        },
    )


def publish(conn, snapshot: dict, *, period_start: datetime, period_end: datetime, run_id: str | None,
            write_latest) -> dict:
    """Store ``snapshot`` and, under the publish lock, hand the latest stored snapshot to
    ``write_latest(latest_snapshot)``. Commits on success; returns the latest snapshot."""
    try:
        with conn.cursor() as cur:
            upsert_snapshot(cur, snapshot, period_start=period_start, period_end=period_end, run_id=run_id)
            cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (PUBLISH_LOCK,))
            cur.execute("SELECT snapshot FROM investor_metrics.snapshots ORDER BY period_end DESC LIMIT 1")
            latest = cur.fetchone()[0]
            write_latest(latest)
        conn.commit()
    except Exception:
        conn.rollback()
        raise
    return latest


def latest_snapshot(conn) -> dict | None:
    with conn.cursor() as cur:
        cur.execute("SELECT snapshot FROM investor_metrics.snapshots ORDER BY period_end DESC LIMIT 1")
        row = cur.fetchone()
    return row[0] if row else None


def snapshot_for(conn, period_end: datetime) -> dict | None:
    with conn.cursor() as cur:
        cur.execute("SELECT snapshot FROM investor_metrics.snapshots WHERE period_end = %s", (period_end,))
        row = cur.fetchone()
    return row[0] if row else None


def history(conn, limit: int, *, before: datetime | None = None, until: datetime | None = None,
            types: tuple[str, ...] | None = None) -> list[dict]:
    """Up to ``limit`` snapshots, newest first; optionally only those ending before ``before`` or
    at/before ``until``, and only of the given period types (e.g. weekly and backfill weeks)."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT snapshot FROM investor_metrics.snapshots "
            "WHERE (%(before)s::timestamptz IS NULL OR period_end < %(before)s) "
            "AND (%(until)s::timestamptz IS NULL OR period_end <= %(until)s) "
            "AND (%(types)s::text[] IS NULL OR period_type = ANY(%(types)s::text[])) "
            "ORDER BY period_end DESC LIMIT %(limit)s",
            {"before": before, "until": until, "types": list(types) if types else None, "limit": limit},
        )
        return [row[0] for row in cur.fetchall()]
