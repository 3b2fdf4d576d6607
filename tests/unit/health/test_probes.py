"""Health probes (SPEC section 9, issue 7) against real peers: HTTP servers on 127.0.0.1 that the tests
turn up, down, break and hang; a real PostgreSQL (a fresh database per test); the project's SMTP
sink, whose outbox is read back as the investors receive it.

Rounds are driven with explicit round times (``probe_all`` → ``record_checks`` →
``handle_incidents``, as the DAG's two tasks do), and once through ``dag.test()`` of the DAG.
"""

from __future__ import annotations

import email
import email.policy
import json
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace

import pytest

from dev.stack import smtp_sink
from include.investor_metrics.db import connect
from include.investor_metrics.health import probes
from include.investor_metrics.period import weekly_period
from include.investor_metrics.settings import ConfigError
from include.investor_metrics.weekly.alerts import evaluate
from tests.conftest import PROJECT_ROOT, free_port

SENDER = "metrics@chatterfix.example"
INVESTORS = ["founder@chatterfix.example", "investor.one@fund.example"]
R0 = datetime(2026, 11, 20, 10, 0, tzinfo=timezone.utc)
TIMEOUT = 1.0


def at(i: int) -> datetime:
    """Probe round i after R0."""
    return R0 + i * probes.PROBE_INTERVAL


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


def rows(settings, sql: str, params=None) -> list[tuple]:
    conn = connect(settings)
    try:
        with conn.cursor() as cur:
            cur.execute(sql, params or {})
            return cur.fetchall()
    finally:
        conn.close()


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
    results = probes.probe_all(services, timeout=TIMEOUT)
    probes.record_checks(conn, at(i), results)
    return probes.handle_incidents(conn, services, at(i), run_id=f"test__{iso(at(i))}", **kwargs)


# --------------------------------------------------------------------------- settings, rounds
def test_services_come_from_the_variable_first_then_the_environment():
    env = {"HEALTH_CHECK_SERVICES": "api=http://api.example/health, web=https://web.example/"}
    assert probes.load_services(env=env, get_variable=lambda _k: None) == {
        "api": "http://api.example/health", "web": "https://web.example/"}
    # the Variable wins, as a JSON string or already decoded; an empty object means "probe nothing"
    assert probes.load_services(env=env, get_variable=lambda _k: '{"db": "tcp://db:5432"}') == {"db": "tcp://db:5432"}
    assert probes.load_services(env=env, get_variable=lambda _k: {"db": "tcp://db:5432"}) == {"db": "tcp://db:5432"}
    assert probes.load_services(env=env, get_variable=lambda _k: "{}") == {}
    assert probes.load_services(env={}, get_variable=lambda _k: "  ") == {}
    # outside a task no Variable can be read: the environment alone counts
    assert probes.load_services(env=env) == {"api": "http://api.example/health", "web": "https://web.example/"}


@pytest.mark.parametrize(("variable", "words"), [
    ("[1, 2]", "must be a JSON object"),
    ("{not json", "is not valid JSON"),
    ('{"bad name": "http://x/"}', "service name 'bad name'"),
    ('{"api": ""}', "needs a URL"),
    ('{"api": 5}', "needs a URL"),
    ('{"api": "notaurl"}', "'notaurl' is not a URL such as https://host/health"),
    ('{"db": "tcp://db.example"}', "needs a port (tcp://host:port)"),
    ('{"api": "ftp://user:s3cret@api.example/"}', "the URL is not a URL"),
])
def test_a_malformed_variable_is_a_clear_error(variable, words):
    with pytest.raises(ConfigError, match="health_check_services") as err:
        probes.load_services(env={}, get_variable=lambda _k: variable)
    assert words in str(err.value)
    assert "s3cret" not in str(err.value)


def test_a_malformed_environment_is_a_clear_error():
    with pytest.raises(ConfigError, match="HEALTH_CHECK_SERVICES"):
        probes.load_services(env={"HEALTH_CHECK_SERVICES": "api http://x/"}, get_variable=lambda _k: None)


def test_timeout_setting():
    assert probes.probe_timeout({}) == 10.0
    assert probes.probe_timeout({"HEALTH_CHECK_TIMEOUT_SECONDS": "2.5"}) == 2.5
    for bad in ("0", "-1", "61", "soon"):
        with pytest.raises(ConfigError, match="HEALTH_CHECK_TIMEOUT_SECONDS"):
            probes.probe_timeout({"HEALTH_CHECK_TIMEOUT_SECONDS": bad})


def test_probe_round_is_the_five_minute_grid_in_utc():
    paris = timezone(timedelta(hours=1))
    assert probes.probe_round(datetime(2026, 11, 20, 11, 7, 59, 999, tzinfo=paris)) == datetime(
        2026, 11, 20, 10, 5, tzinfo=timezone.utc)
    assert probes.probe_round(R0) == R0
    with pytest.raises(ValueError, match="naive"):
        probes.probe_round(datetime(2026, 11, 20, 10, 0))


def test_public_url_drops_credentials_and_query():
    assert probes.public_url("https://user:pw@api.example:8443/health?token=abc") == "https://api.example:8443/health"
    assert probes.public_url("not a url") == "<malformed URL>"


def task_context(logical_date: datetime) -> dict:
    return {"dag_run": SimpleNamespace(logical_date=logical_date, run_after=logical_date, run_id="manual__test")}


def test_no_configured_service_is_nothing_to_probe(env, caplog):
    now = datetime.now(timezone.utc)
    caplog.set_level("INFO", logger="include.investor_metrics.health.probes")
    summary = probes.run_probe_round(task_context(now))
    assert summary == {"checked_at": iso(probes.probe_round(now)), "services": [], "failed": []}
    assert "no service to probe" in caplog.text
    assert probes.run_incident_handling(task_context(now), summary)["opened"] == []
    assert checks(env.db) == []


def test_an_old_round_is_not_probed(env, service, monkeypatch):
    """A backfill or a cleared old run would store today's answers as history: it records nothing."""
    from airflow.sdk.exceptions import AirflowSkipException

    monkeypatch.setenv("HEALTH_CHECK_SERVICES", f"api={service().url}")
    with pytest.raises(AirflowSkipException, match="in the past"):
        probes.run_probe_round(task_context(datetime.now(timezone.utc) - timedelta(minutes=30)))
    assert checks(env.db) == []


def test_incident_messages_escape_what_a_service_said_and_thread_together():
    alert = probes.incident_alert("api", at(1), at(3), "RemoteProtocolError: <script>x</script>", tz="UTC")
    alert["triggered_at"] = alert["period_end"]
    opening = probes.incident_message(alert, recipients=INVESTORS, sender=SENDER, tz="UTC",
                                      airflow_url="javascript:alert(1)")
    html = opening.get_body(("html",)).get_content()
    assert "<script>" not in html and "&lt;script&gt;" in html and "javascript:" not in html
    assert opening["Subject"] == "[CRITICAL] ChatterFix: api is down: 3 health probes failed in a row"
    closing = probes.resolution_message({**alert, "resolved_at": at(30)}, recipients=INVESTORS, sender=SENDER,
                                        tz="Europe/Paris")
    assert closing["In-Reply-To"] == opening["Message-ID"]
    assert closing["Subject"] == "[RESOLVED] ChatterFix: api answers again after 2 h 25 min down"
    assert "Answered at:   20 Nov 2026 13:30 (Europe/Paris)" in closing.get_body(("plain",)).get_content()


# --------------------------------------------------------------------------- rows of a round
def test_a_round_writes_one_row_per_service_with_its_reason(env, service, metrics_conn):
    ok, moved, broken, gone = (service() for _ in range(4))
    hanging = [service() for _ in range(3)]
    moved.status = 302
    broken.status = 503
    for s in hanging:
        s.hang = True
    gone.down()
    services = {
        "ok": ok.url, "moved": moved.url, "broken": broken.url, **{f"slow{i}": s.url for i, s in enumerate(hanging)},
        "gone": gone.url, "ftp": "ftp://127.0.0.1/health", "nowhere": "http://no-such-host.invalid/health",
        "junk": "not a url", "tcp_ok": f"tcp://127.0.0.1:{ok.port}", "tcp_gone": f"tcp://127.0.0.1:{gone.port}",
    }
    started = time.monotonic()
    results = probes.probe_all(services, timeout=TIMEOUT)
    elapsed = time.monotonic() - started
    assert [r.service for r in results] == list(services)
    # concurrently: three services hang past the 1 s timeout, the round still takes about 1 s, not 3
    assert elapsed < 2.5, elapsed
    assert probes.record_checks(metrics_conn, at(0), results) == len(services)

    got = {row[0]: row[1:] for row in checks(env.db)}
    assert set(got) == set(services)
    assert all(checked_at == at(0) for checked_at, *_ in got.values())
    by = {name: dict(zip(("ok", "response_ms", "status_code", "error"), row[1:], strict=True))
          for name, row in got.items()}
    assert by["ok"]["ok"] and by["ok"]["status_code"] == 200 and by["ok"]["error"] is None
    assert 0 <= by["ok"]["response_ms"] < 1000
    # a redirect is ok as it is: not followed (its target answers 503)
    assert by["moved"]["ok"] and by["moved"]["status_code"] == 302
    assert by["broken"] == {"ok": False, "response_ms": by["broken"]["response_ms"], "status_code": 503,
                            "error": "HTTP 503 Service Unavailable"}
    assert by["broken"]["response_ms"] is not None
    for name in ("slow0", "slow1", "slow2"):
        assert by[name] == {"ok": False, "response_ms": None, "status_code": None,
                            "error": "timeout: no response within 1000 ms"}
    assert by["gone"] == {"ok": False, "response_ms": None, "status_code": None, "error": "connection refused"}
    assert by["ftp"]["error"].startswith("bad URL: scheme 'ftp'") and not by["ftp"]["ok"]
    assert by["nowhere"]["error"] == "cannot resolve host 'no-such-host.invalid'"
    assert by["junk"]["error"].startswith("bad URL: no scheme")
    assert by["tcp_ok"]["ok"] and by["tcp_ok"]["status_code"] is None and by["tcp_ok"]["response_ms"] is not None
    assert by["tcp_gone"]["error"] == "connection refused"

    # a retry of the round: the same keys, rows replaced by what the retry saw, never a second row
    broken.status = 200
    probes.record_checks(metrics_conn, at(0), probes.probe_all(services, timeout=TIMEOUT))
    again = checks(env.db)
    assert len(again) == len(services)
    assert {row[0]: row[2] for row in again}["broken"] is True


# --------------------------------------------------------------------------- incidents
def alert_mails(env) -> list:
    return [m for m in outbox(env) if m["Subject"].startswith("[CRITICAL]")]


def resolution_mails(env) -> list:
    return [m for m in outbox(env) if m["Subject"].startswith("[RESOLVED]")]


def test_three_failures_open_one_incident_and_recovery_resolves_it(env, service, metrics_conn):
    api, web = service(), service()
    services = {"api": api.url, "web": web.url}

    assert play_round(metrics_conn, services, 0)["opened"] == []  # both ok
    api.down()                                                  # refused
    assert play_round(metrics_conn, services, 1)["opened"] == []
    api.up().status = 503                                       # answering, with an error
    assert play_round(metrics_conn, services, 2)["opened"] == []
    assert incidents(env.db) == [] and outbox(env) == []
    api.hang = True                                             # third failure in a row: a timeout
    third = play_round(metrics_conn, services, 3)

    key = f"critical_system_failure|api|{iso(at(1))}"
    [incident] = incidents(env.db)
    assert third["opened"] == [incident["id"]] == [evaluate.alert_id(key)]
    assert third["emails"] == [{"kind": "alert", "id": incident["id"]}]
    assert {k: incident[k] for k in ("dedup_key", "rule", "severity", "category", "service", "value", "threshold",
                                     "period_start", "period_end", "triggered_at", "resolved_at", "notified")} == {
        "dedup_key": key, "rule": "critical_system_failure", "severity": "critical", "category": "system",
        "service": "api", "value": 3.0, "threshold": 3.0, "period_start": at(1), "period_end": at(3),
        "triggered_at": at(3), "resolved_at": None, "notified": True}
    openings = outbox(env)  # one message per investor, each addressed to that investor alone
    assert sorted(m["X-Envelope-To"].strip() for m in openings) == sorted(INVESTORS)
    assert all(m["To"].addresses[0].addr_spec == m["X-Envelope-To"].strip() for m in openings)
    mail = openings[0]
    assert mail["Subject"] == "[CRITICAL] ChatterFix: api is down: 3 health probes failed in a row"
    text = mail.get_body(("plain",)).get_content()
    assert "20 Nov 2026 10:05 to 20 Nov 2026 10:15 (UTC)" in text
    assert "timeout: no response within 1000 ms" in text and incident["id"] in text
    history = json.loads((env.archive / "alert_history.json").read_text())["alerts"]
    assert [(a["id"], a["service"], a["notified"], "resolved_at" in a) for a in history] == [
        (incident["id"], "api", True, False)]

    # a retry of the same round, then a 4th and a 5th failure: nothing more
    api.hang = False
    api.status = 500
    again = play_round(metrics_conn, services, 3)
    assert (again["opened"], again["emails"], again["alert_history"]) == ([], [], None)
    for i in (4, 5):
        later = play_round(metrics_conn, services, i)
        assert (later["opened"], later["resolved"], later["emails"]) == ([], [], [])
    assert len(incidents(env.db)) == 1 and len(outbox(env)) == len(INVESTORS)

    # the service answers again: resolved at that round, one resolution e-mail in the alert's thread
    api.status = 200
    back = play_round(metrics_conn, services, 6)
    assert back["resolved"] == [incident["id"]]
    assert back["emails"] == [{"kind": "incident_resolved", "id": incident["id"]}]
    [resolved] = incidents(env.db)
    assert resolved["resolved_at"] == at(6) and resolved["notified"]
    closings = resolution_mails(env)
    assert len(closings) == len(INVESTORS)
    opening_of = {m["X-Envelope-To"].strip(): m["Message-ID"] for m in openings}
    for closing in closings:  # each in the thread of that investor's own opening message
        assert closing["In-Reply-To"] == opening_of[closing["X-Envelope-To"].strip()]
    closing = closings[0]
    assert closing["Subject"] == "[RESOLVED] ChatterFix: api answers again after 25 minutes down"
    assert "20 Nov 2026 10:30 (UTC)" in closing.get_body(("plain",)).get_content()
    history = json.loads((env.archive / "alert_history.json").read_text())["alerts"]
    assert history[0]["resolved_at"] == iso(at(6))
    for i in (6, 7):  # a retry of the round, then the next healthy round: nothing more
        quiet = play_round(metrics_conn, services, i)
        assert (quiet["opened"], quiet["resolved"], quiet["emails"]) == ([], [], [])
    assert len(outbox(env)) == 2 * len(INVESTORS)

    # a new outage later is a new incident, with its own e-mails
    api.down()
    for i in (8, 9):
        assert play_round(metrics_conn, services, i)["opened"] == []
    second = play_round(metrics_conn, services, 10)
    assert second["opened"] == [evaluate.alert_id(f"critical_system_failure|api|{iso(at(8))}")]
    assert [i["period_start"] for i in incidents(env.db)] == [at(1), at(8)]
    assert len(alert_mails(env)) == 2 * len(INVESTORS) and len(resolution_mails(env)) == len(INVESTORS)
    # web never failed: no incident of its own; every round has one row per service
    assert {i["service"] for i in incidents(env.db)} == {"api"}
    assert len(checks(env.db, "web")) == 11 and all(row[2] for row in checks(env.db, "web"))
    sent = rows(env.db, "SELECT kind, send_key, min(status) FROM investor_metrics.send_log "
                        "GROUP BY kind, send_key HAVING count(*) = %s AND bool_and(status = 'sent') "
                        "ORDER BY min(sent_at)", (len(INVESTORS),))
    assert sent == [("alert", incident["id"], "sent"), ("incident_resolved", incident["id"], "sent"),
                    ("alert", second["opened"][0], "sent")]


def test_an_smtp_failure_fails_the_round_and_the_retry_sends_the_alert_once(env, service, metrics_conn,
                                                                           monkeypatch):
    api = service().down()
    services = {"api": api.url}
    for i in (0, 1):
        play_round(metrics_conn, services, i)
    monkeypatch.setenv("SMTP_PORT", str(free_port()))  # nothing listens there
    from include.investor_metrics.mail.send_log import EmailDeliveryError

    with pytest.raises(EmailDeliveryError):
        play_round(metrics_conn, services, 2)
    [incident] = incidents(env.db)
    assert not incident["notified"] and outbox(env) == []

    monkeypatch.setenv("SMTP_PORT", str(env.smtp_port))
    retry = play_round(metrics_conn, services, 2, republish=True)  # the task's retry
    assert retry["opened"] == [] and retry["emails"] == [{"kind": "alert", "id": incident["id"]}]
    assert incidents(env.db)[0]["notified"] and len(outbox(env)) == len(INVESTORS)
    history = json.loads((env.archive / "alert_history.json").read_text())["alerts"]
    assert history[0]["notified"] is True


def test_concurrent_rounds_open_one_incident(env, service, metrics_db):
    api = service().down()
    services = {"api": api.url}
    conn = connect(metrics_db)
    try:
        probes.record_checks(conn, at(0), probes.probe_all(services, timeout=TIMEOUT))
        probes.record_checks(conn, at(1), probes.probe_all(services, timeout=TIMEOUT))
        probes.record_checks(conn, at(2), probes.probe_all(services, timeout=TIMEOUT))
    finally:
        conn.close()
    results, errors = [], []

    def handle():
        own = connect(metrics_db)
        try:
            results.append(probes.handle_incidents(own, services, at(2), run_id="concurrent"))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            own.close()

    threads = [threading.Thread(target=handle) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert sum(len(r["opened"]) for r in results) == 1
    assert len(incidents(env.db)) == 1 and len(outbox(env)) == len(INVESTORS)


# --------------------------------------------------------------------------- through the DAG
@pytest.fixture(scope="module")
def airflow_db():
    subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], check=True, capture_output=True)


def test_the_dag_probes_and_raises_the_incident(env, service, airflow_db, monkeypatch):
    from airflow.dag_processing.dagbag import DagBag

    api, gone = service(), service().down()
    services = {"api": api.url, "gone": gone.url}
    monkeypatch.setenv("HEALTH_CHECK_SERVICES", ",".join(f"{k}={v}" for k, v in services.items()))
    # two rounds already failed for "gone": the DAG's round (the current one) is its third
    now = datetime.now(timezone.utc)
    current = probes.probe_round(now)
    conn = connect(env.db)
    try:
        for back in (2, 1):
            probes.record_checks(conn, current - back * probes.PROBE_INTERVAL,
                                 probes.probe_all({"gone": gone.url}, timeout=TIMEOUT))
    finally:
        conn.close()

    dag = DagBag(dag_folder=str(PROJECT_ROOT / "dags" / "service_health_probe.py")).dags["service_health_probe"]
    assert dag.max_active_runs == 1 and not dag.catchup and dag.dagrun_timeout <= timedelta(minutes=5)
    dr = dag.test(logical_date=now)  # stored under its round: the logical date floored to 5 minutes
    states = {ti.task_id: str(ti.state) for ti in dr.get_task_instances()}
    assert str(dr.state) in ("success", "DagRunState.SUCCESS"), states

    round_rows = [row for row in checks(env.db) if row[1] == current]
    assert [(r[0], r[2], r[4], r[5]) for r in round_rows] == [
        ("api", True, 200, None), ("gone", False, None, "connection refused")]
    [incident] = incidents(env.db)
    assert (incident["service"], incident["period_start"], incident["period_end"]) == (
        "gone", current - 2 * probes.PROBE_INTERVAL, current)
    assert incident["notified"] and incident["run_id"] == dr.run_id
    mails = outbox(env)
    assert sorted(m["X-Envelope-To"].strip() for m in mails) == sorted(INVESTORS)
    assert {m["Subject"] for m in mails} == {"[CRITICAL] ChatterFix: gone is down: 3 health probes failed in a row"}
    assert (env.archive / "alert_history.json").exists()


# --------------------------------------------------------------------------- the weekly uptime
def test_weekly_uptime_of_a_probed_week_matches_the_definition(env, service, metrics_conn):
    """A week of probe rounds with a known pattern; the weekly extract + metric give the uptime
    computed by hand: ok checks / all checks in [start, end), per service and overall."""
    from include.investor_metrics.weekly import extract
    from include.investor_metrics.weekly.metrics.system_health import system_health

    end = datetime(2026, 11, 22, 9, tzinfo=timezone.utc)
    period = weekly_period(end, "UTC")
    api, web = service(), service()
    services = {"api": api.url, "web": web.url}
    rounds = [period.start + timedelta(hours=16 * k) for k in range(10)]  # the first at the start exactly
    failing = {3: 503, 9: "down"}  # api fails in round 3 (HTTP 503) and in the last round (refused)

    def probe(when):
        probes.record_checks(metrics_conn, when, probes.probe_all(services, timeout=TIMEOUT))

    api.status = 503
    probe(period.start - probes.PROBE_INTERVAL)  # before the week: not counted
    for k, when in enumerate(rounds):
        api.status = 503 if failing.get(k) == 503 else 200
        if failing.get(k) == "down":
            api.down()
        probe(when)
    probe(end)  # at the end exactly: the next week's (api is still down)

    frame = extract.extract_health_checks(metrics_conn, period, list(services))
    health = system_health(frame, list(services))
    # by hand: api 8 ok of 10, web 10 of 10; overall 18 of 20
    assert health["uptime_percentage"] == 90.0
    assert health["error_rate"] == 10.0
    assert health["services"]["api"]["uptime_percentage"] == 80.0
    assert health["services"]["web"]["uptime_percentage"] == 100.0
    assert (health["services_total"], health["services_healthy"]) == (2, 1)  # api's last check failed
    assert health["services"]["api"]["healthy"] is False and health["services"]["web"]["healthy"] is True
    assert health["status"] == "critical"  # api below 90 % uptime
    # response times: the mean of the stored ok checks' times in the week
    in_week = [r for r in checks(env.db) if period.start <= r[1] < end]
    assert len(in_week) == 20
    ok_times = [r[3] for r in in_week if r[2]]
    assert health["avg_response_time_ms"] == pytest.approx(sum(ok_times) / len(ok_times), abs=0.005)
