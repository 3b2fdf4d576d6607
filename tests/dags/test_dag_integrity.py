"""Every DAG of the project parses, and carries what an operator needs (holds for later DAGs too)."""

from __future__ import annotations

import pytest

from tests.conftest import PROJECT_ROOT


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(PROJECT_ROOT / "dags"))


def test_no_import_errors(dagbag):
    assert dagbag.import_errors == {}, dagbag.import_errors


def test_the_weekly_dag_is_there(dagbag):
    assert "investor_metrics" in dagbag.dags


def test_every_dag_has_tags_owner_retries_and_doc(dagbag):
    assert dagbag.dags, "no DAG found"
    for dag_id, dag in dagbag.dags.items():
        assert dag.tags, f"{dag_id} has no tags"
        assert dag.doc_md and len(dag.doc_md.strip()) > 40, f"{dag_id} has no documentation"
        for task in dag.tasks:
            assert task.owner and task.owner != "airflow", f"{dag_id}.{task.task_id} has no owner"
            assert task.retries >= 2, f"{dag_id}.{task.task_id} has retries={task.retries}"


def test_weekly_dag_shape(dagbag):
    dag = dagbag.dags["investor_metrics"]
    extracts = {"extract_business_data", "extract_ai_metrics", "extract_health_checks"}
    assert extracts <= set(dag.task_ids)
    validate = dag.get_task("validate_data")
    assert set(validate.upstream_task_ids) == extracts
    compute = dag.get_task("compute_metrics")
    assert "validate_data" in compute.upstream_task_ids
    assert "compute_metrics" in dag.get_task("evaluate_alerts").upstream_task_ids
    assert "evaluate_alerts" in dag.get_task("archive_snapshot").upstream_task_ids
    for task_id in extracts:
        # the three extracts run in parallel: none waits for another
        assert not (set(dag.get_task(task_id).upstream_task_ids) & extracts)


def test_weekly_timetable_spans_the_week(dagbag):
    from datetime import datetime, timezone

    from airflow.timetables.interval import CronDataIntervalTimetable

    dag = dagbag.dags["investor_metrics"]
    assert isinstance(dag.timetable, CronDataIntervalTimetable)
    interval = dag.timetable.infer_manual_data_interval(run_after=datetime(2026, 11, 25, tzinfo=timezone.utc))
    assert (interval.end - interval.start).days == 7
    assert interval.end.isoformat() == "2026-11-22T09:00:00+00:00"  # Sunday 09:00 UTC


def test_dag_files_do_no_heavy_imports_at_parse_time():
    import subprocess
    import sys

    code = (
        "import sys, runpy; runpy.run_path(sys.argv[1]);"
        "heavy = [m for m in ('pandas', 'great_expectations', 'matplotlib', 'psycopg2') if m in sys.modules];"
        "print(','.join(heavy))"
    )
    for path in (PROJECT_ROOT / "dags").glob("*.py"):
        out = subprocess.run(
            [sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True
        )
        assert out.stdout.strip() == "", f"{path.name} imports {out.stdout.strip()} at parse time"


def test_bad_input_fails_at_once_and_outages_retry(dagbag):
    """Every task carries the retry policy: bad input (a setting, a broken rule, an unreportable
    money figure, also as the cause of another exception) fails at once; a lost connection or an
    SMTP error keeps the ordinary retries."""
    import psycopg2
    from airflow.sdk.definitions.retry_policy import RetryAction

    from include.investor_metrics.mail.send_log import EmailDeliveryError
    from include.investor_metrics.settings import ConfigError
    from include.investor_metrics.validation.runner import DataValidationError
    from include.investor_metrics.weekly.metrics.rounding import MoneyRangeError

    for dag_id, dag in dagbag.dags.items():
        for task in dag.tasks:
            assert task.retry_policy is not None, f"{dag_id}.{task.task_id} has no retry policy"
    policy = dagbag.dags["investor_metrics"].get_task("compute_metrics").retry_policy

    def action(exc):
        return policy.evaluate(exc, try_number=1, max_tries=4).action

    wrapped = RuntimeError("while staging")
    wrapped.__cause__ = ConfigError("INVESTOR_TIMEZONE is bad")
    assert action(ConfigError("SMTP_PORT must be an integer")) is RetryAction.FAIL
    assert action(DataValidationError("rule broken", [])) is RetryAction.FAIL
    assert action(MoneyRangeError("too large")) is RetryAction.FAIL
    assert action(wrapped) is RetryAction.FAIL
    assert action(psycopg2.OperationalError("server closed the connection")) is RetryAction.DEFAULT
    assert action(EmailDeliveryError("450 try later")) is RetryAction.DEFAULT
    assert action(ConnectionResetError()) is RetryAction.DEFAULT
