"""
### Weekly investor metrics for ChatterFix

Owner: data engineering. Contract: `SPEC.md` of the project (sections 2–8).

Every Sunday 09:00 in `INVESTOR_TIMEZONE` (cron overridable with `INVESTOR_METRICS_SCHEDULE`) this
DAG reports on the week that ends at that moment, **[end − 7 calendar days, end)**:

1. the task group `extract`: `extract.extract_business_data`, `extract.extract_ai_metrics`,
   `extract.extract_health_checks` (in parallel) run the aggregate queries of
   `include/investor_metrics/sql/extract/*.sql` in PostgreSQL and stage per-customer /
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
6. the task group `email`, in parallel: `email.send_alert_notifications` e-mails each critical/high
   alert on its own and `email.send_weekly_summary` e-mails the summary (KPIs vs last week, 12-week
   charts, alerts, the snapshot attached) to each of `INVESTOR_EMAILS` on a message of their own —
   exactly once per period and recipient (send log in `investor_metrics.send_log`); a scheduled run
   also sends what the last `INVESTOR_OWED_EMAIL_WEEKS` (4) weeks still owe. Backfills and on-demand
   runs without `send_email` skip both: `archive_snapshot` marks them skipped (as a
   ShortCircuitOperator would), so they never start. A validation failure e-mails
   `DATA_TEAM_EMAILS` (if set), never the investors.

**Operating it.** Tasks that query the ChatterFix database (the two source extracts,
`validate_data`, `evaluate_alerts`) run in the pool `chatterfix_source` (created by `make demo` and
compose init; elsewhere: `airflow pools set chatterfix_source 4 "ChatterFix source database"`):
without that pool they are never scheduled, and the run's note says so. Every published snapshot
updates the Asset `investor_metrics_snapshot`. Bad input fails a task at once; a lost connection or
an SMTP error retries (`include/investor_metrics/retry_rules.py`). Each task's own documentation
says what to do.

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

from datetime import timedelta

import pendulum
from airflow.sdk import Param, TaskGroup, dag, get_current_context, task
from airflow.timetables.interval import CronDataIntervalTimetable

from include.investor_metrics import settings as config
from include.investor_metrics.assets import SNAPSHOT_ASSET
from include.investor_metrics.contract import SOURCE_POOL
from include.investor_metrics.period import INSTANT_PATTERN
from include.investor_metrics.retry_rules import BAD_INPUT_FAILS_AT_ONCE
from include.investor_metrics.weekly import email_tasks
from include.investor_metrics.weekly import task_ids as ids
from include.investor_metrics.weekly import tasks as pipeline

OWNER, OWNER_LINK = config.dag_owner()  # the owner's name in the DAG list links to OWNER_LINK
TIMEZONE = config.investor_timezone()


@dag(
    schedule=CronDataIntervalTimetable(config.metrics_schedule(), timezone=TIMEZONE),
    start_date=pendulum.datetime(2020, 1, 1, tz=TIMEZONE),
    catchup=False,
    max_active_runs=3,
    dagrun_timeout=timedelta(hours=2),
    doc_md=__doc__,
    owner_links={OWNER: OWNER_LINK},
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
    with TaskGroup(ids.EXTRACT_GROUP, tooltip="the period's source frames, staged as Parquet") as extracts:
        @task(pool=SOURCE_POOL)
        def extract_business_data() -> str:
            """Reads the week's customers, subscriptions, leads, NPS and usage (and the depth figures of
            SPEC 4b) from the ChatterFix database (`chatterfix_db`, pool `chatterfix_source`); stages
            them as Parquet and returns the folder. Fails at once on a changed source schema or a bad
            `period_end`; a lost connection retries."""
            return pipeline.extract_business_data(get_current_context())

        @task(pool=SOURCE_POOL)
        def extract_ai_metrics() -> str:
            """Reads the week's `ai_requests` per provider from the ChatterFix database (pool
            `chatterfix_source`); stages them as Parquet and returns the folder. Fails at once on a
            changed source schema; a lost connection retries."""
            return pipeline.extract_ai_metrics(get_current_context())

        @task
        def extract_health_checks() -> str:
            """Reads the week's service health checks from the metrics store (`investor_metrics_db`,
            written by `service_health_probe`); stages them as Parquet and returns the folder. A lost
            connection retries."""
            return pipeline.extract_health_checks(get_current_context())

        business, ai, health = extract_business_data(), extract_ai_metrics(), extract_health_checks()

    @task(pool=SOURCE_POOL, on_failure_callback=email_tasks.notify_data_team_of_failure)
    def validate_data() -> dict:
        """Checks every source rule of the week with Great Expectations, inside PostgreSQL (pool
        `chatterfix_source`); returns the data-quality summary. Bad data fails at once, naming table,
        column, rule and bad-row count, and e-mails `DATA_TEAM_EMAILS`: fix the source rows (Data Docs
        under `data_quality/`), then clear the run. A lost connection retries."""
        return pipeline.validate_data(get_current_context())

    @task
    def compute_metrics(business: str, ai: str, health: str, data_quality: dict) -> str:
        """Computes every metric (pandas, `weekly/metrics/`) from the staged frames; stages
        `snapshot.json` and returns its path. Staged data gone (another worker's local folder, or
        cleaned): fails at once, saying to clear the run from the extracts."""
        return pipeline.compute_metrics(get_current_context(), business, ai, health, data_quality)

    @task(pool=SOURCE_POOL)
    def evaluate_alerts(snapshot_path: str) -> str:
        """Applies the alert rules to the snapshot (the churn-spike rule reads 8 weeks of churn history
        from the source: pool `chatterfix_source`); stages the snapshot with its alerts and returns the
        path. A bad threshold setting fails at once, naming it; a lost connection retries."""
        return pipeline.evaluate_alerts(get_current_context(), snapshot_path)

    @task(outlets=[SNAPSHOT_ASSET])
    def archive_snapshot(snapshot_path: str) -> dict:
        """Stores the snapshot and its alerts in the metrics store (one transaction), publishes the
        period file, `metrics_snapshot.json` and `alert_history.json`, and emits the Asset
        `investor_metrics_snapshot` (period end, type, MRR). Runs that e-mail nobody skip the e-mail
        tasks from here. A lost connection retries; safe to clear (a rerun republishes the same
        files); staged input gone and nothing stored: fails, saying to clear from the extracts."""
        return pipeline.archive_snapshot(get_current_context(), snapshot_path)

    with TaskGroup(ids.EMAIL_GROUP, tooltip="the investors' e-mails, each once (send log)") as emails:
        @task
        def send_alert_notifications() -> list[str]:
            """E-mails each critical/high alert of the period on its own to `INVESTOR_EMAILS`, once per
            recipient (send log), then alerts earlier weeks still owe; returns what it sent. An SMTP
            error retries; what is still owed fails the task (the next scheduled run sends it too)."""
            return email_tasks.send_alert_notifications(get_current_context())

        @task
        def send_weekly_summary() -> bool:
            """E-mails the weekly summary (KPIs, 12-week charts, alerts, the snapshot attached) to each of
            `INVESTOR_EMAILS`, once per period and recipient (send log); returns whether it sent now. An
            SMTP error retries; safe to clear (nobody gets it twice)."""
            return email_tasks.send_weekly_summary(get_current_context())

        send_alert_notifications(), send_weekly_summary()

    data_quality = validate_data()
    extracts >> data_quality
    archived = archive_snapshot(evaluate_alerts(compute_metrics(business, ai, health, data_quality)))
    # In parallel: a failed alert e-mail never holds up the summary (and the other way round).
    archived >> emails


investor_metrics()
