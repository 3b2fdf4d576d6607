"""
### Weekly investor metrics for ChatterFix

Owner: data engineering. Contract: `SPEC.md` of the project (sections 2–8).

Every Sunday 09:00 in `INVESTOR_TIMEZONE` (cron overridable with `INVESTOR_METRICS_SCHEDULE`) this
DAG reports on the week that ends at that moment, **[end − 7 calendar days, end)**:

1. `extract_business_data`, `extract_ai_metrics`, `extract_health_checks` (in parallel) run the
   aggregate queries of `include/investor_metrics/sql/extract/*.sql` in PostgreSQL and stage per-customer /
   per-provider / per-service frames as Parquet under a run-scoped folder;
2. `validate_data` checks every source rule with Great Expectations, inside PostgreSQL; a failure
   stops the run here and names table, column, rule and bad-row count (Data Docs in
   `docs/investors/data_quality/`);
3. `compute_metrics` computes every metric with pandas — each definition is one small function in
   `include/investor_metrics/weekly/metrics/` (their docstrings list them all: MRR/ARR, growth,
   MRR movements, churn, NPS, utilisation, at-risk, uptime, AI usage);
4. `evaluate_alerts` applies the alert rules (`include/investor_metrics/weekly/alerts/rules.py`:
   uptime, critical failure, MRR growth, churn spike against the 8 previous weeks, API response
   time, AI accuracy, degraded services; thresholds overridable) and stages the snapshot with its
   alerts;
5. `archive_snapshot` stores the snapshot and its alerts in `investor_metrics.snapshots` /
   `investor_metrics.alerts` (one transaction under the period's lock), then, from the committed
   store, writes `metrics_YYYY-MM-DD_HH-MM-SS.json` (on-demand reports: `on_demand/...`),
   `metrics_snapshot.json` (always the latest period) and `alert_history.json`;
6. in parallel, `send_alert_notifications` e-mails each critical/high alert on its own and
   `send_weekly_summary` e-mails the summary (KPIs vs last week, 12-week charts, alerts, the
   snapshot attached) to each of `INVESTOR_EMAILS` on a message of their own — exactly once per
   period and recipient (send log in `investor_metrics.send_log`); a scheduled run also sends what
   the last `INVESTOR_OWED_EMAIL_WEEKS` (4) weeks still owe. Backfills and on-demand runs without
   `send_email` skip both: `archive_snapshot` marks them skipped (as a ShortCircuitOperator would), so
   they never start. A validation failure e-mails `DATA_TEAM_EMAILS` (if set), never the investors.

**Run types.** Scheduled: the week ending at the data-interval end. Backfill
(`airflow backfill create --dag-id investor_metrics ...`): the same for past weeks, never moving
the latest pointer back. Manual ("Trigger" with params): the 7 days before `period_end`
(default: when triggered, truncated to the whole second). The trigger form, `airflow dags trigger -c`
and Airflow's REST API check `period_end` against its pattern (ISO 8601 with seconds and an
offset, years 1970–9999); only the run can compare it with its own trigger time, so a `period_end`
more than 5 minutes in the future fails the run's first tasks (the extracts) at once, without
retries, before anything is computed.
"""

from __future__ import annotations

import os
from datetime import timedelta

import pendulum
from airflow.sdk import Param, dag, get_current_context, task
from airflow.timetables.interval import CronDataIntervalTimetable

from include.investor_metrics import settings as config
from include.investor_metrics.period import INSTANT_PATTERN
from include.investor_metrics.retry_rules import BAD_INPUT_FAILS_AT_ONCE
from include.investor_metrics.weekly import email_tasks
from include.investor_metrics.weekly import tasks as pipeline

OWNER = os.getenv("INVESTOR_METRICS_OWNER", "data-engineering")
TIMEZONE = config.investor_timezone()


@dag(
    schedule=CronDataIntervalTimetable(config.metrics_schedule(), timezone=TIMEZONE),
    start_date=pendulum.datetime(2020, 1, 1, tz=TIMEZONE),
    catchup=False,
    max_active_runs=3,
    dagrun_timeout=timedelta(hours=2),
    doc_md=__doc__,
    tags=["investor-metrics", "weekly", "reporting"],
    default_args={
        "owner": OWNER,
        "retries": 3,
        "retry_delay": timedelta(minutes=2),
        "retry_exponential_backoff": True,
        # a malformed setting, bad data or an unreportable money figure fails at once; a lost
        # connection or an SMTP error retries (include/investor_metrics/retry_rules.py)
        "retry_policy": BAD_INPUT_FAILS_AT_ONCE,
    },
    params={
        "period_end": Param(
            None,
            type=["null", "string"],
            pattern=INSTANT_PATTERN,
            title="Period end",
            description=(
                "Manual runs only: the report covers the 7 days before this instant. ISO 8601 with "
                "seconds and an offset, years 1970–9999, e.g. 2026-11-22T09:00:00Z. Empty = the moment "
                "the run is triggered (to the second). This form checks the format only: a period_end "
                "more than 5 minutes after the trigger time fails the run's first tasks."
            ),
        ),
        "send_email": Param(
            False,
            type="boolean",
            title="Send the e-mail",
            description="Manual runs only: also e-mail the report to INVESTOR_EMAILS.",
        ),
    },
)
def investor_metrics():
    @task
    def extract_business_data() -> str:
        return pipeline.extract_business_data(get_current_context())

    @task
    def extract_ai_metrics() -> str:
        return pipeline.extract_ai_metrics(get_current_context())

    @task
    def extract_health_checks() -> str:
        return pipeline.extract_health_checks(get_current_context())

    @task(on_failure_callback=email_tasks.notify_data_team_of_failure)
    def validate_data() -> dict:
        return pipeline.validate_data(get_current_context())

    @task
    def compute_metrics(business: str, ai: str, health: str, data_quality: dict) -> str:
        return pipeline.compute_metrics(get_current_context(), business, ai, health, data_quality)

    @task
    def evaluate_alerts(snapshot_path: str) -> str:
        return pipeline.evaluate_alerts(get_current_context(), snapshot_path)

    @task
    def archive_snapshot(snapshot_path: str) -> dict:
        return pipeline.archive_snapshot(get_current_context(), snapshot_path)

    @task
    def send_alert_notifications() -> list[str]:
        return email_tasks.send_alert_notifications(get_current_context())

    @task
    def send_weekly_summary() -> bool:
        return email_tasks.send_weekly_summary(get_current_context())

    business, ai, health = extract_business_data(), extract_ai_metrics(), extract_health_checks()
    data_quality = validate_data()
    [business, ai, health] >> data_quality
    archived = archive_snapshot(evaluate_alerts(compute_metrics(business, ai, health, data_quality)))
    # In parallel: a failed alert e-mail never holds up the summary (and the other way round).
    archived >> [send_alert_notifications(), send_weekly_summary()]


investor_metrics()
