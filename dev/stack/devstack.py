"""The README's run command: bring the whole project up on one machine, or take it down.

``python -m dev.stack.devstack up`` (``make demo``):

1. PostgreSQL: the server of ``DB_HOST``/``DB_*`` when set, otherwise an embedded PostgreSQL
   (``dev/stack/embedded_pg.py``) on 127.0.0.1:``EMBEDDED_PG_PORT`` (55432), data in ``.local/pgdata``;
2. the ChatterFix source schema and the synthetic demo data set, unless already loaded;
3. a local SMTP sink (``dev/stack/smtp_sink.py``) on 127.0.0.1:``DEMO_SMTP_PORT`` (8025), every
   message kept as an ``.eml`` file in ``.local/outbox``; a Slack webhook sink
   (``dev/stack/slack_sink.py``) on 127.0.0.1:``DEMO_SLACK_PORT`` (8026), every update kept as a
   ``.json`` file in ``.local/slack`` (the connection ``slack_investor_updates`` points at it);
4. Airflow 3 with ``AIRFLOW_HOME=.local/airflow``, metadata in its own database (``airflow``) of
   the same PostgreSQL, LocalExecutor: API server (UI on ``AIRFLOW_PORT``, 8080), scheduler,
   DAG processor, triggerer — each a process group whose PID is kept in ``.local/run``; before they
   start, the pool ``chatterfix_source`` (``INVESTOR_SOURCE_POOL_SLOTS`` slots, ``dev/stack/pools.py``);
5. the pipeline through the scheduler (``dev/stack/pipeline_runs.py``; skipped with
   ``DEMO_SKIP_PIPELINE``), then prints where everything is.

Running ``up`` again is safe: what runs is left running, what is loaded is not reloaded.
``python -m dev.stack.devstack down`` (``make stop``) stops everything ``up`` started, by PID;
``status`` (``make status``) says what runs and its memory (PSS by kind of process, ``memory`` alone:
``dev/stack/memory.py``). ``CFX_STATE_DIR`` moves ``.local`` elsewhere (the tests
use this to run a second, isolated stack; ``dev/stack/env.py``).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

from dev.stack import embedded_pg, pools
from dev.stack.env import ADMIN_USER, AIRFLOW_SERVICES, Stack, say
from dev.stack.memory import Kind, as_json, format_memory, stack_memory
from dev.stack.pipeline_runs import PROBE_DAG, run_history_and_latest_week
from dev.stack.processes import airflow_argv
from include.investor_metrics.settings import PROJECT_ROOT, ConfigError, PostgresSettings


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


def start_smtp_sink(stack: Stack) -> None:
    """The stack's SMTP sink (``dev/stack/smtp_sink.py``), unless it runs already."""
    stack.processes.spawn(
        "smtp-sink",
        [
            sys.executable,
            "-m",
            "dev.stack.smtp_sink",
            "--outbox",
            str(stack.outbox),
            "--port",
            str(stack.smtp_port),
        ],
        dict(stack.env_in, PYTHONPATH=str(PROJECT_ROOT)),
    )


def start_slack_sink(stack: Stack) -> None:
    """The stack's Slack webhook sink (``dev/stack/slack_sink.py``), unless it runs already."""
    stack.processes.spawn(
        "slack-sink",
        [sys.executable, "-m", "dev.stack.slack_sink", "--folder", str(stack.slack_dir),
         "--port", str(stack.slack_port)],
        dict(stack.env_in, PYTHONPATH=str(PROJECT_ROOT)),
    )


def start_airflow(
    stack: Stack, env: dict[str, str], *, migrate_timeout: float | None = None, report=say
) -> None:
    """Airflow's services with ``env`` (the admin's password file, ``airflow db migrate`` and the
    pool ``chatterfix_source`` unless they all run already, each service its own process group), then
    wait for the API server."""
    stack.airflow_home.mkdir(parents=True, exist_ok=True)
    passwords = stack.airflow_home / "passwords.json"
    passwords.write_text(json.dumps({ADMIN_USER: stack.secrets()["admin_password"]}))
    passwords.chmod(0o600)
    if not all(stack.processes.pid(s) for s in AIRFLOW_SERVICES):
        pools.source_pool_slots(env)  # a malformed INVESTOR_SOURCE_POOL_SLOTS fails before the migration
        report("migrating Airflow's metadata database")
        stack.log_dir.mkdir(parents=True, exist_ok=True)
        with open(stack.log_dir / "db-migrate.log", "ab") as log:
            subprocess.run(
                airflow_argv("db", "migrate"),
                env=env,
                check=True,
                stdout=log,
                stderr=subprocess.STDOUT,
                timeout=migrate_timeout,
            )
            # before the scheduler starts: a task whose pool is missing would wait silently
            slots = pools.create_source_pool(env, log, timeout=migrate_timeout)
        report(f"Airflow pool {pools.SOURCE_POOL}: {slots} slots ({pools.SLOTS_SETTING})")
    for service in AIRFLOW_SERVICES:
        stack.processes.spawn(service, airflow_argv(service), env)
    report("waiting for the Airflow API server")
    base = f"http://127.0.0.1:{stack.airflow_port}"
    stack.processes.wait_http(f"{base}/api/v2/monitor/health", 180, "the Airflow API server", "api-server")


def up(stack: Stack, *, reload_data: bool = False) -> None:
    t0 = time.monotonic()
    stack.state.mkdir(parents=True, exist_ok=True)

    # 1. PostgreSQL
    src = stack.source_settings()
    if stack.external_db:
        say(f"PostgreSQL: using DB_HOST ({src.public_description()})")
    else:
        embedded_pg.start(stack.pgdata, stack.pg_port)
        say(f"PostgreSQL: embedded server on 127.0.0.1:{stack.pg_port} (data in {stack.pgdata})")
    _ensure_database(src, src.dbname)
    _ensure_database(src, stack.airflow_db_settings().dbname)

    # 2. Source schema and demo data
    if reload_data or not _demo_loaded(src):
        from dev.demo_data import loader
        from dev.demo_data.generator import default_end
        from include.investor_metrics.db import apply_metrics_schema, apply_source_schema, connect

        conn = connect(src)
        try:
            apply_source_schema(conn)
            apply_metrics_schema(conn)
        finally:
            conn.close()
        end = default_end()
        say(f"loading the synthetic ChatterFix data set (demo scale, 2 years up to {end:%Y-%m-%d %H:%M} UTC)")
        summary = loader.load(
            src, scale="demo", seed=42, end=end, force=reload_data, progress=sys.stderr.isatty()
        )
        say(summary.describe())
    else:
        say("demo data already loaded (`python -m dev.stack.devstack up --reload-data` reloads it)")

    # 3. SMTP sink
    start_smtp_sink(stack)
    start_slack_sink(stack)

    # 4. Airflow, its process counts sized to the machine (dev/stack/sizing.py)
    say(stack.sizes().describe())
    env = stack.airflow_env()
    env_file = stack.write_env_file(env)
    start_airflow(stack, env)
    base = f"http://127.0.0.1:{stack.airflow_port}"

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
  Airflow UI     {base}   login: {ADMIN_USER} / {sec["admin_password"]}
  Archive        {stack.archive}
  Outbox (SMTP)  {stack.outbox}   (every e-mail sent, as .eml)
  Slack (sink)   {stack.slack_dir}   (every Slack update posted, as .json)
  Health probes  every 5 min → investor_metrics.service_health_checks (DAG {PROBE_DAG})
  Logs           {stack.log_dir}
  Airflow CLI    source {env_file} && airflow dags list
  Stop           make stop
""",
        flush=True,
    )


def down(stack: Stack) -> None:
    for service in (*reversed(AIRFLOW_SERVICES), "slack-sink", "smtp-sink"):
        if stack.processes.stop_process(service):
            say(f"stopped {service}")
    if not stack.external_db and embedded_pg.stop(stack.pgdata):
        say("stopped the embedded PostgreSQL")
    say("everything is stopped")


def stack_pids(stack: Stack) -> dict[str, int | None]:
    """{service: PID, or None when it is stopped}; the embedded PostgreSQL as ``postgres``."""
    pids: dict[str, int | None] = {s: stack.processes.pid(s)
                                   for s in ("smtp-sink", "slack-sink", *AIRFLOW_SERVICES)}
    if not stack.external_db:
        pids["postgres"] = embedded_pg.server_pid(stack.pgdata)
    return pids


def memory(stack: Stack) -> list[Kind]:
    """The PSS of every process the stack runs, by kind (``dev/stack/memory.py``)."""
    return stack_memory({s: pid for s, pid in stack_pids(stack).items() if pid})


def status(stack: Stack) -> None:
    pids = stack_pids(stack)
    for service, pid in pids.items():
        print(f"{service:15s} {'running, pid ' + str(pid) if pid else 'stopped'}")
    if any(pids.values()):
        print(format_memory(memory(stack)))
    if stack.external_db:
        print("(PostgreSQL runs at DB_HOST: not counted)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the ChatterFix investor-metrics demo stack.")
    parser.add_argument("command", choices=["up", "down", "status", "memory"])
    parser.add_argument("--reload-data", action="store_true", help="reload the demo data set")
    parser.add_argument("--json", action="store_true", help="memory: print the figures as JSON (KiB)")
    args = parser.parse_args(argv)
    stack = Stack()
    try:
        if args.command == "up":
            up(stack, reload_data=args.reload_data)
        elif args.command == "down":
            down(stack)
        elif args.command == "memory":
            kinds = memory(stack)
            print(json.dumps(as_json(kinds), indent=2) if args.json else format_memory(kinds))
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
