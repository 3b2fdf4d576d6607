"""The late-report check of the probe DAG (SPEC section 13, docs/adr/late-report.md).

Every probe round, ``check_late_report`` asks the weekly DAG's own timetable
(``CronDataIntervalTimetable`` of ``INVESTOR_METRICS_SCHEDULE`` in ``INVESTOR_TIMEZONE``) for the
latest week whose scheduled time (its end, the cron tick) is at least ``INVESTOR_REPORT_DEADLINE``
minutes (default 120) before ``now``, and looks in the metrics store for that week's weekly-series
snapshot. Missing, the data team (``DATA_TEAM_EMAILS``) is e-mailed once for that week (send-log
kind ``late_report``, key the period end). Only that week is looked at; a week is looked at only
when the store holds a weekly snapshot of an earlier period (a new installation does not alert
before its first week). ``now`` is a parameter: the task passes its round, never the wall clock.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone

from include.investor_metrics import settings as config
from include.investor_metrics.db import dict_rows, read_sql
from include.investor_metrics.mail import send as notify
from include.investor_metrics.mail import smtp
from include.investor_metrics.mail.late_report import (
    KIND_LATE_REPORT,
    LateWeek,
    build_late_report,
    late_report_key,
)
from include.investor_metrics.mail.send_log import rollback, send_status
from include.investor_metrics.period import iso_utc, to_utc

log = logging.getLogger(__name__)

REPORT_DEADLINE_MINUTES = 120.0  # INVESTOR_REPORT_DEADLINE


def report_deadline_minutes(env: Mapping[str, str] | None = None) -> float:
    """``INVESTOR_REPORT_DEADLINE`` (default 120): the minutes after a week's scheduled time by which
    its snapshot must be archived; a ``ConfigError`` naming the variable when malformed or < 1."""
    return float(config.number_setting("INVESTOR_REPORT_DEADLINE", REPORT_DEADLINE_MINUTES, minimum=1,
                                       env=env))


def due_week(now: datetime, *, schedule: str, tz, deadline_minutes: float) -> tuple[datetime, datetime]:
    """(start, end) in UTC of the latest week of the weekly DAG's timetable whose end is at least
    ``deadline_minutes`` before ``now``: the week that must be archived by now."""
    import pendulum
    from airflow.timetables.interval import CronDataIntervalTimetable

    timetable = CronDataIntervalTimetable(schedule, timezone=config.resolve_timezone(tz))
    latest_allowed = pendulum.instance(to_utc(now) - timedelta(minutes=deadline_minutes))
    interval = timetable.infer_manual_data_interval(run_after=latest_allowed)
    return _plain(interval.start), _plain(interval.end)


def _plain(instant: datetime) -> datetime:
    """A pendulum DateTime as a plain aware datetime in UTC."""
    return datetime.fromtimestamp(instant.timestamp(), tz=timezone.utc)


def archived_weeks(conn, period_end: datetime) -> dict:
    """``archived`` (the store holds the weekly snapshot of ``period_end``), ``previous`` (the newest
    weekly period end before it, or None), ``latest`` (the newest of all, or None). Committed."""
    try:
        with conn.cursor() as cur:
            cur.execute(read_sql("health/archived_weeks.sql"), {"period_end": to_utc(period_end)})
            [row] = dict_rows(cur)
        conn.commit()  # send_once wants a connection without a transaction of ours
    except Exception:
        rollback(conn)
        raise
    return row


def check_late_report(conn, now: datetime, *, schedule: str | None = None, tz=None,
                      deadline_minutes: float | None = None, recipients: list[str] | None = None,
                      smtp_conn=None, run_id: str | None = None,
                      airflow_base_url: str | None = None) -> dict:
    """Is the week due by ``now`` archived? If not, e-mail the data team once for it. Returns a
    summary (for XCom): the week, its deadline and ``status`` — ``archived``, ``not_watched`` (no
    earlier weekly snapshot: nothing deployed yet), ``late`` (e-mailed now), ``late_already_sent``,
    ``late_nobody_to_tell`` (``DATA_TEAM_EMAILS`` unset). Settings (schedule, time zone, deadline,
    addresses) are read first: a ``ConfigError`` before any query."""
    schedule = schedule or config.metrics_schedule()
    tz = config.resolve_timezone(tz)
    deadline = report_deadline_minutes() if deadline_minutes is None else float(deadline_minutes)
    team = config.data_team_recipients() if recipients is None else list(recipients)
    start, end = due_week(now, schedule=schedule, tz=tz, deadline_minutes=deadline)
    deadline_at = end + timedelta(minutes=deadline)
    summary = {"checked_at": iso_utc(now), "period_end": iso_utc(end), "deadline_at": iso_utc(deadline_at),
               "deadline_minutes": deadline, "status": None, "emailed": False}
    store = archived_weeks(conn, end)
    if store["archived"]:
        log.info("the week ending %s is archived (deadline %s): on time", iso_utc(end), iso_utc(deadline_at))
        return {**summary, "status": "archived"}
    if store["previous"] is None:
        log.info("the week ending %s is not archived, but the store holds no weekly snapshot before it: "
                 "nothing has been deployed long enough to be late (docs/adr/late-report.md)", iso_utc(end))
        return {**summary, "status": "not_watched"}
    key = late_report_key(end)
    log.warning("LATE: the week ending %s (scheduled %s) is not archived %g minutes after its scheduled "
                "time (deadline %s, INVESTOR_REPORT_DEADLINE); the latest archived week ends %s",
                iso_utc(end), iso_utc(end), deadline, iso_utc(deadline_at), iso_utc(store["latest"]))
    sent_before = send_status(conn, KIND_LATE_REPORT, key)
    if sent_before is not None and sent_before["status"] == "sent":
        log.info("the late report of the week ending %s was sent already (%s): not again", iso_utc(end),
                 ", ".join(sent_before["sent_to"]))
        return {**summary, "status": "late_already_sent"}
    if not team:
        log.warning("DATA_TEAM_EMAILS is not set: nobody can be told that the week ending %s is late",
                    iso_utc(end))
        return {**summary, "status": "late_nobody_to_tell"}
    smtp_conn = smtp.smtp_connection() if smtp_conn is None else smtp_conn
    week = LateWeek(start=start, end=end, deadline_minutes=deadline, deadline_at=deadline_at,
                    checked_at=to_utc(now), latest_archived=store["latest"])
    message = build_late_report(week, recipients=team, sender=smtp.sender_address(smtp_conn), tz=tz,
                                airflow_base_url=airflow_base_url)
    sent = notify.send_once(conn, kind=KIND_LATE_REPORT, key=key, message=message, run_id=run_id,
                            smtp_conn=smtp_conn, period_end=end)
    return {**summary, "status": "late", "emailed": sent}
