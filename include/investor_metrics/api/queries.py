"""What ``GET /metrics`` and ``GET /alerts`` answer, read from the metrics store (SPEC section 11).

Plain functions of a database connection (tested without a server), reading through
``include.investor_metrics.weekly.snapshots`` and ``include.investor_metrics.weekly.alerts.store``
(snapshots by their period-end primary key, alerts by ``triggered_at``), never from the archive
files. ``metrics_body`` is the response body itself: the snapshots' stored JSON text spliced in,
never parsed and serialised again (``metrics_answer`` is the same, parsed; ``metrics_snapshots``
the snapshots alone, parsed, for the CSV answer). Nothing stored is a
``NotFound`` (404); a store the pipeline never filled has no snapshot and no alert.
"""

from __future__ import annotations

import json
from datetime import datetime
from functools import cache
from typing import Any

from include.investor_metrics.api.params import ALERTS_LIMIT_DEFAULT
from include.investor_metrics.period import format_instant
from include.investor_metrics.weekly import snapshots as store
from include.investor_metrics.weekly.alerts import store as alert_store
from include.investor_metrics.weekly.alerts.evaluate import sort_alerts
from include.investor_metrics.weekly.series import SERIES


class NotFound(LookupError):
    """Nothing in the store matches the request."""


def _undefined_table(exc: BaseException) -> bool:
    return getattr(exc, "pgcode", None) == "42P01"  # undefined_table: the pipeline never ran here


def _stored_snapshots(conn, *, period_end: datetime | None, history: int | None,
                      series: str | None) -> str | list[str]:
    """The stored text of the snapshot(s) ``GET /metrics`` answers with: one (latest, or of
    ``period_end``) or, with ``history``, a list newest first of one series (``series``, default
    the weekly one). ``NotFound`` if none."""
    raw = _RawJsonConnection(conn)
    try:
        if history is not None:
            series = series or "weekly"
            rows = store.history(raw, history, until=period_end, series=series)
            if not rows:
                raise NotFound(
                    f"no {_series_words(series)} snapshot is stored" if period_end is None
                    else f"no {_series_words(series)} snapshot ends at or before "
                         f"{format_instant(period_end)}"
                )
            return [_json_text(row) for row in rows]
        if period_end is not None:
            # The weekly period of that end, else the on-demand report (or the one series asked for).
            snapshot = None
            for candidate in (series,) if series else SERIES:
                snapshot = store.snapshot_for(raw, period_end, series=candidate)
                if snapshot is not None:
                    break
            if snapshot is None:
                words = f" {_series_words(series)}" if series else ""
                raise NotFound(f"no{words} snapshot for the period ending {format_instant(period_end)}")
        elif series is not None:
            rows = store.history(raw, 1, series=series)
            snapshot = rows[0] if rows else None
            if snapshot is None:
                raise NotFound(f"no {_series_words(series)} snapshot has been published yet")
        else:
            snapshot = store.latest_snapshot(raw)
            if snapshot is None:
                raise NotFound("no snapshot has been published yet: run the investor_metrics DAG")
    except Exception as exc:
        if _undefined_table(exc):
            raise NotFound("no snapshot has been published yet: the metrics store is empty") from None
        raise
    return _json_text(snapshot)


def _series_words(series: str) -> str:
    return "on-demand" if series == "on_demand" else series


def metrics_body(conn, *, period_end: datetime | None = None, history: int | None = None,
                 series: str | None = None) -> bytes:
    """The body of ``GET /metrics`` as JSON bytes: ``{"success":true,"metrics":<snapshot>}`` or,
    with ``history``, ``{"success":true,"history":[<snapshot>, ...]}`` (newest first, of the
    weekly series or of ``series``, ending at or before ``period_end`` if given). Without
    ``history``: the latest snapshot (of either series, or of ``series``), or the one ending at
    ``period_end`` (the weekly one, else the on-demand one, or the one of ``series``). Each
    snapshot is the text the store keeps (a ``json`` column: PostgreSQL checked it is valid JSON
    and kept its key order), spliced in without being parsed and serialised again. ``NotFound``
    if none."""
    found = _stored_snapshots(conn, period_end=period_end, history=history, series=series)
    if isinstance(found, list):
        return b'{"success":true,"history":[' + ",".join(found).encode() + b"]}"
    return b'{"success":true,"metrics":' + found.encode() + b"}"


def metrics_answer(conn, *, period_end: datetime | None = None, history: int | None = None,
                   series: str | None = None) -> dict:
    """``metrics_body`` as a dict (snapshots exactly as stored, key order kept)."""
    return json.loads(metrics_body(conn, period_end=period_end, history=history, series=series))


def metrics_snapshots(conn, *, period_end: datetime | None = None, history: int | None = None,
                      series: str | None = None) -> list[dict]:
    """The snapshots ``metrics_body`` would answer with, parsed, as a list (one, or the history
    newest first): what ``?format=csv`` writes as rows. ``NotFound`` if none."""
    found = _stored_snapshots(conn, period_end=period_end, history=history, series=series)
    return [json.loads(text) for text in (found if isinstance(found, list) else [found])]


def _json_text(value: Any) -> str:
    # The stored text; a value some other typecaster already parsed is serialised again.
    return value if isinstance(value, str) else json.dumps(value)


_JSON_OID = 114  # PostgreSQL's ``json`` type (``jsonb`` is 3802; the snapshots column is ``json``)


@cache
def _json_as_text():
    import psycopg2.extensions

    return psycopg2.extensions.new_type((_JSON_OID,), "INVESTOR_JSON_TEXT", lambda value, cursor: value)


class _RawJsonConnection:
    """``conn`` for ``include.investor_metrics.weekly.snapshots``'s readers, except that ``json``
    columns come back as the text PostgreSQL keeps instead of parsed objects (the typecaster is
    registered on each cursor, so the pooled connection itself is unchanged)."""

    __slots__ = ("_conn",)

    def __init__(self, conn):
        self._conn = conn

    def cursor(self, *args, **kwargs):
        import psycopg2.extensions

        cursor = self._conn.cursor(*args, **kwargs)
        psycopg2.extensions.register_type(_json_as_text(), cursor)
        return cursor


def alerts_answer(conn, *, severities: tuple[str, ...] | None = None, since: datetime | None = None,
                  limit: int = ALERTS_LIMIT_DEFAULT) -> dict:
    """The body of ``GET /alerts``: stored alerts newest first (triggered_at desc, then severity,
    then rule), optionally of some severities only, triggered at or after ``since``, at most
    ``limit``."""
    try:
        if not severities:
            found = alert_store.all_alerts(conn, since=since, limit=limit)
        else:
            # One indexed query per severity, merged in the store's own order.
            found = sort_alerts(
                alert for severity in severities
                for alert in alert_store.all_alerts(conn, severity=severity, since=since, limit=limit)
            )[:limit]
    except Exception as exc:
        if _undefined_table(exc):
            found = []
        else:
            raise
    return {"success": True, "alerts": found}
