"""Incidents of the probed services (SPEC section 9): failure streaks, the ``critical_system_failure``
alert, its resolution, and their two e-mails.

**Open** (``evaluate_incident``, per service, as of a round): a service whose current failure streak
(failed checks since its last ok check, by ``checked_at``) reaches 3 and that has no open incident
gets one alert in the alert store (``weekly.alerts.store.upsert_alerts``): critical, system, dedup key
``critical_system_failure|<service>|<first failed round>`` (id the usual sha256 prefix),
``period_start`` the first failed round, ``period_end`` = ``triggered_at`` the third, ``service``
set, ``resolved_at`` null, value and threshold 3. More failures add nothing. **Resolve**: an open
incident that an ok check has followed gets ``resolved_at`` = that first ok check.

**E-mails** (``send_incident_emails``) to ``INVESTOR_EMAILS``: the opening at once
(``incident_message``; send-log kind ``alert``, key the alert id, as every alert e-mail; then the
alert is marked notified) and the resolution once (``resolution_message``; kind
``incident_resolved``, a reply to the opening). ``handle_incidents`` runs both for a round and
republishes ``alert_history.json`` on any change. A per-service advisory lock serialises concurrent
runs, the send log makes each e-mail exactly-once, and an e-mail still owed (an SMTP failure, a
crash) is sent by the next attempt: the task's retry or the next round.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from datetime import datetime
from html import escape

from include.investor_metrics import settings as config
from include.investor_metrics.db import dict_rows, read_sql
from include.investor_metrics.mail import message as email_report
from include.investor_metrics.mail import send as notify
from include.investor_metrics.mail import smtp
from include.investor_metrics.mail.message import KIND_ALERT
from include.investor_metrics.period import as_instant, iso_utc, to_utc, tz_label
from include.investor_metrics.weekly.alerts import store as alert_store
from include.investor_metrics.weekly.alerts.evaluate import alert_id
from include.investor_metrics.weekly.alerts.rules import RULES_BY_NAME

log = logging.getLogger(__name__)

FAILURES_FOR_INCIDENT = 3
INCIDENT_RULE = "critical_system_failure"
INCIDENT_METRIC = "consecutive_failed_probes"
KIND_INCIDENT_RESOLVED = "incident_resolved"


# --------------------------------------------------------------------------- the alert, open / resolved
def incident_key(service: str, first_failed: datetime) -> str:
    """``critical_system_failure|<service>|<first failed round>``: one alert per incident."""
    return f"{INCIDENT_RULE}|{service}|{iso_utc(first_failed)}"


def _local(instant: datetime, tz) -> str:
    local = to_utc(instant).astimezone(tz)
    return f"{local.day} {local:%b %Y %H:%M}"


def incident_alert(service: str, first_failed: datetime, alert_at: datetime, error: str | None, *,
                   tz) -> dict:
    """The ``critical_system_failure`` alert of a service's failure streak (deterministic)."""
    rule = RULES_BY_NAME[INCIDENT_RULE]
    tz = config.resolve_timezone(tz)
    key = incident_key(service, first_failed)
    n = FAILURES_FOR_INCIDENT
    return {
        "id": alert_id(key),
        "dedup_key": key,
        "rule": INCIDENT_RULE,
        "severity": rule.severity,
        "category": rule.category,
        "title": f"{service} is down: {n} health probes failed in a row",
        "message": (f"The {service} service failed {n} health probes in a row, "
                    f"from {_local(first_failed, tz)} to {_local(alert_at, tz)} ({tz_label(tz)}); "
                    f"the third one: {error or 'no error text'}. "
                    "A follow-up e-mail says when it answers again."),
        "metric": INCIDENT_METRIC,
        "value": n,
        "threshold": n,
        "period_start": to_utc(first_failed),
        "period_end": to_utc(alert_at),
        "triggered_at": to_utc(alert_at),
        "service": service,
    }


def evaluate_incident(conn, service: str, checked_at: datetime, *, run_id: str | None, tz=None) -> dict:
    """Resolve and open the incidents of ``service`` as of round ``checked_at`` (checks after it are
    not looked at), under the service's advisory lock; committed here. Returns ``{"opened": alert
    or None, "resolved": [alerts]}`` (``include.investor_metrics.weekly.alerts.store.alert_record`` form)."""
    tz = config.resolve_timezone(tz)
    params = {"service": service, "checked_at": to_utc(checked_at), "rule": INCIDENT_RULE,
              "failures": FAILURES_FOR_INCIDENT}
    new = None
    try:
        with conn.cursor() as cur:
            cur.execute(read_sql("health/incident_lock.sql"), params)
            cur.execute(read_sql("health/resolve_incidents.sql"), params)
            resolved = [alert_store.alert_record(row) for row in dict_rows(cur)]
            cur.execute(read_sql("health/failure_streak.sql"), params)
            state = dict_rows(cur)[0]
            if state["streak_alert_at"] is not None:
                candidate = incident_alert(service, state["streak_start"], state["streak_alert_at"],
                                           state["alert_error"], tz=tz)
                cur.execute(read_sql("health/incident_exists.sql"),
                            {**params, "dedup_key": candidate["dedup_key"]})
                if not cur.fetchall():
                    new = candidate
        if new is None:
            conn.commit()
            opened = None
        else:
            # Same transaction: the upsert commits the resolution above with it, then frees the lock.
            opened = alert_store.upsert_alerts(conn, [new], run_id=run_id)[0]
    except Exception:
        conn.rollback()
        raise
    for alert in resolved:
        log.info("%s: incident %s resolved, the service answered at %s", service, alert["id"],
                 alert["resolved_at"])
    if opened:
        log.warning("%s: %d failed probes in a row since %s: incident %s opened (critical_system_failure)",
                    service, FAILURES_FOR_INCIDENT, opened["period_start"], opened["id"])
    return {"opened": opened, "resolved": resolved}


# --------------------------------------------------------------------------- the two e-mails
def _duration(seconds: float) -> str:
    minutes = max(0, round(seconds / 60))
    if minutes < 60:
        return f"{minutes} minute{'s' if minutes != 1 else ''}"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes:02d} min"
    days, hours = divmod(hours, 24)
    return f"{days} days {hours} h"


def incident_message(alert: Mapping, *, recipients: list[str], sender: str, tz=None,
                     airflow_url: str | None = None):
    """The e-mail that opens an incident (send-log kind ``alert``, key the alert id)."""
    tz = config.resolve_timezone(tz)
    when = tz_label(tz)
    lines = [
        ("Service", alert["service"]),
        ("Failing since", f"{_local(as_instant(alert['period_start']), tz)} ({when})"),
        ("Alert raised", f"{_local(as_instant(alert['triggered_at']), tz)} ({when}), "
                         f"after {FAILURES_FOR_INCIDENT} failed probes in a row"),
        ("Severity", f"{alert['severity']} ({alert['category']}), rule {alert['rule']}"),
        ("Alert id", alert["id"]),
    ]
    return _incident_email(
        alert, kind=KIND_ALERT, subject=f"[CRITICAL] ChatterFix: {alert['title']}",
        heading=alert["title"], summary=alert["message"], lines=lines, colour="#b91c1c",
        recipients=recipients, sender=sender, airflow_url=airflow_url,
    )


def resolution_message(alert: Mapping, *, recipients: list[str], sender: str, tz=None,
                       airflow_url: str | None = None):
    """The e-mail that closes an incident (kind ``incident_resolved``), threaded under its alert."""
    tz = config.resolve_timezone(tz)
    service = alert["service"]
    down_since, answered = as_instant(alert["period_start"]), as_instant(alert["resolved_at"])
    duration = _duration((answered - down_since).total_seconds())
    lines = [
        ("Service", service),
        ("Down since", f"{_local(down_since, tz)} ({tz_label(tz)})"),
        ("Answered at", f"{_local(answered, tz)} ({tz_label(tz)})"),
        ("Outage", f"about {duration}"),
        ("Alert", f"{alert['title']} (id {alert['id']})"),
    ]
    summary = (f"The {service} service answers its health probes again. It was down for about {duration}; "
               "the critical alert about it is resolved. The weekly uptime counts every failed probe.")
    return _incident_email(
        alert, kind=KIND_INCIDENT_RESOLVED,
        subject=f"[RESOLVED] ChatterFix: {service} answers again after {duration} down",
        heading=f"{service} answers again", summary=summary, lines=lines, colour="#15803d",
        recipients=recipients, sender=sender, airflow_url=airflow_url,
    )


def _incident_email(alert: Mapping, *, kind: str, subject: str, heading: str, summary: str,
                    lines: list[tuple[str, str]], colour: str, recipients: list[str], sender: str,
                    airflow_url: str | None):
    """Text + HTML message of an incident, with the project's headers (Message-ID of (kind, alert
    id)); the resolution replies to the opening, so mail clients show one thread per incident."""
    link = email_report.safe_url(airflow_url)
    text = [subject, "", summary, ""] + [f"{label + ':':<15}{value}" for label, value in lines]
    if link:
        text += ["", f"Airflow: {link}"]
    rows = "".join(f'<tr><td style="padding:4px 12px;color:#6b7280;">{escape(label)}</td>'
                   f'<td style="padding:4px 12px;">{escape(str(value))}</td></tr>' for label, value in lines)
    button = f'<p><a href="{escape(link)}">Open in Airflow</a></p>' if link else ""
    html = (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            f'<title>{escape(subject)}</title></head>'
            f'<body style="font-family:Arial,Helvetica,sans-serif;color:#1f2937;">'
            f'<div style="border-top:6px solid {colour};max-width:600px;padding:12px 16px;">'
            f'<h2 style="color:{colour};margin:0 0 8px 0;">{escape(heading)}</h2><p>{escape(summary)}</p>'
            f'<table role="presentation" style="font-size:13px;">{rows}</table>{button}</div></body></html>')

    message = email_report.new_message(kind=kind, key=alert["id"], subject=subject, sender=sender,
                                       recipients=recipients)
    if kind != KIND_ALERT:
        opening = email_report.message_id(KIND_ALERT, alert["id"], sender)
        message["In-Reply-To"] = opening
        message["References"] = opening
    else:
        message["Importance"] = "high"
    message.set_content("\n".join(text) + "\n", cte="quoted-printable")
    message.add_alternative(html, subtype="html", cte="quoted-printable")
    return message


# --------------------------------------------------------------------------- a round's incidents
def send_incident_emails(conn, service: str, *, run_id: str | None, recipients: list[str] | None = None,
                         smtp_conn=None, tz=None, airflow_url: str | None = None) -> list[dict]:
    """Send every e-mail still owed for the incidents of ``service``, oldest incident first: the
    opening (then the alert is marked notified) and the resolution, each exactly once (send log).
    Returns ``[{"kind", "id"}]`` of the messages sent now."""
    params = {"service": service, "rule": INCIDENT_RULE, "resolved_kind": KIND_INCIDENT_RESOLVED}
    try:
        with conn.cursor() as cur:
            cur.execute(read_sql("health/pending_emails.sql"), params)
            owed = dict_rows(cur)
        conn.commit()  # send_once wants a connection without a transaction of ours
    except Exception:
        conn.rollback()
        raise
    if not owed:
        return []
    smtp_conn = smtp.smtp_connection() if smtp_conn is None else smtp_conn
    recipients = config.investor_recipients() if recipients is None else recipients
    sender = smtp.sender_address(smtp_conn)
    tz = config.resolve_timezone(tz)
    sent = []
    for row in owed:
        alert = alert_store.alert_record(row)
        if row["opening_owed"]:
            message = incident_message(alert, recipients=recipients, sender=sender, tz=tz,
                                       airflow_url=airflow_url)
            # notified in the transaction that records the last delivery (or, sent by an earlier
            # attempt, as soon as the send log says so): never e-mailed but not notified
            if notify.send_once(conn, kind=KIND_ALERT, key=alert["id"], message=message, run_id=run_id,
                                smtp_conn=smtp_conn, on_complete=notify.marks_notified(alert["id"])):
                sent.append({"kind": KIND_ALERT, "id": alert["id"]})
        if row["resolution_owed"]:
            message = resolution_message(alert, recipients=recipients, sender=sender, tz=tz,
                                         airflow_url=airflow_url)
            if notify.send_once(conn, kind=KIND_INCIDENT_RESOLVED, key=alert["id"], message=message,
                                run_id=run_id, smtp_conn=smtp_conn):
                sent.append({"kind": KIND_INCIDENT_RESOLVED, "id": alert["id"]})
    return sent


def handle_incidents(conn, services: Iterable[str], checked_at: datetime, *, run_id: str | None,
                     archive_dir: str | None = None, republish: bool = False,
                     recipients: list[str] | None = None, smtp_conn=None, tz=None,
                     airflow_url: str | None = None) -> dict:
    """Incident handling of one probe round: for each service, resolve / open its incident as of
    ``checked_at``, then send the e-mails owed, then — when anything changed, or ``republish`` —
    rewrite ``alert_history.json`` in ``archive_dir`` (default ``INVESTOR_ARCHIVE_DIR``).
    Returns a small summary (for XCom): ids opened, resolved, e-mails sent, the history path."""
    services = sorted(set(services))
    opened, resolved = [], []
    for service in services:
        outcome = evaluate_incident(conn, service, checked_at, run_id=run_id, tz=tz)
        opened += [outcome["opened"]["id"]] if outcome["opened"] else []
        resolved += [alert["id"] for alert in outcome["resolved"]]
    emails = []
    for service in services:
        emails += send_incident_emails(conn, service, run_id=run_id, recipients=recipients,
                                       smtp_conn=smtp_conn, tz=tz, airflow_url=airflow_url)
    history = None
    if opened or resolved or emails or republish:
        history = alert_store.publish_alert_history(conn, archive_dir or config.archive_dir())
    return {"checked_at": iso_utc(checked_at), "opened": opened, "resolved": resolved, "emails": emails,
            "alert_history": history}


