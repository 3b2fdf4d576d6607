"""Wall time of a backfill through the real scheduler (issue 5, "Benchmark"):
``make bench BENCH_ARGS="--backfill"`` or ``.venv/bin/python -m dev.bench.backfill``.

A backfill of ``--weeks`` (104) weekly runs of ``investor_metrics`` on the demo data set, through
the real scheduler (the preloading LocalExecutor, as ``make demo`` deploys it), against the same backfill of a DAG
of the same shape whose tasks do nothing (the floor: Airflow's own overhead on this machine), both
with ``--max-active-runs`` (4). Target: real / no-op ≤ 1.5.

What it does, in order:

1. PostgreSQL: the server ``dev.bench`` uses. Fresh databases ``cfx_bench_bf`` (source and
   metrics store; the demo data set, seed 42, 730 days up to 2026-11-22 09:00 UTC),
   ``cfx_bench_bf_af`` (Airflow's metadata of the real stack) and ``cfx_bench_bf_noop_af`` (that of
   the floor's stack).
2. The shape: the real DAG's tasks and edges, its timetable, start date, ``max_active_runs`` and
   retries, read from ``dags/investor_metrics.py`` itself; the no-op DAG is written from them into
   a temporary DAGs folder (never into ``dags/``).
3. The real stack: ``python -m dev.stack.devstack up`` with ``DEMO_SKIP_PIPELINE=1``, free ports and a
   temporary ``CFX_STATE_DIR``. The DAG is unpaused; the scheduler then creates the run of the latest
   complete week (catchup is off); the bench waits for it to finish *before* the clock starts, so
   it is not counted. Then ``POST /api/v2/backfills`` for the ``--weeks`` logical dates ending
   2026-11-08 09:00 UTC (periods ending 2026-11-15 and before), and the clock runs until every
   backfill run is terminal (polled every second). The stack is taken down.
4. The floor's stack: the same processes (``dev.stack.devstack``'s environment, its DAGs folder
   replaced by the temporary one) started by this module, and the same procedure for the no-op DAG.
5. The table, the machine, the load average before/after each phase and the verdict. Both stacks
   are taken down, the databases dropped and the temporary folder removed, whatever happens.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from include.investor_metrics.settings import PROJECT_ROOT

DAG_ID = "investor_metrics"
NOOP_DAG_ID = "investor_metrics_backfill_floor"
DB_NAME = "cfx_bench_bf"
AF_DB_NAME = "cfx_bench_bf_af"
NOOP_AF_DB_NAME = "cfx_bench_bf_noop_af"
DATA_END = datetime(2026, 11, 22, 9, tzinfo=timezone.utc)
LAST_LOGICAL = datetime(2026, 11, 8, 9, tzinfo=timezone.utc)  # the week ending 2026-11-15
SPAN_DAYS = 730
RATIO_TARGET = 1.5

NOOP_DAG_TEMPLATE = '''"""Floor of ``dev.bench.backfill``: the shape and schedule of {dag_id}, tasks doing nothing."""
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
    default_args={{"owner": "bench", "retries": {retries!r}, "retry_delay": timedelta(seconds={retry_delay!r}),
                   "retry_exponential_backoff": {backoff!r}}},
    params={{"period_end": Param(None, type=["null", "string"]), "send_email": Param(False, type="boolean")}},
):
    tasks = {{}}
    for task_id, upstream in SHAPE:
        tasks[task_id] = task(task_id=task_id)(do_nothing)()
        for upstream_id in upstream:
            tasks[upstream_id] >> tasks[task_id]
'''


def say(message: str = "") -> None:
    print(f"[bench-backfill] {message}" if message else "", flush=True)


def iso(d: datetime) -> str:
    return d.strftime("%Y-%m-%dT%H:%M:%SZ")


# ================================================================================ the shape
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
    out.write_text(json.dumps({
        "shape": [(t.task_id, sorted(t.upstream_task_ids)) for t in dag.topological_sort()],
        "start_date": dag.start_date.isoformat(),
        "max_active_runs": dag.max_active_runs,
        "retries": int(da.get("retries", 0)),
        "retry_delay": delay.total_seconds() if isinstance(delay, timedelta) else float(delay),
        "backoff": bool(da.get("retry_exponential_backoff", False)),
        "timetable": type(dag.timetable).__name__,
        "summary": getattr(dag.timetable, "summary", ""),
    }))
    return 0


def dag_shape(env: dict[str, str], work: Path) -> dict:
    out = work / "shape.json"
    proc = subprocess.run([sys.executable, "-m", "dev.bench.backfill", "shape", "--out", str(out)],
                          env=env, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        from dev.bench.common import BenchError

        raise BenchError(f"reading the DAG's shape failed:\n{(proc.stdout + proc.stderr)[-2000:]}")
    return json.loads(out.read_text())


def write_noop_dag(folder: Path, shape: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "backfill_floor.py"
    path.write_text(NOOP_DAG_TEMPLATE.format(
        dag_id=DAG_ID, noop_id=NOOP_DAG_ID, shape=[tuple(x) for x in shape["shape"]],
        start_date=shape["start_date"], max_active_runs=shape["max_active_runs"], retries=shape["retries"],
        retry_delay=shape["retry_delay"], backoff=shape["backoff"]))
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


# ================================================================================ one backfill
def _count(client, dag_id: str, run_type: str, state: str | None = None) -> int:
    query = f"limit=1&run_type={run_type}" + (f"&state={state}" if state else "")
    return client.request("GET", f"/api/v2/dags/{dag_id}/dagRuns?{query}")["total_entries"]


def _all_pages(client, path: str, key: str) -> list[dict]:
    """Every item of a paginated list endpoint (``path`` with its query, without limit/offset)."""
    out, offset = [], 0
    while True:
        page = client.request("GET", f"{path}&limit=100&offset={offset}")[key]
        out += page
        if len(page) < 100:
            return out
        offset += 100


def _runs(client, dag_id: str, run_type: str) -> list[dict]:
    return _all_pages(client, f"/api/v2/dags/{dag_id}/dagRuns?run_type={run_type}&order_by=logical_date",
                      "dag_runs")


def _task_seconds(client, dag_id: str) -> dict[str, dict]:
    """Per task of the backfill's runs: median and total of Airflow's task durations (queued →
    running is not in them: that is the scheduler's and the executor's share)."""
    durations: dict[str, list[float]] = {}
    tis = _all_pages(client, f"/api/v2/dags/{dag_id}/dagRuns/~/taskInstances?run_id_prefix_pattern=backfill__",
                     "task_instances")
    for ti in tis:
        if ti.get("duration") is not None and ti.get("start_date"):  # a task skipped unstarted has none
            durations.setdefault(ti["task_id"], []).append(float(ti["duration"]))
    return {task: {"median_s": statistics.median(values), "total_s": sum(values), "n": len(values)}
            for task, values in durations.items()}


def _cpu_busy_seconds() -> float | None:
    """CPU time the whole machine has spent busy since boot (user, nice, system, irq, softirq,
    steal; /proc/stat), in seconds; None off Linux. The benchmark runs alone, so the difference
    across a backfill is what the stack, PostgreSQL and the tasks cost together."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
        user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[:8])
    except (OSError, ValueError):
        return None
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def _dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


def measure(client, dag_id: str, weeks: int, max_active_runs: int, timeout: float, label: str) -> dict:
    """Unpause, let the scheduled run of the latest week finish (not timed), then time a backfill
    of ``weeks`` logical dates ending ``LAST_LOGICAL`` until every run of it is terminal."""
    from dev.bench.common import BenchError

    client.wait_for_dag(dag_id, timeout=300)
    errors = client.import_errors()
    if errors:
        raise BenchError("DAG import errors:\n" + "\n".join(e.get("stack_trace", "")[-800:] for e in errors))
    client.set_paused(dag_id, False)
    say(f"{label}: unpaused; waiting for the scheduled run of the latest week (not timed)")
    deadline = time.monotonic() + 900
    while True:
        sched = _runs(client, dag_id, "scheduled")
        if sched and all(r["state"] in ("success", "failed") for r in sched):
            break
        if time.monotonic() > deadline:
            raise BenchError(f"{label}: the scheduled run did not finish within 900 s: "
                             f"{[(r['dag_run_id'], r['state']) for r in sched]}")
        time.sleep(1)
    sched_s = [(_dt(r["end_date"]) - _dt(r["start_date"])).total_seconds() for r in sched
               if r.get("start_date") and r.get("end_date")]
    say(f"{label}: scheduled run {sched[0]['dag_run_id']} {sched[0]['state']} "
        f"({sched_s[0]:.1f} s)" if sched_s else f"{label}: scheduled run {sched[0]['state']}")

    first = LAST_LOGICAL - timedelta(weeks=weeks - 1)
    load_before = _load()
    cpu_before = _cpu_busy_seconds()
    began = time.monotonic()
    client.create_backfill(dag_id, iso(first), iso(LAST_LOGICAL), max_active_runs=max_active_runs)
    say(f"{label}: backfill created: {weeks} weeks, logical dates {iso(first)} → {iso(LAST_LOGICAL)}, "
        f"max_active_runs {max_active_runs}; clock running")
    deadline = began + timeout
    shown, last_print = None, 0.0
    while True:
        ok = _count(client, dag_id, "backfill", "success")
        bad = _count(client, dag_id, "backfill", "failed")
        now = time.monotonic()
        if ok + bad >= weeks:
            wall = now - began
            break
        if now > deadline:
            raise BenchError(f"{label}: {ok + bad}/{weeks} runs terminal after {timeout:.0f} s")
        if (ok, bad) != shown and now - last_print >= 15:
            say(f"{label}: {ok}/{weeks} done" + (f", {bad} failed" if bad else "") + f" after {now - began:.0f} s")
            shown, last_print = (ok, bad), now
        time.sleep(1)
    cpu_after = _cpu_busy_seconds()
    load_after = _load()
    runs = _runs(client, dag_id, "backfill")
    durations = sorted((_dt(r["end_date"]) - _dt(r["start_date"])).total_seconds() for r in runs
                       if r.get("start_date") and r.get("end_date"))
    failed = [r["dag_run_id"] for r in runs if r["state"] == "failed"]
    result = {
        "weeks": weeks, "runs": len(runs), "success": ok, "failed": bad, "failed_ids": failed[:10],
        "seconds": wall, "runs_per_min": weeks / wall * 60,
        "run_median_s": durations[len(durations) // 2] if durations else None,
        "run_min_s": durations[0] if durations else None, "run_max_s": durations[-1] if durations else None,
        "scheduled_run_s": sched_s[0] if sched_s else None, "scheduled_run_state": sched[0]["state"],
        "load_before": load_before, "load_after": load_after,
        "tasks": _task_seconds(client, dag_id),
        "cpu_busy_s": None if cpu_before is None or cpu_after is None else cpu_after - cpu_before,
    }
    say(f"{label}: {ok} succeeded, {bad} failed in {wall:.1f} s ({result['runs_per_min']:.1f} runs/min)")
    return result


def _load() -> str:
    from dev.bench import common as bench

    return bench._load_average() or "?"


# ================================================================================ the report
def report(real: dict, noop: dict, args, mach: dict, origin: str, shape: dict) -> bool:
    ratio = real["seconds"] / noop["seconds"]
    ok = ratio <= RATIO_TARGET and real["failed"] == 0 and noop["failed"] == 0
    print()
    print(f"Backfill through the real scheduler (LocalExecutor) — {args.weeks} weekly runs, logical dates "
          f"{iso(LAST_LOGICAL - timedelta(weeks=args.weeks - 1))} → {iso(LAST_LOGICAL)}, "
          f"max_active_runs {args.max_active_runs}; demo data (seed 42, {SPAN_DAYS} days to {iso(DATA_END)})")
    print(f"machine: {mach['nproc']} CPUs ({mach['cpu']}), {mach['ram_gib']} GiB RAM, {mach['os']}, "
          f"Python {mach['python']}, Airflow {mach.get('airflow', '?')}")
    print(f"PostgreSQL: {origin}; DAG shape: {len(shape['shape'])} tasks, {shape['summary'] or shape['timetable']}")
    print()
    header = (f"{'DAG':<40}{'runs ok':>8}{'failed':>7}{'wall s':>9}{'runs/min':>9}{'run p50 s':>10}"
              f"{'run min-max s':>15}  load avg before → after")
    print(header)
    print("-" * len(header))
    for name, r in ((DAG_ID, real), (f"{NOOP_DAG_ID} (no-op)", noop)):
        span = (f"{r['run_min_s']:.1f}-{r['run_max_s']:.1f}" if r["run_min_s"] is not None else "—")
        p50 = f"{r['run_median_s']:.1f}" if r["run_median_s"] is not None else "—"
        print(f"{name:<40}{r['success']:>8}{r['failed']:>7}{r['seconds']:>9.1f}{r['runs_per_min']:>9.1f}"
              f"{p50:>10}{span:>15}  {r['load_before']} → {r['load_after']}")
    if real.get("cpu_busy_s") is not None and noop.get("cpu_busy_s") is not None:
        for name, r in ((DAG_ID, real), (f"{NOOP_DAG_ID} (no-op)", noop)):
            print(f"{name:<40} machine CPU busy {r['cpu_busy_s']:7.1f} s = {r['cpu_busy_s'] / r['weeks']:.2f} s/week, "
                  f"{r['cpu_busy_s'] / (r['seconds'] * mach['nproc']):.0%} of {mach['nproc']} CPUs")
    print()
    print_task_table(real, noop, shape)
    print()
    print(f"ratio real / no-op = {real['seconds']:.1f} / {noop['seconds']:.1f} = {ratio:.2f}   "
          f"target ≤ {RATIO_TARGET}: {'MET' if ratio <= RATIO_TARGET else 'MISSED'}")
    for name, r in ((DAG_ID, real), (NOOP_DAG_ID, noop)):
        if r["failed"]:
            print(f"  {name}: {r['failed']} run(s) FAILED, e.g. {', '.join(r['failed_ids'][:3])}")
    if args.weeks != 104:
        print(f"  note: {args.weeks} weeks, not the 104 of the target (--weeks)")
    busy = max(float(x.split()[0]) for x in (real["load_before"], noop["load_before"]) if x != "?") \
        if "?" not in (real["load_before"], noop["load_before"]) else None
    if busy is not None:
        print(f"  machine {'BUSY' if busy > mach['nproc'] * 0.5 else 'quiet'} before the backfills "
              f"(1-min load average up to {busy:.2f} on {mach['nproc']} CPUs)")
    print(f"  not timed: the scheduled run of the latest week, unpaused first (real {_f(real['scheduled_run_s'])} s, "
          f"no-op {_f(noop['scheduled_run_s'])} s)")
    return ok


def print_task_table(real: dict, noop: dict, shape: dict) -> None:
    """Where a run's time goes, task by task (Airflow's task durations, start to end)."""
    real_tasks, noop_tasks = real.get("tasks") or {}, noop.get("tasks") or {}
    if not real_tasks or not noop_tasks:
        return
    header = f"{'task (duration, s)':<32}{'real p50':>9}{'no-op p50':>10}{'real sum':>10}{'no-op sum':>10}"
    print(header)
    print("-" * len(header))
    order = [task_id for task_id, _upstream in shape["shape"]] if shape.get("shape") else sorted(real_tasks)
    for task in order:
        r, n = real_tasks.get(task), noop_tasks.get(task)
        real_cols = f"{r['median_s']:>9.2f}" if r else f"{'—':>9}"
        noop_cols = f"{n['median_s']:>10.2f}" if n else f"{'—':>10}"
        sums = f"{r['total_s'] if r else 0:>10.1f}{n['total_s'] if n else 0:>10.1f}"
        note = "" if r and n else "  (never started: skipped)"
        print(f"{task:<32}{real_cols}{noop_cols}{sums}{note}")
    print(f"{'all tasks':<32}{'':>9}{'':>10}{sum(t['total_s'] for t in real_tasks.values()):>10.1f}"
          f"{sum(t['total_s'] for t in noop_tasks.values()):>10.1f}")


def _f(x) -> str:
    return f"{x:.1f}" if isinstance(x, (int, float)) else "—"


# ================================================================================ main
def bench_main(args) -> int:
    from dev.bench import common as bench
    from dev.demo_data import loader
    from dev.stack import devstack
    from dev.stack.airflow_api import AirflowClient
    from dev.stack.env import Stack, isolated_env

    mach = bench.machine()
    server = bench.find_server()
    say(f"PostgreSQL: {server.origin} ({server.settings.public_description()})")
    work = Path(tempfile.mkdtemp(prefix="cfx-bench-bf-"))
    real_env = None
    real_up = False
    floor_stack = None
    figures: dict = {}
    try:
        for name in (DB_NAME, AF_DB_NAME, NOOP_AF_DB_NAME):
            bench.drop_database(server, name)
            bench.ensure_database(server, name)
        settings = server.database(DB_NAME)
        t0 = time.monotonic()
        summary = loader.load(settings, end=DATA_END, scale="demo", seed=42, span_days=SPAN_DAYS, progress=False)
        say(f"{DB_NAME}: demo data loaded in {time.monotonic() - t0:.0f} s ({summary.describe()})")

        real_env = isolated_env(settings, work / "real", AF_DB_NAME)
        shape = dag_shape(Stack(real_env).airflow_env(), work)
        say(f"shape of {DAG_ID}: {len(shape['shape'])} tasks, {shape['timetable']} ({shape['summary']}), "
            f"start {shape['start_date']}, max_active_runs {shape['max_active_runs']}, retries {shape['retries']}")
        noop_dags = work / "noop_dags"
        write_noop_dag(noop_dags, shape)

        # ---- the real DAG, through the stack `make demo` runs
        base = f"http://127.0.0.1:{real_env['AIRFLOW_PORT']}"
        real_up = True
        say(f"starting the real stack (devstack up, DEMO_SKIP_PIPELINE=1) on {base}")
        t0 = time.monotonic()
        up = subprocess.run([sys.executable, "-m", "dev.stack.devstack", "up"], env=real_env, cwd=PROJECT_ROOT,
                            capture_output=True, text=True, timeout=900)
        if up.returncode != 0:
            raise bench.BenchError("devstack up failed:\n" + "\n".join((up.stdout + up.stderr).splitlines()[-30:]))
        say(f"real stack up in {time.monotonic() - t0:.0f} s")
        password = json.loads((work / "real" / "state" / "secrets.json").read_text())["admin_password"]
        real = measure(AirflowClient(base, "admin", password), DAG_ID, args.weeks, args.max_active_runs,
                       args.timeout, "real")
        figures["real"] = real
        bench.stack_down(real_env, say, "the real stack")
        real_up = False

        # ---- the no-op DAG of the same shape, on a stack of the same processes
        noop_env = isolated_env(settings, work / "noop", NOOP_AF_DB_NAME)
        base = f"http://127.0.0.1:{noop_env['AIRFLOW_PORT']}"
        say(f"starting the floor's stack (DAGs folder {noop_dags}) on {base}")
        t0 = time.monotonic()
        floor_stack = start_floor_stack(noop_env, noop_dags)
        say(f"floor stack up in {time.monotonic() - t0:.0f} s")
        password = floor_stack.secrets()["admin_password"]
        noop = measure(AirflowClient(base, "admin", password), NOOP_DAG_ID, args.weeks, args.max_active_runs,
                       args.timeout, "no-op")
        figures["noop"] = noop
        devstack.down(floor_stack)
        floor_stack = None

        mach["load_average"] = bench._load_average()
        ok = report(real, noop, args, mach, server.origin, shape)
        if args.json:
            Path(args.json).write_text(json.dumps({
                "machine": mach, "weeks": args.weeks, "max_active_runs": args.max_active_runs,
                "real": real, "noop": noop, "ratio": real["seconds"] / noop["seconds"],
                "target": RATIO_TARGET, "met": ok}, indent=2))
        return 0 if ok else 3
    finally:
        if real_up:
            bench.stack_down(real_env, say, "the real stack")
        if floor_stack is not None:
            say("taking the floor's stack down")
            try:
                devstack.down(floor_stack)
            except Exception as exc:  # noqa: BLE001 - report, keep cleaning
                say(f"could not stop the floor's stack: {exc}")
        bench.drop_databases(server, (DB_NAME, AF_DB_NAME, NOOP_AF_DB_NAME), say)
        say(f"dropped {DB_NAME}, {AF_DB_NAME} and {NOOP_AF_DB_NAME}")
        shutil.rmtree(work, ignore_errors=True)
        bench.stop_embedded(server)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m dev.bench.backfill", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command")
    add_options(parser)
    shape = sub.add_parser("shape", help="(internal) the real DAG's shape and schedule, as JSON")
    shape.add_argument("--out", type=Path, required=True)
    return parser


def add_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--weeks", type=int, default=104, help="weekly runs in each backfill (104)")
    parser.add_argument("--max-active-runs", type=int, default=4, help="the backfills' max_active_runs (4)")
    parser.add_argument("--timeout", type=float, default=4 * 3600, help="give up a backfill after this (s)")
    parser.add_argument("--json", metavar="FILE", help="also write the figures to FILE as JSON")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "shape":
        return shape_main(args.out)
    if args.weeks < 1 or args.max_active_runs < 1:
        print("bench-backfill: --weeks and --max-active-runs must be at least 1", file=sys.stderr)
        return 2
    from dev.bench.common import run_cli

    return run_cli("bench-backfill", bench_main, args, on_interrupt="stacks stopped, databases dropped")


if __name__ == "__main__":
    sys.exit(main())
