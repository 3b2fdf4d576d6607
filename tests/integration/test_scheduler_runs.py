"""Backfills and manual runs through the real scheduler (LocalExecutor, its own AIRFLOW_HOME).

The stack is the run command's (``dev/stack/devstack.py``) pointed at a fresh database of the test
server, with generator data ending 2026-11-22 09:00 UTC. Runs are created the supported ways: a
backfill through Airflow's REST API (what ``airflow backfill create`` and the UI dialog do) and
manual runs with params.
"""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import quote

import pytest

from dev.demo_data import loader
from include.investor_metrics.db import connect
from include.investor_metrics.settings import PostgresSettings
from tests.conftest import demo_stack

pytestmark = pytest.mark.stack

DATA_END = datetime(2026, 11, 22, 9, tzinfo=timezone.utc)
BACKFILL_WEEK_ENDS = ["2026-10-11", "2026-10-18", "2026-10-25", "2026-11-01", "2026-11-08", "2026-11-15"]


@pytest.fixture(scope="module")
def stack(pg_server: PostgresSettings, tmp_path_factory):
    base = tmp_path_factory.mktemp("scheduler")

    def load(settings):
        loader.load(settings, end=DATA_END, span_days=120, seed=5, progress=False)

    with demo_stack(pg_server, base, "cfx_sched", load) as (_env, settings, client, _password):
        yield {"client": client, "archive": base / "archive", "outbox": base / "state" / "outbox",
               "settings": settings, "state": base / "state"}


def _wait_runs(client, predicate, expected: int, timeout: float = 900) -> list[dict]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = [r for r in client.dag_runs("investor_metrics", limit=100) if predicate(r)]
        if sum(r["state"] in ("success", "failed") for r in runs) >= expected:
            return runs
        time.sleep(3)
    raise AssertionError(f"runs did not finish: {[(r['dag_run_id'], r['state']) for r in runs]}")


def _snapshot(archive: Path, day: str) -> dict:
    return json.loads((archive / f"metrics_{day}_09-00-00.json").read_text())


def test_backfill_manual_and_reprocess_through_the_scheduler(stack):
    client, archive = stack["client"], stack["archive"]
    client.set_paused("investor_metrics", False)
    # The scheduler creates the run of the latest complete week (catchup is off) …
    scheduled = _wait_runs(client, lambda r: r["run_type"] == "scheduled", 1)
    assert [r["state"] for r in scheduled] == ["success"]
    latest_end = json.loads((archive / "metrics_snapshot.json").read_text())["period"]["end"]

    # … and a backfill of 6 weeks runs 3 at a time, in any order.
    backfill = client.create_backfill("investor_metrics", "2026-10-04T09:00:00Z", "2026-11-08T09:00:00Z",
                                      max_active_runs=3)
    runs = _wait_runs(client, lambda r: r["run_type"] == "backfill", 6)
    assert sorted(r["state"] for r in runs) == ["success"] * 6, [(r["dag_run_id"], r["state"]) for r in runs]
    for day in BACKFILL_WEEK_ENDS:
        snap = _snapshot(archive, day)
        assert snap["period"]["type"] == "backfill"
        assert snap["period"]["end"] == f"{day}T09:00:00Z"
    assert json.loads((archive / "metrics_snapshot.json").read_text())["period"]["end"] == latest_end
    # archive_snapshot skipped the e-mail tasks of every backfill run: skipped, and never started
    for run in runs:
        tis = client.request("GET", "/api/v2/dags/investor_metrics/dagRuns/"
                                    f"{quote(run['dag_run_id'], safe='')}/taskInstances")["task_instances"]
        states = {ti["task_id"]: (ti["state"], ti["hostname"] or None) for ti in tis}
        assert (states["email.send_alert_notifications"] == states["email.send_weekly_summary"]
                == ("skipped", None)), states
        assert states["archive_snapshot"][0] == "success"
    # every published snapshot is an event of the Asset (the UI's Assets page), with its period,
    # type and MRR: the scheduled week's and each backfilled week's
    events = client.request("GET", "/api/v2/assets/events?source_dag_id=investor_metrics&limit=100")
    extra = {e["source_run_id"]: e["extra"] for e in events["asset_events"]
             if e["source_task_id"] == "archive_snapshot"}
    latest = json.loads((archive / "metrics_snapshot.json").read_text())
    assert extra[scheduled[0]["dag_run_id"]] == {"period_end": latest_end, "period_type": "weekly",
                                                 "mrr": latest["financial"]["mrr"], "series": "weekly",
                                                 "announce": True}
    assert {extra[r["dag_run_id"]]["announce"] for r in runs} == {False}  # backfills e-mail nobody
    assert sorted((extra[r["dag_run_id"]]["period_end"], extra[r["dag_run_id"]]["period_type"],
                   extra[r["dag_run_id"]]["series"], extra[r["dag_run_id"]]["mrr"]) for r in runs) == [
        (f"{day}T09:00:00Z", "backfill", "weekly", _snapshot(archive, day)["financial"]["mrr"])
        for day in BACKFILL_WEEK_ENDS]

    # The executor imported the pipeline's libraries before forking: every validate_data task
    # process found Great Expectations already there (include/investor_metrics/runtime/executor.py).
    scheduler_log = (stack["state"] / "logs" / "scheduler.log").read_text(errors="replace")
    from include.investor_metrics.runtime.executor import DEFAULT_PRELOAD_MODULES

    n = len(DEFAULT_PRELOAD_MODULES)
    assert f"Preloaded {n} of {n} modules" in scheduler_log
    task_logs = [p.read_text(errors="replace")
                 for p in (stack["state"] / "airflow" / "logs").rglob("*.log") if "validate_data" in str(p)]
    assert len(task_logs) >= 7
    assert all("Great Expectations already imported (preloaded by the executor)" in t for t in task_logs)

    # The scheduled run delivered one summary to every recipient; backfills e-mailed nobody.
    import email
    import email.policy

    from dev.stack.env import DEMO_RECIPIENTS

    mails = [email.message_from_bytes(p.read_bytes(), policy=email.policy.default)
             for p in sorted(stack["outbox"].glob("*.eml"))]
    summaries = [m for m in mails if m["Subject"].startswith("ChatterFix investor metrics")]
    latest_day = datetime.fromisoformat(latest_end.replace("Z", "+00:00")).strftime("%-d %b %Y")
    # one copy per recipient, each addressed to that recipient alone
    assert all(latest_day in m["Subject"] for m in summaries), [m["Subject"] for m in mails]
    assert sorted(m["X-Envelope-To"] for m in summaries) == sorted(DEMO_RECIPIENTS.split(","))
    assert all([a.addr_spec for a in m["To"].addresses] == [m["X-Envelope-To"]] for m in summaries)
    html = summaries[0].get_body(("html",)).get_content()
    assert summaries[0].get_body(("plain",)) is not None
    images = [p for p in summaries[0].walk() if p.get_content_type() == "image/png"]
    assert images and all(f"cid:{p['Content-ID'].strip('<>')}" in html for p in images)
    assert any(p.get_content_type() == "application/json" for p in summaries[0].iter_attachments())
    for m in mails:
        assert not any(datetime.fromisoformat(d).strftime("%-d %b %Y") in m["Subject"]
                       for d in BACKFILL_WEEK_ENDS)

    # A manual run with an older period_end is archived as on_demand and does not become the latest.
    client.trigger("investor_metrics", conf={"period_end": "2026-11-19T12:00:00Z"})
    manual = _wait_runs(client, lambda r: r["run_type"] == "manual", 1)
    assert [r["state"] for r in manual] == ["success"]
    older = json.loads((archive / "on_demand" / "metrics_2026-11-19_12-00-00.json").read_text())
    assert older["period"] == {
        "start": "2026-11-12T12:00:00Z", "end": "2026-11-19T12:00:00Z", "type": "on_demand"}
    assert json.loads((archive / "metrics_snapshot.json").read_text())["period"]["end"] == latest_end

    # A newer manual run becomes the latest.
    from datetime import timedelta

    newer = (datetime.fromisoformat(latest_end.replace("Z", "+00:00")) + timedelta(hours=3)).strftime(
        "%Y-%m-%dT%H:%M:%SZ")
    client.trigger("investor_metrics", conf={"period_end": newer})
    _wait_runs(client, lambda r: r["run_type"] == "manual", 2)
    assert json.loads((archive / "metrics_snapshot.json").read_text())["period"]["end"] == newer

    # A bad period_end is refused at the door with the expected format.
    from dev.stack.airflow_api import AirflowAPIError

    with pytest.raises(AirflowAPIError, match="period_end|pattern|does not match"):
        client.trigger("investor_metrics", conf={"period_end": "last sunday"})

    # Reprocessing a backfilled week (Airflow clears its run: the same run id) stores it again and
    # duplicates nothing; the same run storing the same snapshot keeps its generated_at, so the file
    # is the same file (SPEC 2: a cleared task reaches the same end state).
    before = _snapshot(archive, "2026-10-18")
    conn = connect(stack["settings"])
    row_sql = ("SELECT updated_at FROM investor_metrics.snapshots "
               "WHERE series = 'weekly' AND period_end = '2026-10-18T09:00:00Z'")
    with conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM investor_metrics.snapshots")
        rows_before = cur.fetchone()[0]
        cur.execute(row_sql)
        (stored_before,) = cur.fetchone()
    conn.commit()
    # Airflow allows one running backfill per DAG, and the scheduler marks a backfill completed
    # in a later loop than its last run's end: wait for that before creating the next one.
    deadline = time.monotonic() + 300
    while any(b.get("completed_at") is None for b in client.backfills("investor_metrics")):
        assert time.monotonic() < deadline, client.backfills("investor_metrics")
        time.sleep(2)
    client.create_backfill("investor_metrics", "2026-10-11T09:00:00Z", "2026-10-11T09:00:00Z",
                           max_active_runs=1, reprocess_behavior="completed")
    deadline = time.monotonic() + 600
    stored_after = stored_before
    while time.monotonic() < deadline:
        with conn.cursor() as cur:
            cur.execute(row_sql)
            (stored_after,) = cur.fetchone()
        conn.commit()
        if stored_after != stored_before:
            break
        time.sleep(3)
    assert stored_after != stored_before, "the reprocessed week was not stored again"
    assert _snapshot(archive, "2026-10-18") == before  # the same file, generated_at included
    with conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM investor_metrics.snapshots")
        assert cur.fetchone()[0] == rows_before
    conn.close()
    assert backfill["id"]

    # Without the pool chatterfix_source the source tasks are never scheduled: the run says so on its
    # note (and the scheduler log), and creating the pool releases them.
    client.request("DELETE", "/api/v2/pools/chatterfix_source")
    run_id = client.trigger("investor_metrics", conf={"period_end": "2026-11-20T12:00:00Z"})["dag_run_id"]
    path = f"/api/v2/dags/investor_metrics/dagRuns/{quote(run_id, safe='')}"
    deadline = time.monotonic() + 180
    while not (client.request("GET", path).get("note") or "") and time.monotonic() < deadline:
        time.sleep(2)
    note = client.request("GET", path)["note"] or ""
    assert "The Airflow pool 'chatterfix_source' does not exist" in note and "airflow pools set" in note
    time.sleep(10)  # several scheduler loops: still nothing of the source ran
    tis = client.request("GET", f"{path}/taskInstances")["task_instances"]
    states = {ti["task_id"]: ti["state"] for ti in tis}
    assert states["extract.extract_business_data"] in ("scheduled", None), states
    scheduler_log = (stack["state"] / "logs" / "scheduler.log").read_text(errors="replace")
    assert f"{run_id}: The Airflow pool 'chatterfix_source' does not exist" in scheduler_log
    client.request("POST", "/api/v2/pools", {"name": "chatterfix_source", "slots": 4})
    deadline = time.monotonic() + 300
    while client.request("GET", path)["state"] not in ("success", "failed") and time.monotonic() < deadline:
        time.sleep(3)
    assert client.request("GET", path)["state"] == "success"
