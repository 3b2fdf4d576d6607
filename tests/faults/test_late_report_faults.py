"""A weekly run that hangs, for real, and the late-report check that tells the data team (SPEC 13,
docs/adr/late-report.md).

The weekly DAG runs with ``dag.test()`` in a process of its own (its own AIRFLOW_HOME and SQLite
metadata database, its own session so it is killed as a group) against a real PostgreSQL whose
source tables this test holds under ``LOCK TABLE … IN ACCESS EXCLUSIVE MODE``: the run's extract
waits on the lock (seen in ``pg_stat_activity``), the week is not archived, and the probe DAG's
check — as of a round past the deadline — e-mails the data team once, while the run still hangs.
Then the lock is released (the extract goes on) and the run is killed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import timedelta

import pytest

from dev.demo_data import loader
from dev.stack import smtp_sink
from include.investor_metrics.db import connect
from include.investor_metrics.health import late_report
from tests.conftest import PROJECT_ROOT, free_port
from tests.unit.health.test_late_report import DATA_TEAM, DEADLINE, PREVIOUS, store_week

SOURCE_TABLES = ("customers", "subscriptions", "leads", "nps_responses", "usage_events", "ai_requests",
                 "investor_metrics.service_health_checks")
RUN_SCRIPT = f"""
import sys
sys.path.insert(0, {str(PROJECT_ROOT)!r})
from airflow.dag_processing.dagbag import DagBag
dag = DagBag(dag_folder={str(PROJECT_ROOT / "dags" / "investor_metrics.py")!r}).dags["investor_metrics"]
for task in dag.tasks:
    task.retries = 0
dag.test(run_conf={{"period_end": "2026-11-22T09:00:00Z"}}, logical_date=None)
"""


def lock_waiters(settings) -> list[tuple[int, str]]:
    """(pid, query) of the sessions of ``settings``' database waiting on a lock."""
    conn = connect(settings)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT pid, query FROM pg_stat_activity WHERE datname = current_database() "
                        "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()")
            return cur.fetchall()
    finally:
        conn.close()


def wait_for(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


@pytest.fixture()
def stack(fresh_database, tmp_path, monkeypatch):
    conn = connect(fresh_database)
    loader.prepare_tables(conn)  # the source tables (empty) and the metrics store
    store_week(conn, PREVIOUS)  # the week before was archived: the pipeline is deployed
    conn.close()
    port = free_port()
    sink = smtp_sink.start(tmp_path / "outbox", port=port)
    settings = {
        "SMTP_SERVER": "127.0.0.1", "SMTP_PORT": str(port), "SMTP_STARTTLS": "false", "SMTP_SSL": "false",
        "INVESTOR_EMAIL": "metrics@chatterfix.example", "INVESTOR_EMAILS": "founder@chatterfix.example",
        "DATA_TEAM_EMAILS": ",".join(DATA_TEAM),
        "DB_HOST": fresh_database.host, "DB_PORT": str(fresh_database.port),
        "DB_NAME": fresh_database.dbname, "DB_USER": fresh_database.user or "",
        "INVESTOR_ARCHIVE_DIR": str(tmp_path / "archive"), "INVESTOR_STAGING_DIR": str(tmp_path / "staging"),
        "INVESTOR_TIMEZONE": "UTC",
    }
    for key, value in settings.items():
        monkeypatch.setenv(key, value)
    for key in ("INVESTOR_REPORT_DEADLINE", "INVESTOR_METRICS_SCHEDULE", "HEALTH_CHECK_SERVICES",
                "AIRFLOW_CONN_SMTP_DEFAULT", "AIRFLOW_CONN_INVESTOR_METRICS_DB",
                "AIRFLOW_CONN_CHATTERFIX_DB"):
        monkeypatch.delenv(key, raising=False)
    home = tmp_path / "airflow-home"
    home.mkdir()
    run_env = {**os.environ, "AIRFLOW_HOME": str(home),
               "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db"}
    subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], env=run_env, check=True,
                   capture_output=True, timeout=300)
    yield fresh_database, run_env, tmp_path
    sink.stop()


def test_a_run_that_hangs_on_a_locked_source_table_is_reported_once(stack):
    settings, run_env, tmp_path = stack
    locker = connect(settings)  # psycopg2: the LOCK holds until this transaction ends
    with locker.cursor() as cur:
        cur.execute(f"LOCK TABLE {', '.join(SOURCE_TABLES)} IN ACCESS EXCLUSIVE MODE")
    log_file = (tmp_path / "weekly-run.log").open("w")
    run = subprocess.Popen([sys.executable, "-c", RUN_SCRIPT], env=run_env, cwd=PROJECT_ROOT,
                           stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True)
    probe = connect(settings)
    pid = None
    try:
        waiting = wait_for(lambda: lock_waiters(settings) or run.poll() is not None, 240,
                           "the weekly run's extract to wait on the locked source table")
        assert run.poll() is None, (tmp_path / "weekly-run.log").read_text()[-3000:]
        [(pid, query)] = waiting
        # one of the extracts' queries (pg_stat_activity keeps only its first 1 kB: its header comment)
        assert any(query.strip()[:200] in path.read_text()
                   for path in (PROJECT_ROOT / "include" / "investor_metrics" / "sql").rglob("*.sql")), query

        # the run hangs; the probe DAG's check, as of a round 5 minutes past the deadline
        summary = late_report.check_late_report(probe, DEADLINE + timedelta(minutes=5), run_id="probe")
        assert (summary["period_end"], summary["status"], summary["emailed"]) == (
            "2026-11-22T09:00:00Z", "late", True)
        later = late_report.check_late_report(probe, DEADLINE + timedelta(minutes=10), run_id="probe")
        assert later["status"] == "late_already_sent"
        mails = smtp_sink.messages(tmp_path / "outbox")
        assert len(mails) == len(DATA_TEAM)  # one per data-team address, nothing else
        assert all(b"late_report:2026-11-22T09:00:00Z" in m.read_bytes() for m in mails)
        assert run.poll() is None and [p for p, _ in lock_waiters(settings)] == [pid]  # still hanging
    finally:
        locker.rollback()  # release the lock: the extract goes on
        locker.close()
        probe.close()
        try:
            if pid is not None:
                wait_for(lambda: pid not in [p for p, _ in lock_waiters(settings)], 30,
                         "the extract to get its lock once released")
        finally:
            if run.poll() is None:
                os.killpg(run.pid, signal.SIGTERM)
                try:
                    run.wait(20)
                except subprocess.TimeoutExpired:
                    os.killpg(run.pid, signal.SIGKILL)
                    run.wait(10)
            log_file.close()
