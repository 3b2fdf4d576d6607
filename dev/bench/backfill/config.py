"""What the backfill benchmark runs on: the DAG ids, its databases, the data's end, the backfilled
weeks' last logical date, the target; and the no-op DAG of the real DAG's shape and schedule."""

from __future__ import annotations

from datetime import datetime, timezone
from functools import partial

from dev.bench.common import say as _say

DAG_ID = "investor_metrics"
NOOP_DAG_ID = "investor_metrics_backfill_floor"
DB_NAME = "cfx_bench_bf"
AF_DB_NAME = "cfx_bench_bf_af"
NOOP_AF_DB_NAME = "cfx_bench_bf_noop_af"
DATA_END = datetime(2026, 11, 22, 9, tzinfo=timezone.utc)
LAST_LOGICAL = datetime(2026, 11, 8, 9, tzinfo=timezone.utc)  # the week ending 2026-11-15
SPAN_DAYS = 730
RATIO_TARGET = 1.5

NOOP_DAG_TEMPLATE = '''"""Floor of ``dev.bench.backfill``: {dag_id}'s shape and schedule, tasks do nothing."""
from datetime import timedelta

import pendulum
from airflow.sdk import DAG, Param, task
from airflow.timetables.interval import CronDataIntervalTimetable

from include.investor_metrics import settings as config

SHAPE = {shape!r}
TIMEZONE = config.investor_timezone()


def do_nothing():
    return "done"


with DAG(
    dag_id={noop_id!r},
    schedule=CronDataIntervalTimetable(config.metrics_schedule(), timezone=TIMEZONE),
    start_date=pendulum.parse({start_date!r}),
    catchup=False,
    max_active_runs={max_active_runs!r},
    tags=["bench"],
    default_args={{"owner": "bench", "retries": {retries!r},
                   "retry_delay": timedelta(seconds={retry_delay!r}),
                   "retry_exponential_backoff": {backoff!r}}},
    params={{"period_end": Param(None, type=["null", "string"]), "send_email": Param(False, type="boolean")}},
):
    tasks = {{}}
    for task_id, upstream in SHAPE:
        tasks[task_id] = task(task_id=task_id)(do_nothing)()
        for upstream_id in upstream:
            tasks[upstream_id] >> tasks[task_id]
'''

say = partial(_say, tag="bench-backfill")
