"""health/tasks.py: the probe DAG's two task bodies (nothing configured, an old round refused), and
the DAG itself through ``dag.test()``: it probes, stores the round and raises the incident."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import pytest

from include.investor_metrics.contract import PROBE_INTERVAL
from include.investor_metrics.db import connect
from include.investor_metrics.health import tasks
from include.investor_metrics.health.probe import probe_all, probe_round, record_checks
from tests.conftest import PROJECT_ROOT
from tests.unit.health.peers import (  # noqa: F401 - env, service: fixtures
    INVESTORS,
    TIMEOUT,
    checks,
    env,
    incidents,
    iso,
    outbox,
    service,
)


def task_context(logical_date: datetime) -> dict:
    return {"dag_run": SimpleNamespace(logical_date=logical_date, run_after=logical_date,
                                       run_id="manual__test")}


def test_no_configured_service_is_nothing_to_probe(env, caplog):  # noqa: F811 - the fixtures
    now = datetime.now(timezone.utc)
    caplog.set_level("INFO", logger="include.investor_metrics.health.tasks")
    summary = tasks.run_probe_round(task_context(now))
    assert summary == {"checked_at": iso(probe_round(now)), "services": [], "failed": []}
    assert "no service to probe" in caplog.text
    assert tasks.run_incident_handling(task_context(now), summary)["opened"] == []
    assert checks(env.db) == []


def test_an_old_round_is_not_probed(env, service, monkeypatch):  # noqa: F811 - the fixtures
    """A backfill or a cleared old run would store today's answers as history: it records nothing."""
    from airflow.sdk.exceptions import AirflowSkipException

    monkeypatch.setenv("HEALTH_CHECK_SERVICES", f"api={service().url}")
    with pytest.raises(AirflowSkipException, match="in the past"):
        tasks.run_probe_round(task_context(datetime.now(timezone.utc) - timedelta(minutes=30)))
    assert checks(env.db) == []


# --------------------------------------------------------------------------- through the DAG
@pytest.fixture(scope="module")
def airflow_db():
    subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], check=True, capture_output=True)


def test_the_dag_probes_and_raises_the_incident(env, service, airflow_db, monkeypatch):  # noqa: F811 - the fixtures
    from airflow.dag_processing.dagbag import DagBag

    api, gone = service(), service().down()
    services = {"api": api.url, "gone": gone.url}
    monkeypatch.setenv("HEALTH_CHECK_SERVICES", ",".join(f"{k}={v}" for k, v in services.items()))
    # two rounds already failed for "gone": the DAG's round (the current one) is its third
    now = datetime.now(timezone.utc)
    current = probe_round(now)
    conn = connect(env.db)
    try:
        for back in (2, 1):
            record_checks(conn, current - back * PROBE_INTERVAL,
                          probe_all({"gone": gone.url}, timeout=TIMEOUT))
    finally:
        conn.close()

    bag = DagBag(dag_folder=str(PROJECT_ROOT / "dags" / "service_health_probe.py"))
    dag = bag.dags["service_health_probe"]
    assert dag.max_active_runs == 1 and not dag.catchup and dag.dagrun_timeout <= timedelta(minutes=5)
    dr = dag.test(logical_date=now)  # stored under its round: the logical date floored to 5 minutes
    states = {ti.task_id: str(ti.state) for ti in dr.get_task_instances()}
    assert str(dr.state) in ("success", "DagRunState.SUCCESS"), states

    round_rows = [row for row in checks(env.db) if row[1] == current]
    assert [(r[0], r[2], r[4], r[5]) for r in round_rows] == [
        ("api", True, 200, None), ("gone", False, None, "connection refused")]
    [incident] = incidents(env.db)
    assert (incident["service"], incident["period_start"], incident["period_end"]) == (
        "gone", current - 2 * PROBE_INTERVAL, current)
    assert incident["notified"] and incident["run_id"] == dr.run_id
    mails = outbox(env)
    assert sorted(m["X-Envelope-To"].strip() for m in mails) == sorted(INVESTORS)
    assert {m["Subject"] for m in mails} == {
        "[CRITICAL] ChatterFix: gone is down: 3 health probes failed in a row"}
    assert (env.archive / "alert_history.json").exists()
