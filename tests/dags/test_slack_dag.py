"""The Slack DAG through Airflow's own task runner (``dag.test()``), the Slack provider, a real
PostgreSQL store and the loopback webhook sink.

Airflow 3.3's ``dag.test()`` creates a manual run and has no way to give it triggering asset events
(``get_or_create_dagrun`` attaches none), so the asset-triggered path is tested on the task body
with the SDK's own event classes (tests/unit/slack/); here the DAG runs as an operator's manual run
whose conf names the stored week, and with no triggering event at all."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from include.investor_metrics import contract
from tests.conftest import PROJECT_ROOT
from tests.unit.slack.helpers import WEEK_BEFORE, snapshot, store

CONN_ENV = "AIRFLOW_CONN_" + contract.SLACK_CONN_ID.upper()


@pytest.fixture(scope="module")
def airflow_db():
    subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], check=True, capture_output=True)


@pytest.fixture()
def stack(monkeypatch, metrics_db, metrics_conn, tmp_path, airflow_db):
    from dev.stack import slack_sink

    sink = slack_sink.start(tmp_path / "slack")
    for key, value in {"DB_HOST": metrics_db.host, "DB_PORT": str(metrics_db.port),
                       "DB_NAME": metrics_db.dbname, "DB_USER": metrics_db.user or "",
                       "INVESTOR_TIMEZONE": "UTC",
                       CONN_ENV: json.dumps({"conn_type": "slackwebhook",
                                             "password": sink.webhook_url})}.items():
        monkeypatch.setenv(key, value)
    store(metrics_conn, snapshot(WEEK_BEFORE, mrr=30820.0))
    store(metrics_conn, snapshot())
    yield sink
    sink.stop()


def slack_dag():
    from airflow.dag_processing.dagbag import DagBag

    path = PROJECT_ROOT / "dags" / "investor_metrics_slack.py"
    return DagBag(dag_folder=str(path)).dags[contract.SLACK_DAG_ID]


def run(conf=None):
    dag = slack_dag()
    dr = dag.test(run_conf=conf, logical_date=None)
    return {ti.task_id: str(getattr(ti.state, "value", ti.state)) for ti in dr.get_task_instances()}


def test_a_manual_run_posts_the_named_week_once(stack):
    from dev.stack import slack_sink

    conf = {"period_end": "2026-11-22T09:00:00Z", "series": "weekly"}
    assert run(conf) == {"post_slack_update": "success"}
    [message] = slack_sink.messages(stack.folder)
    assert message["payload"]["text"].startswith("ChatterFix investor metrics — Week ending 22 Nov 2026: "
                                                 "MRR $32,110 (+$1,290 (+4.2%) vs previous week)")
    assert run(conf) == {"post_slack_update": "success"}  # a second run: the send log holds it
    assert len(stack.calls) == 1


def test_a_run_with_no_snapshot_event_is_skipped(stack):
    assert run() == {"post_slack_update": "skipped"}
    assert stack.calls == []


def test_the_dag_is_scheduled_on_the_snapshot_asset():
    from airflow.sdk import Asset

    assets = slack_dag().timetable.asset_condition.objects
    assert [(a.name, a.uri) for a in assets] == [
        (contract.SNAPSHOT_ASSET_NAME, Asset(name="x", uri=contract.SNAPSHOT_ASSET_URI).uri)]
