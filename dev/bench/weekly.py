"""The performance benchmark of the weekly ``investor_metrics`` DAG (issue 3): ``make bench``.

One command, run from the project folder (``make bench BENCH_ARGS="..."`` passes options)::

    .venv/bin/python -m dev.bench [--drop] [--skip-2x] [--dag-runs 3] [--noop-runs 3]
        [--floor-rounds 3] [--sched-runs 3] [--no-bytecode-cache] [--profile TASK ...] [--json FILE]
        [--keep-logs DIR]
    .venv/bin/python -m dev.bench --api [--json FILE]   # the investor API latency (dev/bench/api.py)
    .venv/bin/python -m dev.bench --backfill [--weeks 104] [--max-active-runs 4] [--json FILE]
        # a backfill through the scheduler against a no-op DAG (dev/bench/backfill.py)

What it does, in order:

1. PostgreSQL: the server of ``DB_HOST``/``DB_*`` when set, else 127.0.0.1:5432 when it answers,
   else an embedded one (``dev/stack/embedded_pg.py``, data in ``.local/bench-pgdata``, port
   ``BENCH_PG_PORT`` = 55433; stopped again at the end). Databases ``chatterfix_bench`` (the
   generator's bench scale: 100k customers, ~24M usage events, ~12M AI requests) and
   ``chatterfix_bench2x`` (same customers, twice the event tables) are created and loaded once,
   with a fixed ``end`` and seed; later runs find them loaded and skip the load. They are kept
   for the next run (``--drop`` drops them at the end).
2. Airflow: a temporary ``AIRFLOW_HOME`` (SQLite metadata, ``airflow db migrate``); the DAG's
   tasks and edges are read from ``dags/investor_metrics.py`` itself, so the bench follows the
   DAG as tasks are added.
3. The period: the last complete week of the data, [end − 7 days, end), run as a manual run with
   ``period_end`` = end, ``INVESTOR_TIMEZONE`` = UTC, no health-check services configured.
4. **Data floor**: the SQL the run reads its data with, run directly with psycopg2, results
   fetched: the extract files (``include/investor_metrics/sql/extract_*.sql``) with the extract step's bind values,
   and the alert step's churn history of the 8 prior weeks; one warm-up round, then the median of
   ``--floor-rounds``. The validation's SQL is isolated the same way: every statement GX sends in
   the ``validate_data`` step is captured (SQLAlchemy cursor events, the exact text psycopg2 sent)
   and replayed directly; it is shown, and a second ratio counts it in the floor.
5. Warm-up: one unmeasured ``dag.test()`` of each DAG. By default the children get a bytecode
   cache in the workspace (``PYTHONPYCACHEPREFIX``), as a deployed worker has compiled bytecode;
   ``--no-bytecode-cache`` keeps the environment's setting (``PYTHONDONTWRITEBYTECODE=1`` makes
   every process compile its imports from source: Airflow, pandas and GX take seconds more).
6. **Peak memory**: each task's ``include.investor_metrics.weekly.tasks`` function in its own subprocess (with the
   Airflow SDK loaded, as in a task), in the DAG's order, with a stand-in context (a manual
   dag_run); frames pass through the staging folder as in the DAG; ``VmHWM`` (the process's own
   high-water mark; not ``ru_maxrss``, which Linux carries over from the parent), nothing
   subtracted. The same on the doubled data. ``--profile TASK`` re-runs the steps in a separate
   sequence with that one under cProfile (the profiler's overhead never touches the figures).
7. **Orchestration floor** and **the run**: a DAG of the real DAG's shape whose tasks do nothing
   (written to a temporary dags folder, never to ``dags/``) and the real DAG, each with
   ``dag.test()``, interleaved, ``--noop-runs``/``--dag-runs`` times; per-task wall times from
   the task instances' start/end dates; medians. ``dag.test()`` has no executor and runs every
   task in one process: the in-process view, shown but not judged.
8. **Through the scheduler** (``dev/bench/scheduler.py``; the ratio the target is judged on,
   as issue 3 puts the floor "on the same executor"): ``make demo``'s stack (scheduler with the
   executor it deploys, ``include.investor_metrics.runtime.executor.PreloadingLocalExecutor``; every task its own process)
   on a fresh metadata database, both DAGs in a temporary DAGs folder, ``--sched-runs`` manual
   runs of each, interleaved, after a warm-up; a run's time is Airflow's own start → end.

It prints the machine, a table per task and the verdicts against the targets (ratio
run / (data floor + orchestration floor) ≤ 1.3; peak memory of any task ≤ 400 MB, flat when the
event tables double), then where the run's excess over the floors goes. Everything temporary is
removed at the end, whatever happens (``--keep-logs DIR`` copies the children's logs out first);
passwords are never printed.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from dev.bench.common import (
    EXTRACT_TASKS,
    BenchError,
    Server,
    _load_average,
    _median_runs,
    database_sizes,
    drop_database,
    ensure_database,
    find_server,
    machine,
    postgres_info,
    run_cli,
    say,
    stop_embedded,
)
from include.investor_metrics.settings import PROJECT_ROOT, PostgresSettings

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
NOOP_DAG_TEMPLATE = '''"""Orchestration floor of ``make bench``: the shape of {dag_id}, tasks doing nothing."""
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






# ================================================================================== the server


















def load_dataset(server: Server, scale: str) -> tuple[float, bool]:
    from dev.demo_data import generator

    name = DATASETS[scale]
    ensure_database(server, name)
    began = time.monotonic()
    summary = generator.load(server.database(name), end=END, scale=scale, seed=SEED, progress=True)
    seconds = time.monotonic() - began
    if summary.loaded:
        say(f"{name}: loaded the {scale} dataset in {seconds:.0f} s")
    else:
        say(f"{name}: the {scale} dataset (seed {SEED}, end {END_ISO}) is already loaded")
    counts = ", ".join(f"{t.rpartition('.')[2]} {n:,}" for t, n in summary.counts.items())
    say(f"  rows: {counts}")
    return seconds, summary.loaded


# ================================================================================== machine






# ================================================================================== the period
def bench_period():
    from include.investor_metrics.period import period_for_run

    return period_for_run(run_type="manual", tz="UTC", period_end_param=END_ISO)


# ================================================================================== data floor
def extract_queries(period, tasks) -> list[tuple[str, str, str, dict]]:
    """(task, label, sql file, binds) of the data the run reads with the extract SQL files, in the
    DAG's order. The customer-history query's ids come from the subscriptions result (filled in
    when it runs). ``evaluate_alerts`` reads the churn of the 8 weeks before the period: stored
    snapshots, and for the weeks without one the subscriptions extract over their span (as
    ``include.investor_metrics.weekly.alerts.churn_history.previous_churned_customers`` does; the bench database stores none of them)."""
    from include.investor_metrics.weekly.extract import period_bounds

    bounds = period_bounds(period)
    history = []
    if ALERTS_TASK in tasks:
        import pendulum

        from include.investor_metrics.period import Period, calendar_offset, weekly_period
        from include.investor_metrics.weekly.alerts import rules

        weeks = getattr(rules, "CHURN_SPIKE_WEEKS", 8)
        ends = [calendar_offset(period.end, pendulum.timezone(period.tz), days=7 * k) for k in range(weeks, 0, -1)]
        span = Period(start=min(weekly_period(e, period.tz).start for e in ends), end=max(ends), tz=period.tz)
        history = [
            (ALERTS_TASK, "alerts_stored_weeks", "alerts_previous_churned.sql", {"period_ends": ends}),
            (ALERTS_TASK, "alerts_prior_subscriptions", "extract_subscriptions.sql", period_bounds(span)),
        ]
    return [
        ("extract_business_data", "subscriptions", "extract_subscriptions.sql", bounds),
        ("extract_business_data", "customer_history", "extract_customer_history.sql",
         {"start": bounds["start"], "customer_ids": None}),
        ("extract_business_data", "usage", "extract_usage.sql", bounds),
        ("extract_business_data", "nps", "extract_nps.sql", bounds),
        ("extract_business_data", "leads", "extract_leads.sql", bounds),
        ("extract_ai_metrics", "ai_metrics", "extract_ai_metrics.sql", bounds),
        ("extract_health_checks", "health_checks", "extract_health_checks.sql", {**bounds, "services": []}),
        *history,
    ]


def measure_data_floor(settings: PostgresSettings, period, rounds: int, tasks) -> dict:
    """Median seconds per extract query (execute + fetch all), after one warm-up round."""
    from include.investor_metrics.db import connect, read_sql

    queries = extract_queries(period, tasks)
    times: dict[str, list[float]] = {label: [] for _t, label, _f, _b in queries}
    rows: dict[str, int] = {}
    conn = connect(settings)
    try:
        conn.autocommit = True
        for round_no in range(rounds + 1):
            customer_ids: list[int] = []
            all_weeks_stored = False
            for _task, label, sql_file, binds in queries:
                binds = dict(binds)
                if label == "customer_history":
                    binds["customer_ids"] = customer_ids
                if label == "alerts_prior_subscriptions" and all_weeks_stored:
                    if round_no:
                        times[label].append(0.0)  # every prior week stored: nothing read
                    continue
                began = time.perf_counter()
                with conn.cursor() as cur:
                    cur.execute(read_sql(sql_file), binds)
                    result = cur.fetchall()
                    names = [d[0] for d in cur.description]
                seconds = time.perf_counter() - began
                if label == "subscriptions":
                    at = names.index("customer_id")
                    customer_ids = sorted({int(r[at]) for r in result if r[at] is not None})
                if label == "alerts_stored_weeks":
                    all_weeks_stored = len(result) >= len(binds["period_ends"])
                if round_no:  # round 0 warms the cache
                    times[label].append(seconds)
                rows[label] = len(result)
    finally:
        conn.close()
    per_query = {label: statistics.median(ts) for label, ts in times.items()}
    per_task = {task: 0.0 for task, _l, _f, _b in queries}
    for task, label, _f, _b in queries:
        per_task[task] += per_query[label]
    return {"per_query": per_query, "rows": rows, "per_task": per_task, "total": sum(per_task.values()),
            "rounds": rounds}


def replay_validation_sql(settings: PostgresSettings, statements: list[dict], rounds: int) -> dict:
    """Re-run the statements GX sent, directly (execute + fetch), in one rolled-back transaction."""
    from include.investor_metrics.db import connect

    totals: list[float] = []
    errors: list[str] = []
    per_statement = [[] for _ in statements]
    conn = connect(settings)
    try:
        for round_no in range(rounds + 1):
            total = 0.0
            for i, statement in enumerate(statements):
                began = time.perf_counter()
                with conn.cursor() as cur:
                    try:
                        cur.execute("SAVEPOINT bench")
                        cur.execute(statement["sql"])
                        if cur.description is not None:
                            cur.fetchall()
                        cur.execute("RELEASE SAVEPOINT bench")
                    except Exception as exc:  # noqa: BLE001 - reported, not fatal
                        cur.execute("ROLLBACK TO SAVEPOINT bench")
                        if round_no == 0:
                            errors.append(str(exc).strip().splitlines()[0])
                seconds = time.perf_counter() - began
                total += seconds
                if round_no:
                    per_statement[i].append(seconds)
            if round_no:
                totals.append(total)
        conn.rollback()
    finally:
        conn.close()
    medians = [statistics.median(ts) if ts else 0.0 for ts in per_statement]
    slowest = sorted(range(len(statements)), key=lambda i: medians[i], reverse=True)[:5]
    # GX's BASIC result format also lists a sample of the bad values of every column check, in a
    # query of its own, even when there are none; the validation reads only the counts.
    samples = [i for i, st in enumerate(statements) if "AS unexpected_values" in st["sql"]]
    return {
        "total": statistics.median(totals) if totals else 0.0,
        "value_sample_queries": len(samples),
        "value_sample_seconds": sum(medians[i] for i in samples),
        "statements": len(statements),
        "errors": errors,
        "slowest": [{"seconds": medians[i], "sql": _one_line(statements[i]["sql"])} for i in slowest],
    }


def _one_line(sql: str, width: int = 150) -> str:
    text = " ".join(sql.split())
    return text if len(text) <= width else text[: width - 1] + "…"


# ================================================================================== subprocesses
@dataclass
class Workspace:
    """The bench's temporary folder: AIRFLOW_HOME, dags, staging, archive, logs."""

    root: Path
    server: Server
    bytecode_cache: bool = True
    children: list = field(default_factory=list)

    @property
    def airflow_home(self) -> Path:
        return self.root / "airflow"

    @property
    def noop_dags(self) -> Path:
        return self.root / "noop_dags"

    def env(self, database: str, *, dags_folder: Path | None = None, tag: str = "run") -> dict[str, str]:
        """A clean environment for a child: no inherited Airflow settings or connections (they
        would point the DAG at another database), the bench database as ``DB_*``."""
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("AIRFLOW__", "AIRFLOW_CONN_", "AIRFLOW_VAR_", "DB_", "INVESTOR_",
                                    "HEALTH_CHECK_", "SMTP_", "EMAIL_", "DATA_TEAM_", "CHATTERFIX_CONN_ID"))}
        s = self.server.database(database)
        env.update({
            "DB_HOST": s.host, "DB_PORT": str(s.port), "DB_NAME": s.dbname, "DB_USER": s.user or "",
            "INVESTOR_TIMEZONE": "UTC",
            "INVESTOR_ARCHIVE_DIR": str(self.root / f"archive-{tag}"),
            "INVESTOR_STAGING_DIR": str(self.root / f"staging-{tag}"),
            "AIRFLOW_HOME": str(self.airflow_home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder or PROJECT_ROOT / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(PROJECT_ROOT / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{self.airflow_home}/airflow.db",
            "GX_ANALYTICS_ENABLED": "false",
            "PYTHONPATH": os.pathsep.join(p for p in [str(PROJECT_ROOT), os.environ.get("PYTHONPATH", "")] if p),
        })
        if s.password:
            env["DB_PASSWORD"] = s.password
        if self.bytecode_cache:
            # As a deployed worker has it: imports read compiled bytecode (kept in the workspace,
            # so the project's .venv is not touched), not the source compiled afresh each time.
            env.pop("PYTHONDONTWRITEBYTECODE", None)
            env["PYTHONPYCACHEPREFIX"] = str(self.root / "pycache")
        return env

    def run(self, args: list[str], env: dict, log_name: str, timeout: float) -> None:
        """Run ``python <args>`` in its own process group, output to a log; on failure, its tail."""
        log_path = self.root / "logs" / log_name
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "wb") as log_file:
            proc = subprocess.Popen([sys.executable, *args], cwd=PROJECT_ROOT, env=env, stdout=log_file,
                                    stderr=subprocess.STDOUT, start_new_session=True)
            self.children.append(proc)
            try:
                code = proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                _kill_group(proc)
                raise BenchError(f"{' '.join(args[:4])} did not finish within {timeout:.0f} s; "
                                 f"log tail:\n{self.tail(log_path)}") from None
            finally:
                if proc.poll() is None:
                    _kill_group(proc)
                self.children.remove(proc)
        if code != 0:
            raise BenchError(f"{' '.join(args[:4])} failed (exit {code}); log tail:\n{self.tail(log_path)}")

    def tail(self, path: Path, lines: int = 40) -> str:
        text = path.read_text(errors="replace").splitlines()[-lines:]
        return redact("\n".join("    " + line for line in text), self.server.settings.password)


def _kill_group(proc: subprocess.Popen) -> None:
    """End a child this bench started, and its own children (its process group), by its id."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=15)
    except ProcessLookupError:
        return
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()


def redact(text: str, password: str | None) -> str:
    return text.replace(password, "***") if password else text


def airflow_migrate(ws: Workspace) -> float:
    began = time.monotonic()
    ws.run(["-m", "airflow", "db", "migrate"], ws.env(DATASETS["bench"]), "airflow-db-migrate.log", 600)
    return time.monotonic() - began


def run_steps(ws: Workspace, scale: str, shape: list[dict], profile: set[str] = frozenset()) -> dict:
    """Each pipeline step in its own subprocess, in the DAG's order; their results. With
    ``profile``, a separate sequence whose named steps run under cProfile (the profiler's own
    memory and time would distort the measured one); returns {task: profile text} then."""
    database = DATASETS[scale]
    tag = f"profile-{scale}" if profile else f"steps-{scale}"
    work = ws.root / tag
    work.mkdir(parents=True, exist_ok=True)
    env = ws.env(database, tag=tag)
    (work / "shape.json").write_text(json.dumps(shape))
    tasks = [t["task_id"] for t in shape]
    results = {}
    for task in tasks:
        args = ["-m", "dev.bench", "step", task, "--work", str(work)]
        if task in profile:
            args.append("--profile")
        ws.run(args, env, f"{tag}-{task}.log", STEP_TIMEOUT_S)
        results[task] = json.loads((work / f"{task}.result.json").read_text())
        if not profile:
            say(f"  {scale:<8} {task:<25} {results[task]['seconds']:7.2f} s  peak RSS "
                f"{results[task]['max_rss_mb']:6.0f} MiB" + ("  (skipped)" if results[task]["skipped"] else ""))
    if profile:
        return {task: (work / f"{task}.profile.txt").read_text() for task in tasks if task in profile}
    return results


def dag_shape(ws: Workspace) -> list[dict]:
    """The real DAG's tasks in topological order: upstream task ids, and which upstream results
    each task function takes as arguments (its XCom inputs, in order)."""
    out = ws.root / "shape.json"
    ws.run(["-m", "dev.bench", "shape", "--out", str(out)], ws.env(DATASETS["bench"]), "shape.log", 600)
    return json.loads(out.read_text())


def run_dag(ws: Workspace, kind: str, n: int, *, shape: list[dict] | None = None,
            label: str = "run") -> list[dict]:
    """``dag.test()`` of the real DAG (``project``) or the orchestration floor (``noop``), n times."""
    if kind == "noop":
        ws.noop_dags.mkdir(parents=True, exist_ok=True)
        source = NOOP_DAG_TEMPLATE.format(dag_id=DAG_ID, noop_id=NOOP_DAG_ID,
                                          shape=[(t["task_id"], t["upstream"]) for t in shape or []])
        (ws.noop_dags / "orchestration_floor.py").write_text(source)
        env = ws.env(DATASETS["bench"], dags_folder=ws.noop_dags, tag="noop")
    else:
        env = ws.env(DATASETS["bench"], tag="dag")
    runs = []
    for i in range(n):
        stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"dagrun-{kind}-{label}-{i}")
        out, log_name = ws.root / f"{stem}.json", f"{stem}.log"
        ws.run(["-m", "dev.bench", "dagrun", kind, "--out", str(out)], env, log_name, DAG_TIMEOUT_S)
        result = json.loads(out.read_text())
        if result["state"] != "success":
            failed = {t: r["state"] for t, r in result["tasks"].items() if r["state"] != "success"}
            raise BenchError(f"the {kind} DAG run ended {result['state']} ({failed}); log tail:\n"
                             f"{ws.tail(ws.root / 'logs' / log_name)}")
        say(f"  {kind:<8} {label}" + (f" {i + 1}/{n}" if n > 1 else "") + f": {result['seconds']:.2f} s")
        runs.append(result)
    return runs


# ================================================================================== child: a step
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
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # other systems: KiB on Linux, bytes on macOS


class _Obj:
    def __init__(self, **kw):
        self.__dict__.update(kw)


def stand_in_context(task: str, downstream: Iterable[str] = (), pushed: dict | None = None) -> dict:
    """What the pipeline functions read from the Airflow context, for a manual run: ``downstream``
    the task's downstream task ids, ``pushed`` collects what it pushes to XCom itself."""
    dag_run = _Obj(run_type="manual", run_id="bench__steps", dag_id=DAG_ID, data_interval_end=None,
                   run_after=END, logical_date=None)
    pushed = {} if pushed is None else pushed
    return {"dag_run": dag_run, "params": {"period_end": END_ISO, "send_email": False},
            "task": _Obj(task_id=task, get_flat_relative_ids=lambda upstream=False: set(downstream)),
            "ti": _Obj(xcom_push=pushed.__setitem__), "run_id": dag_run.run_id}


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
    """One task's pipeline function, as the DAG calls it: ``include.investor_metrics.weekly.tasks.<task id>(context,
    *results of the upstream tasks the DAG passes in)`` (the DAG file is thin: each task calls the
    pipeline function of its name), in a process that, like a task's, has the Airflow SDK loaded."""
    import logging

    import airflow.sdk  # noqa: F401 - every task process has it: part of a task's memory

    from include.investor_metrics.weekly import email_tasks
    from include.investor_metrics.weekly import tasks as pipeline

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    shape = {t["task_id"]: t for t in json.loads((work / "shape.json").read_text())}
    function = getattr(pipeline, task, None) or getattr(email_tasks, task, None)
    if function is None:
        raise BenchError(f"include.investor_metrics.weekly.tasks has no function {task}() for the DAG task {task}")
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
        dag_file, dag_id = Path(os.environ["AIRFLOW__CORE__DAGS_FOLDER"]) / "orchestration_floor.py", NOOP_DAG_ID
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
    out.write_text(json.dumps({"kind": kind, "state": state, "seconds": seconds, "task_span_seconds": span,
                               "tasks": tasks}))
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
        results.append({"label": label, "seconds": time.perf_counter() - began,
                        "max_rss_mb": peak_rss_mb()})
    out.write_text(json.dumps(results))
    return 0


def measure_imports(ws: Workspace) -> list[dict]:
    out = ws.root / "imports.json"
    ws.run(["-m", "dev.bench", "imports", "--out", str(out)], ws.env(DATASETS["bench"]), "imports.log", 600)
    return json.loads(out.read_text())


# ================================================================================== report


def _f(value, fmt="{:.2f}", missing="—") -> str:
    return missing if value is None else fmt.format(value)


def attribution(figures: dict) -> dict:
    """The run's excess over the two floors, split by where it happens: per task, the run's time
    − the no-op's time − the task's SQL floor (medians over the runs), the extracts together
    (dag.test runs them one after the other in any order, and the first task run in a process
    carries the in-process Execution API's start-up), plus the time between tasks."""
    run, noop, floor = figures["dag_run"], figures["orchestration_floor"], figures["data_floor"]
    rt, nt, ft = run["tasks"], noop["tasks"], floor["per_task"]
    extracts = [t for t in figures["tasks"] if t in EXTRACT_TASKS]
    rt = {t: rt.get(t) or 0.0 for t in figures["tasks"]}
    nt = {t: nt.get(t) or 0.0 for t in figures["tasks"]}
    parts = {
        "extracts": run["extracts"] - noop["extracts"] - sum(ft.get(t, 0.0) for t in extracts),
        **{t: rt[t] - nt[t] - ft.get(t, 0.0) for t in figures["tasks"] if t not in EXTRACT_TASKS},
        "between tasks": run["between"] - noop["between"],
    }
    return {"excess": run["seconds"] - noop["seconds"] - floor["total"], "parts": parts}


def report(figures: dict) -> str:
    m, pg, tasks = figures["machine"], figures["postgres"], figures["tasks"]
    run, noop = figures["dag_run"], figures["orchestration_floor"]
    floor, vsql = figures["data_floor"], figures.get("validation_sql")
    steps1, steps2 = figures["steps"].get("bench", {}), figures["steps"].get("bench2x", {})
    bytecode = ("cached (PYTHONPYCACHEPREFIX in the workspace, warmed by one unmeasured run of each DAG), as on a "
                "deployed worker" if figures["bytecode_cache"] else
                "as this environment has it" + (" (PYTHONDONTWRITEBYTECODE set: every import compiles from source)"
                                                if os.getenv("PYTHONDONTWRITEBYTECODE") else ""))
    lines = [
        "",
        f"ChatterFix investor_metrics benchmark — {figures['date']}",
        f"machine: {m['nproc']} CPUs ({m['cpu']}), {m['ram_gib']} GiB RAM, {m['os']}; Python {m['python']}, "
        f"Airflow {m.get('airflow', '?')}, GX {m.get('great_expectations', '?')}, pandas {m.get('pandas', '?')}",
        f"PostgreSQL {pg['version']} ({pg['origin']}): shared_buffers {pg['shared_buffers']}, work_mem "
        f"{pg['work_mem']}, max_parallel_workers_per_gather {pg['max_parallel_workers_per_gather']}, jit {pg['jit']}",
        f"data: {', '.join(f'{n} ({s})' for n, s in figures['database_sizes'].items())}; seed {SEED}; "
        f"period [{figures['period']['start']}, {figures['period']['end']}) (manual run, UTC)",
        f"runs: real DAG = median of {run['runs']} dag.test() ({', '.join(f'{x:.1f}' for x in run['all_seconds'])} s), "
        f"no-op DAG = median of {noop['runs']} ({', '.join(f'{x:.1f}' for x in noop['all_seconds'])} s), "
        f"interleaved; SQL floors = median of {floor['rounds']} warm rounds",
        f"load average (1/5/15 min): {figures['load_average']['start']} at start, {figures['load_average']['end']} "
        "at end (a shared machine: compare the figures of one run with each other)",
        f"bytecode: {bytecode}",
        "",
    ]
    width = max(len(t) for t in [*tasks, "whole run"]) + 2
    header = (f"{'task':<{width}}{'DAG run s':>10}{'no-op s':>9}{'PG floor s':>12}{'step s':>8}"
              f"{'peak MiB':>10}{'peak MiB 2x':>13}{'2x/1x':>7}")
    lines += [header, "-" * len(header)]
    last_extract = next((t for t in reversed(tasks) if t in EXTRACT_TASKS), None)
    for task in tasks:
        pg_floor, mark = floor["per_task"].get(task), " "
        if task == VALIDATE_TASK and vsql:
            pg_floor, mark = vsql["total"], "*"
        p1 = steps1.get(task, {}).get("max_rss_mb")
        p2 = steps2.get(task, {}).get("max_rss_mb")
        step_s = _f(steps1.get(task, {}).get("seconds")) + ("s" if steps1.get(task, {}).get("skipped") else " ")
        lines.append(
            f"{task:<{width}}{_f(run['tasks'].get(task)):>10}{_f(noop['tasks'].get(task)):>9}"
            f"{_f(pg_floor) + mark:>12}{step_s:>9}"
            f"{_f(p1, '{:.0f}'):>9}{_f(p2, '{:.0f}'):>13}{_f(p2 / p1 if p1 and p2 else None):>7}"
        )
        if task == last_extract:
            extract_floor = sum(floor["per_task"].get(t, 0.0) for t in EXTRACT_TASKS)
            extract_steps = sum(steps1.get(t, {}).get("seconds") or 0.0 for t in EXTRACT_TASKS)
            lines.append(f"{'  the 3 extracts':<{width}}{_f(run['extracts']):>10}{_f(noop['extracts']):>9}"
                         f"{_f(extract_floor) + ' ':>12}{_f(extract_steps) + ' ':>9}")
    lines.append("-" * len(header))
    peak1 = max((s["max_rss_mb"] for s in steps1.values()), default=None)
    peak2 = max((s["max_rss_mb"] for s in steps2.values()), default=None)
    lines.append(
        f"{'whole run':<{width}}{_f(run['seconds']):>10}{_f(noop['seconds']):>9}{_f(floor['total']) + ' ':>12}"
        f"{_f(sum(s['seconds'] for s in steps1.values()) if steps1 else None) + ' ':>9}"
        f"{_f(peak1, '{:.0f}'):>9}{_f(peak2, '{:.0f}'):>13}{_f(peak2 / peak1 if peak1 and peak2 else None):>7}"
    )
    lines += [
        "",
        "DAG run s: task instance end − start in dag.test() (whole run: the dag.test() call), medians over the runs.",
        "  no-op s: the same-shape DAG whose tasks do nothing. The first task a dag.test() process runs (one of the",
        "  extracts, any) carries the in-process Execution API's start-up: compare the 3 extracts' sum.",
        "  PG floor s: the task's SQL run directly with psycopg2 (execute + fetch all): the extract_*.sql files, and",
        "  for evaluate_alerts the 8 prior weeks' subscriptions; * validate_data: the SQL GX sent, replayed directly",
        "  (not in the data floor). step s / peak MiB: the task's pipeline function alone in its own process with",
        "  the Airflow SDK loaded (VmHWM, nothing subtracted); s = skipped (no e-mail on a manual run).",
        "",
    ]
    ratio = figures["ratio_dag_test"]
    in_process = "in one process (dag.test(), no executor): " if "scheduler" in figures else ""
    verdict = "OK" if ratio <= RATIO_TARGET else "MISSED"
    lines.append(f"{in_process}ratio run / (data floor + orchestration floor) = {run['seconds']:.2f} / "
                 f"({floor['total']:.2f} + {noop['seconds']:.2f}) = {ratio:.2f}   target ≤ {RATIO_TARGET}: "
                 + (verdict if not in_process else f"{verdict} (not the target's measure: see below)"))
    if vsql:
        r2 = figures["ratio_with_validation_sql"]
        lines.append(f"  (counting the validation's SQL in the floor too: {run['seconds']:.2f} / ({floor['total']:.2f} "
                     f"+ {vsql['total']:.2f} + {noop['seconds']:.2f}) = {r2:.2f})")
    if "scheduler" in figures:
        lines += _scheduler_lines(figures, width)
    if peak1 is not None:
        verdict = "OK" if peak1 <= MEMORY_TARGET_MB else "MISSED"
        lines.append(f"peak memory of any task = {peak1:.0f} MiB ({_peak_task(steps1)})   target ≤ "
                     f"{MEMORY_TARGET_MB} MB: {verdict}")
    if peak1 and peak2:
        worst = max(tasks, key=lambda t: steps2[t]["max_rss_mb"] / steps1[t]["max_rss_mb"])
        growth = steps2[worst]["max_rss_mb"] / steps1[worst]["max_rss_mb"]
        verdict = "flat" if growth <= FLAT_TOLERANCE else "NOT flat"
        lines.append(f"event tables doubled: largest growth {growth:.2f}× ({worst}), peak {peak2:.0f} MiB"
                     f"   → {verdict} (≤ {FLAT_TOLERANCE:.2f}×)")
    lines.append("")
    split = attribution(figures)
    parts = split["parts"]
    lines += textwrap.wrap(f"where the run's excess over the floors goes: {split['excess']:.2f} s = "
                           + " + ".join(f"{name} {sec:.2f}" for name, sec in parts.items()),
                           width=110, subsequent_indent="  ")
    if vsql and VALIDATE_TASK in parts:
        gx_import = next((i["seconds"] for i in figures.get("imports", []) if i["label"] == "great_expectations"), None)
        rest = parts[VALIDATE_TASK] - vsql["total"] - (gx_import or 0)
        lines.append(f"  {VALIDATE_TASK} {parts[VALIDATE_TASK]:.2f} s ≈ its SQL {vsql['total']:.2f} + importing GX "
                     f"{_f(gx_import)} + GX's own Python work {rest:.2f}")
    if figures.get("imports"):
        lines += textwrap.wrap("one-off import cost in a fresh task process (cumulative RSS after): " + ", ".join(
            f"{i['label']} {i['seconds']:.2f} s ({i['max_rss_mb']:.0f} MiB)" for i in figures["imports"]),
            width=110, subsequent_indent="  ")
    lines += textwrap.wrap("data floor per query (s, rows): " + ", ".join(
        f"{label} {sec:.2f} ({floor['rows'].get(label, 0):,})" for label, sec in floor["per_query"].items()),
        width=110, subsequent_indent="  ")
    if vsql:
        lines += textwrap.wrap(
            f"validation SQL: {vsql['statements']} statements, {vsql['total']:.2f} s replayed directly "
            f"({vsql['client_seconds']:.2f} s as GX saw it in the step), of which {vsql['value_sample_seconds']:.2f} s "
            f"in {vsql['value_sample_queries']} queries fetching a sample of bad values (GX result format BASIC) that "
            "the validation never reads; slowest statements:", width=110, subsequent_indent="  ")
        for s in vsql["slowest"]:
            lines.append(f"  {s['seconds']:6.2f} s  {s['sql']}")
        if vsql["errors"]:
            lines.append(f"  ({len(vsql['errors'])} statement(s) could not be replayed: {vsql['errors'][0]})")
    return "\n".join(lines)


def _scheduler_lines(figures: dict, width: int) -> list[str]:
    """The deployed-way table (dev/bench/scheduler.py) and the headline ratio."""
    sched, floor, tasks = figures["scheduler"], figures["data_floor"], figures["tasks"]
    run, noop = sched["dag_run"], sched["orchestration_floor"]
    lines = [
        "",
        f"THROUGH THE SCHEDULER, as deployed (`make demo`'s stack, executor {sched.get('executor', '?')}, "
        f"each task its own process): medians of {run['runs']} manual runs of each DAG, interleaved",
        f"  real ({', '.join(f'{x:.1f}' for x in run['all_seconds'])} s), "
        f"no-op ({', '.join(f'{x:.1f}' for x in noop['all_seconds'])} s)",
    ]
    header = f"{'task':<{width}}{'run s':>10}{'no-op s':>9}{'PG floor s':>12}"
    lines += [header, "-" * len(header)]
    for task in tasks:
        lines.append(f"{task:<{width}}{_f(run['tasks'].get(task)):>10}{_f(noop['tasks'].get(task)):>9}"
                     f"{_f(floor['per_task'].get(task)) + ' ':>13}")
    lines.append("-" * len(header))
    lines.append(f"{'whole run':<{width}}{_f(run['seconds']):>10}{_f(noop['seconds']):>9}{_f(floor['total']) + ' ':>13}")
    lines.append("run s: Airflow's run end − start (the UI's Duration) and each task instance's end − start.")
    if sched.get("executor_log"):
        lines.append("scheduler log: " + sched["executor_log"][0][-110:])
    ratio = figures["ratio"]
    verdict = "OK" if ratio <= RATIO_TARGET else "MISSED"
    lines += ["", f"RATIO run / (data floor + orchestration floor), through the scheduler = {run['seconds']:.2f} / "
                  f"({floor['total']:.2f} + {noop['seconds']:.2f}) = {ratio:.2f}   target ≤ {RATIO_TARGET}: {verdict}"]
    return lines


def _levels(shape: list[dict]) -> list[list[str]]:
    """The tasks grouped by depth (the Graph view's columns)."""
    depth: dict[str, int] = {}
    for t in shape:  # topological order: upstream first
        depth[t["task_id"]] = 1 + max((depth[u] for u in t["upstream"]), default=-1)
    return [[t for t, d in depth.items() if d == level] for level in range(max(depth.values()) + 1)]


def _peak_task(steps: dict) -> str:
    return max(steps, key=lambda t: steps[t]["max_rss_mb"])


# ================================================================================== main
def bench_main(args) -> int:
    figures: dict = {"date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "machine": machine(),
                     "bytecode_cache": args.bytecode_cache}
    server = find_server()
    root = Path(tempfile.mkdtemp(prefix="cfx-bench-"))
    ws = Workspace(root, server, bytecode_cache=args.bytecode_cache)
    scales = ["bench"] if args.skip_2x else ["bench", "bench2x"]
    profile = set(args.profile or [])
    try:
        say(f"PostgreSQL: {server.settings.public_description()} ({server.origin}); workspace {root}")
        figures["postgres"] = postgres_info(server)
        for scale in scales:
            seconds, loaded = load_dataset(server, scale)
            figures.setdefault("loads", {})[scale] = {"seconds": seconds, "loaded": loaded}
        period = bench_period()
        figures["period"] = {"start": period.start.isoformat(), "end": period.end.isoformat()}
        bench_db = server.database(DATASETS["bench"])

        say("Airflow metadata database (temporary AIRFLOW_HOME, SQLite): airflow db migrate")
        say(f"  {airflow_migrate(ws):.0f} s")
        shape = dag_shape(ws)
        tasks = figures["tasks"] = [t["task_id"] for t in shape]
        say(f"{DAG_ID}: {len(tasks)} tasks, " + " → ".join(
            "[" + ", ".join(level) + "]" if len(level) > 1 else level[0] for level in _levels(shape)))
        unknown = profile - set(tasks)
        if unknown:
            raise BenchError(f"--profile: no task {', '.join(sorted(unknown))} in {DAG_ID} ({', '.join(tasks)})")

        say(f"data floor: the extract queries, 1 warm-up + {args.floor_rounds} rounds")
        figures["data_floor"] = measure_data_floor(bench_db, period, args.floor_rounds, tasks)
        say(f"  {figures['data_floor']['total']:.2f} s")

        say("warm-up (not measured): one run of each DAG")
        run_dag(ws, "noop", 1, shape=shape, label="warm-up")
        run_dag(ws, "project", 1, label="warm-up")
        figures["imports"] = measure_imports(ws)

        figures["steps"] = {}
        say("each step in its own process (peak memory), bench data")
        figures["steps"]["bench"] = run_steps(ws, "bench", shape)
        validate = figures["steps"]["bench"].get(VALIDATE_TASK, {})
        statements = validate.pop("sql_statements", [])
        if statements:
            say(f"validation SQL: replaying the {len(statements)} statements GX sent")
            vsql = replay_validation_sql(bench_db, statements, args.floor_rounds)
            vsql["client_seconds"] = validate.get("sql_client_seconds", 0.0)
            figures["validation_sql"] = vsql
            say(f"  {vsql['total']:.2f} s")

        say(f"dag.test(): {args.noop_runs} run(s) of the no-op DAG (orchestration floor) and {args.dag_runs} "
            "of the real DAG, interleaved")
        noop_runs, dag_runs = [], []
        for i in range(max(args.noop_runs, args.dag_runs)):
            if i < args.noop_runs:
                noop_runs += run_dag(ws, "noop", 1, shape=shape, label=f"run {i + 1}/{args.noop_runs}")
            if i < args.dag_runs:
                dag_runs += run_dag(ws, "project", 1, label=f"run {i + 1}/{args.dag_runs}")
        figures["orchestration_floor"] = _median_runs(noop_runs)
        figures["dag_run"] = _median_runs(dag_runs)

        if args.sched_runs > 0:
            from dev.bench import scheduler as bench_scheduler

            say(f"through the scheduler: {args.sched_runs} manual run(s) of each DAG, interleaved")
            noop_source = NOOP_DAG_TEMPLATE.format(dag_id=DAG_ID, noop_id=NOOP_DAG_ID,
                                                   shape=[(t["task_id"], t["upstream"]) for t in shape])
            figures["scheduler"] = bench_scheduler.measure(
                server, DATASETS["bench"], END_ISO, args.sched_runs, root, noop_source, NOOP_DAG_ID, DAG_ID)

        if "bench2x" in scales:
            say("each step in its own process (peak memory), doubled event tables")
            figures["steps"]["bench2x"] = run_steps(ws, "bench2x", shape)
            figures["steps"]["bench2x"].get(VALIDATE_TASK, {}).pop("sql_statements", None)
        profiles = {}
        if profile:
            say(f"cProfile of {', '.join(sorted(profile))} (a separate sequence of the steps, bench data)")
            profiles = run_steps(ws, "bench", shape, profile)

        figures["load_average"] = {"start": figures["machine"].get("load_average"), "end": _load_average()}
        run_s, noop_s = figures["dag_run"]["seconds"], figures["orchestration_floor"]["seconds"]
        floor_s = figures["data_floor"]["total"]
        figures["ratio_dag_test"] = run_s / (floor_s + noop_s)
        figures["ratio"] = figures["ratio_dag_test"]
        if "scheduler" in figures:
            sched = figures["scheduler"]
            figures["ratio"] = sched["dag_run"]["seconds"] / (floor_s + sched["orchestration_floor"]["seconds"])
        if "validation_sql" in figures:
            figures["ratio_with_validation_sql"] = run_s / (floor_s + figures["validation_sql"]["total"] + noop_s)
        figures["attribution"] = attribution(figures)
        figures["database_sizes"] = database_sizes(server, [DATASETS[s] for s in scales])
        print(report(figures), flush=True)
        for task, text in profiles.items():
            print(f"\ncProfile of {task} (bench data, own process, cumulative):\n{text}", flush=True)
        if args.json:
            Path(args.json).write_text(json.dumps(figures, indent=2, default=str))
            say(f"figures written to {args.json}")
    finally:
        for proc in list(ws.children):
            _kill_group(proc)
        if args.keep_logs:
            shutil.copytree(root / "logs", args.keep_logs, dirs_exist_ok=True)
            if (root / "sched" / "state").is_dir():  # the scheduler part's stack: service and task logs
                shutil.copytree(root / "sched" / "state" / "logs", Path(args.keep_logs) / "scheduler-stack",
                                dirs_exist_ok=True)
                shutil.copytree(root / "sched" / "state" / "airflow" / "logs",
                                Path(args.keep_logs) / "scheduler-stack" / "tasks", dirs_exist_ok=True)
            say(f"logs copied to {args.keep_logs}")
        shutil.rmtree(root, ignore_errors=True)
        if args.drop:
            for scale in scales:
                drop_database(server, DATASETS[scale])
                say(f"dropped database {DATASETS[scale]}")
        else:
            try:
                sizes = database_sizes(server, [DATASETS[s] for s in scales])
                say("databases kept for the next run (--drop removes them): "
                    + ", ".join(f"{n} {s}" for n, s in sizes.items()))
            except BenchError:
                pass
        if server.embedded_datadir is not None:
            stop_embedded(server)
            say("stopped the embedded PostgreSQL this bench started")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m dev.bench", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command")
    parser.add_argument("--drop", action="store_true", help="drop the bench databases at the end")
    parser.add_argument("--keep", dest="drop", action="store_false", help="keep them for the next run (default)")
    parser.add_argument("--skip-2x", action="store_true", help="skip the doubled data set (memory flatness)")
    parser.add_argument("--dag-runs", type=int, default=3, help="measured dag.test() runs of the real DAG (median)")
    parser.add_argument("--noop-runs", type=int, default=3, help="measured dag.test() runs of the no-op DAG (median)")
    parser.add_argument("--floor-rounds", type=int, default=3, help="measured rounds of the SQL floors (median)")
    parser.add_argument("--sched-runs", type=int, default=3,
                        help="measured runs of each DAG through the real scheduler (median; 0: skip that part)")
    parser.add_argument("--no-bytecode-cache", dest="bytecode_cache", action="store_false",
                        help="run the children with the environment's bytecode settings as they are "
                             "(default: a bytecode cache in the workspace, as a deployed worker has)")
    parser.add_argument("--profile", action="append", metavar="TASK",
                        help="cProfile this step (bench data, own process) and print its top functions; repeatable")
    parser.add_argument("--json", metavar="FILE", help="also write every figure to FILE as JSON")
    parser.add_argument("--keep-logs", metavar="DIR", help="copy the children's logs to DIR before cleaning up")
    parser.add_argument("--api", action="store_true",
                        help="instead: the investor API latency benchmark (issue 6; dev/bench/api.py)")
    parser.add_argument("--backfill", action="store_true",
                        help="instead: a backfill's wall time through the scheduler against a no-op DAG of the "
                             "same shape (issue 5; dev/bench/backfill.py); --weeks N, --max-active-runs N")
    parser.add_argument("--weeks", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--max-active-runs", type=int, help=argparse.SUPPRESS)
    step = sub.add_parser("step", help="(internal) run one pipeline step in this process")
    step.add_argument("task")
    step.add_argument("--work", type=Path, required=True)
    step.add_argument("--profile", action="store_true")
    dagrun = sub.add_parser("dagrun", help="(internal) dag.test() one DAG in this process")
    dagrun.add_argument("kind", choices=("project", "noop"))
    dagrun.add_argument("--out", type=Path, required=True)
    imports = sub.add_parser("imports", help="(internal) time the tasks' lazy imports in this process")
    imports.add_argument("--out", type=Path, required=True)
    shape = sub.add_parser("shape", help="(internal) the DAG's tasks and edges, as JSON")
    shape.add_argument("--out", type=Path, required=True)
    return parser






def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "step":
        return step_main(args.task, args.work, args.profile)
    if args.command == "dagrun":
        return dagrun_main(args.kind, args.out)
    if args.command == "imports":
        return imports_main(args.out)
    if args.command == "shape":
        return shape_main(args.out)
    if args.api:
        from dev.bench import api as bench_api

        return bench_api.main(["--json", args.json] if args.json else [])
    if args.backfill:
        from dev.bench import backfill as bench_backfill

        return bench_backfill.main((["--json", args.json] if args.json else [])
                                   + (["--weeks", str(args.weeks)] if args.weeks else [])
                                   + (["--max-active-runs", str(args.max_active_runs)] if args.max_active_runs else []))
    if min(args.dag_runs, args.noop_runs, args.floor_rounds) < 1:
        print("bench: --dag-runs, --noop-runs and --floor-rounds must be at least 1", file=sys.stderr)
        return 2
    return run_cli("bench", bench_main, args, on_interrupt="temporary files removed")


if __name__ == "__main__":
    sys.exit(main())
