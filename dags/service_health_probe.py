"""
### Service health probes for ChatterFix

Owner: data engineering. Contract: `SPEC.md` of the project (sections 3, 6, 9); the work lives in
`include/investor_metrics/health/` (`tasks.py` the task bodies, `probe.py`, `incidents.py`).

Every 5 minutes (UTC grid; no catchup, one run at a time, a run times out after 4 minutes):

1. `probe_services` GETs every configured service at once — the Airflow Variable
   `health_check_services` (`{"name": "url"}`) when set, else `HEALTH_CHECK_SERVICES`
   (`name=url,...`) — each within `HEALTH_CHECK_TIMEOUT_SECONDS` (10). 2xx/3xx is ok (redirects are
   not followed); `tcp://host:port` only opens a connection. One row per service goes to
   `investor_metrics.service_health_checks`, keyed by the round (the run's logical date floored to
   5 minutes): a retry replaces the round's rows. An unreachable or misconfigured URL is a failed
   check with its reason, not a failed task. No service configured: nothing to do.
2. `handle_incidents`: a service with 3 failed probes in a row opens one `critical_system_failure`
   alert (critical) and e-mails `INVESTOR_EMAILS` at once; more failures add nothing. The first ok
   probe after it resolves the incident and e-mails that once. Each e-mail goes out exactly once
   (send log); `alert_history.json` is republished on every change.

The weekly `investor_metrics` DAG reads these rows for uptime (`extract_health_checks`).
"""

from __future__ import annotations

import os
from datetime import timedelta

import pendulum
from airflow.sdk import dag, get_current_context, task
from airflow.timetables.trigger import CronTriggerTimetable

from include.investor_metrics import contract
from include.investor_metrics.health import tasks as health
from include.investor_metrics.retry_rules import BAD_INPUT_FAILS_AT_ONCE

OWNER = os.getenv("INVESTOR_METRICS_OWNER", "data-engineering")


@dag(
    schedule=CronTriggerTimetable(contract.PROBE_CRON, timezone="UTC"),
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(minutes=4),
    doc_md=__doc__,
    tags=["investor-metrics", "health-probes"],
    default_args={
        "owner": OWNER,
        "retries": 2,
        "retry_delay": timedelta(seconds=20),
        "execution_timeout": timedelta(minutes=2),
        "retry_policy": BAD_INPUT_FAILS_AT_ONCE,  # a malformed setting fails at once
    },
)
def service_health_probe():
    @task
    def probe_services() -> dict:
        return health.run_probe_round(get_current_context())

    @task
    def handle_incidents(probed: dict) -> dict:
        return health.run_incident_handling(get_current_context(), probed)

    handle_incidents(probe_services())


service_health_probe()
