"""The README's run command: bring the whole project up on one machine, or take it down.

``python -m dev.stack.devstack up`` (``make demo``):

1. PostgreSQL: the server of ``DB_HOST``/``DB_*`` when set, otherwise an embedded PostgreSQL
   (``dev/stack/embedded_pg.py``) on 127.0.0.1:``EMBEDDED_PG_PORT`` (55432), data in ``.local/pgdata``;
2. the ChatterFix source schema and the synthetic demo data set, unless already loaded;
3. a local SMTP sink (``dev/stack/smtp_sink.py``) on 127.0.0.1:``DEMO_SMTP_PORT`` (8025), every
   message kept as an ``.eml`` file in ``.local/outbox``;
4. Airflow 3 with ``AIRFLOW_HOME=.local/airflow``, metadata in its own database (``airflow``) of
   the same PostgreSQL, LocalExecutor: API server (UI on ``AIRFLOW_PORT``, 8080), scheduler,
   DAG processor, triggerer — each a process group whose PID is kept in ``.local/run``;
5. prints where everything is.

Running ``up`` again is safe: what runs is left running, what is loaded is not reloaded.
``python -m dev.stack.devstack down`` (``make stop``) stops everything ``up`` started, by PID.
``CFX_STATE_DIR`` moves ``.local`` elsewhere (the tests use this to run a second, isolated stack).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shlex
import signal
import subprocess
import sys
import time
import urllib.request
from datetime import datetime, timezone
from pathlib import Path

from dev.stack import embedded_pg
from include.investor_metrics.settings import (
    PROJECT_ROOT,
    ConfigError,
    PostgresSettings,
    postgres_settings_from_env,
)

AIRFLOW_SERVICES = ("api-server", "scheduler", "dag-processor", "triggerer")
ADMIN_USER = "admin"
DEMO_RECIPIENTS = "founders@chatterfix.example,investors@chatterfix.example"
DEMO_SENDER = "metrics@chatterfix.example"


def api_server_workers(env: dict[str, str]) -> int:
    """``[api] workers`` of the API server: ``AIRFLOW__API__WORKERS`` when set, else one per CPU, at
    most 2 (Airflow's default is 1). On a 2-CPU machine the second worker roughly halves the p99 of
    the API at 100 requests/s (docs/benchmarks.md); each worker holds its own Airflow (~230 MB)."""
    raw = (env.get("AIRFLOW__API__WORKERS") or "").strip()
    if not raw:
        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        return max(1, min(2, cpus))
    if not raw.isdigit() or int(raw) < 1:
        raise ConfigError(f"AIRFLOW__API__WORKERS must be a whole number ≥ 1, got {raw!r}")
    return int(raw)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def isolated_env(settings: PostgresSettings, root: Path, airflow_db: str) -> dict[str, str]:
    """The environment of a second, throw-away stack (benchmarks, tests): source data and metrics
    store in ``settings``' database, Airflow's metadata in ``airflow_db`` on the same server,
    state, archive and staging under ``root``, free ports, the pipeline's own run skipped.
    Inherited ``DB_*``/``AIRFLOW*``/``SMTP_*``/``INVESTOR_*`` settings are dropped."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DB_", "AIRFLOW", "SMTP_", "INVESTOR_"))}
    env.update({
        "CFX_STATE_DIR": str(root / "state"),
        "DB_HOST": settings.host, "DB_PORT": str(settings.port), "DB_NAME": settings.dbname,
        "DB_USER": settings.user or "", "AIRFLOW_DB_NAME": airflow_db,
        "AIRFLOW_PORT": str(free_port()), "DEMO_SMTP_PORT": str(free_port()),
        "INVESTOR_ARCHIVE_DIR": str(root / "archive"),
        "INVESTOR_STAGING_DIR": str(root / "staging"),
        "DEMO_SKIP_PIPELINE": "1",
    })
    if settings.password:
        env["DB_PASSWORD"] = settings.password
    return env


def _say(message: str) -> None:
    print(f"[demo] {message}", flush=True)


class Stack:
    """Paths, ports and environment of one demo stack."""

    def __init__(self, env: dict[str, str] | None = None):
        self.env_in = dict(os.environ if env is None else env)
        self.state = Path(self.env_in.get("CFX_STATE_DIR") or PROJECT_ROOT / ".local").resolve()
        self.run_dir = self.state / "run"
        self.log_dir = self.state / "logs"
        self.outbox = self.state / "outbox"
        self.pgdata = self.state / "pgdata"
        self.airflow_home = self.state / "airflow"
        self.archive = Path(self.env_in.get("INVESTOR_ARCHIVE_DIR") or PROJECT_ROOT / "docs" / "investors")
        self.airflow_port = int(self.env_in.get("AIRFLOW_PORT", "8080"))
        self.smtp_port = int(self.env_in.get("DEMO_SMTP_PORT", "8025"))
        self.pg_port = int(self.env_in.get("EMBEDDED_PG_PORT", str(embedded_pg.DEFAULT_PORT)))
        self.external_db = bool(self.env_in.get("DB_HOST", "").strip())

    # ---------------------------------------------------------------- database
    def source_settings(self) -> PostgresSettings:
        if self.external_db:
            return postgres_settings_from_env(self.env_in)
        return PostgresSettings(
            host="127.0.0.1",
            port=self.pg_port,
            dbname=self.env_in.get("DB_NAME") or "chatterfix_cmms",
            user="postgres",
        )

    def airflow_db_settings(self) -> PostgresSettings:
        src = self.source_settings()
        name = self.env_in.get("AIRFLOW_DB_NAME", "airflow")
        return PostgresSettings(host=src.host, port=src.port, dbname=name, user=src.user, password=src.password)

    # ---------------------------------------------------------------- secrets
    def secrets(self) -> dict[str, str]:
        """Fernet key, JWT secret, admin password: made once per stack, kept in .local (0600)."""
        path = self.state / "secrets.json"
        if path.exists():
            return json.loads(path.read_text())
        from cryptography.fernet import Fernet

        values = {
            "fernet_key": Fernet.generate_key().decode(),
            "jwt_secret": secrets.token_urlsafe(32),
            "api_secret_key": secrets.token_urlsafe(32),
            "admin_password": secrets.token_urlsafe(12),
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(values, fh)
        return values

    # ---------------------------------------------------------------- environment
    def airflow_env(self) -> dict[str, str]:
        """The environment every Airflow process (and every task) of the stack runs with."""
        sec = self.secrets()
        src = self.source_settings()
        base_url = f"http://127.0.0.1:{self.airflow_port}"
        env = dict(self.env_in)
        env.update(
            {
                "AIRFLOW_HOME": str(self.airflow_home),
                "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT_ROOT / "dags"),
                "AIRFLOW__CORE__PLUGINS_FOLDER": str(PROJECT_ROOT / "plugins"),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                # LocalExecutor whose task processes inherit pandas, GX, ... (include/investor_metrics/runtime/executor.py)
                "AIRFLOW__CORE__EXECUTOR": "include.investor_metrics.runtime.executor.PreloadingLocalExecutor",
                "AIRFLOW__CORE__FERNET_KEY": sec["fernet_key"],
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{ADMIN_USER}:admin",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(self.airflow_home / "passwords.json"),
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{base_url}/execution/",
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self.airflow_db_settings().sqlalchemy_url(),
                "AIRFLOW__API__BASE_URL": base_url,
                "AIRFLOW__API__PORT": str(self.airflow_port),
                "AIRFLOW__API__HOST": "127.0.0.1",
                "AIRFLOW__API__WORKERS": str(api_server_workers(self.env_in)),
                "AIRFLOW__API__SECRET_KEY": sec["api_secret_key"],
                "AIRFLOW__API_AUTH__JWT_SECRET": sec["jwt_secret"],
                "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(self.airflow_home / "logs"),
                # Find new DAG files and run queued runs quickly in a demo.
                "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "30",
                "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
                "PYTHONPATH": os.pathsep.join(
                    p for p in [str(PROJECT_ROOT), self.env_in.get("PYTHONPATH", "")] if p
                ),
                "NO_PROXY": "*",
                "no_proxy": "*",
                "GX_ANALYTICS_ENABLED": "false",
                # The pipeline's own settings: the seed's variables, pointed at the local parts.
                "INVESTOR_ARCHIVE_DIR": str(self.archive),
                "SMTP_SERVER": self.env_in.get("SMTP_SERVER") or "127.0.0.1",
                "SMTP_PORT": self.env_in.get("SMTP_PORT") or str(self.smtp_port),
                "SMTP_STARTTLS": self.env_in.get("SMTP_STARTTLS") or "false",
                "SMTP_SSL": self.env_in.get("SMTP_SSL") or "false",
                "INVESTOR_EMAIL": self.env_in.get("INVESTOR_EMAIL") or DEMO_SENDER,
                "INVESTOR_EMAILS": self.env_in.get("INVESTOR_EMAILS") or DEMO_RECIPIENTS,
                "HEALTH_CHECK_SERVICES": self.env_in.get("HEALTH_CHECK_SERVICES") or self.demo_health_check_services(),
            }
        )
        if not self.external_db:
            env.update({"DB_HOST": src.host, "DB_PORT": str(src.port), "DB_NAME": src.dbname, "DB_USER": "postgres"})
        return env

    def demo_health_check_services(self) -> str:
        """The demo probes its own endpoints, named like the generator's services so the live rows
        continue the synthetic history: HTTP where there is HTTP, a TCP connect elsewhere."""
        src = self.source_settings()
        base = f"http://127.0.0.1:{self.airflow_port}"
        smtp_host = self.env_in.get("SMTP_SERVER") or "127.0.0.1"
        smtp_port = self.env_in.get("SMTP_PORT") or str(self.smtp_port)
        return ",".join([
            f"api={base}/api/v2/monitor/health",  # the Airflow API server
            f"web={base}/",  # the Airflow UI (a 3xx is ok too)
            f"database=tcp://{src.host}:{src.port}",  # PostgreSQL (embedded or DB_HOST)
            f"notifications=tcp://{smtp_host}:{smtp_port}",  # the SMTP sink
        ])

    def write_env_file(self, env: dict[str, str]) -> Path:
        """``.local/stack.env``: source it to run ``airflow`` commands against this stack."""
        keys = sorted(k for k in env if k.startswith(("AIRFLOW", "DB_", "SMTP_", "INVESTOR_", "PYTHONPATH")))
        path = self.state / "stack.env"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write("# generated by `make demo`; contains secrets — never commit\n")
            for key in keys:
                fh.write(f"export {key}={shlex.quote(env[key])}\n")
        return path

    # ---------------------------------------------------------------- processes
    def pidfile(self, name: str) -> Path:
        return self.run_dir / f"{name}.pid"

    def pid(self, name: str) -> int | None:
        path = self.pidfile(name)
        if not path.exists():
            return None
        try:
            pid = int(path.read_text().strip())
            os.kill(pid, 0)
        except (ValueError, ProcessLookupError):
            path.unlink(missing_ok=True)
            return None
        return pid

    def spawn(self, name: str, argv: list[str], env: dict[str, str]) -> int:
        """Start ``argv`` in a new process group (so ``down`` can stop all its children)."""
        existing = self.pid(name)
        if existing:
            return existing
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_dir / f"{name}.log", "ab")  # noqa: SIM115 - handed to the child
        proc = subprocess.Popen(
            argv, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True, cwd=str(PROJECT_ROOT),
        )
        self.pidfile(name).write_text(str(proc.pid))
        return proc.pid

    def stop_process(self, name: str, timeout: float = 30) -> bool:
        pid = self.pid(name)
        if pid is None:
            return False
        try:
            os.killpg(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and _group_alive(pid):
            time.sleep(0.2)
        if _group_alive(pid):
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.pidfile(name).unlink(missing_ok=True)
        return True


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie leader counts as gone once reaped; reap it if it is our child.
    try:
        os.waitpid(pgid, os.WNOHANG)
    except ChildProcessError:
        pass
    return _has_live_members(pgid)


def _has_live_members(pgid: int) -> bool:
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        # fields[0] = state, fields[2] = pgrp
        if int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False


def _ensure_database(server: PostgresSettings, name: str) -> None:
    from include.investor_metrics.db import connect

    admin = connect(PostgresSettings(server.host, server.port, "postgres", server.user, server.password))
    admin.autocommit = True
    try:
        with admin.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
            if cur.fetchone() is None:
                cur.execute(f'CREATE DATABASE "{name}"')  # identifier from our own settings
    finally:
        admin.close()


def _demo_loaded(settings: PostgresSettings) -> bool:
    from include.investor_metrics.db import connect

    conn = connect(settings)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT to_regclass('investor_metrics.demo_dataset') IS NOT NULL")
            if not cur.fetchone()[0]:
                return False
            cur.execute("SELECT count(*) FROM investor_metrics.demo_dataset")
            return cur.fetchone()[0] > 0
    finally:
        conn.close()


def _wait_http(url: str, timeout: float, what: str, stack: Stack, service: str) -> None:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=5) as resp:  # noqa: S310 - loopback URL we built
                if resp.status == 200:
                    return
        except Exception as exc:  # noqa: BLE001 - keep polling until the deadline
            last = exc
        if stack.pid(service) is None:
            break
        time.sleep(1)
    log = stack.log_dir / f"{service}.log"
    tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
    raise RuntimeError(f"{what} did not come up at {url} ({last}); last lines of {log}:\n{tail}")


def airflow_argv(*args: str) -> list[str]:
    return [str(Path(sys.executable).parent / "airflow"), *args]


def up(stack: Stack, *, reload_data: bool = False) -> None:
    t0 = time.monotonic()
    stack.state.mkdir(parents=True, exist_ok=True)

    # 1. PostgreSQL
    src = stack.source_settings()
    if stack.external_db:
        _say(f"PostgreSQL: using DB_HOST ({src.public_description()})")
    else:
        embedded_pg.start(stack.pgdata, stack.pg_port)
        _say(f"PostgreSQL: embedded server on 127.0.0.1:{stack.pg_port} (data in {stack.pgdata})")
    _ensure_database(src, src.dbname)
    _ensure_database(src, stack.airflow_db_settings().dbname)

    # 2. Source schema and demo data
    if reload_data or not _demo_loaded(src):
        from dev.demo_data import loader
        from include.investor_metrics.db import apply_metrics_schema, apply_source_schema, connect

        conn = connect(src)
        try:
            apply_source_schema(conn)
            apply_metrics_schema(conn)
        finally:
            conn.close()
        end = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0)
        _say(f"loading the synthetic ChatterFix data set (demo scale, 2 years up to {end:%Y-%m-%d %H:%M} UTC)")
        summary = loader.load(src, scale="demo", seed=42, end=end, force=reload_data,
                                 progress=sys.stderr.isatty())
        _say(summary.describe())
    else:
        _say("demo data already loaded (`python -m dev.stack.devstack up --reload-data` reloads it)")

    # 3. SMTP sink
    stack.spawn(
        "smtp-sink",
        [sys.executable, "-m", "dev.stack.smtp_sink", "--outbox", str(stack.outbox), "--port", str(stack.smtp_port)],
        dict(stack.env_in, PYTHONPATH=str(PROJECT_ROOT)),
    )

    # 4. Airflow
    env = stack.airflow_env()
    env_file = stack.write_env_file(env)
    stack.airflow_home.mkdir(parents=True, exist_ok=True)
    passwords = stack.airflow_home / "passwords.json"
    passwords.write_text(json.dumps({ADMIN_USER: stack.secrets()["admin_password"]}))
    passwords.chmod(0o600)
    if not all(stack.pid(s) for s in AIRFLOW_SERVICES):
        _say("migrating Airflow's metadata database")
        stack.log_dir.mkdir(parents=True, exist_ok=True)
        with open(stack.log_dir / "db-migrate.log", "ab") as log:
            subprocess.run(airflow_argv("db", "migrate"), env=env, check=True, stdout=log, stderr=subprocess.STDOUT)
    for service in AIRFLOW_SERVICES:
        stack.spawn(service, airflow_argv(service), env)
    _say("waiting for the Airflow API server")
    base = f"http://127.0.0.1:{stack.airflow_port}"
    _wait_http(f"{base}/api/v2/monitor/health", 180, "the Airflow API server", stack, "api-server")

    # 5. The pipeline through the real scheduler: history (backfill), then the latest complete week
    sec = stack.secrets()
    headline = ""
    if not stack.env_in.get("DEMO_SKIP_PIPELINE"):
        from dev.stack.airflow_api import AirflowClient

        client = AirflowClient(base, ADMIN_USER, sec["admin_password"])
        headline = run_history_and_latest_week(stack, client)

    # 6. Where to look
    print(
        f"""
ChatterFix investor metrics is running ({time.monotonic() - t0:.0f} s).{headline}
  Airflow UI     {base}   login: {ADMIN_USER} / {sec['admin_password']}
  Archive        {stack.archive}
  Outbox (SMTP)  {stack.outbox}   (every e-mail sent, as .eml)
  Health probes  every 5 min → investor_metrics.service_health_checks (DAG {PROBE_DAG})
  Logs           {stack.log_dir}
  Airflow CLI    source {env_file} && airflow dags list
  Stop           make stop
""",
        flush=True,
    )


WEEKLY_DAG = "investor_metrics"
PROBE_DAG = "service_health_probe"


def history_intervals(cron: str, tz, now: datetime, weeks: int) -> list[tuple[datetime, datetime]]:
    """The ``weeks + 1`` most recent complete schedule intervals before ``now``, oldest first:
    the last one is the latest complete week (the scheduled run), the others are history."""
    from croniter import croniter

    it = croniter(cron, now.astimezone(tz))
    ends = [it.get_prev(datetime) for _ in range(weeks + 2)]
    return [(ends[i + 1], ends[i]) for i in range(weeks + 1)][::-1]


def run_history_and_latest_week(stack: Stack, client, timeout: float = 3600) -> str:
    """Unpause the weekly DAG (the scheduler then runs the latest complete week: catchup is off),
    backfill the weeks before it through the scheduler, show progress, and summarise."""
    from include.investor_metrics import settings as config

    weeks = int(stack.env_in.get("DEMO_BACKFILL_WEEKS", "12"))
    client.wait_for_dag(WEEKLY_DAG)
    errors = client.import_errors()
    if errors:
        raise RuntimeError("the DAG files do not import:\n" + "\n".join(e.get("stack_trace", "")[-800:] for e in errors))
    client.set_paused(WEEKLY_DAG, False)
    client.wait_for_dag(PROBE_DAG)
    client.set_paused(PROBE_DAG, False)
    _say(f"health probes: {PROBE_DAG} unpaused (api, web, database, notifications every 5 minutes)")
    intervals = history_intervals(
        config.metrics_schedule(stack.env_in), config.investor_timezone(stack.env_in),
        datetime.now(timezone.utc), weeks,
    )
    history = intervals[:-1]
    _say(f"weekly DAG unpaused: the scheduler runs the latest complete week "
         f"(ending {intervals[-1][1]:%Y-%m-%d %H:%M %Z})")
    if weeks:
        if not client.backfills(WEEKLY_DAG):
            client.create_backfill(
                WEEKLY_DAG, history[0][0].isoformat(), history[-1][0].isoformat(),
                max_active_runs=int(stack.env_in.get("DEMO_BACKFILL_PARALLELISM", "3")),
            )
            _say(f"backfill of the {weeks} weeks before it created "
                 f"({history[0][1]:%Y-%m-%d} → {history[-1][1]:%Y-%m-%d}), running through the scheduler")
        else:
            _say("history already backfilled by an earlier `make demo`")
    deadline = time.monotonic() + timeout
    shown = None
    while time.monotonic() < deadline:
        runs = client.dag_runs(WEEKLY_DAG, limit=weeks + 20)
        backfill = [r for r in runs if r["run_type"] == "backfill"]
        scheduled = [r for r in runs if r["run_type"] == "scheduled"]
        done = sum(r["state"] == "success" for r in backfill)
        failed = [r for r in backfill if r["state"] == "failed"]
        latest_state = scheduled[0]["state"] if scheduled else "queued"
        status = (f"history: {done}/{weeks} weeks done" + (f", {len(failed)} failed" if failed else "")
                  + f" | latest week: {latest_state}")
        if status != shown:
            _say(status)
            shown = status
        finished = done + len(failed) >= weeks and latest_state in ("success", "failed")
        if finished:
            if failed or latest_state == "failed":
                bad = [r["dag_run_id"] for r in failed] + ([scheduled[0]["dag_run_id"]] if latest_state == "failed" else [])
                raise RuntimeError(
                    f"{len(bad)} run(s) failed ({', '.join(bad[:3])}…): open the Airflow UI, DAG {WEEKLY_DAG}, "
                    "and read the failed task's log"
                )
            latest = stack.archive / "metrics_snapshot.json"
            snap = json.loads(latest.read_text())
            fin = snap["financial"]
            return (f"\n  Latest week    {snap['period']['start']} → {snap['period']['end']}: "
                    f"MRR ${fin['mrr']:,.2f}, {fin['active_customers']} active customers "
                    f"(+ {weeks} weeks of history)")
        time.sleep(3)
    raise RuntimeError(f"the runs did not finish within {timeout:.0f} s; watch them in the Airflow UI")


def down(stack: Stack) -> None:
    for service in (*reversed(AIRFLOW_SERVICES), "smtp-sink"):
        if stack.stop_process(service):
            _say(f"stopped {service}")
    if not stack.external_db and embedded_pg.stop(stack.pgdata):
        _say("stopped the embedded PostgreSQL")
    _say("everything is stopped")


def status(stack: Stack) -> None:
    for service in ("smtp-sink", *AIRFLOW_SERVICES):
        pid = stack.pid(service)
        print(f"{service:15s} {'running, pid ' + str(pid) if pid else 'stopped'}")
    if not stack.external_db:
        pid = embedded_pg.server_pid(stack.pgdata)
        print(f"{'postgres':15s} {'running, pid ' + str(pid) if pid else 'stopped'}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the ChatterFix investor-metrics demo stack.")
    parser.add_argument("command", choices=["up", "down", "status"])
    parser.add_argument("--reload-data", action="store_true", help="reload the demo data set")
    args = parser.parse_args(argv)
    stack = Stack()
    try:
        if args.command == "up":
            up(stack, reload_data=args.reload_data)
        elif args.command == "down":
            down(stack)
        else:
            status(stack)
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
