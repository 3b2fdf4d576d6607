"""The weekly DAG on Airflow's CeleryExecutor, for real (SPEC section 12).

What runs, all on this machine and all started (and stopped, by PID) by this test:

- Airflow's metadata in a fresh PostgreSQL database of the test server (the result backend too);
- Redis on 127.0.0.1:6379 as the Celery broker, in a database of its own (``CFX_TEST_REDIS_DB``,
  default 7) and on a queue named for this run; at the end the database is flushed, or, while
  another run of this test is using it, only this run's keys are removed;
- a real S3-protocol server on 127.0.0.1 (moto, ``tests/object_store.py``), reached the Airflow way
  (an ``aws_default`` connection naming its endpoint);
- in a temporary ``AIRFLOW_HOME``, each in a process group of its own: the API server (Airflow 3
  workers report to its execution API), the scheduler, the DAG processor and two
  ``airflow celery worker`` processes on one queue, one task at a time each, that share no folder:
  each has its own log folder, log server port and (in the local-staging case) staging folder, as
  two hosts would. Each has a hostname of its own (``--celery-hostname``; the same name is what its
  task instances record, through Airflow's ``[core] hostname_callable``, the knob that exists for
  machines whose FQDN is not the name to record).

The run: generator data ending 2026-11-22 09:00 UTC (with an ``api`` outage in the reported week,
so alerts are part of the comparison) in a fresh source database, a manual run with
``period_end=2026-11-22T09:00:00Z`` triggered through the REST API (``send_email`` stays false), the
DAG unpaused, the run waited for. The scheduler creates no scheduled run (``use_job_schedule`` off),
so the manual run is the only one.

The assertions, with archive and staging on the S3 server (SPEC 13, "many workers, no shared disk"):
the run's tasks ran on both workers (each task instance's ``hostname``, read through the REST API,
is one of theirs, and both appear: three extracts are queued at once to two single-slot workers);
the worker preloaded the pipeline's libraries before forking its pool (``[celery]
celery_config_options`` = ``include.investor_metrics.runtime.celery_config.CELERY_CONFIG``, as in
docker-compose.yaml: its log says so, the other processes' logs do not, and ``validate_data``'s log
says Great Expectations was already imported when the task started); and the snapshot equals the
LocalExecutor reference's for the same week except ``generated_at``. Then the same two workers with
local staging folders: the run fails at ``compute_metrics``, on its first try, with the error that
names both hosts and says to put ``INVESTOR_STAGING_DIR`` on object storage.
The reference is ``dag.test()`` in this process (as in ``test_weekly_dag.py``): the same code, every
task in one process, no broker, no staging shared between processes. It runs on the same source
database after the metrics store is reset, so both runs start from the same state.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from datetime import datetime, timezone
from pathlib import Path

import pytest

# The worker imports this module for ``worker_hostname``: keep its top light and without side
# effects (no conftest, no generator, no Airflow).
from include.investor_metrics.contract import SOURCE_POOL  # names only, no imports
from include.investor_metrics.weekly.task_ids import EXTRACT_TASKS
from tests.conftest import PROJECT_ROOT, free_port

pytestmark = [pytest.mark.stack, pytest.mark.timeout(1800)]

DAG_ID = "investor_metrics"
DATA_END = datetime(2026, 11, 22, 9, tzinfo=timezone.utc)
PERIOD_END = "2026-11-22T09:00:00Z"
PERIOD_FILE = "on_demand/metrics_2026-11-22_09-00-00.json"  # manual runs: on-demand reports (SPEC 2)
REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
REDIS_DB = int(os.environ.get("CFX_TEST_REDIS_DB", "7"))
STARTUP_TIMEOUT = 300
RUN_TIMEOUT = 600
# Names this test gives the worker: what its task instances must record as their hostname.
WORKER_HOSTNAME_ENV = "CFX_CELERY_WORKER_HOSTNAME"
# Every process this test starts carries this variable: how the end proves none is left.
RUN_MARKER_ENV = "CFX_CELERY_TEST_RUN"
# A run holds this key (plus its token) in the Redis database while it uses it.
BROKER_LOCK_PREFIX = "cfx-celery-test:running:"
# What docker-compose.yaml sets for every Airflow container: the worker preloads the modules.
CELERY_CONFIG_OPTIONS = "include.investor_metrics.runtime.celery_config.CELERY_CONFIG"


def worker_hostname() -> str:
    """Airflow's ``[core] hostname_callable`` in the worker: the name the test gave the worker."""
    return os.environ.get(WORKER_HOSTNAME_ENV) or socket.getfqdn()


def _tail(path: Path, chars: int = 4000) -> str:
    return path.read_text(errors="replace")[-chars:] if path.exists() else f"(no {path})"


# --------------------------------------------------------------------------- processes
class Processes:
    """Airflow processes of the test, each the leader of its own process group."""

    def __init__(self, log_dir: Path, marker: str):
        self.log_dir = log_dir
        self.marker = marker
        self.procs: dict[str, subprocess.Popen] = {}

    def start(self, name: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_dir / f"{name}.log", "ab") as log:
            proc = subprocess.Popen(
                argv, env={**env, RUN_MARKER_ENV: self.marker}, cwd=PROJECT_ROOT, stdout=log,
                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
            )
        self.procs[name] = proc
        return proc

    def check_alive(self) -> None:
        dead = {name: p.returncode for name, p in self.procs.items() if p.poll() is not None}
        if dead:
            raise AssertionError(f"Airflow process(es) exited: {dead}\n" + self.logs(*dead))

    def logs(self, *names: str) -> str:
        return "\n".join(f"--- {name}.log (tail) ---\n{_tail(self.log_dir / f'{name}.log')}"
                         for name in names or self.procs)

    def stop(self, *names: str, timeout: float = 60) -> None:
        """SIGTERM the named groups (a warm shutdown), SIGKILL what is left; forget them."""
        procs = [self.procs.pop(name) for name in names]
        for proc in procs:
            _signal_group(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and any(_group_members(p.pid) for p in procs):
            for proc in procs:
                proc.poll()
            time.sleep(0.5)
        for proc in procs:
            _signal_group(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
        for name in names:  # a restarted worker logs to a new file
            log = self.log_dir / f"{name}.log"
            if log.exists():
                log.rename(log.with_suffix(f".{time.monotonic_ns()}.log"))

    def stop_all(self, timeout: float = 60) -> None:
        """SIGTERM each group (the worker gets a warm shutdown), then SIGKILL what is left."""
        for proc in reversed(self.procs.values()):
            _signal_group(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and any(_group_members(p.pid) for p in self.procs.values()):
            for proc in self.procs.values():
                proc.poll()
            time.sleep(0.5)
        for proc in self.procs.values():
            _signal_group(proc.pid, signal.SIGKILL)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                pass

    def leftovers(self) -> list[int]:
        """Live processes of our groups, or carrying our marker (a child that left its group)."""
        found = {pid for p in self.procs.values() for pid in _group_members(p.pid)}
        found |= set(_processes_with_env(RUN_MARKER_ENV, self.marker))
        return sorted(found)


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass


def _proc_stats():
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            yield int(entry.name), fields[0], int(fields[2])  # pid, state, pgrp


def _group_members(pgid: int) -> list[int]:
    return [pid for pid, state, pgrp in _proc_stats() if pgrp == pgid and state != "Z"]


def _processes_with_env(key: str, value: str) -> list[int]:
    needle = f"{key}={value}".encode()
    found = []
    for pid, state, _pgrp in _proc_stats():
        if state == "Z" or pid == os.getpid():
            continue
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes()
        except OSError:
            continue
        if needle in environ.split(b"\0"):
            found.append(pid)
    return found


# --------------------------------------------------------------------------- fixtures
def _redis():
    import redis

    client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=REDIS_DB, socket_connect_timeout=5)
    try:
        client.ping()
    except redis.exceptions.RedisError as exc:
        pytest.fail(f"Redis is not answering on {REDIS_HOST}:{REDIS_PORT} ({exc}): the Celery test needs it "
                    "as its broker (start it: redis-server --daemonize yes --port 6379)")
    return client


def _release_broker(broker, token: str, queue: str) -> list:
    """Leave the test's Redis database as found: flushed when no other run of this test uses it
    (each holds a lock key while it runs), else only this run's queue and bindings removed."""
    broker.delete(f"{BROKER_LOCK_PREFIX}{token}")
    if not any(broker.scan_iter(f"{BROKER_LOCK_PREFIX}*")):
        broker.flushdb()
    else:
        ours = list(broker.scan_iter(f"*{queue}*"))
        if ours:
            broker.delete(*ours)
        for binding in broker.scan_iter("_kombu.binding.*"):
            for member in broker.smembers(binding):
                if queue.encode() in member:
                    broker.srem(binding, member)
    left = list(broker.scan_iter(f"*{queue}*"))
    broker.close()
    return left


def _airflow(*args: str) -> list[str]:
    return [str(Path(sys.executable).parent / "airflow"), *args]


def _wait_http_ok(url: str, processes: Processes, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        processes.check_alive()
        try:
            with urllib.request.urlopen(url, timeout=5) as resp:  # noqa: S310 - loopback URL we built
                if resp.status == 200:
                    return
        except Exception as exc:  # noqa: BLE001 - poll until the deadline
            last = exc
        time.sleep(1)
    raise AssertionError(
        f"{url} did not answer within {timeout:.0f} s ({last})\n" + processes.logs("api-server"))


@pytest.fixture(scope="module")
def celery_stack(pg_server, s3_server, tmp_path_factory):
    from dev.demo_data import loader
    from dev.stack import smtp_sink
    from dev.stack.airflow_api import AirflowClient
    from include.investor_metrics.db import connect
    from include.investor_metrics.settings import PostgresSettings

    broker = _redis()
    base = tmp_path_factory.mktemp("celery")
    token = secrets.token_hex(4)
    queue = f"cfx-test-{token}"
    broker.set(f"{BROKER_LOCK_PREFIX}{token}", "1", ex=3 * 3600)
    source_name, airflow_name = f"cfx_celery_{token}", f"cfx_celery_{token}_af"
    admin = connect(pg_server)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{source_name}"')
        cur.execute(f'CREATE DATABASE "{airflow_name}"')
    source = PostgresSettings(pg_server.host, pg_server.port, source_name, pg_server.user, pg_server.password)
    metadata = PostgresSettings(pg_server.host, pg_server.port, airflow_name, pg_server.user,
                                pg_server.password)
    sink_port = free_port()
    sink = smtp_sink.start(base / "outbox", port=sink_port)
    processes = Processes(base / "logs", marker=token)
    timings: dict[str, float] = {}
    try:
        t0 = time.monotonic()
        loader.load(source, end=DATA_END, span_days=120, seed=17, outage_week="2026-11-15", progress=False)
        timings["generator load"] = time.monotonic() - t0

        from cryptography.fernet import Fernet

        home = base / "airflow"
        home.mkdir()
        api_port, log_port = free_port(), free_port()
        api_url = f"http://127.0.0.1:{api_port}"
        password = secrets.token_urlsafe(12)
        (home / "passwords.json").write_text(json.dumps({"admin": password}))
        workers = [f"cfx-celery-worker-{token}-{n}" for n in (1, 2)]
        s3_bucket = s3_server.new_bucket("cfx-celery")
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("AIRFLOW", "DB_", "SMTP_", "INVESTOR_", "HEALTH_CHECK_", "DATA_TEAM_"))}
        env.update({
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT_ROOT / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(PROJECT_ROOT / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
            # one Fernet key and one JWT secret for every process (the scheduler signs the
            # workers' execution-API tokens, the API server checks them)
            "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode(),
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(home / "passwords.json"),
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{api_url}/execution/",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": metadata.sqlalchemy_url(),
            "AIRFLOW__CELERY__BROKER_URL": f"redis://{REDIS_HOST}:{REDIS_PORT}/{REDIS_DB}",
            "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + metadata.sqlalchemy_url(),
            "AIRFLOW__CELERY__WORKER_CONCURRENCY": "1",
            # as docker-compose.yaml: Airflow's Celery config, plus the worker preloading the
            # pipeline's libraries before its pool is forked
            # (include/investor_metrics/runtime/celery_config.py)
            "AIRFLOW__CELERY__CELERY_CONFIG_OPTIONS": CELERY_CONFIG_OPTIONS,
            "AIRFLOW__OPERATORS__DEFAULT_QUEUE": queue,
            "AIRFLOW__API__BASE_URL": api_url,
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(api_port),
            "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(32),
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(log_port),
            # only the manual run of the test: no scheduled run of the latest week
            "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
            "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "10",
            "PYTHONPATH": os.pathsep.join(
                p for p in [str(PROJECT_ROOT), os.environ.get("PYTHONPATH", "")] if p),
            "NO_PROXY": "*",
            "no_proxy": "*",
            "GX_ANALYTICS_ENABLED": "false",
            "DB_HOST": source.host, "DB_PORT": str(source.port), "DB_NAME": source.dbname,
            "DB_USER": source.user or "",
            "SMTP_SERVER": "127.0.0.1", "SMTP_PORT": str(sink_port),
            "SMTP_STARTTLS": "false", "SMTP_SSL": "false",
            "INVESTOR_EMAIL": "metrics@chatterfix.example",
            "INVESTOR_EMAILS": "founder@chatterfix.example,investor@fund.example",
            "INVESTOR_TIMEZONE": "UTC",
            # nothing on a shared disk: archive and staging on the S3 server
            "AIRFLOW_CONN_AWS_DEFAULT": s3_server.connection_json(),
            "INVESTOR_ARCHIVE_DIR": f"s3://{s3_bucket}/investors",
            "INVESTOR_STAGING_DIR": f"s3://{s3_bucket}/staging",
        })
        if source.password:
            env["DB_PASSWORD"] = source.password

        t0 = time.monotonic()
        with open(base / "db-migrate.log", "wb") as log:
            migrated = subprocess.run(_airflow("db", "migrate"), env=env, cwd=PROJECT_ROOT, stdout=log,
                                      stderr=subprocess.STDOUT, timeout=STARTUP_TIMEOUT)
        assert migrated.returncode == 0, _tail(base / "db-migrate.log")
        with open(base / "db-migrate.log", "ab") as log:  # the source tasks' pool, as compose init does
            pooled = subprocess.run(_airflow("pools", "set", SOURCE_POOL, "4", "ChatterFix source"),
                                    env=env, cwd=PROJECT_ROOT, stdout=log, stderr=subprocess.STDOUT,
                                    timeout=STARTUP_TIMEOUT)
        assert pooled.returncode == 0, _tail(base / "db-migrate.log")
        timings["airflow db migrate"] = time.monotonic() - t0

        t0 = time.monotonic()
        processes.start("api-server", _airflow("api-server"), env)
        processes.start("scheduler", _airflow("scheduler"), env)
        processes.start("dag-processor", _airflow("dag-processor"), env)
        private_staging = base / "staging"
        private_staging.mkdir()

        def start_workers(local_staging: bool) -> None:
            for n, name in enumerate(workers, 1):
                own = base / f"worker-{n}"  # what only this "host" sees
                worker_env = {**env, WORKER_HOSTNAME_ENV: name,
                              "AIRFLOW__CORE__HOSTNAME_CALLABLE": f"{__name__}.worker_hostname",
                              "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(own / "logs"),
                              "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port())}
                argv = _airflow("celery", "worker", "--celery-hostname", name, "--queues", queue,
                                "--concurrency", "1")
                if local_staging:  # one path, a disk of its own per worker
                    worker_env["INVESTOR_STAGING_DIR"] = str(private_staging)
                    argv = _private_folder(private_staging, argv)
                processes.start(f"celery-worker-{n}", argv, worker_env)
            _wait_workers_ready(processes, len(workers))

        def restart_workers(local_staging: bool) -> None:
            processes.stop(*[f"celery-worker-{n}" for n in range(1, len(workers) + 1)])
            start_workers(local_staging)

        start_workers(local_staging=False)
        _wait_http_ok(f"{api_url}/api/v2/monitor/health", processes, STARTUP_TIMEOUT)
        client = AirflowClient(api_url, "admin", password)
        client.wait_for_dag(DAG_ID, timeout=STARTUP_TIMEOUT)
        timings["processes up, DAG parsed"] = time.monotonic() - t0
        yield {"client": client, "processes": processes, "workers": workers, "queue": queue, "base": base,
               "s3": s3_server, "archive": f"s3://{s3_bucket}/investors", "restart_workers": restart_workers,
               "source": source, "outbox": base / "outbox", "timings": timings, "home": home}
    finally:
        processes.stop_all()
        left = processes.leftovers()
        for pid in left:  # never leave them running, even when the assertion below fails
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        sink.stop()
        broker_left = _release_broker(broker, token, queue)
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{source_name}" WITH (FORCE)')
            cur.execute(f'DROP DATABASE IF EXISTS "{airflow_name}" WITH (FORCE)')
        admin.close()
        assert left == [], f"processes left behind by the Celery test: {left}"
        assert broker_left == [], f"broker keys left behind: {broker_left}"
        print("\n[celery test] " + ", ".join(f"{k} {v:.0f} s" for k, v in timings.items()))


# --------------------------------------------------------------------------- helpers
def _wait_for_run(stack, run_id: str) -> dict:
    client, processes = stack["client"], stack["processes"]
    path = f"/api/v2/dags/{DAG_ID}/dagRuns/{urllib.parse.quote(run_id, safe='')}"
    deadline = time.monotonic() + RUN_TIMEOUT
    run = {}
    while time.monotonic() < deadline:
        processes.check_alive()
        run = client.request("GET", path)
        if run["state"] in ("success", "failed"):
            return run
        time.sleep(3)
    raise AssertionError(
        f"run {run_id} not finished within {RUN_TIMEOUT} s (state {run.get('state')}); task states: "
        f"{_task_states(stack, run_id)}\n" + processes.logs("scheduler", "celery-worker-1", "celery-worker-2")
    )


def _task_instances(stack, run_id: str) -> list[dict]:
    path = f"/api/v2/dags/{DAG_ID}/dagRuns/{urllib.parse.quote(run_id, safe='')}/taskInstances?limit=100"
    return stack["client"].request("GET", path)["task_instances"]


def _task_states(stack, run_id: str) -> dict[str, str]:
    return {ti["task_id"]: ti["state"] for ti in _task_instances(stack, run_id)}


def _log_roots(stack) -> list[Path]:
    """Each worker's own log folder (they share none)."""
    return sorted(stack["base"].glob("worker-*/logs"))


def _failed_task_logs(stack, run_id: str) -> str:
    failed = [t for t, s in _task_states(stack, run_id).items() if s != "success"]
    parts = []
    for root in _log_roots(stack):
        logs = root / f"dag_id={DAG_ID}"
        for task_id in failed:
            for path in sorted(logs.glob(f"run_id=*/task_id={task_id}/**/*.log")):
                parts.append(f"--- {path.relative_to(stack['base'])} ---\n{_tail(path, 3000)}")
    return "\n".join(parts)


def _task_log(stack, run_id: str, task_id: str) -> str:
    paths = [path for root in _log_roots(stack)
             for path in sorted((root / f"dag_id={DAG_ID}" / f"run_id={run_id}" / f"task_id={task_id}")
                                .glob("**/*.log"))]
    assert paths, f"no log of {task_id} in {_log_roots(stack)}"
    return "\n".join(path.read_text(errors="replace") for path in paths)


def _private_folder(folder: Path, argv: list[str]) -> list[str]:
    """``argv`` in a mount namespace of its own with a fresh tmpfs on ``folder``: the same path, but
    what one worker writes there the other never sees (two hosts, each with its local disk). Root
    (as in CI) needs nothing more; another user gets a user namespace mapped to root."""
    unshare = ["unshare", "--mount", "--propagation", "private"]
    if os.geteuid() != 0:
        unshare[1:1] = ["--user", "--map-root-user"]
    return [*unshare, "sh", "-c", 'mount -t tmpfs cfx-staging "$0" && exec "$@"', str(folder), *argv]


def _wait_workers_ready(processes: Processes, count: int, timeout: float = STARTUP_TIMEOUT) -> None:
    """Until each worker's log says it consumes (Celery's ``ready.`` line)."""
    deadline = time.monotonic() + timeout
    names = [f"celery-worker-{n}" for n in range(1, count + 1)]
    while time.monotonic() < deadline:
        processes.check_alive()
        if all(" ready." in _tail(processes.log_dir / f"{name}.log", 200_000) for name in names):
            return
        time.sleep(1)
    raise AssertionError("the Celery workers did not get ready\n" + processes.logs(*names))


def _local_executor_snapshot(stack, tmp_path, monkeypatch) -> dict:
    """The same week through ``dag.test()`` in this process, from an empty metrics store."""
    from include.investor_metrics.db import connect

    source = stack["source"]
    conn = connect(source)
    with conn, conn.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS investor_metrics.snapshots, investor_metrics.alerts, "
                    "investor_metrics.send_log")
    conn.close()
    for key in [k for k in os.environ if k.startswith(("DB_", "SMTP_", "INVESTOR_", "HEALTH_CHECK_"))]:
        monkeypatch.delenv(key)
    for key, value in {
        "DB_HOST": source.host, "DB_PORT": str(source.port), "DB_NAME": source.dbname,
        "DB_USER": source.user or "", "DB_PASSWORD": source.password or "",
        "SMTP_SERVER": "127.0.0.1", "SMTP_PORT": str(free_port()), "SMTP_STARTTLS": "false",
        "INVESTOR_EMAIL": "metrics@chatterfix.example",
        "INVESTOR_EMAILS": "founder@chatterfix.example,investor@fund.example",
        "INVESTOR_TIMEZONE": "UTC",
        "INVESTOR_ARCHIVE_DIR": str(tmp_path / "archive"),
        "INVESTOR_STAGING_DIR": str(tmp_path / "staging"),
    }.items():
        monkeypatch.setenv(key, value)
    # the test session's own Airflow home (conftest: SQLite, never the Celery stack's)
    subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], check=True, capture_output=True)
    from airflow.dag_processing.dagbag import DagBag

    dag = DagBag(dag_folder=str(PROJECT_ROOT / "dags" / "investor_metrics.py")).dags[DAG_ID]
    dr = dag.test(run_conf={"period_end": PERIOD_END, "send_email": False}, logical_date=None)
    states = {ti.task_id: str(ti.state) for ti in dr.get_task_instances()}
    assert str(dr.state) in ("success", "DagRunState.SUCCESS"), states
    return json.loads((tmp_path / "archive" / PERIOD_FILE).read_text())


# --------------------------------------------------------------------------- the tests
def _run(stack, timings, label: str) -> tuple[dict, dict]:
    client = stack["client"]
    t0 = time.monotonic()
    run = client.trigger(DAG_ID, conf={"period_end": PERIOD_END, "send_email": False})
    client.set_paused(DAG_ID, False)
    run = _wait_for_run(stack, run["dag_run_id"])
    timings[label] = time.monotonic() - t0
    return run, {ti["task_id"]: ti for ti in _task_instances(stack, run["dag_run_id"])}


def test_weekly_dag_runs_on_two_workers_sharing_no_disk_with_the_local_executors_snapshot(
        celery_stack, tmp_path, monkeypatch):
    client, timings = celery_stack["client"], celery_stack["timings"]
    errors = client.import_errors()
    assert errors == [], [e.get("stack_trace", "")[-800:] for e in errors]

    run, tis = _run(celery_stack, timings, "Celery run (S3 staging)")
    run_id = run["dag_run_id"]
    assert run["state"] == "success", (f"{_task_states(celery_stack, run_id)}\n"
                                       f"{_failed_task_logs(celery_stack, run_id)}")
    assert run["run_type"] == "manual"

    # (a) the tasks ran on both workers, and only there
    task_ids = {t["task_id"] for t in client.request("GET", f"/api/v2/dags/{DAG_ID}/tasks")["tasks"]}
    assert set(tis) == task_ids
    # without send_email, archive_snapshot skips both e-mail tasks: they run nowhere (no hostname)
    emails = ("email.send_alert_notifications", "email.send_weekly_summary")
    assert {t: ti["state"] for t, ti in tis.items()} == {
        t: "skipped" if t in emails else "success" for t in tis}
    ran = {t: ti["hostname"] for t, ti in tis.items() if t not in emails}
    assert set(ran.values()) == set(celery_stack["workers"]), ran
    extracts = {ran[t] for t in EXTRACT_TASKS}
    assert len(extracts) == 2, ran  # so downstream tasks read what the other "host" staged
    # routed through the broker on this run's queue, which only these workers consume
    assert {ti["queue"] for ti in tis.values()} == {celery_stack["queue"]}
    assert all(tis[t]["hostname"] in ("", None) for t in emails)

    # each worker imported the pipeline's libraries before forking its pool (worker_init signal of
    # include.investor_metrics.runtime.celery_config), so the task processes started with them:
    # validate_data says so
    from include.investor_metrics.runtime.executor import preload_modules

    expected = len(preload_modules({}))
    for n in (1, 2):
        worker_log = _tail(celery_stack["base"] / "logs" / f"celery-worker-{n}.log", 200_000)
        assert f"Celery worker: preloaded {expected} of {expected} modules" in worker_log, worker_log[-3000:]
    for name in ("scheduler", "api-server", "dag-processor"):  # they import the config, never preload
        assert "Celery worker: preloaded" not in (celery_stack["base"] / "logs" / f"{name}.log").read_text(
            errors="replace"), name
    validate_log = _task_log(celery_stack, run_id, "validate_data")
    assert ("Great Expectations already imported (preloaded by the executor)"
            in validate_log), validate_log[-3000:]

    # nothing was archived or staged on a local disk: all of it is on the S3 server; the S3
    # secret is in no log of any process
    assert not list(celery_stack["base"].glob("worker-*/staging"))
    secret = celery_stack["s3"].secret_key.encode()
    leaked = [str(p) for p in celery_stack["base"].rglob("*.log") if secret in p.read_bytes()]
    assert leaked == []
    from tests.object_store import Files

    archive = Files(celery_stack["archive"], celery_stack["s3"])
    celery_snapshot = archive.read(PERIOD_FILE)
    assert archive.read("metrics_snapshot.json") == celery_snapshot
    assert celery_snapshot["period"] == {
        "start": "2026-11-15T09:00:00Z", "end": PERIOD_END, "type": "on_demand"}
    assert celery_snapshot["alerts"], "the outage week should raise alerts"
    # a manual run without send_email e-mails nobody
    assert list(celery_stack["outbox"].glob("*.eml")) == []

    # (b) the same snapshot as the LocalExecutor reference, but for the moment it was generated
    t0 = time.monotonic()
    local_snapshot = _local_executor_snapshot(celery_stack, tmp_path, monkeypatch)
    timings["dag.test reference"] = time.monotonic() - t0
    celery_snapshot.pop("generated_at")
    local_snapshot.pop("generated_at")
    assert celery_snapshot == local_snapshot


def test_local_staging_on_two_workers_fails_at_once_saying_what_to_configure(celery_stack):
    """The same two workers, each staging to its own local disk (the same path, a private tmpfs per
    worker: what an operator gets who leaves INVESTOR_STAGING_DIR local on two hosts): the task that
    reads what the other worker staged fails on its first try, naming both hosts and the setting
    that fixes it; nothing is archived."""
    timings = celery_stack["timings"]
    before = celery_stack["s3"].objects(celery_stack["archive"].split("/")[2], "investors")
    celery_stack["restart_workers"](local_staging=True)
    run, tis = _run(celery_stack, timings, "Celery run (local staging)")
    assert run["state"] == "failed"
    extracts = {tis[t]["hostname"] for t in EXTRACT_TASKS}
    assert extracts == set(celery_stack["workers"]), tis
    compute = tis["compute_metrics"]
    assert (compute["state"], compute["try_number"]) == ("failed", 1), compute
    log = _task_log(celery_stack, run["dag_run_id"], "compute_metrics")
    here = compute["hostname"]
    other = next(w for w in celery_stack["workers"] if w != here)
    assert f"on this worker ({here})" in log, log[-3000:]
    assert f"ran on {other}, and INVESTOR_STAGING_DIR is a local folder" in log
    assert "set INVESTOR_STAGING_DIR to an object store every worker reaches (s3://bucket/prefix" in log
    assert tis["archive_snapshot"]["state"] == "upstream_failed"
    assert not list((celery_stack["base"] / "staging").iterdir())  # the tmpfs were the workers' own
    assert celery_stack["s3"].objects(celery_stack["archive"].split("/")[2], "investors") == before
