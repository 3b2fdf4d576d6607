"""
### Service health probes for ChatterFix

Owner: data engineering. Contract: `SPEC.md` of the project (sections 3, 6, 9, 13); the work lives in
`include/investor_metrics/health/` (`tasks.py` the task bodies, `probe.py`, `incidents.py`,
`late_report.py`).

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
3. `check_late_report`, beside the probes (it never holds them up, nor they it): the weekly report
   is late when the week due — the latest week of the weekly DAG's schedule ending at least
   `INVESTOR_REPORT_DEADLINE` minutes (120) before this round — has no weekly snapshot in the
   metrics store; then `DATA_TEAM_EMAILS` is e-mailed once for that week (docs/adr/late-report.md).

The weekly `investor_metrics` DAG reads these rows for uptime (`extract.extract_health_checks`).
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import dag, get_current_context, task
from airflow.timetables.trigger import CronTriggerTimetable

from include.investor_metrics import contract
from include.investor_metrics import settings as config
from include.investor_metrics.health import tasks as health
from include.investor_metrics.retry_rules import BAD_INPUT_FAILS_AT_ONCE

OWNER, OWNER_LINK = config.dag_owner()  # the owner's name in the DAG list links to OWNER_LINK

PROBE_DOC = """
#### probe_services

GETs every configured service at once (Variable `health_check_services`, else
`HEALTH_CHECK_SERVICES`), each within `HEALTH_CHECK_TIMEOUT_SECONDS`; 2xx/3xx is ok. One row per
service in `investor_metrics.service_health_checks` under this run's round; a retry replaces them.
A round more than 10 minutes old is skipped (a probe measures the present).
"""

INCIDENTS_DOC = """
#### handle_incidents

For the services just probed: 3 failed probes in a row open one `critical_system_failure` alert
and e-mail `INVESTOR_EMAILS` at once; the first ok probe resolves it and e-mails that. Each e-mail
exactly once (send log); `alert_history.json` republished on every change.
"""

LATE_REPORT_DOC = """
#### check_late_report

Is the weekly report late? As of this run's round (its logical date floored to 5 minutes, not the
wall clock), the week due is the latest week of the `investor_metrics` schedule
(`INVESTOR_METRICS_SCHEDULE` in `INVESTOR_TIMEZONE`) that ended at least `INVESTOR_REPORT_DEADLINE`
minutes (default 120) ago. When the metrics store holds no weekly snapshot for it — the run failed,
hangs, or never started — `DATA_TEAM_EMAILS` gets one e-mail for that week (send-log kind
`late_report`, key the period end); later rounds send nothing more. Not watched before the store
holds a first weekly snapshot. Retries on a lost database or SMTP connection; a malformed setting
fails at once, naming it. Returns `{period_end, deadline_at, status, emailed}`; `status` is
`archived`, `not_watched`, `late`, `late_already_sent` or `late_nobody_to_tell`.
"""


@dag(
    schedule=CronTriggerTimetable(contract.PROBE_CRON, timezone="UTC"),
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(minutes=4),
    doc_md=__doc__,
    owner_links={OWNER: OWNER_LINK},
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
    @task(doc_md=PROBE_DOC)
    def probe_services() -> dict:
        return health.run_probe_round(get_current_context())

    @task(doc_md=INCIDENTS_DOC)
    def handle_incidents(probed: dict) -> dict:
        return health.run_incident_handling(get_current_context(), probed)

    @task(doc_md=LATE_REPORT_DOC)
    def check_late_report() -> dict:
        return health.run_late_report_check(get_current_context())

    handle_incidents(probe_services())
    check_late_report()  # no dependency on the probes: a slow store or SMTP server blocks no probe


service_health_probe()
