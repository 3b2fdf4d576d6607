"""The performance benchmark of the weekly ``investor_metrics`` DAG (issue 3): ``make bench``.

One command, run from the project folder::

    .venv/bin/python -m include.bench [--drop] [--skip-2x] [--dag-runs 1] [--noop-runs 3]
                                      [--profile TASK] [--json FILE]

What it does, in order:

1. PostgreSQL: the server of ``DB_HOST``/``DB_*`` when set, else 127.0.0.1:5432 when it answers,
   else an embedded one (``include/embedded_pg.py``, data in ``.local/bench-pgdata``, port
   ``BENCH_PG_PORT`` = 55433; stopped again at the end). Databases ``chatterfix_bench`` (the
   generator's bench scale: 100k customers, ~24M usage events, ~12M AI requests) and
   ``chatterfix_bench2x`` (same customers, twice the event tables) are created and loaded once,
   with a fixed ``end`` and seed; later runs find them loaded and skip the load (``--drop`` drops
   them at the end instead of keeping them).
2. The period: the last complete week of the data, [end − 7 days, end), run as a manual run with
   ``period_end`` = end (the DAG's ``on_demand`` path), ``INVESTOR_TIMEZONE`` = UTC.
3. **Data floor**: the extract SQL files (``include/sql/extract_*.sql``) with the same bind values
   the extract step uses, run directly with psycopg2, results fetched; one warm-up round, then the
   median of ``--floor-rounds`` rounds per query. The validation's SQL is isolated the same way:
   every statement GX sends while the ``validate_data`` step runs is captured (SQLAlchemy cursor
   events, the exact text psycopg2 sent) and replayed directly.
4. **Peak memory**: each pipeline step (``include.pipeline``) in its own subprocess, in the DAG's
   order, with a stand-in context (a manual dag_run); frames pass through the staging folder as
   in the DAG; ``ru_maxrss`` of the subprocess, nothing subtracted. The same on the doubled data.
5. **Orchestration floor**: a DAG of the same shape (3 parallel tasks → 1 → 1 → 1) whose tasks do
   nothing, run with ``dag.test()`` (written to a temporary dags folder, never to ``dags/``).
6. **The run**: the real DAG (``dags/investor_metrics.py``) with ``dag.test()``; per-task wall
   times from the task instances' start/end dates.

Airflow runs in subprocesses with a temporary ``AIRFLOW_HOME`` (SQLite metadata, ``airflow db
migrate`` first); archive and staging folders are temporary too. Everything temporary is removed
at the end, whatever happens. Passwords are never printed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from include.config import PROJECT_ROOT, ConfigError, PostgresSettings, postgres_settings_from_env

END = datetime(2026, 11, 22, 9, tzinfo=timezone.utc)  # a Sunday 09:00 UTC: the data's last instant
END_ISO = "2026-11-22T09:00:00Z"
SEED = 42
DATASETS = {"bench": "chatterfix_bench", "bench2x": "chatterfix_bench2x"}

DAG_ID = "investor_metrics"
NOOP_DAG_ID = "investor_metrics_orchestration_floor"
EXTRACT_TASKS = ("extract_business_data", "extract_ai_metrics", "extract_health_checks")
TASKS = (*EXTRACT_TASKS, "validate_data", "compute_metrics", "archive_snapshot")

RATIO_TARGET = 1.3
MEMORY_TARGET_MB = 400
FLAT_TOLERANCE = 1.10  # peak(2x data) / peak(1x data) at most this: "flat"

STEP_TIMEOUT_S = 30 * 60
DAG_TIMEOUT_S = 60 * 60
EMBEDDED_DATADIR = PROJECT_ROOT / ".local" / "bench-pgdata"

# The orchestration floor: the weekly DAG's shape, tasks that do nothing (small XComs, as there).
NOOP_DAG_SOURCE = f'''"""Orchestration floor of ``make bench``: the investor_metrics shape, tasks doing nothing."""
import pendulum
from airflow.sdk import Param, dag, task


@dag(
    schedule=None,
    start_date=pendulum.datetime(2020, 1, 1, tz="UTC"),
    catchup=False,
    tags=["bench"],
    default_args={{"owner": "bench", "retries": 0}},
    params={{"period_end": Param(None, type=["null", "string"]), "send_email": Param(False, type="boolean")}},
)
def {NOOP_DAG_ID}():
    @task
    def extract_business_data() -> str:
        return "business"

    @task
    def extract_ai_metrics() -> str:
        return "ai"

    @task
    def extract_health_checks() -> str:
        return "health"

    @task
    def validate_data() -> dict:
        return {{"success": True, "warnings": []}}

    @task
    def compute_metrics(business: str, ai: str, health: str, data_quality: dict) -> str:
        return "snapshot.json"

    @task
    def archive_snapshot(snapshot_path: str) -> dict:
        return {{"period_file": snapshot_path}}

    business, ai, health = extract_business_data(), extract_ai_metrics(), extract_health_checks()
    data_quality = validate_data()
    [business, ai, health] >> data_quality
    archive_snapshot(compute_metrics(business, ai, health, data_quality))


{NOOP_DAG_ID}()
'''


class BenchError(RuntimeError):
    """Something the bench cannot work around; the message says what and where."""


def say(message: str = "") -> None:
    print(f"[bench] {message}" if message else "", flush=True)


# ================================================================================== the server
@dataclass
class Server:
    settings: PostgresSettings  # dbname: the maintenance database
    origin: str
    embedded_datadir: Path | None = None  # set when this bench started the embedded server

    def database(self, name: str) -> PostgresSettings:
        s = self.settings
        return PostgresSettings(host=s.host, port=s.port, dbname=name, user=s.user, password=s.password)


def find_server() -> Server:
    from include import embedded_pg

    if os.getenv("DB_HOST", "").strip():
        try:
            env = postgres_settings_from_env()
        except ConfigError as exc:
            raise BenchError(str(exc)) from None
        admin = PostgresSettings(host=env.host, port=env.port, dbname="postgres", user=env.user,
                                 password=env.password)
        return Server(admin, "DB_HOST")
    if embedded_pg.port_open("127.0.0.1", 5432):
        return Server(PostgresSettings(host="127.0.0.1", port=5432, dbname="postgres", user="postgres"),
                      "local server on 127.0.0.1:5432")
    port = int(os.getenv("BENCH_PG_PORT", "55433"))
    was_running = embedded_pg.is_running(EMBEDDED_DATADIR)
    say(f"no PostgreSQL configured: starting the embedded one on 127.0.0.1:{port} ({EMBEDDED_DATADIR})")
    embedded_pg.start(EMBEDDED_DATADIR, port)
    return Server(PostgresSettings(host="127.0.0.1", port=port, dbname="postgres", user="postgres"),
                  "embedded", None if was_running else EMBEDDED_DATADIR)


def _admin_connect(server: Server):
    from include.db import connect

    try:
        conn = connect(server.settings)
    except Exception as exc:  # noqa: BLE001 - say where, not the password
        raise BenchError(f"cannot connect to {server.settings.public_description()}: "
                         f"{str(exc).strip().splitlines()[0]}") from None
    conn.autocommit = True
    return conn


def ensure_database(server: Server, name: str) -> None:
    conn = _admin_connect(server)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
            if cur.fetchone() is None:
                say(f"creating database {name}")
                cur.execute(f'CREATE DATABASE "{name}"')
    finally:
        conn.close()


def drop_database(server: Server, name: str) -> None:
    conn = _admin_connect(server)
    try:
        with conn.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        conn.close()


def database_sizes(server: Server, names) -> dict[str, str]:
    conn = _admin_connect(server)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT datname, pg_size_pretty(pg_database_size(datname)) FROM pg_database "
                        "WHERE datname = ANY(%s)", (list(names),))
            return dict(cur.fetchall())
    finally:
        conn.close()


def load_dataset(server: Server, scale: str) -> tuple[float, bool]:
    from include import generator

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
def machine() -> dict:
    info = {"nproc": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()}
    try:
        meminfo = Path("/proc/meminfo").read_text()
        kib = int(re.search(r"MemTotal:\s+(\d+)", meminfo).group(1))
        info["ram_gib"] = round(kib / 1024 / 1024, 1)
    except (OSError, AttributeError):
        info["ram_gib"] = None
    model = None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info["cpu"] = model or platform.processor() or platform.machine()
    info["os"] = f"{platform.system()} {platform.release()}"
    info["python"] = platform.python_version()
    try:
        from importlib.metadata import version

        info["airflow"] = version("apache-airflow")
        info["great_expectations"] = version("great-expectations")
        info["pandas"] = version("pandas")
    except Exception:  # noqa: BLE001 - informative only
        pass
    return info


def postgres_info(server: Server) -> dict:
    conn = _admin_connect(server)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT current_setting('server_version'), current_setting('shared_buffers'), "
                        "current_setting('work_mem'), current_setting('max_parallel_workers_per_gather'), "
                        "current_setting('jit')")
            version, shared_buffers, work_mem, parallel, jit = cur.fetchone()
    finally:
        conn.close()
    return {"version": version, "shared_buffers": shared_buffers, "work_mem": work_mem,
            "max_parallel_workers_per_gather": parallel, "jit": jit, "origin": server.origin}


# ================================================================================== the period
def bench_period():
    from include.period import period_for_run

    return period_for_run(run_type="manual", tz="UTC", period_end_param=END_ISO)


# ================================================================================== data floor
def extract_queries(period) -> list[tuple[str, str, str, dict]]:
    """(task, label, sql file, binds) of the extract step, in its order. The customer-history
    query's ids come from the subscriptions result (filled in when it runs)."""
    from include.extract import period_bounds

    bounds = period_bounds(period)
    return [
        ("extract_business_data", "subscriptions", "extract_subscriptions.sql", bounds),
        ("extract_business_data", "customer_history", "extract_customer_history.sql",
         {"start": bounds["start"], "customer_ids": None}),
        ("extract_business_data", "usage", "extract_usage.sql", bounds),
        ("extract_business_data", "nps", "extract_nps.sql", bounds),
        ("extract_business_data", "leads", "extract_leads.sql", bounds),
        ("extract_ai_metrics", "ai_metrics", "extract_ai_metrics.sql", bounds),
        ("extract_health_checks", "health_checks", "extract_health_checks.sql", {**bounds, "services": []}),
    ]


def measure_data_floor(settings: PostgresSettings, period, rounds: int) -> dict:
    """Median seconds per extract query (execute + fetch all), after one warm-up round."""
    from include.db import connect, read_sql

    queries = extract_queries(period)
    times: dict[str, list[float]] = {label: [] for _t, label, _f, _b in queries}
    rows: dict[str, int] = {}
    conn = connect(settings)
    try:
        conn.autocommit = True
        for round_no in range(rounds + 1):
            customer_ids: list[int] = []
            for _task, label, sql_file, binds in queries:
                binds = dict(binds)
                if label == "customer_history":
                    binds["customer_ids"] = customer_ids
                began = time.perf_counter()
                with conn.cursor() as cur:
                    cur.execute(read_sql(sql_file), binds)
                    result = cur.fetchall()
                    names = [d[0] for d in cur.description]
                seconds = time.perf_counter() - began
                if label == "subscriptions":
                    at = names.index("customer_id")
                    customer_ids = sorted({int(r[at]) for r in result if r[at] is not None})
                if round_no:  # round 0 warms the cache
                    times[label].append(seconds)
                rows[label] = len(result)
    finally:
        conn.close()
    per_query = {label: statistics.median(ts) for label, ts in times.items()}
    per_task = {task: 0.0 for task in EXTRACT_TASKS}
    for task, label, _f, _b in queries:
        per_task[task] += per_query[label]
    return {"per_query": per_query, "rows": rows, "per_task": per_task, "total": sum(per_task.values()),
            "rounds": rounds}


def replay_validation_sql(settings: PostgresSettings, statements: list[dict], rounds: int) -> dict:
    """Re-run the statements GX sent, directly (execute + fetch), in one rolled-back transaction."""
    from include.db import connect

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
    return {
        "total": statistics.median(totals) if totals else 0.0,
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
                                    "HEALTH_CHECK_", "SMTP_", "CHATTERFIX_CONN_ID"))}
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


def run_steps(ws: Workspace, scale: str, profile: set[str]) -> dict:
    """Each pipeline step in its own subprocess, in the DAG's order; their results."""
    database = DATASETS[scale]
    work = ws.root / f"steps-{scale}"
    work.mkdir(parents=True, exist_ok=True)
    env = ws.env(database, tag=f"steps-{scale}")
    results = {}
    for task in TASKS:
        args = ["-m", "include.bench", "step", task, "--work", str(work)]
        if task in profile:
            args.append("--profile")
        ws.run(args, env, f"step-{scale}-{task}.log", STEP_TIMEOUT_S)
        results[task] = json.loads((work / f"{task}.result.json").read_text())
        say(f"  {scale:<8} {task:<22} {results[task]['seconds']:7.2f} s  peak RSS "
            f"{results[task]['max_rss_mb']:6.0f} MiB")
    return results


def run_dag(ws: Workspace, kind: str, n: int, *, label: str = "run") -> list[dict]:
    """``dag.test()`` of the real DAG (``project``) or the orchestration floor (``noop``), n times."""
    if kind == "noop":
        ws.noop_dags.mkdir(parents=True, exist_ok=True)
        (ws.noop_dags / "orchestration_floor.py").write_text(NOOP_DAG_SOURCE)
        env = ws.env(DATASETS["bench"], dags_folder=ws.noop_dags, tag="noop")
    else:
        env = ws.env(DATASETS["bench"], tag="dag")
    runs = []
    for i in range(n):
        out = ws.root / f"dagrun-{kind}-{label}-{i}.json"
        log_name = f"dagrun-{kind}-{label}-{i}.log"
        ws.run(["-m", "include.bench", "dagrun", kind, "--out", str(out)], env, log_name, DAG_TIMEOUT_S)
        result = json.loads(out.read_text())
        if result["state"] != "success":
            failed = {t: r["state"] for t, r in result["tasks"].items() if r["state"] != "success"}
            raise BenchError(f"the {kind} DAG run ended {result['state']} ({failed}); log tail:\n"
                             f"{ws.tail(ws.root / 'logs' / log_name)}")
        say(f"  {kind:<8} {label} {i + 1}/{n}: {result['seconds']:.2f} s")
        runs.append(result)
    return runs


# ================================================================================== child: a step
class _Obj:
    def __init__(self, **kw):
        self.__dict__.update(kw)


def stand_in_context(task: str) -> dict:
    """What the pipeline functions read from the Airflow context, for a manual run."""
    dag_run = _Obj(run_type="manual", run_id="bench__steps", dag_id=DAG_ID, data_interval_end=None,
                   run_after=END, logical_date=None)
    return {"dag_run": dag_run, "params": {"period_end": END_ISO, "send_email": False},
            "task": _Obj(task_id=task), "run_id": dag_run.run_id}


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
    import logging

    from include import pipeline

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    context = stand_in_context(task)
    xcom = {t: json.loads((work / f"{t}.result.json").read_text())["value"]
            for t in TASKS[: TASKS.index(task)]}
    statements: list[dict] = []
    if task == "validate_data":
        _capture_sql(statements)
    call = {
        "extract_business_data": lambda: pipeline.extract_business_data(context),
        "extract_ai_metrics": lambda: pipeline.extract_ai_metrics(context),
        "extract_health_checks": lambda: pipeline.extract_health_checks(context),
        "validate_data": lambda: pipeline.validate_data(context),
        "compute_metrics": lambda: pipeline.compute_metrics(
            context, xcom["extract_business_data"], xcom["extract_ai_metrics"], xcom["extract_health_checks"],
            xcom["validate_data"]),
        "archive_snapshot": lambda: pipeline.archive_snapshot(context, xcom["compute_metrics"]),
    }[task]
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    began = time.perf_counter()
    if profile:
        import cProfile
        import io
        import pstats

        profiler = cProfile.Profile()
        value = profiler.runcall(call)
        seconds = time.perf_counter() - began
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(60)
        (work / f"{task}.profile.txt").write_text(out.getvalue())
    else:
        value = call()
        seconds = time.perf_counter() - began
    result = {
        "task": task,
        "seconds": seconds,
        "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,  # Linux: KiB
        "rss_before_call_mb": rss_before,
        "value": value,
    }
    if task == "validate_data":
        result["sql_statements"] = statements
        result["sql_client_seconds"] = sum(s["seconds"] for s in statements)
    (work / f"{task}.result.json").write_text(json.dumps(result, default=str))
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
                        "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024})
    out.write_text(json.dumps(results))
    return 0


def measure_imports(ws: Workspace) -> list[dict]:
    out = ws.root / "imports.json"
    ws.run(["-m", "include.bench", "imports", "--out", str(out)], ws.env(DATASETS["bench"]), "imports.log", 600)
    return json.loads(out.read_text())


# ================================================================================== report
def _median_runs(runs: list[dict]) -> dict:
    """Per task and whole-run median over repeated DAG runs."""
    tasks = {}
    for task in runs[0]["tasks"]:
        values = [r["tasks"][task]["seconds"] for r in runs if r["tasks"][task]["seconds"] is not None]
        tasks[task] = statistics.median(values) if values else None
    return {"seconds": statistics.median(r["seconds"] for r in runs), "tasks": tasks, "runs": len(runs),
            "all_seconds": [r["seconds"] for r in runs], "raw": runs}


def _f(value, fmt="{:.2f}", missing="—") -> str:
    return missing if value is None else fmt.format(value)


def attribution(figures: dict) -> dict:
    """The run's excess over the two floors, split exactly by where it happens: per task, the
    run's time − the no-op's time − the task's SQL floor (the extracts together: dag.test runs
    them one after the other in an arbitrary order, and the first task run in a process carries
    the in-process Execution API's start-up), plus the time between tasks."""
    run, noop, floor = figures["dag_run"], figures["orchestration_floor"], figures["data_floor"]
    rt, nt = run["tasks"], noop["tasks"]
    parts = {
        "extracts": sum(rt[t] for t in EXTRACT_TASKS) - sum(nt[t] for t in EXTRACT_TASKS) - floor["total"],
        **{t: rt[t] - nt[t] for t in TASKS if t not in EXTRACT_TASKS},
        "between tasks": (run["seconds"] - sum(rt.values())) - (noop["seconds"] - sum(nt.values())),
    }
    return {"excess": run["seconds"] - noop["seconds"] - floor["total"], "parts": parts}


def report(figures: dict) -> str:
    m, pg = figures["machine"], figures["postgres"]
    run, noop = figures["dag_run"], figures["orchestration_floor"]
    floor, vsql = figures["data_floor"], figures.get("validation_sql")
    steps1, steps2 = figures["steps"].get("bench", {}), figures["steps"].get("bench2x", {})
    bytecode = ("cached (PYTHONPYCACHEPREFIX in the workspace, warmed by one unmeasured run of each DAG), as on a "
                "deployed worker" if figures["bytecode_cache"] else
                "as this environment has it" + (" (PYTHONDONTWRITEBYTECODE set: imports compile from source)"
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
        f"no-op DAG = median of {noop['runs']} ({', '.join(f'{x:.1f}' for x in noop['all_seconds'])} s), interleaved; "
        f"SQL floors = median of {floor['rounds']} warm rounds",
        f"bytecode: {bytecode}",
        "",
    ]
    header = (f"{'task':<24}{'DAG run s':>10}{'no-op s':>9}{'PG floor s':>11}{'step s':>9}"
              f"{'peak MiB':>10}{'peak MiB 2x':>13}{'2x/1x':>7}")
    lines += [header, "-" * len(header)]
    for task in TASKS:
        pg_floor = floor["per_task"].get(task)
        mark = " "
        if task == "validate_data" and vsql:
            pg_floor, mark = vsql["total"], "*"
        p1 = steps1.get(task, {}).get("max_rss_mb")
        p2 = steps2.get(task, {}).get("max_rss_mb")
        lines.append(
            f"{task:<24}{_f(run['tasks'].get(task)):>10}{_f(noop['tasks'].get(task)):>9}"
            f"{_f(pg_floor) + mark:>12}{_f(steps1.get(task, {}).get('seconds')):>8}"
            f"{_f(p1, '{:.0f}'):>10}{_f(p2, '{:.0f}'):>13}{_f(p2 / p1 if p1 and p2 else None):>7}"
        )
    lines.append("-" * len(header))
    peak1 = max((s["max_rss_mb"] for s in steps1.values()), default=None)
    peak2 = max((s["max_rss_mb"] for s in steps2.values()), default=None)
    lines.append(
        f"{'whole run':<24}{_f(run['seconds']):>10}{_f(noop['seconds']):>9}{_f(floor['total']) + ' ':>12}"
        f"{_f(sum(s['seconds'] for s in steps1.values()) if steps1 else None):>8}"
        f"{_f(peak1, '{:.0f}'):>10}{_f(peak2, '{:.0f}'):>13}{_f(peak2 / peak1 if peak1 and peak2 else None):>7}"
    )
    lines += [
        "",
        "DAG run s: task instance end − start in dag.test() (whole run: the dag.test() call); no-op s: the same-shape",
        "  DAG whose tasks do nothing; PG floor s: the task's extract SQL run directly (execute + fetch all);",
        "  * validate_data: the SQL GX sent, replayed directly (not part of the data floor); step s / peak MiB: the",
        "  pipeline function alone in its own process (ru_maxrss, imports included, nothing subtracted).",
        "",
    ]
    ratio = figures["ratio"]
    verdict = "OK" if ratio <= RATIO_TARGET else "MISSED"
    lines.append(f"ratio run / (data floor + orchestration floor) = {run['seconds']:.2f} / ({floor['total']:.2f} + "
                 f"{noop['seconds']:.2f}) = {ratio:.2f}   target ≤ {RATIO_TARGET}: {verdict}")
    if vsql:
        r2 = figures["ratio_with_validation_sql"]
        lines.append(f"  (counting the validation's SQL in the floor too: {run['seconds']:.2f} / ({floor['total']:.2f} "
                     f"+ {vsql['total']:.2f} + {noop['seconds']:.2f}) = {r2:.2f})")
    if peak1 is not None:
        verdict = "OK" if peak1 <= MEMORY_TARGET_MB else "MISSED"
        lines.append(f"peak memory of any task = {peak1:.0f} MiB ({_peak_task(steps1)})   target ≤ "
                     f"{MEMORY_TARGET_MB} MB: {verdict}")
    if peak1 and peak2:
        worst = max(TASKS, key=lambda t: steps2[t]["max_rss_mb"] / steps1[t]["max_rss_mb"])
        growth = steps2[worst]["max_rss_mb"] / steps1[worst]["max_rss_mb"]
        verdict = "flat" if growth <= FLAT_TOLERANCE else "NOT flat"
        lines.append(f"event tables doubled: largest growth {growth:.2f}× ({worst}), peak {peak2:.0f} MiB"
                     f"   → {verdict} (≤ {FLAT_TOLERANCE:.2f}×)")
    lines.append("")
    split = attribution(figures)
    parts = split["parts"]
    lines.append(f"where the run's excess over the floors goes: {split['excess']:.2f} s = "
                 + " + ".join(f"{name} {sec:.2f}" for name, sec in parts.items()))
    if vsql:
        gx_import = next((i["seconds"] for i in figures.get("imports", []) if i["label"] == "great_expectations"), None)
        rest = parts["validate_data"] - vsql["total"] - (gx_import or 0)
        lines.append(f"  validate_data {parts['validate_data']:.2f} s ≈ its SQL {vsql['total']:.2f} + importing GX "
                     f"{_f(gx_import)} + GX's own Python work {rest:.2f}")
    if figures.get("imports"):
        lines.append("one-off import cost in a fresh task process (cumulative RSS after): " + ", ".join(
            f"{i['label']} {i['seconds']:.2f} s ({i['max_rss_mb']:.0f} MiB)" for i in figures["imports"]))
    lines.append("data floor per query (s, rows): " + ", ".join(
        f"{label} {sec:.2f} ({floor['rows'][label]:,})" for label, sec in floor["per_query"].items()))
    if vsql:
        lines.append(f"validation SQL: {vsql['statements']} statements, {vsql['total']:.2f} s replayed directly, "
                     f"{vsql['client_seconds']:.2f} s as GX saw it in the step; slowest:")
        for s in vsql["slowest"]:
            lines.append(f"  {s['seconds']:6.2f} s  {s['sql']}")
        if vsql["errors"]:
            lines.append(f"  ({len(vsql['errors'])} statement(s) could not be replayed: {vsql['errors'][0]})")
    return "\n".join(lines)


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

        say(f"data floor: the extract queries, 1 warm-up + {args.floor_rounds} rounds")
        figures["data_floor"] = measure_data_floor(bench_db, period, args.floor_rounds)
        say(f"  {figures['data_floor']['total']:.2f} s")

        say("Airflow metadata database (temporary AIRFLOW_HOME, SQLite): airflow db migrate")
        say(f"  {airflow_migrate(ws):.0f} s")
        say("warm-up (not measured): one run of each DAG")
        run_dag(ws, "noop", 1, label="warm-up")
        run_dag(ws, "project", 1, label="warm-up")
        figures["imports"] = measure_imports(ws)

        figures["steps"] = {}
        say("each step in its own process (peak memory), bench data")
        figures["steps"]["bench"] = run_steps(ws, "bench", profile)
        validate = figures["steps"]["bench"]["validate_data"]
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
                noop_runs += run_dag(ws, "noop", 1, label=f"run {i + 1}/{args.noop_runs}")
            if i < args.dag_runs:
                dag_runs += run_dag(ws, "project", 1, label=f"run {i + 1}/{args.dag_runs}")
        figures["orchestration_floor"] = _median_runs(noop_runs)
        figures["dag_run"] = _median_runs(dag_runs)

        if "bench2x" in scales:
            say("each step in its own process (peak memory), doubled event tables")
            figures["steps"]["bench2x"] = run_steps(ws, "bench2x", set())
            figures["steps"]["bench2x"]["validate_data"].pop("sql_statements", None)

        run_s, noop_s = figures["dag_run"]["seconds"], figures["orchestration_floor"]["seconds"]
        floor_s = figures["data_floor"]["total"]
        figures["ratio"] = run_s / (floor_s + noop_s)
        if "validation_sql" in figures:
            figures["ratio_with_validation_sql"] = run_s / (floor_s + figures["validation_sql"]["total"] + noop_s)
        figures["attribution"] = attribution(figures)
        figures["database_sizes"] = database_sizes(server, [DATASETS[s] for s in scales])
        print(report(figures), flush=True)
        for task in sorted(profile):
            path = root / "steps-bench" / f"{task}.profile.txt"
            if path.exists():
                print(f"\ncProfile of {task} (bench data, own process, cumulative):\n{path.read_text()}", flush=True)
        if args.json:
            Path(args.json).write_text(json.dumps(figures, indent=2, default=str))
            say(f"figures written to {args.json}")
    finally:
        for proc in list(ws.children):
            _kill_group(proc)
        if args.keep_logs:
            shutil.copytree(root / "logs", args.keep_logs, dirs_exist_ok=True)
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
            from include import embedded_pg

            embedded_pg.stop(server.embedded_datadir)
            say("stopped the embedded PostgreSQL this bench started")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m include.bench", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command")
    parser.add_argument("--drop", action="store_true", help="drop the bench databases at the end")
    parser.add_argument("--keep", dest="drop", action="store_false", help="keep them for the next run (default)")
    parser.add_argument("--skip-2x", action="store_true", help="skip the doubled data set (memory flatness)")
    parser.add_argument("--dag-runs", type=int, default=3, help="measured dag.test() runs of the real DAG (median)")
    parser.add_argument("--noop-runs", type=int, default=3, help="measured dag.test() runs of the no-op DAG (median)")
    parser.add_argument("--floor-rounds", type=int, default=3, help="measured rounds of the SQL floors (median)")
    parser.add_argument("--no-bytecode-cache", dest="bytecode_cache", action="store_false",
                        help="run the children with the environment's bytecode settings as they are "
                             "(default: a bytecode cache in the workspace, as a deployed worker has)")
    parser.add_argument("--profile", action="append", choices=TASKS, metavar="TASK",
                        help="cProfile this step (bench data, own process) and print its top functions; repeatable")
    parser.add_argument("--json", metavar="FILE", help="also write every figure to FILE as JSON")
    parser.add_argument("--keep-logs", metavar="DIR", help="copy the children's logs to DIR before cleaning up")
    step = sub.add_parser("step", help="(internal) run one pipeline step in this process")
    step.add_argument("task", choices=TASKS)
    step.add_argument("--work", type=Path, required=True)
    step.add_argument("--profile", action="store_true")
    dagrun = sub.add_parser("dagrun", help="(internal) dag.test() one DAG in this process")
    dagrun.add_argument("kind", choices=("project", "noop"))
    dagrun.add_argument("--out", type=Path, required=True)
    imports = sub.add_parser("imports", help="(internal) time the tasks' lazy imports in this process")
    imports.add_argument("--out", type=Path, required=True)
    return parser


def _interrupted(signum, frame):
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "step":
        return step_main(args.task, args.work, args.profile)
    if args.command == "dagrun":
        return dagrun_main(args.kind, args.out)
    if args.command == "imports":
        return imports_main(args.out)
    if min(args.dag_runs, args.noop_runs, args.floor_rounds) < 1:
        print("bench: --dag-runs, --noop-runs and --floor-rounds must be at least 1", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, _interrupted)  # `kill` cleans up like Ctrl-C does
    try:
        return bench_main(args)
    except BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("bench: interrupted; temporary files removed", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
