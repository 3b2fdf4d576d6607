"""The work behind each task of the ``investor_metrics`` DAG (the DAG file only wires these).

Each function takes the task's Airflow context and returns something small (a path, a summary
dict) for XCom; frames travel as Parquet files under a run-scoped staging folder. The period of a
run is decided in one place (``run_period``) and nothing here reads the clock for a computation:
the only clock read is ``generated_at``, the moment the snapshot is published.
"""

from __future__ import annotations

import json
import logging
import os
import re
from datetime import datetime, timedelta, timezone

from include.investor_metrics import settings as config
from include.investor_metrics.period import Period, calendar_offset, period_for_run, to_utc
from include.investor_metrics.task_context import airflow_run_url

log = logging.getLogger(__name__)


# ------------------------------------------------------------------------- the run's period
def run_period(context) -> Period:
    """The reporting period of the running DAG run (SPEC section 2).

    A manual run's ``period_end`` param that is malformed, outside the years 1970–9999 or later
    than the run's trigger time (``run_after``, so the verdict never changes on a retry) + 5
    minutes fails the task at once, without retries (every task asks, so the run's first tasks,
    the extracts, refuse it before anything is computed); the message names the parameter."""
    from include.investor_metrics.period import InstantError

    dag_run = context["dag_run"]
    params = context.get("params") or {}
    try:
        return period_for_run(
            run_type=getattr(dag_run.run_type, "value", dag_run.run_type),
            tz=config.investor_timezone(),
            data_interval_end=dag_run.data_interval_end,
            run_after=getattr(dag_run, "run_after", None),
            period_end_param=params.get("period_end"),
        )
    except InstantError as exc:
        from airflow.sdk.exceptions import AirflowFailException

        raise AirflowFailException(f"refused the run's params: {exc}") from None


# ------------------------------------------------------------------------- staging
def staging_root() -> str:
    """``INVESTOR_STAGING_DIR`` (local folder or fsspec URL), default ``.local/staging``. On a
    multi-machine deployment (Celery workers) it must be storage that every worker sees."""
    raw = os.getenv("INVESTOR_STAGING_DIR", "").strip()
    return raw or str(config.PROJECT_ROOT / ".local" / "staging")


def run_staging_dir(context) -> str:
    safe_run_id = re.sub(r"[^A-Za-z0-9_.-]+", "_", context["dag_run"].run_id)
    return os.path.join(staging_root(), context["dag_run"].dag_id, safe_run_id)


def _local_dir(path: str) -> str:
    if "://" in path and not path.startswith("file://"):
        raise NotImplementedError(f"staging on {path.split('://')[0]}:// storage is not supported yet")
    path = path.removeprefix("file://")
    os.makedirs(path, exist_ok=True)
    return path


# ------------------------------------------------------------------------- tasks
def _source_conn():
    from include.investor_metrics.db import postgres_hook

    return postgres_hook(config.CHATTERFIX_CONN_ID).get_conn()


def _metrics_conn():
    from include.investor_metrics.db import postgres_hook

    return postgres_hook(config.METRICS_CONN_ID).get_conn()


def _configured_services() -> list[str] | None:
    """The services the weekly report counts: the same list the probe DAG probes (the Airflow
    Variable ``health_check_services`` when set, else ``HEALTH_CHECK_SERVICES``); None = every
    service with checks in the period."""
    from include.investor_metrics.health import probe

    return list(probe.load_services()) or None


BUSINESS_TABLES = ("customers", "subscriptions", "leads", "nps_responses", "usage_events")


def _require_source_schema(period: Period, tables) -> None:
    """Before an extract reads the source: the tables it reads exist with the columns and types of
    SPEC section 3 (two catalog queries). A mismatch is bad input, not an outage: the task fails at
    once (no retry) with the validation's message naming table, column and types."""
    from include.investor_metrics.db import postgres_hook
    from include.investor_metrics.validation import runner as validate

    url = postgres_hook(config.CHATTERFIX_CONN_ID).sqlalchemy_url
    try:
        validate.require_source_schema(url, tables, period)
    except validate.DataValidationError as exc:
        from airflow.sdk.exceptions import AirflowFailException

        raise AirflowFailException(str(exc)) from exc


def extract_business_data(context) -> str:
    from include.investor_metrics.weekly import extract

    period = run_period(context)
    log.info("period %s → %s (%s, %.0f h)", period.start, period.end, period.type, period.hours)
    _require_source_schema(period, BUSINESS_TABLES)
    conn = _source_conn()
    try:
        frames = extract.extract_business_data(conn, period)
    finally:
        conn.close()
    folder = _local_dir(os.path.join(run_staging_dir(context), "business"))
    extract.write_frames(frames, folder)
    log.info("business data: %s", {k: len(v) for k, v in frames.items()})
    return folder


def extract_ai_metrics(context) -> str:
    from include.investor_metrics.weekly import extract

    period = run_period(context)
    _require_source_schema(period, ("ai_requests",))
    conn = _source_conn()
    try:
        frame = extract.extract_ai_metrics(conn, period)
    finally:
        conn.close()
    folder = _local_dir(os.path.join(run_staging_dir(context), "ai"))
    extract.write_frames({"ai": frame}, folder)
    return folder


def extract_health_checks(context) -> str:
    from include.investor_metrics.weekly import extract

    period = run_period(context)
    conn = _metrics_conn()
    try:
        from include.investor_metrics.db import apply_metrics_schema

        apply_metrics_schema(conn)
        frame = extract.extract_health_checks(conn, period, _configured_services())
    finally:
        conn.close()
    folder = _local_dir(os.path.join(run_staging_dir(context), "health"))
    extract.write_frames({"health": frame}, folder)
    return folder


def data_quality_report_dir() -> str:
    """GX Data Docs go next to the archive (a local archive), else under ``.local``."""
    archive = config.archive_dir()
    if "://" in archive:
        return str(config.PROJECT_ROOT / ".local" / "data_quality")
    return os.path.join(archive, "data_quality")


def validate_data(context) -> dict:
    import sys

    # Great Expectations takes ~2 s to import; include.investor_metrics.runtime.executor.PreloadingLocalExecutor imports it
    # once in the scheduler so that task processes inherit it. Say which case this is.
    if "great_expectations" in sys.modules:
        log.info("Great Expectations already imported (preloaded by the executor)")
    else:
        log.info("importing Great Expectations (not preloaded by the executor)")
    from include.investor_metrics.db import postgres_hook
    from include.investor_metrics.validation import runner as validate

    with config.settings_fail_the_task():  # a malformed setting: failed at once, naming it
        period = run_period(context)
        services = _configured_services()
        url = postgres_hook(config.CHATTERFIX_CONN_ID).sqlalchemy_url
        # health checks live in the metrics store, which may be another database than the source
        health_url = postgres_hook(config.METRICS_CONN_ID).sqlalchemy_url
        report_dir = data_quality_report_dir()
    result = validate.validate_period(
        url, period, services=services, report_dir=report_dir, health_sqlalchemy_url=health_url,
    )
    for warning in result.warnings:
        log.warning("data quality warning: %s", warning["message"])
    if result.report_path:
        log.info("data-quality report: %s", result.report_path)
    try:
        result.raise_for_failures()
    except validate.DataValidationError as exc:
        # Bad data does not fix itself: fail now, without retries (a broken connection still retries).
        from airflow.sdk.exceptions import AirflowFailException

        raise AirflowFailException(str(exc)) from exc
    return result.as_snapshot_dict()


def _write_json_atomic(path: str, document) -> str:
    """Write ``document`` to ``path`` via a temporary file renamed over it: a reader (or a retry)
    sees the whole old file or the whole new one, never a torn one."""
    import secrets

    tmp = f"{path}.{secrets.token_hex(6)}.tmp"
    try:
        with open(tmp, "w") as fh:
            json.dump(document, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def compute_metrics(context, business_dir: str, ai_dir: str, health_dir: str, data_quality: dict) -> str:
    from include.investor_metrics.weekly import extract, metrics

    period = run_period(context)
    business = extract.read_frames(business_dir)
    ai = extract.read_frames(ai_dir)["ai"]
    health = extract.read_frames(health_dir)["health"]
    snapshot = metrics.build_snapshot(period, business, ai, health, _configured_services())
    snapshot["data_quality"] = data_quality
    snapshot.setdefault("alerts", [])
    path = _write_json_atomic(os.path.join(_local_dir(run_staging_dir(context)), "snapshot.json"), snapshot)
    log.info("MRR $%s, active customers %s", snapshot["financial"]["mrr"], snapshot["financial"]["active_customers"])
    return path


EVALUATED_NAME = "snapshot_with_alerts.json"


def evaluate_alerts(context, snapshot_path: str) -> str:
    """Apply the alert rules (SPEC section 6) to the computed snapshot and stage the snapshot with
    its alerts as a new file next to it (its input is left as it is, so a retry reads the same
    input); returns that file. The alerts are stored by ``archive_snapshot``, in one transaction
    with the snapshot, under the period's lock."""
    from include.investor_metrics.weekly import alerts

    period = run_period(context)
    with open(snapshot_path) as fh:
        snapshot = json.load(fh)
    thresholds = alerts.load_thresholds()
    metrics_conn, source_conn = _metrics_conn(), _source_conn()
    try:
        from include.investor_metrics.db import apply_metrics_schema

        apply_metrics_schema(metrics_conn)
        previous = alerts.previous_churned_customers(metrics_conn, source_conn, period)
    finally:
        metrics_conn.close()
        source_conn.close()
    fired = alerts.evaluate(snapshot, thresholds=thresholds, previous_churned=previous)
    for alert in fired:
        log.warning("alert [%s] %s: %s", alert["severity"], alert["rule"], alert["message"])
    log.info("%d alert(s) for the period; churned customers of the 8 previous weeks: %s", len(fired), previous)
    snapshot["alerts"] = alerts.snapshot_alerts(fired)
    return _write_json_atomic(os.path.join(os.path.dirname(snapshot_path), EVALUATED_NAME), snapshot)


def ordered_snapshot(snapshot: dict) -> dict:
    """The SPEC section 7 key order (readers diff these files by eye)."""
    order = ["timestamp", "generated_at", "period", "system_health", "ai_platform", "financial",
             "business_health", "data_quality", "alerts"]
    out = {key: snapshot[key] for key in order if key in snapshot}
    out.update({k: v for k, v in snapshot.items() if k not in out})
    return out


STAGING_RETENTION_DAYS = 7


def clean_old_staging(context, *, retention_days: float = STAGING_RETENTION_DAYS, now: float | None = None) -> list[str]:
    """Delete the staging folders of this DAG's other runs left untouched for ``retention_days``
    (never the running one's: its tasks may still be retried or cleared). Local staging only."""
    import shutil
    import time

    own = run_staging_dir(context)
    if "://" in own and not own.startswith("file://"):
        return []
    own = own.removeprefix("file://")
    parent = os.path.dirname(own)
    cutoff = (time.time() if now is None else now) - retention_days * 86400
    removed = []
    try:
        entries = list(os.scandir(parent))
    except FileNotFoundError:
        return []
    for entry in entries:
        if entry.path == own or not entry.is_dir(follow_symlinks=False):
            continue
        try:
            if entry.stat(follow_symlinks=False).st_mtime < cutoff:
                shutil.rmtree(entry.path)
                removed.append(entry.path)
        except FileNotFoundError:  # another run's archive removed it first
            pass
    if removed:
        log.info("removed %d staging folder(s) older than %s days", len(removed), retention_days)
    return removed


def _staged_snapshot(path: str) -> dict | None:
    try:
        with open(path.removeprefix("file://")) as fh:
            return json.load(fh)
    except FileNotFoundError:
        return None


def archive_snapshot(context, snapshot_path: str) -> dict:
    """Store the snapshot and its alerts (one transaction under the period's lock), then publish the
    period file, ``metrics_snapshot.json`` and ``alert_history.json`` from the committed store.
    Consumes nothing: a retry or a clear finds its input again; when the staged input is gone but
    the store holds this run's snapshot, the files are republished from the store."""
    from include.investor_metrics.weekly import alerts, archive
    from include.investor_metrics.weekly import snapshots as store

    period = run_period(context)
    run_id = context["dag_run"].run_id
    series = store.series_of(period.type)
    location = config.archive_dir()
    staged = _staged_snapshot(snapshot_path)
    conn = _metrics_conn()
    try:
        store.ensure_schema(conn)
        row = store.snapshot_row(conn, period.end, series=series)
        if staged is None:
            if row is None or row["run_id"] != run_id:
                raise FileNotFoundError(
                    f"archive_snapshot: the staged snapshot {snapshot_path} is gone and the metrics store "
                    f"holds no {series} snapshot of run {run_id} for the period ending "
                    f"{to_utc(period.end).isoformat()}; clear this run from its extract tasks "
                    "(extract_business_data, extract_ai_metrics, extract_health_checks) with downstream "
                    "tasks, so that the snapshot is computed again"
                )
            log.info("staged snapshot %s is gone: republishing run %s's stored snapshot", snapshot_path, run_id)
        else:
            snapshot = ordered_snapshot({**staged, "generated_at": _generated_at(staged, row, run_id)})
            store.store_period(conn, snapshot, period_start=period.start, period_end=period.end, run_id=run_id,
                               alerts=snapshot.get("alerts") or [])
        latest = store.publish_committed(
            conn, period_end=period.end, series=series,
            write_period=lambda own: archive.write_period_file(location, own, period.end, series=series),
            write_latest=lambda latest: archive.write_latest(location, latest),
        )
        alerts.publish_alert_history(conn, location)
    finally:
        conn.close()
    clean_old_staging(context)
    period_file = str(archive.archive_path(location) / archive.period_file_relpath(period.end, series))
    log.info("archived %s; latest snapshot is the period ending %s", period_file, latest["period"]["end"])
    result = {"period_file": period_file, "latest_period_end": latest["period"]["end"],
              "period_end": to_utc(period.end).isoformat()}
    _skip_emails_unless_sent(context, result)
    return result


def _generated_at(staged: dict, row: dict | None, run_id: str) -> str:
    """When the snapshot is published: now, except for a retry of this run that stores the same
    snapshot again, which keeps the stored instant (same files, same row)."""
    if row is not None and row["run_id"] == run_id:
        stored = row["snapshot"]
        if {k: v for k, v in stored.items() if k != "generated_at"} == \
                {k: v for k, v in staged.items() if k != "generated_at"}:
            return stored["generated_at"]
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _skip_emails_unless_sent(context, result) -> None:
    """In a run that e-mails nobody (a backfill, an on-demand run without ``send_email``), mark
    the e-mail tasks downstream skipped from here, as Airflow's ShortCircuitOperator does: no
    worker then starts a process only for it to skip itself. (A task that skips itself is also
    slow to report it: its supervisor only sends the state after the process is reaped, up to
    ``[workers] min_heartbeat_interval`` (5 s) later, and the run waits for it.) Each e-mail task
    still checks ``email_decision`` itself, for when it is cleared and run alone.

    ``result`` is pushed as this task's return value first: the skip ends the task without it."""
    reason = email_decision(context)
    if not reason:
        return
    from airflow.sdk.exceptions import DownstreamTasksSkipped

    downstream = sorted(context["task"].get_flat_relative_ids(upstream=False))
    if not downstream:
        return
    context["ti"].xcom_push("return_value", result)
    log.info("no e-mail: %s; skipping %s", reason, ", ".join(downstream))
    raise DownstreamTasksSkipped(tasks=downstream)


# ------------------------------------------------------------------------- e-mail (SPEC section 8)
def email_decision(context) -> str | None:
    """Why this run sends no e-mail, or None when it does: scheduled runs e-mail; manual runs only
    with ``send_email=true``; backfills never."""
    run_type = getattr(context["dag_run"].run_type, "value", context["dag_run"].run_type)
    if run_type == "backfill":
        return "backfill runs never e-mail anyone"
    if run_type != "scheduled" and not (context.get("params") or {}).get("send_email"):
        return "on-demand run with send_email=false"
    return None


def _skip(reason: str):
    from airflow.sdk.exceptions import AirflowSkipException

    log.info("no e-mail: %s", reason)
    raise AirflowSkipException(reason)


def _owed_window(context, period: Period):
    """(since, until] of the owed-e-mail sweep, or None when this run does not sweep: scheduled runs
    re-send what the last ``INVESTOR_OWED_EMAIL_WEEKS`` weeks of scheduled runs still owe (an SMTP
    outage longer than a task's retries); on-demand runs send only their own report."""
    from include.investor_metrics.mail import send as notify

    run_type = getattr(context["dag_run"].run_type, "value", context["dag_run"].run_type)
    weeks = notify.owed_email_weeks()
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
    from include.investor_metrics.weekly import snapshots as store

    reason = email_decision(context)
    if reason:
        _skip(reason)
    period = run_period(context)
    options = {"run_id": context["dag_run"].run_id, "airflow_url": airflow_run_url(context),
               "tz": config.investor_timezone()}
    return period, store.series_of(period.type), options


def send_alert_notifications(context) -> list[str]:
    """Critical and high alerts of the period, each on its own message to each recipient, once
    (send log); then the alerts of earlier weeks still owed. An alert is marked ``notified`` in the
    transaction that records its last delivery. Any alert still owed fails the task (retry)."""
    from include.investor_metrics.mail import send as notify
    from include.investor_metrics.weekly import alerts

    period, series, options = _email_run(context)
    sent, failures = [], []
    conn = _metrics_conn()
    try:
        batches = [alerts.alerts_for_period(conn, period.end, series=series)]
        window = _owed_window(context, period)
        if window:
            current = {a["id"] for a in batches[0]}
            batches.append([a for a in notify.owed_alerts(conn, since=window[0], until=window[1])
                            if a["id"] not in current])
        for batch in batches:
            try:
                sent += notify.send_alert_notifications(conn, batch, **options)
            except notify.EmailDeliveryError as exc:
                failures.append(exc)
        if sent or failures:  # notified flags may have changed
            alerts.publish_alert_history(conn, config.archive_dir())
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
    from include.investor_metrics.weekly import snapshots as store

    period, series, options = _email_run(context)
    failures, sent = [], False
    conn = _metrics_conn()
    try:
        snapshot = store.snapshot_for(conn, period.end, series=series)
        if snapshot is None:
            raise RuntimeError(f"no stored {series} snapshot for the period ending {period.end.isoformat()}")
        ends = [(period.end, snapshot)]
        window = _owed_window(context, period)
        if window:
            for _key, end in notify.owed(conn, notify.KIND_WEEKLY_SUMMARY, since=window[0], until=window[1]):
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
                    log.warning("sent the summary owed for the week ending %s (an earlier run could not)", end)
            except notify.EmailDeliveryError as exc:
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
        conn = _metrics_conn()
        try:
            notify.send_data_quality_failure(
                conn, message, report_path=report, period=period, run_id=context["dag_run"].run_id,
                try_number=getattr(context.get("ti"), "try_number", None), tz=config.investor_timezone(),
            )
        finally:
            conn.close()
    except Exception:  # a callback must not hide the task's own failure
        log.exception("could not e-mail the data team about the validation failure")
