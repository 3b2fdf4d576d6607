"""The bench's child processes (``python -m dev.bench step|shape|dagrun|imports``): one pipeline step
in a stand-in task context with its peak memory, the DAG's shape, one ``dag.test()``, the lazy
imports' cost. Each writes its result as JSON for the parent."""

from __future__ import annotations

import json
import os
import resource
import time
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path

from dev.bench.common import (
    BenchError,
)
from dev.bench.weekly.config import (
    DAG_ID,
    END,
    END_ISO,
    NOOP_DAG_ID,
    VALIDATE_TASK,
)
from include.investor_metrics.settings import PROJECT_ROOT


def peak_rss_mb() -> float:
    """This process's peak resident memory, MiB: ``VmHWM`` of /proc/self/status, the high-water
    mark of this program's own address space. Not ``ru_maxrss``: Linux carries that over from the
    parent through fork and exec, so a child of a large parent (the bench after generating a data
    set) would report the parent's size."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return (
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    )  # other systems: KiB on Linux, bytes on macOS


class _Obj:
    def __init__(self, **kw):
        self.__dict__.update(kw)


def stand_in_context(task: str, downstream: Iterable[str] = (), pushed: dict | None = None) -> dict:
    """What the pipeline functions read from the Airflow context, for a manual run: ``downstream``
    the task's downstream task ids, ``pushed`` collects what it pushes to XCom itself."""
    dag_run = _Obj(
        run_type="manual",
        run_id="bench__steps",
        dag_id=DAG_ID,
        data_interval_end=None,
        run_after=END,
        logical_date=None,
    )
    pushed = {} if pushed is None else pushed
    return {
        "dag_run": dag_run,
        "params": {"period_end": END_ISO, "send_email": False},
        "task": _Obj(task_id=task, get_flat_relative_ids=lambda upstream=False: set(downstream)),
        "ti": _Obj(xcom_push=pushed.__setitem__),
        "outlet_events": defaultdict(lambda: _Obj(extra={})),  # archive_snapshot's Asset event
        "run_id": dag_run.run_id,
    }


def _downstream(shape: dict[str, dict], task: str) -> set[str]:
    """Every task downstream of ``task`` in the shape (``upstream`` lists of each task)."""
    found: set[str] = set()
    frontier = {task}
    while frontier:
        frontier = {t for t, spec in shape.items() if set(spec["upstream"]) & frontier} - found
        found |= frontier
    return found


def _capture_sql(statements: list[dict]) -> None:
    """Record every statement SQLAlchemy sends (GX goes through it): exact text and client time."""
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    def before(conn, cursor, statement, parameters, context, executemany):
        conn.info.setdefault("bench_started", []).append(time.perf_counter())

    def after(conn, cursor, statement, parameters, context, executemany):
        began = conn.info["bench_started"].pop()
        sent = getattr(cursor, "query", None)  # psycopg2: the statement with its values bound
        text = sent.decode() if isinstance(sent, bytes) else statement
        statements.append({"sql": text, "seconds": time.perf_counter() - began})

    event.listen(Engine, "before_cursor_execute", before)
    event.listen(Engine, "after_cursor_execute", after)


def step_main(task: str, work: Path, profile: bool) -> int:
    """One task's pipeline function, as the DAG calls it:
    ``include.investor_metrics.weekly.tasks.<task name>(context, *results of the upstream tasks the
    DAG passes in)`` (the DAG file is thin: each task calls the pipeline function of its name, the
    task id without its group), in a process that, like a task's, has the Airflow SDK loaded."""
    import logging

    import airflow.sdk  # noqa: F401 - every task process has it: part of a task's memory

    from include.investor_metrics.weekly import email_tasks
    from include.investor_metrics.weekly import tasks as pipeline

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    shape = {t["task_id"]: t for t in json.loads((work / "shape.json").read_text())}
    name = task.rsplit(".", 1)[-1]  # a task in a group: "extract.extract_business_data"
    function = getattr(pipeline, name, None) or getattr(email_tasks, name, None)
    if function is None:
        raise BenchError(
            f"include.investor_metrics.weekly.tasks / email_tasks have no function {name}() "
            f"for the DAG task {task}"
        )
    inputs = [json.loads((work / f"{t}.result.json").read_text())["value"] for t in shape[task]["args"]]
    pushed: dict = {}
    context = stand_in_context(task, _downstream(shape, task), pushed)
    statements: list[dict] = []
    if task == VALIDATE_TASK:
        _capture_sql(statements)

    def call():
        try:
            return function(context, *inputs), False
        except Exception as exc:
            if type(exc).__name__ == "DownstreamTasksSkipped":  # done, and it skips the e-mail tasks
                return pushed.get("return_value"), False
            if type(exc).__name__ != "AirflowSkipException":
                raise
            return None, True

    rss_before = peak_rss_mb()
    began = time.perf_counter()
    if profile:
        import cProfile
        import io
        import pstats

        profiler = cProfile.Profile()
        value, skipped = profiler.runcall(call)
        seconds = time.perf_counter() - began
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(60)
        (work / f"{task}.profile.txt").write_text(out.getvalue())
    else:
        value, skipped = call()
        seconds = time.perf_counter() - began
    result = {
        "task": task,
        "seconds": seconds,
        "skipped": skipped,
        "max_rss_mb": peak_rss_mb(),
        "rss_before_call_mb": rss_before,
        "value": value,
    }
    if task == VALIDATE_TASK:
        result["sql_statements"] = statements
        result["sql_client_seconds"] = sum(s["seconds"] for s in statements)
    (work / f"{task}.result.json").write_text(json.dumps(result, default=str))
    return 0


# ================================================================================== child: the shape
def shape_main(out: Path) -> int:
    from airflow.dag_processing.dagbag import DagBag

    dag_file = PROJECT_ROOT / "dags" / "investor_metrics.py"
    bag = DagBag(dag_folder=str(dag_file))
    if bag.import_errors or DAG_ID not in bag.dags:
        raise BenchError(f"cannot load {DAG_ID} from {dag_file}: {bag.import_errors}")
    shape = []
    for t in bag.dags[DAG_ID].topological_sort():
        args = [a.operator.task_id for a in getattr(t, "op_args", None) or () if hasattr(a, "operator")]
        shape.append({"task_id": t.task_id, "upstream": sorted(t.upstream_task_ids), "args": args})
    out.write_text(json.dumps(shape))
    return 0


# ================================================================================== child: a DAG run
def dagrun_main(kind: str, out: Path) -> int:
    from airflow.dag_processing.dagbag import DagBag

    if kind == "noop":
        dag_file, dag_id = (
            Path(os.environ["AIRFLOW__CORE__DAGS_FOLDER"]) / "orchestration_floor.py",
            NOOP_DAG_ID,
        )
    else:
        dag_file, dag_id = PROJECT_ROOT / "dags" / "investor_metrics.py", DAG_ID
    bag = DagBag(dag_folder=str(dag_file))
    if bag.import_errors or dag_id not in bag.dags:
        raise BenchError(f"cannot load {dag_id} from {dag_file}: {bag.import_errors}")
    dag = bag.dags[dag_id]
    began = time.perf_counter()
    dr = dag.test(run_conf={"period_end": END_ISO}, logical_date=None)
    seconds = time.perf_counter() - began
    tasks = {}
    for ti in dr.get_task_instances():
        start, end = ti.start_date, ti.end_date
        tasks[ti.task_id] = {
            "state": str(getattr(ti.state, "value", ti.state)),
            "seconds": (end - start).total_seconds() if start and end else None,
            "start": start.isoformat() if start else None,
            "end": end.isoformat() if end else None,
        }
    state = str(getattr(dr.state, "value", dr.state))
    span = None
    starts = [t["start"] for t in tasks.values() if t["start"]]
    ends = [t["end"] for t in tasks.values() if t["end"]]
    if starts and ends:
        span = (datetime.fromisoformat(max(ends)) - datetime.fromisoformat(min(starts))).total_seconds()
    out.write_text(
        json.dumps(
            {"kind": kind, "state": state, "seconds": seconds, "task_span_seconds": span, "tasks": tasks}
        )
    )
    return 0


# ================================================================================== child: imports
# What the tasks import lazily, in the order a DAG run first needs them: their one-off cost in a
# task's process (each task of a deployed DAG is its own process and pays them again).
IMPORT_PROBES = (
    ("airflow task SDK", ("airflow.sdk",)),
    ("pandas + pyarrow", ("pandas", "pyarrow.parquet")),
    ("Postgres provider hook", ("airflow.providers.postgres.hooks.postgres",)),
    ("great_expectations", ("great_expectations",)),
)


def imports_main(out: Path) -> int:
    import importlib

    results = []
    for label, modules in IMPORT_PROBES:
        began = time.perf_counter()
        for module in modules:
            importlib.import_module(module)
        results.append({"label": label, "seconds": time.perf_counter() - began, "max_rss_mb": peak_rss_mb()})
    out.write_text(json.dumps(results))
    return 0
