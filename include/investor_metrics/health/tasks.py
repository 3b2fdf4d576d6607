"""The task bodies of the ``service_health_probe`` DAG (SPEC sections 9, 13): ``probe_services`` probes
the configured services once and stores the round's rows (``health.probe``); ``handle_incidents``
opens / resolves the incidents of the services just probed and e-mails them (``health.incidents``);
``check_late_report`` e-mails the data team once when the week due is not archived
(``health.late_report``).

The round time is the run's logical date (a manual run without one: ``run_after``) floored to the
5-minute grid. The clock is read only to refuse a round more than 10 minutes old: a backfill or a
cleared old run would record today's answers as that day's history.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone

from airflow.sdk.exceptions import AirflowSkipException

from include.investor_metrics import settings as config
from include.investor_metrics.db import apply_metrics_schema, postgres_hook
from include.investor_metrics.health.incidents import handle_incidents
from include.investor_metrics.health.late_report import check_late_report
from include.investor_metrics.health.probe import (
    SERVICES_VARIABLE,
    load_services,
    probe_all,
    probe_round,
    probe_timeout,
    public_url,
    record_checks,
)
from include.investor_metrics.period import as_instant, iso_utc
from include.investor_metrics.task_context import airflow_run_url

log = logging.getLogger(__name__)

PROBE_MAX_LAG = timedelta(minutes=10)  # a round older than this is not probed (see run_probe_round)


def _metrics_conn():
    return postgres_hook(config.METRICS_CONN_ID).get_conn()


def round_of_run(context) -> datetime:
    """The probe round of the running DAG run: its logical date (a manual run without one: when it
    was triggered), floored to the 5-minute grid."""
    dag_run = context["dag_run"]
    return probe_round(getattr(dag_run, "logical_date", None) or dag_run.run_after)


def run_probe_round(context) -> dict:
    """Task ``probe_services``: probe every configured service once, store the round's rows."""
    checked_at = round_of_run(context)
    lag = datetime.now(timezone.utc) - checked_at
    if lag > PROBE_MAX_LAG:
        # A probe measures the present: stored under an old round it would rewrite that round's
        # history with today's answers. Retries come within minutes; a backfill or a cleared old
        # run stops here.
        raise AirflowSkipException(f"probe round {iso_utc(checked_at)} is {lag} in the past: a probe can "
                                   "only measure the present, so this run records nothing")
    services = load_services()
    if not services:
        log.info("no service to probe: neither the Airflow Variable %s nor HEALTH_CHECK_SERVICES names one",
                 SERVICES_VARIABLE)
        return {"checked_at": iso_utc(checked_at), "services": [], "failed": []}
    timeout = probe_timeout()
    log.info("probe round %s: %d service(s), timeout %g s each", iso_utc(checked_at), len(services),
             timeout)
    results = probe_all(services, timeout=timeout)
    for result in results:
        where = public_url(services[result.service])
        if result.ok:
            log.info("%s ok (%s) in %s ms: %s", result.service,
                     f"HTTP {result.status_code}" if result.status_code else "TCP", result.response_ms, where)
        else:
            log.warning("%s FAILED: %s (%s)", result.service, result.error, where)
    conn = _metrics_conn()
    try:
        apply_metrics_schema(conn)
        record_checks(conn, checked_at, results)
    finally:
        conn.close()
    return {"checked_at": iso_utc(checked_at), "services": [r.service for r in results],
            "failed": [r.service for r in results if not r.ok]}


def run_incident_handling(context, probed: Mapping) -> dict:
    """Task ``handle_incidents``: open / resolve incidents of the services just probed, e-mail them."""
    services = list(probed.get("services") or [])
    if not services:
        log.info("nothing was probed this round: no incident to look at")
        return {"checked_at": probed.get("checked_at"), "opened": [], "resolved": [], "emails": [],
                "alert_history": None}
    checked_at = as_instant(probed["checked_at"])
    # A retry may follow an attempt that changed the store but died before publishing the history.
    retry = getattr(context.get("ti"), "try_number", 1) > 1
    conn = _metrics_conn()
    try:
        summary = handle_incidents(conn, services, checked_at, run_id=context["dag_run"].run_id,
                                   republish=retry, tz=config.investor_timezone(),
                                   airflow_url=airflow_run_url(context))
    finally:
        conn.close()
    log.info("incidents of round %s: opened %s, resolved %s, e-mails sent %s", summary["checked_at"],
             summary["opened"] or "none", summary["resolved"] or "none",
             [f"{e['kind']}:{e['id']}" for e in summary["emails"]] or "none")
    return summary


def run_late_report_check(context) -> dict:
    """Task ``check_late_report``: as of the run's round (not the wall clock: a retry decides as its
    first try did), e-mail ``DATA_TEAM_EMAILS`` once when the week due is not archived."""
    import os

    now = round_of_run(context)
    conn = _metrics_conn()
    try:
        apply_metrics_schema(conn)
        summary = check_late_report(conn, now, run_id=context["dag_run"].run_id,
                                    airflow_base_url=os.getenv("AIRFLOW__API__BASE_URL"))
    finally:
        conn.close()
    log.info("late-report check of round %s: the week ending %s, deadline %s: %s", summary["checked_at"],
             summary["period_end"], summary["deadline_at"], summary["status"])
    return summary
