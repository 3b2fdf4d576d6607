"""The e-mail tasks of the ``investor_metrics`` DAG (SPEC section 8): the alert notifications, the
weekly summary and, when validation fails, the data team's message. Every send is exactly once per
recipient (the send log of ``mail/send.py``); which runs e-mail is ``tasks.email_decision``."""

from __future__ import annotations

import logging
import os
from datetime import timedelta

from include.investor_metrics import settings as config
from include.investor_metrics.period import Period, calendar_offset
from include.investor_metrics.task_context import airflow_run_url
from include.investor_metrics.weekly.series import series_of
from include.investor_metrics.weekly.tasks import (
    data_quality_report_dir,
    email_decision,
    metrics_conn,
    run_period,
)

log = logging.getLogger(__name__)

# The mail stack and the stores are imported inside the tasks: the DAG file imports this module
# when it is parsed, which must stay cheap.


def _skip(reason: str):
    from airflow.sdk.exceptions import AirflowSkipException

    log.info("no e-mail: %s", reason)
    raise AirflowSkipException(reason)


def _owed_window(context, period: Period):
    """(since, until] of the owed-e-mail sweep, or None when this run does not sweep: scheduled runs
    re-send what the last ``INVESTOR_OWED_EMAIL_WEEKS`` weeks of scheduled runs still owe (an SMTP
    outage longer than a task's retries); on-demand runs send only their own report."""
    from include.investor_metrics.mail import send_log

    run_type = getattr(context["dag_run"].run_type, "value", context["dag_run"].run_type)
    weeks = send_log.owed_email_weeks()
    if run_type != "scheduled" or weeks <= 0:
        return None
    return period.end - timedelta(weeks=weeks), period.end


def _raise_first(failures: list[Exception], what: str) -> None:
    if failures:
        for failure in failures[1:]:
            log.error("%s also failed: %s", what, failure)
        raise failures[0]


def _email_run(context):
    """What both e-mail tasks start with: skip when this run e-mails nobody, else the run's period,
    its series and the options every send takes (run id, link to the run, time zone)."""
    reason = email_decision(context)
    if reason:
        _skip(reason)
    period = run_period(context)
    options = {"run_id": context["dag_run"].run_id, "airflow_url": airflow_run_url(context),
               "tz": config.investor_timezone()}
    return period, series_of(period.type), options


def send_alert_notifications(context) -> list[str]:
    """Critical and high alerts of the period, each on its own message to each recipient, once
    (send log); then the alerts of earlier weeks still owed. An alert is marked ``notified`` in the
    transaction that records its last delivery. Any alert still owed fails the task (retry)."""
    from include.investor_metrics.mail import send as notify
    from include.investor_metrics.mail import send_log
    from include.investor_metrics.weekly.alerts import store as alert_store

    period, series, options = _email_run(context)
    sent, failures = [], []
    conn = metrics_conn()
    try:
        batches = [alert_store.alerts_for_period(conn, period.end, series=series)]
        window = _owed_window(context, period)
        if window:
            current = {a["id"] for a in batches[0]}
            batches.append([a for a in send_log.owed_alerts(conn, since=window[0], until=window[1])
                            if a["id"] not in current])
        for batch in batches:
            try:
                sent += notify.send_alert_notifications(conn, batch, **options)
            except send_log.EmailDeliveryError as exc:
                failures.append(exc)
        if sent or failures:  # notified flags may have changed
            alert_store.publish_alert_history(conn, config.archive_dir())
    finally:
        conn.close()
    log.info("alert e-mails sent now: %s", sent or "none (no critical/high alert, or already sent)")
    _raise_first(failures, "an alert e-mail")
    return sent


def send_weekly_summary(context) -> bool:
    """The period's summary to each of INVESTOR_EMAILS, once (send log): an on-demand run's report
    has its own key and reads the on-demand snapshot (trends from the weekly series). Then the
    summaries of earlier weeks still owed (scheduled runs)."""
    from include.investor_metrics.mail import send as notify
    from include.investor_metrics.mail import send_log
    from include.investor_metrics.mail.message import KIND_WEEKLY_SUMMARY
    from include.investor_metrics.weekly import snapshots as store

    period, series, options = _email_run(context)
    failures, sent = [], False
    conn = metrics_conn()
    try:
        snapshot = store.snapshot_for(conn, period.end, series=series)
        if snapshot is None:
            raise RuntimeError(f"no stored {series} snapshot for the period ending {period.end.isoformat()}")
        ends = [(period.end, snapshot)]
        window = _owed_window(context, period)
        if window:
            for _key, end in send_log.owed(conn, KIND_WEEKLY_SUMMARY, since=window[0], until=window[1]):
                if end != period.end:
                    ends.append((end, store.snapshot_for(conn, end, series="weekly")))
        for end, week in ends:
            if week is None:
                log.error("a summary is owed for the week ending %s but no weekly snapshot is stored", end)
                continue
            try:
                history = store.history(conn, 12, until=end, series="weekly")
                # the week before, a calendar offset (a week across DST is 167 or 169 hours); an
                # on-demand report compares with the newest week ended at least 7 days before it
                week_before = calendar_offset(end, config.investor_timezone(), days=7)
                if series == "on_demand" and end == period.end:
                    earlier = store.history(conn, 1, until=week_before, series="weekly")
                    previous = earlier[0] if earlier else None
                else:
                    previous = store.snapshot_for(conn, week_before, series="weekly")
                sent_now = notify.send_weekly_summary(conn, week, previous=previous, history=history,
                                                      on_demand=series == "on_demand" and end == period.end,
                                                      **options)
                sent = sent or (sent_now and end == period.end)
                if sent_now and end != period.end:
                    log.warning("sent the summary owed for the week ending %s (an earlier run could not)",
                                end)
            except send_log.EmailDeliveryError as exc:
                failures.append(exc)
    finally:
        conn.close()
    log.info("summary %s", "sent" if sent else "already sent for this period (or owed: see the errors)")
    _raise_first(failures, "a summary e-mail")
    return sent


def notify_data_team_of_failure(context) -> None:
    """Failure callback of ``validate_data``: the data engineers (``DATA_TEAM_EMAILS``), never the
    investors, get the validation message and where the Data Docs report is."""
    from include.investor_metrics.mail import send as notify

    try:
        if not config.data_team_recipients():
            log.info("DATA_TEAM_EMAILS is not set: no data-quality e-mail")
            return
        period = run_period(context)
        exc = context.get("exception")
        message = str(exc) if exc else "the validation task failed"
        report = os.path.join(data_quality_report_dir(), f"{period.end:%Y-%m-%d_%H-%M-%S}", "index.html")
        conn = metrics_conn()
        try:
            notify.send_data_quality_failure(
                conn, message, report_path=report, period=period, run_id=context["dag_run"].run_id,
                try_number=getattr(context.get("ti"), "try_number", None), tz=config.investor_timezone(),
            )
        finally:
            conn.close()
    except Exception:  # a callback must not hide the task's own failure
        log.exception("could not e-mail the data team about the validation failure")
