"""Wall time of a backfill through the real scheduler (issue 5, "Benchmark"):
``make bench BENCH_ARGS="--backfill"`` or ``.venv/bin/python -m dev.bench.backfill``.

A backfill of ``--weeks`` (104) weekly runs of ``investor_metrics`` on the demo data set, through
the real scheduler (the preloading LocalExecutor, as ``make demo`` deploys it), against the same
backfill of a DAG of the same shape whose tasks do nothing (the floor: Airflow's own overhead on
this machine), both with ``--max-active-runs`` (4). Target: real / no-op ≤ 1.5.

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
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from dev.bench.backfill.config import (
    AF_DB_NAME,
    DAG_ID,
    DATA_END,
    DB_NAME,
    NOOP_AF_DB_NAME,
    NOOP_DAG_ID,
    RATIO_TARGET,
    SPAN_DAYS,
    say,
)
from dev.bench.backfill.floor import dag_shape, shape_main, start_floor_stack, write_noop_dag
from dev.bench.backfill.measure import measure
from dev.bench.backfill.report import report
from include.investor_metrics.settings import PROJECT_ROOT


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
        summary = loader.load(
            settings, end=DATA_END, scale="demo", seed=42, span_days=SPAN_DAYS, progress=False
        )
        say(f"{DB_NAME}: demo data loaded in {time.monotonic() - t0:.0f} s ({summary.describe()})")

        real_env = isolated_env(settings, work / "real", AF_DB_NAME)
        shape = dag_shape(Stack(real_env).airflow_env(), work)
        say(
            f"shape of {DAG_ID}: {len(shape['shape'])} tasks, {shape['timetable']} ({shape['summary']}), "
            f"start {shape['start_date']}, max_active_runs {shape['max_active_runs']}, retries "
            f"{shape['retries']}"
        )
        noop_dags = work / "noop_dags"
        write_noop_dag(noop_dags, shape)

        # ---- the real DAG, through the stack `make demo` runs
        base = f"http://127.0.0.1:{real_env['AIRFLOW_PORT']}"
        real_up = True
        say(f"starting the real stack (devstack up, DEMO_SKIP_PIPELINE=1) on {base}")
        t0 = time.monotonic()
        up = subprocess.run(
            [sys.executable, "-m", "dev.stack.devstack", "up"],
            env=real_env,
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=900,
        )
        if up.returncode != 0:
            raise bench.BenchError(
                "devstack up failed:\n" + "\n".join((up.stdout + up.stderr).splitlines()[-30:])
            )
        say(f"real stack up in {time.monotonic() - t0:.0f} s")
        password = json.loads((work / "real" / "state" / "secrets.json").read_text())["admin_password"]
        real = measure(
            AirflowClient(base, "admin", password),
            DAG_ID,
            args.weeks,
            args.max_active_runs,
            args.timeout,
            "real",
        )
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
        noop = measure(
            AirflowClient(base, "admin", password),
            NOOP_DAG_ID,
            args.weeks,
            args.max_active_runs,
            args.timeout,
            "no-op",
        )
        figures["noop"] = noop
        devstack.down(floor_stack)
        floor_stack = None

        mach["load_average"] = bench._load_average()
        ok = report(real, noop, args, mach, server.origin, shape)
        if args.json:
            Path(args.json).write_text(
                json.dumps(
                    {
                        "machine": mach,
                        "weeks": args.weeks,
                        "max_active_runs": args.max_active_runs,
                        "real": real,
                        "noop": noop,
                        "ratio": real["seconds"] / noop["seconds"],
                        "target": RATIO_TARGET,
                        "met": ok,
                    },
                    indent=2,
                )
            )
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
    parser = argparse.ArgumentParser(
        prog="python -m dev.bench.backfill", description=__doc__.split("\n\n")[0]
    )
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
