"""The work behind the tasks of the ``investor_metrics`` DAG from the extracts to the archive (the
DAG file only wires these; the e-mail tasks are in ``email_tasks.py``).

Each function takes the task's Airflow context and returns something small (a path, a summary
dict) for XCom; frames travel as Parquet files under the run-scoped staging folder
(``staging.py``). The period of a run is decided in one place (``run_period``), whether it e-mails
in another (``email_decision``); nothing here reads the clock for a computation: the only clock
read is ``generated_at``, the moment the snapshot is published.
"""

from __future__ import annotations

import logging
import os
from datetime import datetime, timezone

from include.investor_metrics import settings as config
from include.investor_metrics import storage
from include.investor_metrics.period import Period, period_for_run, to_utc
from include.investor_metrics.weekly import task_ids as ids
from include.investor_metrics.weekly.series import series_of
from include.investor_metrics.weekly.staging import (
    check_storage_settings,
    clean_old_staging,
    missing,
    read_staged_json,
    record_host,
    run_staging_dir,
    stage_dir,
    staged_frames,
    write_json_atomic,
)

log = logging.getLogger(__name__)

# The pipeline's modules are imported inside the tasks: the DAG file imports this module when it is
# parsed, which must stay cheap (no pandas, no Great Expectations).


# ------------------------------------------------------------------------- the run: its period, its e-mail
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


def email_decision(context) -> str | None:
    """Why this run sends no e-mail, or None when it does: scheduled runs e-mail; manual runs only
    with ``send_email=true``; backfills never."""
    run_type = getattr(context["dag_run"].run_type, "value", context["dag_run"].run_type)
    if run_type == "backfill":
        return "backfill runs never e-mail anyone"
    if run_type != "scheduled" and not (context.get("params") or {}).get("send_email"):
        return "on-demand run with send_email=false"
    return None


# ------------------------------------------------------------------------- connections, services
def source_conn():
    from include.investor_metrics.db import postgres_hook

    return postgres_hook(config.CHATTERFIX_CONN_ID).get_conn()


def metrics_conn():
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


DEPTH_REFUSED = "depth_refused.json"


def extract_business_data(context) -> str:
    """The business frames and the depth frames of SPEC 4b (``depth_customers``, ``depth_cohorts``,
    ``depth_plan_mrr``), staged together: every snapshot carries the depth sections. Rows the
    depth extract refuses (an MRR beyond int64, an unknown interval) are rows ``validate_data``
    names with its rule first: the refusal is staged (``DEPTH_REFUSED``) and raised by
    ``compute_metrics`` only if validation let them through."""
    from include.investor_metrics.weekly import extract
    from include.investor_metrics.weekly.depth.extract import extract_depth
    from include.investor_metrics.weekly.metrics.rounding import MoneyRangeError

    check_storage_settings()
    period = run_period(context)
    log.info("period %s → %s (%s, %.0f h)", period.start, period.end, period.type, period.hours)
    _require_source_schema(period, BUSINESS_TABLES)
    conn = source_conn()
    refused = None
    try:
        frames = extract.extract_business_data(conn, period)
        try:
            frames.update(extract_depth(conn, period))
        except (MoneyRangeError, ValueError) as exc:
            refused = {"money": isinstance(exc, MoneyRangeError), "message": str(exc)}
    finally:
        conn.close()
    folder = stage_dir(context, "business")
    extract.write_frames(frames, folder)
    if refused:
        log.warning("depth figures refused (validation decides first): %s", refused["message"])
    write_json_atomic(storage.join(folder, DEPTH_REFUSED), refused)
    record_host(context)
    log.info("business data: %s", {k: len(v) for k, v in frames.items()})
    return folder


def extract_ai_metrics(context) -> str:
    from include.investor_metrics.weekly import extract

    check_storage_settings()
    period = run_period(context)
    _require_source_schema(period, ("ai_requests",))
    conn = source_conn()
    try:
        frame = extract.extract_ai_metrics(conn, period)
    finally:
        conn.close()
    folder = stage_dir(context, "ai")
    extract.write_frames({"ai": frame}, folder)
    record_host(context)
    return folder


def extract_health_checks(context) -> str:
    from include.investor_metrics.weekly import extract

    check_storage_settings()
    period = run_period(context)
    conn = metrics_conn()
    try:
        from include.investor_metrics.db import apply_metrics_schema

        apply_metrics_schema(conn)
        frame = extract.extract_health_checks(conn, period, _configured_services())
    finally:
        conn.close()
    folder = stage_dir(context, "health")
    extract.write_frames({"health": frame}, folder)
    record_host(context)
    return folder


def data_quality_report_dir() -> str:
    """GX Data Docs go next to the archive (a local archive), else under ``.local``."""
    archive = config.archive_dir()
    if "://" in archive:
        return str(config.PROJECT_ROOT / ".local" / "data_quality")
    return os.path.join(archive, "data_quality")


def validate_data(context) -> dict:
    import sys

    # Great Expectations takes ~2 s to import; runtime.executor.PreloadingLocalExecutor imports it
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


def compute_metrics(context, business_dir: str, ai_dir: str, health_dir: str, data_quality: dict) -> str:
    from include.investor_metrics.weekly.depth.extract import DEPTH_FRAMES
    from include.investor_metrics.weekly.metrics.rounding import MoneyRangeError
    from include.investor_metrics.weekly.metrics.snapshot import build_snapshot

    period = run_period(context)
    refused_path = storage.join(business_dir, DEPTH_REFUSED)  # always staged (null: nothing refused)
    if storage.read_bytes(refused_path) is None:
        raise missing(context, "the business frames", business_dir, ids.EXTRACT_BUSINESS)
    refused = read_staged_json(refused_path)
    if refused:
        raise (MoneyRangeError if refused["money"] else ValueError)(refused["message"])
    business = staged_frames(context, business_dir, ids.EXTRACT_BUSINESS, DEPTH_FRAMES)
    depth = {name: business.pop(name) for name in DEPTH_FRAMES}
    ai = staged_frames(context, ai_dir, ids.EXTRACT_AI, ["ai"])["ai"]
    health = staged_frames(context, health_dir, ids.EXTRACT_HEALTH, ["health"])["health"]
    snapshot = build_snapshot(period, business, ai, health, _configured_services(), depth=depth)
    snapshot["data_quality"] = data_quality
    snapshot.setdefault("alerts", [])
    path = write_json_atomic(storage.join(run_staging_dir(context), "snapshot.json"), snapshot)
    financial = snapshot["financial"]
    log.info("MRR $%s, active customers %s", financial["mrr"], financial["active_customers"])
    return path


EVALUATED_NAME = "snapshot_with_alerts.json"


def evaluate_alerts(context, snapshot_path: str) -> str:
    """Apply the alert rules (SPEC section 6) to the computed snapshot and stage the snapshot with
    its alerts as a new file next to it (its input is left as it is, so a retry reads the same
    input); returns that file. The alerts are stored by ``archive_snapshot``, in one transaction
    with the snapshot, under the period's lock."""
    from include.investor_metrics.weekly.alerts import evaluate
    from include.investor_metrics.weekly.alerts.churn_history import previous_churned_customers
    from include.investor_metrics.weekly.alerts.thresholds import load_thresholds

    period = run_period(context)
    snapshot = read_staged_json(snapshot_path)
    if snapshot is None:
        raise missing(context, "the computed snapshot", snapshot_path, ids.COMPUTE)
    thresholds = load_thresholds()
    metrics, source = metrics_conn(), source_conn()
    try:
        from include.investor_metrics.db import apply_metrics_schema

        apply_metrics_schema(metrics)
        previous = previous_churned_customers(metrics, source, period)
    finally:
        metrics.close()
        source.close()
    fired = evaluate.evaluate(snapshot, thresholds=thresholds, previous_churned=previous)
    for alert in fired:
        log.warning("alert [%s] %s: %s", alert["severity"], alert["rule"], alert["message"])
    log.info("%d alert(s) for the period; churned customers of the 8 previous weeks: %s",
             len(fired), previous)
    snapshot["alerts"] = evaluate.snapshot_alerts(fired)
    return write_json_atomic(storage.join(storage.parent(snapshot_path), EVALUATED_NAME), snapshot)


def ordered_snapshot(snapshot: dict) -> dict:
    """The SPEC section 7 key order, the depth sections of SPEC 4b after business_health (readers
    diff these files by eye)."""
    order = ["timestamp", "generated_at", "period", "system_health", "ai_platform", "financial",
             "business_health", "retention", "segments", "movements", "data_quality", "alerts"]
    out = {key: snapshot[key] for key in order if key in snapshot}
    out.update({k: v for k, v in snapshot.items() if k not in out})
    return out


def archive_snapshot(context, snapshot_path: str) -> dict:
    """Store the snapshot and its alerts (one transaction under the period's lock), then publish the
    period file, ``metrics_snapshot.json`` and ``alert_history.json`` from the committed store.
    Consumes nothing: a retry or a clear finds its input again; when the staged input is gone but
    the store holds this run's snapshot, the files are republished from the store."""
    from include.investor_metrics.weekly import archive
    from include.investor_metrics.weekly import snapshots as store
    from include.investor_metrics.weekly.alerts import store as alert_store

    period = run_period(context)
    run_id = context["dag_run"].run_id
    series = series_of(period.type)
    location = config.archive_dir()
    staged = read_staged_json(snapshot_path)
    conn = metrics_conn()
    try:
        store.ensure_schema(conn)
        row = store.snapshot_row(conn, period.end, series=series)
        if staged is None:
            if row is None or row["run_id"] != run_id:
                raise FileNotFoundError(
                    f"archive_snapshot: the staged snapshot {snapshot_path} is gone and the metrics store "
                    f"holds no {series} snapshot of run {run_id} for the period ending "
                    f"{to_utc(period.end).isoformat()}; clear this run from its extract tasks "
                    f"({', '.join(ids.EXTRACT_TASKS)}) with downstream tasks, so that the snapshot is "
                    "computed again"
                )
            log.info("staged snapshot %s is gone: republishing run %s's stored snapshot",
                     snapshot_path, run_id)
            snapshot = row["snapshot"]
        else:
            snapshot = ordered_snapshot({**staged, "generated_at": _generated_at(staged, row, run_id)})
            store.store_period(conn, snapshot, period_start=period.start, period_end=period.end,
                               run_id=run_id, alerts=snapshot.get("alerts") or [])
        latest = store.publish_committed(
            conn, period_end=period.end, series=series,
            write_period=lambda own: archive.write_period_file(location, own, period.end, series=series),
            write_latest=lambda latest: archive.write_latest(location, latest),
        )
        alert_store.publish_alert_history(conn, location)
    finally:
        conn.close()
    clean_old_staging(context)
    period_file = str(archive.archive_path(location) / archive.period_file_relpath(period.end, series))
    log.info("archived %s; latest snapshot is the period ending %s", period_file, latest["period"]["end"])
    result = {"period_file": period_file, "latest_period_end": latest["period"]["end"],
              "period_end": to_utc(period.end).isoformat()}
    _emit_snapshot_event(context, period, series, snapshot)
    _skip_emails_unless_sent(context, result)
    return result


def _emit_snapshot_event(context, period: Period, series: str, snapshot: dict) -> None:
    """The published snapshot's event of the Asset ``investor_metrics_snapshot`` (the task's outlet:
    Airflow records it when the task succeeds, also when it skips the e-mail tasks)."""
    from include.investor_metrics.assets import SNAPSHOT_ASSET, snapshot_event_extra

    extra = snapshot_event_extra(period_end=period.end, period_type=period.type, series=series,
                                 mrr=(snapshot.get("financial") or {}).get("mrr"),
                                 announce=email_decision(context) is None)
    context["outlet_events"][SNAPSHOT_ASSET].extra = extra
    log.info("asset event %s: %s", SNAPSHOT_ASSET.name, extra)


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
