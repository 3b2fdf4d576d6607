"""Real peers for the health tests (SPEC section 9, issue 7): HTTP services on 127.0.0.1 that the
tests turn up, down, break and hang; a real PostgreSQL (a fresh database per test, through psycopg2
and psycopg 3); the project's SMTP sink, whose outbox is read back as the investors receive it.

A test module uses the fixtures by importing them (``from tests.unit.health.peers import env, ...``).
Rounds are driven with explicit round times (``play_round``: ``probe_all`` → ``record_checks`` →
``handle_incidents``, as the DAG's two tasks do).
"""

from __future__ import annotations

import email
import email.policy
import threading
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace

import pytest

from dev.stack import smtp_sink
from include.investor_metrics.contract import PROBE_INTERVAL
from include.investor_metrics.db import connect
from include.investor_metrics.health.incidents import handle_incidents
from include.investor_metrics.health.probe import probe_all, record_checks
from tests.conftest import fetch_all, free_port

SENDER = "metrics@chatterfix.example"
INVESTORS = ["founder@chatterfix.example", "investor.one@fund.example"]
R0 = datetime(2026, 11, 20, 10, 0, tzinfo=timezone.utc)
TIMEOUT = 1.0


def at(i: int) -> datetime:
    """Probe round i after R0."""
    return R0 + i * PROBE_INTERVAL

def iso(instant: datetime) -> str:
    return instant.strftime("%Y-%m-%dT%H:%M:%SZ")


# --------------------------------------------------------------------------- a service to probe
class QuietServer(ThreadingHTTPServer):
    def handle_error(self, request, client_address):  # a client that timed out and left: expected
        pass


class Service:
    """A real HTTP service on 127.0.0.1:<port>: ``status`` is what it answers, ``hang`` makes it
    answer nothing for 5 s, ``down()`` closes the port (connection refused), ``up()`` reopens it."""

    def __init__(self):
        self.port = free_port()
        self.status = 200
        self.hang = False
        self.requests = 0
        self._release = threading.Event()
        self._server = None
        self.up()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/health"

    def up(self) -> Service:
        service = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's hook name
                service.requests += 1
                if service.hang:
                    service._release.wait(5)
                status = 503 if self.path == "/broken" else service.status
                self.send_response(status)
                if 300 <= status < 400:
                    self.send_header("Location", "/broken")  # following it would give a 503
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self._release.clear()
        self._server = QuietServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def down(self) -> Service:
        if self._server is not None:
            self._release.set()
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        return self


@pytest.fixture()
def service():
    started = []

    def make() -> Service:
        started.append(Service())
        return started[-1]

    yield make
    for s in started:
        s.down()


# --------------------------------------------------------------------------- database, SMTP sink
def psycopg3_connect(settings):
    import psycopg

    return psycopg.connect(host=settings.host, port=settings.port, dbname=settings.dbname,
                           user=settings.user, password=settings.password)


@pytest.fixture(params=["psycopg2", "psycopg3"])
def metrics_conn(request, metrics_db):
    conn = connect(metrics_db) if request.param == "psycopg2" else psycopg3_connect(metrics_db)
    yield conn
    conn.close()


@pytest.fixture()
def env(monkeypatch, tmp_path, metrics_db):
    """SMTP sink + the settings a task would have, pointing at the fresh database."""
    port = free_port()
    sink = smtp_sink.start(tmp_path / "outbox", port=port)
    settings = {
        "SMTP_SERVER": "127.0.0.1",
        "SMTP_PORT": str(port),
        "SMTP_STARTTLS": "false",
        "SMTP_SSL": "false",
        "INVESTOR_EMAIL": SENDER,
        "INVESTOR_EMAILS": ",".join(INVESTORS),
        "DB_HOST": metrics_db.host,
        "DB_PORT": str(metrics_db.port),
        "DB_NAME": metrics_db.dbname,
        "DB_USER": metrics_db.user or "",
        "INVESTOR_ARCHIVE_DIR": str(tmp_path / "archive"),
        "INVESTOR_TIMEZONE": "UTC",
        "HEALTH_CHECK_TIMEOUT_SECONDS": str(TIMEOUT),
    }
    for key, value in settings.items():
        monkeypatch.setenv(key, value)
    for key in ("HEALTH_CHECK_SERVICES", "AIRFLOW_CONN_SMTP_DEFAULT", "AIRFLOW_CONN_INVESTOR_METRICS_DB",
                "AIRFLOW_CONN_CHATTERFIX_DB", "AIRFLOW_VAR_HEALTH_CHECK_SERVICES"):
        monkeypatch.delenv(key, raising=False)
    yield SimpleNamespace(outbox=tmp_path / "outbox", archive=tmp_path / "archive", smtp_port=port,
                          db=metrics_db)
    sink.stop()


def outbox(env) -> list:
    return [email.message_from_bytes(p.read_bytes(), policy=email.policy.default)
            for p in smtp_sink.messages(env.outbox)]


rows = fetch_all  # tests/conftest.py


def checks(settings, service: str | None = None) -> list[tuple]:
    return rows(settings, """
        SELECT service, checked_at, ok, response_ms, status_code, error
        FROM investor_metrics.service_health_checks
        WHERE %(service)s::text IS NULL OR service = %(service)s
        ORDER BY checked_at, service""", {"service": service})


def incidents(settings) -> list[dict]:
    conn = connect(settings)
    try:
        with conn.cursor() as cur:
            cur.execute("""
                SELECT id, dedup_key, rule, severity, category, service, value, threshold, period_start,
                       period_end, triggered_at, resolved_at, notified, run_id
                FROM investor_metrics.alerts ORDER BY period_start""")
            names = [d[0] for d in cur.description]
            return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
    finally:
        conn.close()


def play_round(conn, services: dict[str, str], i: int, **kwargs) -> dict:
    """One probe round at round time ``at(i)``: what the DAG's two tasks do."""
    results = probe_all(services, timeout=TIMEOUT)
    record_checks(conn, at(i), results)
    return handle_incidents(conn, services, at(i), run_id=f"test__{iso(at(i))}", **kwargs)
