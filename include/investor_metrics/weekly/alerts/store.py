"""The alert store (``investor_metrics.alerts``) and ``alert_history.json``.

A stored alert is an alert of ``evaluate.py`` plus ``run_id``, ``notified`` and ``series``
(``weekly`` or ``on_demand``), and, only when set, ``service`` / ``resolved_at`` (probe incidents)
and ``superseded_at``. One row per dedup key: a rerun updates it, ``notified`` stays true once true.
Given a period end, the alerts stored are the period's whole evaluation: its rule alerts that no
longer fire are retired in the same transaction — kept as ``superseded_at`` when they were e-mailed
(``notified``, or a delivered send-log row), deleted otherwise. Superseded alerts are not current
(``alerts_for_period``) but stay in the history. Runs of one period serialise on its advisory lock
(``lock_period``), under which ``snapshots.store_period`` stores a period's snapshot and alerts
together (docs/adr/publish-from-the-store.md).

``alert_history.json`` (``publish_alert_history``) is rewritten from the store under an advisory
lock, so the last writer writes the full, current history::

    {"generated_from": "investor_metrics.alerts",
     "order": "triggered_at desc, severity (critical, high, medium, low), rule",
     "alerts": [<every stored alert, newest first, with run_id and notified>]}
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from datetime import datetime

from include.investor_metrics.contract import SEVERITY_RANK
from include.investor_metrics.db import dict_rows, read_sql
from include.investor_metrics.period import as_instant, iso_utc
from include.investor_metrics.weekly import archive
from include.investor_metrics.weekly.alerts.evaluate import ALERT_FIELDS, alert_id, dedup_key
from include.investor_metrics.weekly.alerts.rules import WEEKLY_RULES
from include.investor_metrics.weekly.series import checked_series

log = logging.getLogger(__name__)

STORED_FIELDS = (*ALERT_FIELDS, "run_id", "notified")
OPTIONAL_STORED_FIELDS = ("series", "service", "resolved_at", "superseded_at")  # present when set
HISTORY_LOCK = "investor_metrics.alert_history"
PERIOD_LOCK_PREFIX = "investor_metrics.alerts|"


def alert_record(row: Mapping) -> dict:
    """A stored alert, JSON-ready: SPEC fields in order, times as ISO 8601 UTC with ``Z``."""
    record = {}
    for field in STORED_FIELDS:
        value = row.get(field)
        if isinstance(value, datetime):
            value = iso_utc(value)
        elif field in ("value", "threshold") and value is not None:
            value = float(value)
        record[field] = value
    record["notified"] = bool(record["notified"])
    for field in OPTIONAL_STORED_FIELDS:
        value = row.get(field)
        if value is not None:
            record[field] = iso_utc(value) if isinstance(value, datetime) else value
    return record


def _key_of(alert: Mapping, series: str = "weekly") -> str:
    return alert.get("dedup_key") or dedup_key(alert["rule"], alert["period_end"], series)


def _instant(value):
    return None if value is None else as_instant(value)


def period_lock_key(period_end: datetime | str, series: str = "weekly") -> str:
    """The advisory lock under which a period's snapshot and alerts are stored."""
    end = iso_utc(as_instant(period_end))
    return PERIOD_LOCK_PREFIX + (end if series == "weekly" else f"{series}|{end}")


def lock_period(cur, period_end: datetime | str, *, series: str = "weekly") -> None:
    """Take the period's transaction-level advisory lock (released at COMMIT / ROLLBACK)."""
    cur.execute("SELECT pg_advisory_xact_lock(hashtext(%(key)s::text))",
                {"key": period_lock_key(period_end, series)})


def store_period_alerts(cur, alerts: Iterable[Mapping], *, run_id: str | None,
                        period_end: datetime | str | None = None, series: str = "weekly") -> list[dict]:
    """Store ``alerts`` in the caller's transaction (no lock, no commit: see ``upsert_alerts`` and
    ``snapshots.store_period``). With ``period_end``, ``alerts`` is the period's whole evaluation: the
    period's rule alerts of ``series`` that are not in it are superseded (kept, ``superseded_at``
    set) when they were e-mailed (``notified``, or a delivered send-log row), deleted otherwise."""
    alerts = list(alerts)
    period_iso = None if period_end is None else iso_utc(as_instant(period_end))
    if period_iso is not None:
        stray = [a["rule"] for a in alerts
                 if a["rule"] in WEEKLY_RULES and iso_utc(as_instant(a["period_end"])) != period_iso]
        if stray:
            raise ValueError(f"alerts {stray} are not of the period ending {period_iso}")
        firing = {_key_of(a, series) for a in alerts}
        stale = sorted(key for key in (dedup_key(rule, period_iso, series) for rule in WEEKLY_RULES)
                       if key not in firing)
        cur.execute(read_sql("alerts/supersede_stale.sql"), {"dedup_keys": stale})
        (outcome,) = dict_rows(cur)
        if outcome["superseded"] or outcome["deleted"]:
            log.info("period ending %s (%s): %d alert(s) no longer fire: %d e-mailed, kept as superseded; "
                     "%d deleted", period_iso, series, outcome["superseded"] + outcome["deleted"],
                     outcome["superseded"], outcome["deleted"])
    stored = {}
    # Same order in every run: two runs upserting the same keys cannot deadlock.
    for alert in sorted(alerts, key=lambda a: _key_of(a, series)):
        key = _key_of(alert, series)
        cur.execute(read_sql("alerts/upsert.sql"), {
            "id": alert.get("id") or alert_id(key),
            "dedup_key": key,
            "rule": alert["rule"],
            "severity": alert["severity"],
            "category": alert["category"],
            "title": alert["title"],
            "message": alert["message"],
            "metric": alert.get("metric"),
            "value": alert.get("value"),
            "threshold": alert.get("threshold"),
            "period_start": _instant(alert["period_start"]),
            "period_end": _instant(alert["period_end"]),
            "triggered_at": _instant(alert["triggered_at"]),
            "run_id": run_id,
            "notified": bool(alert.get("notified", False)),
            "service": alert.get("service"),
            "series": series,
        })
        stored[key] = alert_record(dict_rows(cur)[0])
    return [stored[_key_of(a, series)] for a in alerts]


def upsert_alerts(conn, alerts: Iterable[Mapping], *, run_id: str | None,
                  period_end: datetime | str | None = None, series: str = "weekly") -> list[dict]:
    """Store ``alerts`` (one row per dedup key; a rerun updates it, ``notified`` kept once true) and,
    when ``period_end`` is given, retire that period's rule alerts (of ``series``) that are not in
    ``alerts`` (``alerts`` is then the whole evaluation of the period: pass it even when nothing
    fired): superseded when e-mailed, else deleted. One transaction under the period's lock,
    committed here. Returns the stored alerts (``alert_record``), in ``alerts``' order."""
    alerts = list(alerts)
    period_iso = None if period_end is None else iso_utc(as_instant(period_end))
    # Runs of one period serialise (a consistent retire + upsert); different periods do not wait.
    lock_keys = sorted({iso_utc(as_instant(a["period_end"])) for a in alerts}
                       | ({period_iso} if period_iso else set()))
    try:
        with conn.cursor() as cur:
            for iso in lock_keys:
                lock_period(cur, iso, series=series)
            stored = store_period_alerts(cur, alerts, run_id=run_id, period_end=period_end, series=series)
        conn.commit()
    except Exception:
        conn.rollback()
        raise
    return stored


def _select(conn, *, period_end=None, severity=None, since=None, limit=None, series=None,
            current_only=False) -> list[dict]:
    params = {"period_end": _instant(period_end), "severity": severity, "since": _instant(since),
              "limit": limit, "series": series, "current_only": current_only}
    with conn.cursor() as cur:
        cur.execute(read_sql("alerts/select.sql"), params)
        return [alert_record(row) for row in dict_rows(cur)]


def alerts_for_period(conn, period_end: datetime | str, *, series: str = "weekly") -> list[dict]:
    """The current alerts of the period ending ``period_end`` in ``series`` (default the weeks),
    most severe first; superseded alerts are not current."""
    return _select(conn, period_end=period_end, series=checked_series(series), current_only=True)


def all_alerts(conn, *, severity: str | None = None, since: datetime | str | None = None,
               limit: int | None = None) -> list[dict]:
    """Every stored alert, superseded ones included, newest first (triggered_at desc, severity
    critical → low, rule); optionally only one ``severity``, those triggered at or after ``since``,
    the first ``limit``."""
    if severity is not None and severity not in SEVERITY_RANK:
        raise ValueError(f"severity must be one of {', '.join(SEVERITY_RANK)}, got {severity!r}")
    return _select(conn, severity=severity, since=since, limit=limit)


def mark_notified(conn, alert_ids: Iterable[str], *, commit: bool = True) -> list[str]:
    """Mark alerts as e-mailed; returns the ids that changed. ``commit=False`` leaves the
    transaction open (e.g. to commit together with a send-log row)."""
    ids = sorted(set(alert_ids))
    try:
        with conn.cursor() as cur:
            cur.execute(read_sql("alerts/mark_notified.sql"), {"ids": ids})
            changed = [row["id"] for row in dict_rows(cur)]
        if commit:
            conn.commit()
    except Exception:
        conn.rollback()
        raise
    return changed


# --------------------------------------------------------------------------- alert_history.json
def alert_history_document(alerts: list[dict]) -> dict:
    return {
        "generated_from": "investor_metrics.alerts",
        "order": "triggered_at desc, severity (critical, high, medium, low), rule",
        "alerts": alerts,
    }


def publish_alert_history(conn, location: str) -> str:
    """Rewrite ``alert_history.json`` in the archive ``location`` from the store (every alert, newest
    first), atomically. Runs hold an advisory lock from reading the store to replacing the file, so
    concurrent runs write one after the other and the last one writes the full current history.
    Returns the file's path."""
    target = archive.archive_path(location) / archive.ALERT_HISTORY_NAME
    with conn.cursor() as cur:
        # A session lock (not a transaction one) so that it holds in autocommit mode too.
        cur.execute("SELECT pg_advisory_lock(hashtext(%(key)s::text))", {"key": HISTORY_LOCK})
    try:
        history = all_alerts(conn)
        archive.write_atomic(target, archive.dumps(alert_history_document(history)))
        conn.commit()
    except Exception:
        conn.rollback()
        raise
    finally:
        with conn.cursor() as cur:
            cur.execute("SELECT pg_advisory_unlock(hashtext(%(key)s::text))", {"key": HISTORY_LOCK})
        conn.commit()
    log.info("alert history: %d alert(s) in %s", len(history), target)
    return str(target)
