"""Sending the investor e-mails exactly once per recipient (SPEC section 8).

``send_once`` sends a built message to each of its recipients on a copy of their own, through the
send log (``send_log``) and the SMTP server (``smtp``); ``send_weekly_summary``,
``send_alert_notifications`` and ``send_data_quality_failure`` build and send the three e-mails the
tasks send; ``report_delivery_problems`` tells ``DATA_TEAM_EMAILS`` of refused recipients and unknown
outcomes. Why it is built this way (leases, outcomes, the resend with the same Message-ID):
docs/adr/exactly-once-email.md.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Iterable, Mapping
from email.message import EmailMessage
from email.utils import formatdate, parseaddr

from include.investor_metrics.mail.alert_message import alert_key, build_alert_messages
from include.investor_metrics.mail.alert_view import urgent_alerts
from include.investor_metrics.mail.data_quality_failure import build_data_quality_failure
from include.investor_metrics.mail.delivery_report import build_delivery_report
from include.investor_metrics.mail.formats import period_bounds
from include.investor_metrics.mail.message import (
    KIND_ALERT,
    KIND_DATA_QUALITY_FAILURE,
    KIND_DELIVERY_REPORT,
    KIND_WEEKLY_SUMMARY,
    address_to,
)
from include.investor_metrics.mail.send_log import (
    EmailDeliveryError,
    SendLog,
    lease_owner,
    marks_reported,
    out_of_autocommit,
    rollback,
    send_lease_seconds,
    send_lock_timeout_seconds,
    unreported_problems,
)
from include.investor_metrics.mail.smtp import (
    Outcome,
    SmtpSession,
    describe_connection,
    envelope_recipients,
    redact,
    sender_address,
    smtp_connection,
)
from include.investor_metrics.mail.weekly_summary import build_weekly_summary, weekly_summary_key
from include.investor_metrics.period import iso_utc
from include.investor_metrics.settings import data_team_recipients, investor_recipients
from include.investor_metrics.weekly.alerts import store as alert_store

log = logging.getLogger(__name__)


def send_once(metrics_conn, *, kind: str, key: str, message: EmailMessage, run_id: str | None,
              smtp_conn=None, period_end=None, on_complete=None, report: bool = True) -> bool:
    """Send ``message`` to each of its recipients (its To/Cc/Bcc) once, each on a copy of their own;
    True if any recipient was delivered now.

    Each recipient's outcome is recorded in the send log: ``sent``; ``refused`` (5xx to RCPT:
    reported to ``DATA_TEAM_EMAILS``, not retried, a warning, not a failure); ``deferred`` (4xx, no
    SMTP session, a rejected message) and ``unknown`` (the link failed after the data went out;
    reported): ``EmailDeliveryError`` once every reachable recipient was tried, and the retry sends
    to those only, with the same Message-ID. A recipient leased by another live sender is waited
    for, up to twice the lease; an expired lease is taken over as ``unknown``.

    ``on_complete(conn)`` runs in the transaction that records the last recipient (or, when the
    e-mail was complete already, in a transaction of its own): e.g. marking an alert notified.
    ``period_end``: the reported period, for the owed-e-mail sweep (``owed``). ``metrics_conn``: a
    psycopg2 or psycopg 3 connection with no uncommitted work of its own: this function commits.
    """
    smtp_conn = smtp_conn if smtp_conn is not None else smtp_connection()  # config errors first
    recipients = envelope_recipients(message)
    from_addr = parseaddr(str(message["From"]))[1]
    if not from_addr or not recipients:
        raise ValueError(f"{kind} {key!r}: the message has no From or no recipient")
    lease = send_lease_seconds()
    sendlog = SendLog(metrics_conn, kind, key, owner=lease_owner(run_id), lease_seconds=lease,
                      lock_timeout=send_lock_timeout_seconds())
    subject = str(message["Subject"])
    message_ids = {}
    outcomes: list[Outcome] = []
    session = SmtpSession(smtp_conn)
    with out_of_autocommit(metrics_conn):
        try:
            sendlog.insert(recipients, period_end)
            deadline = time.monotonic() + 2 * lease
            broken = False
            not_attempted: list[str] = []
            while True:
                claimed, busy = sendlog.claim(recipients)
                for recipient in [r for r in recipients if r in claimed]:
                    previous = claimed[recipient]
                    if broken or recipient not in sendlog.renew():
                        if broken:  # not attempted: back to what it was ('sending' = a vanished holder)
                            not_attempted.append(recipient)
                            why = f"not attempted: {outcomes[-1].detail}"
                            back = "unknown" if previous in ("sending", "unknown") else previous
                            sendlog.record(Outcome(recipient, previous, detail=why), status=back)
                        continue
                    if previous in ("unknown", "sending"):
                        log.warning("%s %r to %s: the last attempt's outcome is unknown; resending once with "
                                    "the same Message-ID (the data team is told)", kind, key, recipient)
                    message_ids[recipient] = address_to(message, kind=kind, key=key, recipient=recipient)
                    del message["Date"]
                    message["Date"] = formatdate(usegmt=True)
                    outcome = session.transmit(message, from_addr, recipient)
                    outcomes.append(outcome)
                    if not sendlog.record(outcome, subject=subject, message_id=message_ids[recipient],
                                          run_id=run_id, recipients=recipients, on_complete=on_complete):
                        log.warning("%s %r to %s: this sender's lease was taken over before it recorded %s",
                                    kind, key, recipient, outcome.status)
                    broken = broken or outcome.broken
                if broken or not busy:
                    break
                if time.monotonic() > deadline:
                    holders = "; ".join(
                        f"{r['recipient']} by {r['lease_owner']} until {r['lease_expires_at']}" for r in busy)
                    raise EmailDeliveryError(
                        f"{kind} {key!r}: another sender still holds the send-log lease after "
                        f"{2 * lease:g} s (INVESTOR_SEND_LEASE_SECONDS={lease:g}): {holders}; "
                        "a retry finishes what is left")
                time.sleep(min(0.2, lease / 4))
            if not outcomes and on_complete is not None:
                sendlog.complete_now(recipients, on_complete)
        finally:
            session.close()
            if report and kind != KIND_DELIVERY_REPORT:
                report_delivery_problems(metrics_conn, kind, key, smtp_conn=smtp_conn)
    return _conclude(kind, key, outcomes, smtp_conn, not_attempted)


def _conclude(kind: str, key: str, outcomes: list[Outcome], smtp_conn, not_attempted: list[str]) -> bool:
    sent = [o for o in outcomes if o.status == "sent"]
    refused = [o for o in outcomes if o.status == "refused"]
    unknown = [o for o in outcomes if o.status == "unknown"]
    deferred = [o for o in outcomes if o.status == "deferred"]
    where = describe_connection(smtp_conn)
    if sent:
        log.info("sent %s %r to %d recipient(s) through %s", kind, key, len(sent), where)
    elif not outcomes:
        log.info("%s %r was already sent to every recipient: not sending it again", kind, key)
    if refused:
        log.warning("%s %r: %d recipient(s) permanently refused (reported to DATA_TEAM_EMAILS, "
                    "not retried): %s; the task succeeds for the others", kind, key, len(refused),
                    "; ".join(f"{o.recipient} ({o.detail})" for o in refused))
    if unknown or deferred:
        parts = [f"{o.recipient}: outcome unknown ({o.detail}); the retry resends it with the same Message-ID"
                 for o in unknown]
        parts += [f"{o.recipient}: {o.detail}" for o in deferred]
        if not_attempted:
            parts.append(f"not attempted after that: {', '.join(not_attempted)}")
        owed = len(unknown) + len(deferred) + len(not_attempted)
        raise EmailDeliveryError(
            f"could not send {kind} {key!r} to {owed} recipient(s) through {where}: "
            + "; ".join(parts)
            + f" (delivered to {len(sent)} now; a retry sends only to those not delivered)") from None
    return bool(sent)


def report_delivery_problems(metrics_conn, kind: str, key: str, *, smtp_conn=None) -> bool:
    """Tell ``DATA_TEAM_EMAILS`` (once, through the send log) of the refused recipients and unknown
    outcomes of (kind, key) not yet reported; True if a report went out now. Never raises: a report
    that cannot go out stays owed (the next attempt at this e-mail, or the owed sweep, retries it)."""
    try:
        problems = unreported_problems(metrics_conn, kind, key)
        if not problems:
            return False
        for problem in problems:
            log.warning("%s %r to %s: %s (%s)", kind, key, problem["recipient"],
                        "permanently refused" if problem["status"] == "refused" else
                        f"outcome unknown {problem['unknown_outcomes']} time(s)", problem["last_error"])
        team = data_team_recipients()
        if not team:
            log.warning("DATA_TEAM_EMAILS is not set: nobody can be told of the delivery problems of %s %r",
                        kind, key)
            return False
        smtp_conn = smtp_conn if smtp_conn is not None else smtp_connection()
        events = ",".join(f"{p['recipient']}:{'refused' if p['status'] == 'refused' else ''}"
                          f"{p['unknown_outcomes']}" for p in problems)
        report_key = f"{kind}|{key}|{hashlib.sha256(events.encode()).hexdigest()[:16]}"
        message = build_delivery_report(
            kind=kind, key=key, report_key=report_key,
            subject=next((p["subject"] for p in problems if p["subject"]), None),
            problems=problems, recipients=team, sender=sender_address(smtp_conn))
        return send_once(metrics_conn, kind=KIND_DELIVERY_REPORT, key=report_key, message=message,
                         run_id=None, smtp_conn=smtp_conn, on_complete=marks_reported(kind, key, problems),
                         report=False)
    except Exception as exc:
        rollback(metrics_conn)
        log.warning("could not tell the data team of the delivery problems of %s %r (%s); it stays owed",
                    kind, key, redact(f"{type(exc).__name__}: {exc}", getattr(smtp_conn, "password", None)))
        return False


def send_weekly_summary(metrics_conn, snapshot: Mapping, *, previous: Mapping | None,
                        history: Iterable[Mapping], run_id: str | None, airflow_url: str | None = None,
                        recipients=None, tz=None, smtp_conn=None, on_demand: bool | None = None) -> bool:
    """Build and send the period's summary to ``INVESTOR_EMAILS`` once per recipient; True if sent
    now. Its key: the period end, ``on_demand|<end>`` for an on-demand report (``on_demand``
    default: the snapshot's ``period.type``)."""
    smtp_conn = smtp_conn if smtp_conn is not None else smtp_connection()
    message = build_weekly_summary(
        snapshot, previous=previous, history=history,
        recipients=recipients if recipients is not None else investor_recipients(),
        sender=sender_address(smtp_conn), airflow_url=airflow_url, tz=tz,
    )
    return send_once(metrics_conn, kind=KIND_WEEKLY_SUMMARY,
                     key=weekly_summary_key(snapshot, on_demand=on_demand),
                     message=message, run_id=run_id, smtp_conn=smtp_conn,
                     period_end=period_bounds(snapshot["period"])[1])


def send_alert_notifications(metrics_conn, alerts: Iterable[Mapping], *, run_id: str | None,
                             airflow_url: str | None = None, recipients=None, tz=None, smtp_conn=None,
                             mark_notified: bool = True) -> list[str]:
    """E-mail each critical and high alert on its own message, once per (alert, recipient); returns
    the ids sent now. With ``mark_notified``, an alert is marked ``notified`` in the transaction that
    records its last recipient's delivery. One alert's failure does not stop the others: the first
    ``EmailDeliveryError`` is raised after every alert was tried."""
    urgent = urgent_alerts(alerts)
    if not urgent:
        return []
    smtp_conn = smtp_conn if smtp_conn is not None else smtp_connection()
    messages = build_alert_messages(
        urgent, recipients=recipients if recipients is not None else investor_recipients(),
        sender=sender_address(smtp_conn), airflow_url=airflow_url, tz=tz,
    )
    by_id = {alert_key(a): a for a in urgent}
    sent, failures = [], []
    for alert_id, message in messages:
        try:
            if send_once(metrics_conn, kind=KIND_ALERT, key=alert_id, message=message, run_id=run_id,
                         smtp_conn=smtp_conn, period_end=by_id[alert_id].get("period_end"),
                         on_complete=marks_notified(alert_id) if mark_notified else None):
                sent.append(alert_id)
        except EmailDeliveryError as exc:
            failures.append(exc)
    if failures:
        if len(failures) > 1:
            log.error("%d alert e-mails failed: %s", len(failures), " | ".join(map(str, failures)))
        raise failures[0]
    return sent


def marks_notified(alert_id: str):
    """An ``on_complete`` for ``send_once``: mark the alert ``notified`` in the delivery's transaction."""

    def mark(conn):
        alert_store.mark_notified(conn, [alert_id], commit=False)

    return mark


def send_data_quality_failure(metrics_conn, message_text: str, *, report_path: str | None, period,
                              run_id: str | None, try_number: int | None = None, recipients=None, tz=None,
                              smtp_conn=None) -> bool:
    """For the validation failure callback: e-mail ``DATA_TEAM_EMAILS`` (never the investors), once
    per (period end, run, try): a cleared run that fails again alerts again, a second callback of
    the same try does not. Returns False without sending when no data-team address is configured."""
    recipients = recipients if recipients is not None else data_team_recipients()
    if not recipients:
        log.info("DATA_TEAM_EMAILS is not set: no data-quality failure e-mail")
        return False
    smtp_conn = smtp_conn if smtp_conn is not None else smtp_connection()
    message = build_data_quality_failure(
        message_text, report_path=report_path, period=period, recipients=recipients,
        sender=sender_address(smtp_conn), tz=tz,
    )
    _start, end = period_bounds(period)
    key = data_quality_failure_key(end, run_id, try_number)
    return send_once(metrics_conn, kind=KIND_DATA_QUALITY_FAILURE, key=key, message=message, run_id=run_id,
                     smtp_conn=smtp_conn, period_end=end)


def data_quality_failure_key(period_end, run_id: str | None, try_number: int | None) -> str:
    """``<period end>|<run id>|try <n>``: one failure e-mail per failed try of a run."""
    return f"{iso_utc(period_end)}|{run_id or '-'}|try {try_number if try_number is not None else '-'}"
