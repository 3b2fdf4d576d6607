"""The weekly run through the real scheduler, for ``make bench`` (issue 3's headline ratio).

Issue 3 defines the orchestration floor as "the same DAG shape with tasks that do nothing, on the
same executor". ``dag.test()`` runs every task one after the other inside one process, with no
executor; a deployed run goes through the scheduler and the executor, and each task is its own
process. So the bench also measures both DAGs the deployed way, and that is the ratio it judges:

1. A fresh Airflow metadata database ``cfx_bench_sched_af`` on the bench's PostgreSQL, and a
   temporary DAGs folder holding a copy of ``dags/investor_metrics.py`` and the no-op DAG of the
   same shape (``dev.bench.weekly.config.NOOP_DAG_TEMPLATE``).
2. The stack of ``make demo`` (``dev.stack.devstack``'s environment: API server, scheduler with the
   executor it deploys, DAG processor, triggerer, SMTP sink) pointed at the ``chatterfix_bench``
   database, ``INVESTOR_TIMEZONE=UTC``, in a temporary state folder.
3. Both DAGs unpaused. The scheduler then runs the real DAG's scheduled run of the latest complete
   week (catchup is off): it is the warm-up, not measured; one manual no-op run warms the floor.
4. ``--sched-runs`` manual runs of each (``period_end`` = the bench period's end, ``send_email``
   false), interleaved no-op / real, one at a time. A run's time is its ``end_date − start_date``
   as Airflow records it (the Duration the UI shows); each task's is its task instance's.
5. The stack is taken down, the metadata database dropped, the folder removed — whatever happens.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

from dev.bench.common import say
from include.investor_metrics.period import as_instant
from include.investor_metrics.settings import PROJECT_ROOT

AF_DB_NAME = "cfx_bench_sched_af"
RUN_TIMEOUT_S = 30 * 60


def _seconds(a: str | None, b: str | None) -> float | None:
    start, end = (as_instant(a) if a else None), (as_instant(b) if b else None)
    return (end - start).total_seconds() if start and end else None


def wait_run(client, dag_id: str, run_id: str, timeout: float = RUN_TIMEOUT_S) -> dict:
    from dev.bench.common import BenchError

    deadline = time.monotonic() + timeout
    while True:
        run = client.request("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")
        if run["state"] in ("success", "failed"):
            return run
        if time.monotonic() > deadline:
            raise BenchError(f"{dag_id} run {run_id} still {run['state']} after {timeout:.0f} s")
        time.sleep(0.5)


def run_figures(client, dag_id: str, run: dict) -> dict:
    """A finished run: its seconds (Airflow's start → end), queue wait, and each task's seconds."""
    tis = client.request("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run['dag_run_id']}/taskInstances?limit=100")
    tasks = {}
    for ti in tis["task_instances"]:
        tasks[ti["task_id"]] = {
            "state": ti["state"],
            "seconds": _seconds(ti.get("start_date"), ti.get("end_date")),
            "start": ti.get("start_date"),
            "end": ti.get("end_date"),
        }
    return {
        "run_id": run["dag_run_id"],
        "state": run["state"],
        "seconds": _seconds(run.get("start_date"), run.get("end_date")),
        "queued_seconds": _seconds(run.get("queued_at"), run.get("start_date")),
        "tasks": tasks,
    }


def measure(
    server,
    bench_database: str,
    period_end: str,
    runs: int,
    work: Path,
    noop_source: str,
    noop_dag_id: str,
    dag_id: str,
) -> dict:
    """Both DAGs through the scheduler; {"dag_run": medians, "orchestration_floor": medians, ...}."""
    from dev.bench.backfill.floor import start_floor_stack
    from dev.bench.common import BenchError, _admin_connect, _median_runs, stack_down
    from dev.stack.airflow_api import AirflowClient
    from dev.stack.env import isolated_env

    dags = work / "sched_dags"
    dags.mkdir(parents=True, exist_ok=True)
    shutil.copy2(PROJECT_ROOT / "dags" / f"{dag_id}.py", dags / f"{dag_id}.py")
    (dags / "orchestration_floor.py").write_text(noop_source)

    admin = _admin_connect(server)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{AF_DB_NAME}" WITH (FORCE)')
        cur.execute(f'CREATE DATABASE "{AF_DB_NAME}"')
    env = isolated_env(server.database(bench_database), work / "sched", AF_DB_NAME)
    env["INVESTOR_TIMEZONE"] = "UTC"
    env["DATA_TEAM_EMAILS"] = "data-team@example.com"
    result: dict = {}
    try:
        say(
            "scheduler: starting the deployed stack (API server, scheduler, DAG processor, triggerer, SMTP "
            "sink)"
        )
        began = time.monotonic()
        stack = start_floor_stack(env, dags, smtp_sink=True)
        client = AirflowClient(
            f"http://127.0.0.1:{env['AIRFLOW_PORT']}", "admin", stack.secrets()["admin_password"]
        )
        for d in (dag_id, noop_dag_id):
            client.wait_for_dag(d, timeout=300)
        errors = client.import_errors()
        if errors:
            raise BenchError(
                "DAG import errors:\n" + "\n".join(e.get("stack_trace", "")[-800:] for e in errors)
            )
        result["executor"] = stack.airflow_env()["AIRFLOW__CORE__EXECUTOR"]
        scheduler_log = (stack.log_dir / "scheduler.log").read_text(errors="replace")
        result["executor_log"] = [line.strip() for line in scheduler_log.splitlines() if "Preloaded" in line][
            -1:
        ]
        say(f"scheduler: stack up in {time.monotonic() - began:.0f} s; unpausing both DAGs")
        client.set_paused(noop_dag_id, False)
        client.set_paused(dag_id, False)

        say(
            "scheduler: warm-up (not measured): the real DAG's scheduled run of the latest week, one no-op "
            "run"
        )
        deadline = time.monotonic() + RUN_TIMEOUT_S
        while True:
            sched = [r for r in client.dag_runs(dag_id) if r["run_type"] == "scheduled"]
            if sched and all(r["state"] in ("success", "failed") for r in sched):
                break
            if time.monotonic() > deadline:
                raise BenchError("the scheduled run of the real DAG did not finish")
            time.sleep(1)
        warm = run_figures(client, dag_id, sched[0])
        say(f"  real DAG, scheduled run: {warm['state']} in {warm['seconds']:.1f} s")
        if warm["state"] != "success":
            raise BenchError(f"the scheduled run failed: {warm['tasks']}")
        conf = {"period_end": period_end, "send_email": False}
        noop = wait_run(client, noop_dag_id, client.trigger(noop_dag_id, conf)["dag_run_id"])
        say(f"  no-op DAG: {noop['state']} in {_seconds(noop['start_date'], noop['end_date']):.1f} s")

        real_runs, noop_runs = [], []
        for i in range(runs):
            for d, bucket, label in ((noop_dag_id, noop_runs, "no-op"), (dag_id, real_runs, "real ")):
                run = wait_run(client, d, client.trigger(d, conf)["dag_run_id"])
                figures = run_figures(client, d, run)
                if figures["state"] != "success":
                    failed = {t: v["state"] for t, v in figures["tasks"].items() if v["state"] != "success"}
                    raise BenchError(f"{d} run {figures['run_id']} ended {figures['state']}: {failed}")
                bucket.append(figures)
                say(
                    f"  {label} {i + 1}/{runs}: {figures['seconds']:.2f} s (queued "
                    f"{figures['queued_seconds']:.2f} s)"
                )
        result.update(dag_run=_median_runs(real_runs), orchestration_floor=_median_runs(noop_runs))
        snapshot = json.loads((work / "sched" / "archive" / "metrics_snapshot.json").read_text())
        result["snapshot_period"] = snapshot["period"]
        return result
    finally:
        stack_down(env, say)
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{AF_DB_NAME}" WITH (FORCE)')
        admin.close()
