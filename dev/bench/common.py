"""What the benchmarks share (``dev.bench.weekly``, ``.scheduler``, ``.backfill``, ``.api``): the
PostgreSQL server they use and its databases, the demo stack's teardown, the machine's description,
the median of repeated DAG runs and the command-line wrapper. Imports no other benchmark module."""

from __future__ import annotations

import os
import platform
import re
import signal
import statistics
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from include.investor_metrics.settings import (
    PROJECT_ROOT,
    ConfigError,
    PostgresSettings,
    postgres_settings_from_env,
)
from include.investor_metrics.weekly import task_ids

EMBEDDED_DATADIR = PROJECT_ROOT / ".local" / "bench-pgdata"
EXTRACT_TASKS = task_ids.EXTRACT_TASKS


class BenchError(RuntimeError):
    """Something the bench cannot work around; the message says what and where."""


def say(message: str = "", tag: str = "bench") -> None:
    """A progress line of a benchmark, ``[tag] message`` (an empty line for no message)."""
    print(f"[{tag}] {message}" if message else "", flush=True)


@dataclass
class Server:
    settings: PostgresSettings  # dbname: the maintenance database
    origin: str
    embedded_datadir: Path | None = None  # set when this bench started the embedded server

    def database(self, name: str) -> PostgresSettings:
        s = self.settings
        return PostgresSettings(host=s.host, port=s.port, dbname=name, user=s.user, password=s.password)


def find_server() -> Server:
    from dev.stack import embedded_pg

    if os.getenv("DB_HOST", "").strip():
        try:
            env = postgres_settings_from_env()
        except ConfigError as exc:
            raise BenchError(str(exc)) from None
        admin = PostgresSettings(
            host=env.host, port=env.port, dbname="postgres", user=env.user, password=env.password
        )
        return Server(admin, "DB_HOST")
    if embedded_pg.port_open("127.0.0.1", 5432):
        return Server(
            PostgresSettings(host="127.0.0.1", port=5432, dbname="postgres", user="postgres"),
            "local server on 127.0.0.1:5432",
        )
    port = int(os.getenv("BENCH_PG_PORT", "55433"))
    was_running = embedded_pg.is_running(EMBEDDED_DATADIR)
    say(f"no PostgreSQL configured: starting the embedded one on 127.0.0.1:{port} ({EMBEDDED_DATADIR})")
    embedded_pg.start(EMBEDDED_DATADIR, port)
    return Server(
        PostgresSettings(host="127.0.0.1", port=port, dbname="postgres", user="postgres"),
        "embedded",
        None if was_running else EMBEDDED_DATADIR,
    )


def _admin_connect(server: Server):
    from include.investor_metrics.db import connect

    try:
        conn = connect(server.settings)
    except Exception as exc:  # noqa: BLE001 - say where, not the password
        raise BenchError(
            f"cannot connect to {server.settings.public_description()}: {str(exc).strip().splitlines()[0]}"
        ) from None
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


def drop_databases(server: Server, names, report) -> None:
    """Drop each of ``names``, reporting (``report(message)``) the ones that could not be dropped
    and carrying on: for the cleanup of a benchmark, which must not stop half-way."""
    for name in names:
        try:
            drop_database(server, name)
        except Exception as exc:  # noqa: BLE001 - report, keep cleaning
            report(f"could not drop {name}: {exc}")


def stop_embedded(server: Server) -> None:
    """Stop the embedded PostgreSQL if this bench started one."""
    if server.embedded_datadir is not None:
        from dev.stack import embedded_pg

        embedded_pg.stop(server.embedded_datadir)


def stack_down(env: dict[str, str], report, what: str = "the stack") -> None:
    """``python -m dev.stack.devstack down`` for a stack started with ``env``; problems are reported."""
    report(f"taking {what} down")
    try:
        down = subprocess.run(
            [sys.executable, "-m", "dev.stack.devstack", "down"],
            env=env,
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=300,
        )
        if down.returncode != 0:
            report(f"devstack down exited {down.returncode}: {down.stderr.strip()[-300:]}")
    except subprocess.TimeoutExpired:
        report("devstack down timed out")


def database_sizes(server: Server, names) -> dict[str, str]:
    conn = _admin_connect(server)
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT datname, pg_size_pretty(pg_database_size(datname)) FROM pg_database "
                "WHERE datname = ANY(%s)",
                (list(names),),
            )
            return dict(cur.fetchall())
    finally:
        conn.close()


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
    info["load_average"] = _load_average()
    info["python"] = platform.python_version()
    try:
        from importlib.metadata import version

        info["airflow"] = version("apache-airflow")
        info["great_expectations"] = version("great-expectations")
        info["pandas"] = version("pandas")
    except Exception:  # noqa: BLE001 - informative only
        pass
    return info


def _load_average() -> str | None:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return None


def postgres_info(server: Server) -> dict:
    conn = _admin_connect(server)
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT current_setting('server_version'), current_setting('shared_buffers'), "
                "current_setting('work_mem'), current_setting('max_parallel_workers_per_gather'), "
                "current_setting('jit')"
            )
            version, shared_buffers, work_mem, parallel, jit = cur.fetchone()
    finally:
        conn.close()
    return {
        "version": version,
        "shared_buffers": shared_buffers,
        "work_mem": work_mem,
        "max_parallel_workers_per_gather": parallel,
        "jit": jit,
        "origin": server.origin,
    }


def _median_runs(runs: list[dict]) -> dict:
    """Per task and whole-run median over repeated DAG runs."""
    tasks = {}
    for task in runs[0]["tasks"]:
        values = [r["tasks"][task]["seconds"] for r in runs if r["tasks"][task]["seconds"] is not None]
        tasks[task] = statistics.median(values) if values else None

    def extracts(r):  # dag.test runs the parallel extracts one after the other, in any order
        return sum(r["tasks"][t]["seconds"] or 0.0 for t in EXTRACT_TASKS if t in r["tasks"])

    def between(r):
        return r["seconds"] - sum(t["seconds"] or 0.0 for t in r["tasks"].values())

    return {
        "seconds": statistics.median(r["seconds"] for r in runs),
        "tasks": tasks,
        "runs": len(runs),
        "extracts": statistics.median(extracts(r) for r in runs),
        "between": statistics.median(between(r) for r in runs),
        "all_seconds": [r["seconds"] for r in runs],
        "raw": runs,
    }


def _interrupted(signum, frame):
    raise KeyboardInterrupt


def run_cli(name: str, body, args, *, on_interrupt: str) -> int:
    """Run a benchmark's ``body(args)`` as a command: `kill` cleans up like Ctrl-C does, a
    BenchError is one clear line and exit 1, an interruption says what was cleaned up (130)."""
    signal.signal(signal.SIGTERM, _interrupted)
    try:
        return body(args)
    except BenchError as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{name}: interrupted; {on_interrupt}", file=sys.stderr)
        return 130
