"""Shared fixtures: a real PostgreSQL for the whole session, in a database of its own.

Which server: ``INVESTOR_TEST_PG`` (a libpq DSN or URL of a server, e.g.
``postgresql://postgres@127.0.0.1:5432/postgres``) when set; else 127.0.0.1:5432 if it answers;
else the embedded PostgreSQL (``dev/stack/embedded_pg.py``) on its own port. Each test session
creates a fresh database and drops it at the end.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import secrets
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parent.parent
if str(PROJECT_ROOT) not in sys.path:
    sys.path.insert(0, str(PROJECT_ROOT))

# Airflow gets a home of its own for the test session (never a developer's running demo: dag.test()
# can delete a live run with the same logical date). Set before anything imports airflow.
_AIRFLOW_HOME = tempfile.mkdtemp(prefix="cfx-airflow-home-")
os.environ["AIRFLOW_HOME"] = _AIRFLOW_HOME
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(PROJECT_ROOT / "dags")
os.environ["AIRFLOW__CORE__PLUGINS_FOLDER"] = str(PROJECT_ROOT / "plugins")
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{_AIRFLOW_HOME}/airflow.db"
os.environ["GX_ANALYTICS_ENABLED"] = "false"
os.environ["PYTHONPATH"] = os.pathsep.join(
    p for p in [str(PROJECT_ROOT), os.environ.get("PYTHONPATH", "")] if p
)
atexit.register(shutil.rmtree, _AIRFLOW_HOME, True)

from dev.stack import embedded_pg  # noqa: E402
from dev.stack.env import free_port  # noqa: E402, F401 - the tests import it from here
from include.investor_metrics.db import connect  # noqa: E402
from include.investor_metrics.settings import PostgresSettings  # noqa: E402


def fetch_all(settings: PostgresSettings, sql: str, params=None) -> list[tuple]:
    """Every row of one statement, on a connection of its own."""
    conn = connect(settings)
    try:
        with conn.cursor() as cur:
            cur.execute(sql, params or {})
            return cur.fetchall()
    finally:
        conn.close()


def _server_settings() -> tuple[PostgresSettings, str]:
    url = os.environ.get("INVESTOR_TEST_PG", "").strip()
    if url:
        import psycopg2.extensions

        params = psycopg2.extensions.parse_dsn(url)
        return (
            PostgresSettings(
                host=params.get("host", "127.0.0.1"),
                port=int(params.get("port", 5432)),
                dbname=params.get("dbname", "postgres"),
                user=params.get("user"),
                password=params.get("password"),
            ),
            "INVESTOR_TEST_PG",
        )
    if embedded_pg.port_open("127.0.0.1", 5432):
        return PostgresSettings(host="127.0.0.1", port=5432, dbname="postgres", user="postgres"), "local"
    port = int(os.environ.get("EMBEDDED_PG_TEST_PORT", "55439"))
    datadir = PROJECT_ROOT / ".local" / "test-pgdata"
    embedded_pg.start(datadir, port)
    return PostgresSettings(host="127.0.0.1", port=port, dbname="postgres", user="postgres"), "embedded"


@pytest.fixture(scope="session")
def pg_server() -> PostgresSettings:
    settings, _origin = _server_settings()
    return settings


@contextlib.contextmanager
def temporary_database(server: PostgresSettings, prefix: str = "cfx_t"):
    """Create a uniquely named database on ``server``; drop it (forcing out sessions) afterwards."""
    name = f"{prefix}_{os.getpid()}_{secrets.token_hex(4)}"
    admin = connect(server)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    try:
        yield PostgresSettings(
            host=server.host, port=server.port, dbname=name, user=server.user, password=server.password
        )
    finally:
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@contextlib.contextmanager
def demo_stack(server: PostgresSettings, root: Path, prefix: str, prepare=None):
    """The run command's stack (``python -m dev.stack.devstack up``, ``DEMO_SKIP_PIPELINE=1``) on two
    fresh databases of ``server`` — source data and metrics store; Airflow's metadata — with its
    state, archive and staging under ``root``. ``prepare(settings)`` loads the source data first.
    Yields ``(env, settings, client, admin password)``; the stack is taken down and both databases
    dropped afterwards."""
    import json
    import subprocess

    from dev.stack.airflow_api import AirflowClient
    from dev.stack.env import isolated_env

    with (
        temporary_database(server, prefix) as settings,
        temporary_database(server, f"{prefix}_af") as airflow_db,
    ):
        if prepare is not None:
            prepare(settings)
        env = isolated_env(settings, root, airflow_db.dbname)
        up = subprocess.run([sys.executable, "-m", "dev.stack.devstack", "up"], env=env, cwd=PROJECT_ROOT,
                            capture_output=True, text=True, timeout=600)
        try:
            assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-3000:]
            password = json.loads((root / "state" / "secrets.json").read_text())["admin_password"]
            client = AirflowClient(f"http://127.0.0.1:{env['AIRFLOW_PORT']}", "admin", password)
            client.wait_for_dag("investor_metrics")
            yield env, settings, client, password
        finally:
            subprocess.run([sys.executable, "-m", "dev.stack.devstack", "down"], env=env, cwd=PROJECT_ROOT,
                           capture_output=True, timeout=300)


@pytest.fixture(scope="session")
def pg_database(pg_server: PostgresSettings):
    """A fresh, empty database for this test session (dropped afterwards)."""
    with temporary_database(pg_server, "cfx_test") as settings:
        yield settings


@pytest.fixture()
def fresh_database(pg_server: PostgresSettings):
    """A fresh database for one test (for tests that load their own hand-made rows)."""
    with temporary_database(pg_server) as settings:
        yield settings


@pytest.fixture()
def metrics_db(fresh_database):
    """A fresh database holding the metrics store's schema (``investor_metrics``)."""
    from include.investor_metrics.db import apply_metrics_schema

    conn = connect(fresh_database)
    apply_metrics_schema(conn)
    conn.close()
    return fresh_database


@pytest.fixture()
def metrics_conn(metrics_db):
    """A psycopg2 connection to ``metrics_db``."""
    conn = connect(metrics_db)
    yield conn
    conn.close()


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory):
    """A real S3-protocol server (moto) on 127.0.0.1 for this test session (tests/object_store.py)."""
    from tests.object_store import start_s3_server

    server = start_s3_server(tmp_path_factory.mktemp("s3") / "moto.log")
    yield server
    server.stop()


@pytest.fixture()
def s3_bucket(s3_server, monkeypatch) -> str:
    """A new bucket on ``s3_server``, reached the Airflow way: ``aws_default`` names its endpoint."""
    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", s3_server.connection_json())
    monkeypatch.delenv("INVESTOR_STORAGE_CONN_ID", raising=False)
    return s3_server.new_bucket()
