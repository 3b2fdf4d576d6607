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
    from include.investor_metrics.weekly import task_ids as ids

    dag = dagbag.dags["investor_metrics"]
    extracts = set(ids.EXTRACT_TASKS)
    assert extracts <= set(dag.task_ids)
    validate = dag.get_task(ids.VALIDATE)
    assert set(validate.upstream_task_ids) == extracts
    compute = dag.get_task(ids.COMPUTE)
    assert ids.VALIDATE in compute.upstream_task_ids
    assert ids.COMPUTE in dag.get_task(ids.EVALUATE).upstream_task_ids
    assert ids.EVALUATE in dag.get_task(ids.ARCHIVE).upstream_task_ids
    assert dag.get_task(ids.ARCHIVE).downstream_task_ids == set(ids.EMAIL_TASKS)
    for task_id in extracts:
        # the three extracts run in parallel: none waits for another
        assert not (set(dag.get_task(task_id).upstream_task_ids) & extracts)


def test_weekly_dag_task_groups(dagbag):
    """The extracts and the e-mails are each a task group of the Graph view; nothing else is."""
    from include.investor_metrics.weekly import task_ids as ids

    dag = dagbag.dags["investor_metrics"]
    groups = {task.task_id: task.task_group.group_id for task in dag.tasks}
    assert {t for t, g in groups.items() if g == ids.EXTRACT_GROUP} == set(ids.EXTRACT_TASKS)
    assert {t for t, g in groups.items() if g == ids.EMAIL_GROUP} == set(ids.EMAIL_TASKS)
    assert {t for t, g in groups.items() if g is None} == {ids.VALIDATE, ids.COMPUTE, ids.EVALUATE,
                                                          ids.ARCHIVE}


def test_every_task_that_queries_the_source_runs_in_its_pool(dagbag):
    """The tasks that open the ChatterFix connection share the pool ``chatterfix_source`` (a
    backfill's runs cannot flood the source); the others stay in Airflow's default pool. The pool
    must exist where the DAG runs: ``make demo`` and compose init create it, an existing deployment
    runs ``airflow pools set chatterfix_source 4 "ChatterFix source database"`` once."""
    import ast

    from include.investor_metrics.contract import SOURCE_POOL
    from include.investor_metrics.weekly import task_ids as ids

    dag = dagbag.dags["investor_metrics"]
    pools = {task.task_id: task.pool for task in dag.tasks}
    assert {t for t, pool in pools.items() if pool == SOURCE_POOL} == set(ids.SOURCE_TASKS), pools
    assert set(pools.values()) == {SOURCE_POOL, "default_pool"}, pools
    # SOURCE_TASKS is what the task bodies do: the functions that open the source connection
    tree = ast.parse((PROJECT_ROOT / "include/investor_metrics/weekly/tasks.py").read_text())
    opens_source = {fn.name for fn in tree.body if isinstance(fn, ast.FunctionDef)
                    and any(isinstance(n, ast.Name) and n.id in ("source_conn", "_require_source_schema")
                            or isinstance(n, ast.Attribute) and n.attr == "CHATTERFIX_CONN_ID"
                            for n in ast.walk(fn))} - {"source_conn", "_require_source_schema"}
    assert {t.rsplit(".", 1)[-1] for t in ids.SOURCE_TASKS} == opens_source


# DAGs another branch owns that get their owner link and task docs when it merges: empty this set then.
PENDING_ELSEWHERE: set[str] = set()


def test_every_dag_links_its_owner(dagbag):
    from urllib.parse import urlsplit

    assert dagbag.dags["investor_metrics"].owner_links
    for dag_id, dag in dagbag.dags.items():
        if dag_id in PENDING_ELSEWHERE:
            continue
        owners = {task.owner for task in dag.tasks}
        assert owners and owners <= set(dag.owner_links), f"{dag_id}: owner_links {dag.owner_links}"
        for link in dag.owner_links.values():
            assert urlsplit(link).scheme in ("mailto", "https", "http"), f"{dag_id}: {link}"


def test_every_task_is_documented(dagbag):
    """Every task's page in the UI says what it does and what to do when it fails."""
    for dag_id, dag in dagbag.dags.items():
        if dag_id in PENDING_ELSEWHERE:
            continue
        for task in dag.tasks:
            assert task.doc_md and len(task.doc_md.split()) >= 15, f"{dag_id}.{task.task_id}: no doc_md"
    for task in dagbag.dags["investor_metrics"].tasks:
        assert "fail" in task.doc_md or "retr" in task.doc_md, f"{task.task_id}: nothing on failures"


def test_archive_snapshot_updates_the_snapshot_asset(dagbag):
    from include.investor_metrics.contract import SNAPSHOT_ASSET_NAME, SNAPSHOT_ASSET_URI

    dag = dagbag.dags["investor_metrics"]
    outlets = {task.task_id: [(a.name, a.uri) for a in task.outlets] for task in dag.tasks if task.outlets}
    assert outlets == {"archive_snapshot": [(SNAPSHOT_ASSET_NAME, SNAPSHOT_ASSET_URI + "/")]}


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
