"""The backfill benchmark's floor: the real DAG's shape and scheduling attributes (read in a child,
``python -m dev.bench.backfill shape``), the no-op DAG written from them, and a stack of
``make demo``'s processes whose DAGs folder is that DAG's."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

from dev.bench.backfill.config import (
    DAG_ID,
    NOOP_DAG_ID,
    NOOP_DAG_TEMPLATE,
)
from include.investor_metrics.settings import PROJECT_ROOT


def shape_main(out: Path) -> int:
    """(child) The real DAG's tasks, edges and scheduling attributes, as JSON."""
    from airflow.dag_processing.dagbag import DagBag

    dag_file = PROJECT_ROOT / "dags" / "investor_metrics.py"
    bag = DagBag(dag_folder=str(dag_file))
    if bag.import_errors or DAG_ID not in bag.dags:
        print(f"cannot load {DAG_ID} from {dag_file}: {bag.import_errors}", file=sys.stderr)
        return 1
    dag = bag.dags[DAG_ID]
    da = dag.default_args or {}
    delay = da.get("retry_delay", timedelta(minutes=5))
    out.write_text(
        json.dumps(
            {
                "shape": [(t.task_id, sorted(t.upstream_task_ids)) for t in dag.topological_sort()],
                "start_date": dag.start_date.isoformat(),
                "max_active_runs": dag.max_active_runs,
                "retries": int(da.get("retries", 0)),
                "retry_delay": delay.total_seconds() if isinstance(delay, timedelta) else float(delay),
                "backoff": bool(da.get("retry_exponential_backoff", False)),
                "timetable": type(dag.timetable).__name__,
                "summary": getattr(dag.timetable, "summary", ""),
            }
        )
    )
    return 0


def dag_shape(env: dict[str, str], work: Path) -> dict:
    out = work / "shape.json"
    proc = subprocess.run(
        [sys.executable, "-m", "dev.bench.backfill", "shape", "--out", str(out)],
        env=env,
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if proc.returncode != 0:
        from dev.bench.common import BenchError

        raise BenchError(f"reading the DAG's shape failed:\n{(proc.stdout + proc.stderr)[-2000:]}")
    return json.loads(out.read_text())


def write_noop_dag(folder: Path, shape: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "backfill_floor.py"
    path.write_text(
        NOOP_DAG_TEMPLATE.format(
            dag_id=DAG_ID,
            noop_id=NOOP_DAG_ID,
            shape=[tuple(x) for x in shape["shape"]],
            start_date=shape["start_date"],
            max_active_runs=shape["max_active_runs"],
            retries=shape["retries"],
            retry_delay=shape["retry_delay"],
            backoff=shape["backoff"],
        )
    )
    return path


# ================================================================================ the stacks
def start_floor_stack(env: dict[str, str], dags_folder: Path, *, smtp_sink: bool = False):
    """The processes of ``dev.stack.devstack up`` (migrate, API server, scheduler, DAG processor,
    triggerer, and with ``smtp_sink`` its SMTP sink), with the DAGs folder replaced: devstack fixes
    it to the project's ``dags/``. ``dev.stack.devstack down`` with the same ``env`` stops them."""
    from dev.stack import devstack
    from dev.stack.env import Stack

    stack = Stack(env)
    stack.state.mkdir(parents=True, exist_ok=True)
    if smtp_sink:
        devstack.start_smtp_sink(stack)
    aenv = stack.airflow_env()
    aenv["AIRFLOW__CORE__DAGS_FOLDER"] = str(dags_folder)
    devstack.start_airflow(stack, aenv, migrate_timeout=900, report=lambda _message: None)
    return stack
