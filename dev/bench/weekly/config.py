"""What the weekly benchmark measures on: the data set's fixed end and seed, the bench databases,
the DAG ids, the targets and time limits, and the no-op DAG of the real DAG's shape."""

from __future__ import annotations

from datetime import datetime, timezone

END = datetime(2026, 11, 22, 9, tzinfo=timezone.utc)  # a Sunday 09:00 UTC: the data's last instant
END_ISO = "2026-11-22T09:00:00Z"
SEED = 42
DATASETS = {"bench": "chatterfix_bench", "bench2x": "chatterfix_bench2x"}

DAG_ID = "investor_metrics"
NOOP_DAG_ID = "investor_metrics_orchestration_floor"
VALIDATE_TASK = "validate_data"
ALERTS_TASK = "evaluate_alerts"

RATIO_TARGET = 1.3
MEMORY_TARGET_MB = 400
FLAT_TOLERANCE = 1.10  # peak(2x data) / peak(1x data) at most this: "flat"

STEP_TIMEOUT_S = 30 * 60
DAG_TIMEOUT_S = 60 * 60

# The orchestration floor: the real DAG's shape (read from it, so it follows the DAG as it grows),
# every task a Python task that does nothing but return a small XCom, as the real ones do.
NOOP_DAG_TEMPLATE = '''"""Orchestration floor of ``make bench``: {dag_id}'s shape, tasks doing nothing."""
import pendulum
from airflow.sdk import DAG, Param, task

SHAPE = {shape!r}


def do_nothing():
    return "done"


with DAG(
    dag_id={noop_id!r},
    schedule=None,
    start_date=pendulum.datetime(2020, 1, 1, tz="UTC"),
    catchup=False,
    tags=["bench"],
    default_args={{"owner": "bench", "retries": 0}},
    params={{"period_end": Param(None, type=["null", "string"]), "send_email": Param(False, type="boolean")}},
):
    tasks = {{}}
    for task_id, upstream in SHAPE:
        tasks[task_id] = task(task_id=task_id)(do_nothing)()
        for upstream_id in upstream:
            tasks[upstream_id] >> tasks[task_id]
'''
