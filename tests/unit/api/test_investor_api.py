"""The investor API (SPEC section 11) over the app Airflow's API server builds.

The app is ``airflow.api_fastapi.app.create_app()`` with the project's plugins (the test session's
AIRFLOW_HOME, its metadata migrated, the DAGs serialized), driven with FastAPI's TestClient.
Users are SimpleAuthManager's (``admin`` admin, ``viewer`` viewer, ``outsider`` a viewer whom the
auth manager refuses the investor_metrics DAG); tokens come from ``POST /auth/token``. The metrics
store is a fresh database of the test PostgreSQL, filled through ``include.investor_metrics.weekly.snapshots.publish`` and
``include.investor_metrics.weekly.alerts.store.upsert_alerts``. The pure parts of ``include/investor_metrics/api/queries.py`` are tested
without a server at the end.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import pytest

from dev.stack.devstack import airflow_argv
from include.investor_metrics.api import queries as investor_queries
from include.investor_metrics.db import apply_metrics_schema, connect
from include.investor_metrics.settings import ConfigError, PostgresSettings
from include.investor_metrics.weekly import snapshots as store
from include.investor_metrics.weekly.alerts import evaluate
from include.investor_metrics.weekly.alerts import store as alert_store
from tests.conftest import PROJECT_ROOT

# The TestClient of this FastAPI warns that Starlette prefers httpx2: not our concern here.
pytestmark = pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")

UTC = timezone.utc
LATEST_END = datetime(2026, 11, 22, 9, tzinfo=UTC)
WEEK_ENDS = [LATEST_END - timedelta(weeks=k) for k in range(11, -1, -1)]  # 12 weeks, oldest first
ON_DEMAND_END = datetime(2026, 11, 19, 12, tzinfo=UTC)
XSS_TITLE = "<img src=x onerror=\"document.title='pwned'\"> & <b>AI accuracy</b> 88.2% is below 90%"


def iso(instant: datetime) -> str:
    return instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --------------------------------------------------------------------------- test data
def make_snapshot(end: datetime, k: int, period_type: str) -> dict:
    """A snapshot of SPEC section 7's shape (same keys, same order); the numbers move with ``k``."""
    mrr = round(30000.25 + 1000 * k, 2)
    return {
        "timestamp": iso(end),
        "generated_at": iso(end + timedelta(minutes=3, seconds=12)),
        "period": {"start": iso(end - timedelta(days=7)), "end": iso(end), "type": period_type},
        "system_health": {
            "uptime_percentage": round(99.9 - 0.07 * (k % 4), 2), "status": "healthy", "services_total": 5,
            "services_healthy": 5, "avg_response_time_ms": 190.0 + k, "p95_response_time_ms": 410.0,
            "error_rate": 0.3,
            "services": {"api": {"uptime_percentage": 99.9, "avg_response_time_ms": 120.5, "healthy": True}},
        },
        "ai_platform": {
            "total_requests": 15000 + 300 * k, "chat_requests": 12000 + 200 * k, "api_requests": 3000 + 100 * k,
            "cache_hit_rate": 31.4, "error_rate": 0.8, "active_providers": 3,
            "accuracy_rate": round(86.5 + 0.6 * k, 2), "avg_latency_ms": 812.0, "p95_latency_ms": 2210.0,
            "providers": {},
        },
        "financial": {
            "mrr": mrr, "arr": round(12 * mrr, 2), "active_customers": 100 + 2 * k,
            "mrr_growth_rate": round(3.5 + 0.4 * k, 2), "customer_growth_rate": 4.1, "new_mrr": 1200.0,
            "reactivation_mrr": 0.0, "expansion_mrr": 350.0, "contraction_mrr": 90.0, "churned_mrr": 400.0,
            "net_new_mrr": 1060.0, "quick_ratio": 3.16, "arpa": 334.65, "lead_conversion_rate": 12.5,
        },
        "business_health": {
            "churn_risk": "low", "growth_trajectory": "strong", "churned_customers": 1, "logo_churn_rate": 0.79,
            "revenue_churn_rate": 1.15, "churn_rate_28d": 1.6,
            "customer_satisfaction": {"nps": float(30 + k), "responses": 58}, "platform_utilization": 88.2,
            "at_risk_customers": 6, "mrr_at_risk": 1890.0,
        },
        "data_quality": {"success": True, "warnings": []},
        "alerts": [],
    }


def fixture_snapshots() -> list[dict]:
    """12 weeks (backfills, the latest weekly) and one on-demand period between the last two."""
    snapshots = [make_snapshot(end, k, "backfill" if k < 11 else "weekly") for k, end in enumerate(WEEK_ENDS)]
    on_demand = make_snapshot(ON_DEMAND_END, 10, "on_demand")
    on_demand["financial"]["mrr"] = 40500.5
    snapshots.append(on_demand)
    return snapshots


def _alert(rule: str, severity: str, category: str, end: datetime, title: str, value=None, threshold=None):
    return {
        "rule": rule, "severity": severity, "category": category, "title": title,
        "message": f"{title}. Details for the week ending {iso(end)}.", "metric": None,
        "value": value, "threshold": threshold, "period_start": iso(end - timedelta(days=7)),
        "period_end": iso(end), "triggered_at": iso(end),
    }


def fixture_alerts() -> list[dict]:
    return [
        _alert("critical_system_failure", "critical", "system", LATEST_END,
               "Critical: the platform was in a critical state"),
        _alert("uptime_below_target", "high", "system", LATEST_END, "Uptime 98.7% is below the 99.5% target",
               98.7, 99.5),
        _alert("ai_accuracy_below_target", "medium", "ai", LATEST_END, XSS_TITLE, 88.2, 90.0),
        _alert("mrr_growth_below_target", "medium", "financial", WEEK_ENDS[-2],
               "MRR growth 4.3% is below the 5% monthly target", 4.3, 5.0),
        _alert("services_degraded", "low", "system", WEEK_ENDS[-3], "1 of 5 services not healthy", 4.0, 5.0),
        _alert("churn_spike", "high", "business", WEEK_ENDS[-4], "Churn spike: 5 customers churned", 5.0, 2.0),
    ]


def fill_store(settings: PostgresSettings) -> None:
    """Publish the fixture snapshots and alerts the way the pipeline does."""
    conn = connect(settings)
    try:
        apply_metrics_schema(conn)
        for snapshot in fixture_snapshots():
            end = datetime.fromisoformat(snapshot["period"]["end"].replace("Z", "+00:00"))
            store.publish(conn, snapshot, period_start=end - timedelta(days=7), period_end=end,
                          run_id=f"test__{snapshot['period']['end']}", write_latest=lambda latest: None)
        alert_store.upsert_alerts(conn, fixture_alerts(), run_id="test__alerts")
    finally:
        conn.close()


def create_database(server: PostgresSettings, prefix: str) -> PostgresSettings:
    name = f"{prefix}_{os.getpid()}_{secrets.token_hex(3)}"
    admin = connect(server)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    admin.close()
    return PostgresSettings(server.host, server.port, name, server.user, server.password)


def drop_database(server: PostgresSettings, name: str) -> None:
    admin = connect(server)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.close()


def db_env(settings: PostgresSettings) -> dict[str, str]:
    return {"DB_HOST": settings.host, "DB_PORT": str(settings.port), "DB_NAME": settings.dbname,
            "DB_USER": settings.user or "", "DB_PASSWORD": settings.password or ""}


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again when the block ends: nothing listens there


# --------------------------------------------------------------------------- the Airflow app
PASSWORDS = {"admin": secrets.token_urlsafe(12), "viewer": secrets.token_urlsafe(12),
             "outsider": secrets.token_urlsafe(12)}


@pytest.fixture(scope="module")
def metrics_db(pg_server):
    settings = create_database(pg_server, "cfx_api")
    fill_store(settings)
    yield settings
    drop_database(pg_server, settings.dbname)


@pytest.fixture(scope="module")
def api(metrics_db, tmp_path_factory):
    """Airflow's API server app (with the plugin) and tokens of each user."""
    home = tmp_path_factory.mktemp("investor-api")
    passwords_file = home / "passwords.json"
    passwords_file.write_text(json.dumps(PASSWORDS))
    with pytest.MonkeyPatch.context() as mp:
        for key in [k for k in os.environ if k.startswith(("DB_", "AIRFLOW_CONN_"))]:
            mp.delenv(key)
        for key, value in {
            **db_env(metrics_db),
            "AIRFLOW__CORE__AUTH_MANAGER":
                "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin,viewer:viewer,outsider:viewer",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords_file),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(64),
        }.items():
            mp.setenv(key, value)
        # The metadata database of the test session's AIRFLOW_HOME, and the DAGs in it, as the
        # DAG processor would leave them (the trigger needs the serialized DAG).
        for argv in (["db", "migrate"], ["dags", "reserialize"]):
            done = subprocess.run(airflow_argv(*argv), env=os.environ.copy(), cwd=PROJECT_ROOT,
                                  capture_output=True, text=True, timeout=300)
            assert done.returncode == 0, f"airflow {' '.join(argv)} failed:\n{done.stdout[-3000:]}{done.stderr[-3000:]}"

        from airflow.api_fastapi.app import create_app, get_auth_manager, purge_cached_app
        from fastapi.testclient import TestClient

        from include.investor_metrics.api import app as investor_api

        purge_cached_app()
        investor_api.app.state.store.reset()
        app = create_app()
        with TestClient(app) as client:
            tokens = {}
            for user, password in PASSWORDS.items():
                answer = client.post("/auth/token", json={"username": user, "password": password})
                assert answer.status_code == 201, answer.text
                tokens[user] = answer.json()["access_token"]

            # An auth manager with per-DAG rights (FAB, Keycloak…) may refuse a user one DAG: here
            # "outsider" is refused investor_metrics and allowed the rest.
            manager = get_auth_manager()
            allowed = manager.is_authorized_dag

            def is_authorized_dag(*, method, user, access_entity=None, details=None):
                if user.get_name() == "outsider" and details is not None and details.id == "investor_metrics":
                    return False
                return allowed(method=method, user=user, access_entity=access_entity, details=details)

            mp.setattr(manager, "is_authorized_dag", is_authorized_dag)
            yield SimpleNamespace(client=client, tokens=tokens, db=metrics_db, mp=mp)
        investor_api.app.state.store.reset()
        purge_cached_app()


def bearer(api, user: str = "admin") -> dict[str, str]:
    return {"Authorization": f"Bearer {api.tokens[user]}"}


def stored_alerts(settings: PostgresSettings, **filters) -> list[dict]:
    conn = connect(settings)
    try:
        return alert_store.all_alerts(conn, **filters)
    finally:
        conn.close()


def assert_error(response, status: int, *words: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["success"] is False and set(body) == {"success", "error"}, body
    for word in words:
        assert word in body["error"], (word, body["error"])
    assert "Traceback" not in response.text
    return body["error"]


# --------------------------------------------------------------------------- authentication
ROUTES = [("GET", "/api/investor/metrics"), ("GET", "/api/investor/metrics?history=3"),
          ("GET", "/api/investor/alerts"), ("POST", "/api/investor/metrics/collect"),
          ("GET", "/api/investor/openapi.json")]


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_every_route_refuses_a_request_without_an_airflow_user(api, method, path):
    assert_error(api.client.request(method, path), 401, "Not authenticated")


def test_a_forged_or_foreign_token_is_refused_like_airflow_refuses_it(api):
    forged = api.tokens["admin"][:-4] + ("AAAA" if not api.tokens["admin"].endswith("AAAA") else "BBBB")
    answer = api.client.get("/api/investor/metrics", headers={"Authorization": f"Bearer {forged}"})
    # Airflow's own get_user: 403 "Invalid JWT token" (as on /api/v2), never the data.
    assert_error(answer, 403, "Invalid JWT token")
    assert api.client.get("/api/v2/dags", headers={"Authorization": f"Bearer {forged}"}).status_code == 403


def test_the_ui_session_cookie_is_an_airflow_user(api):
    cookie = {"Cookie": f"_token={api.tokens['viewer']}"}
    answer = api.client.get("/api/investor/metrics", headers=cookie)
    assert answer.status_code == 200, answer.text
    assert answer.json()["metrics"]["period"]["end"] == iso(LATEST_END)


def test_reading_needs_read_access_to_the_dag(api):
    for path in ("/api/investor/metrics", "/api/investor/alerts", "/api/investor/metrics?history=2"):
        assert api.client.get(path, headers=bearer(api, "viewer")).status_code == 200
        assert_error(api.client.get(path, headers=bearer(api, "outsider")), 403, "investor_metrics", "read")
    page = api.client.get("/api/investor/page", headers=bearer(api, "outsider"))
    assert page.status_code == 403 and page.headers["content-type"].startswith("text/html")


def test_the_access_check_is_the_same_when_it_runs_in_the_thread_pool(api, monkeypatch):
    """With an auth manager that may block (anything but SimpleAuthManager) the check runs in the
    thread pool: same answers."""
    from include.investor_metrics.api import app as investor_api

    assert investor_api._decides_in_memory()  # the test session's SimpleAuthManager: inline
    monkeypatch.setattr(investor_api, "_decides_in_memory", lambda: False)
    assert api.client.get("/api/investor/metrics", headers=bearer(api, "viewer")).status_code == 200
    assert_error(api.client.get("/api/investor/metrics", headers=bearer(api, "outsider")), 403, "read")
    assert_error(api.client.post("/api/investor/metrics/collect", headers=bearer(api, "viewer")), 403, "trigger")
    assert_error(api.client.get("/api/investor/metrics"), 401, "Not authenticated")


def test_collecting_needs_permission_to_trigger_the_dag(api):
    for user in ("viewer", "outsider"):
        assert_error(api.client.post("/api/investor/metrics/collect", headers=bearer(api, user)), 403,
                     "investor_metrics", "trigger")
    runs = api.client.get("/api/v2/dags/investor_metrics/dagRuns?limit=100", headers=bearer(api)).json()
    assert not [r for r in runs["dag_runs"] if r.get("triggering_user_name") in ("viewer", "outsider")]


# --------------------------------------------------------------------------- GET /metrics
def _dumped(value) -> str:
    return json.dumps(value)  # key order included


def test_latest_metrics_are_the_latest_snapshot_exactly(api):
    answer = api.client.get("/api/investor/metrics", headers=bearer(api))
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/json"
    body = answer.json()
    assert list(body) == ["success", "metrics"] and body["success"] is True
    expected = fixture_snapshots()[11]  # the weekly run ending 2026-11-22 (later than the on-demand one)
    assert body["metrics"] == expected
    assert _dumped(body["metrics"]) == _dumped(expected), "the key order of SPEC section 7 is kept"


@pytest.mark.parametrize("period_end", ["2026-11-15T09:00:00Z", "2026-11-15T10:00:00+01:00",
                                        "2026-11-15T09:00:00.000+00:00"])
def test_metrics_of_one_archived_period(api, period_end):
    answer = api.client.get("/api/investor/metrics", params={"period_end": period_end}, headers=bearer(api))
    assert answer.status_code == 200, answer.text
    assert _dumped(answer.json()["metrics"]) == _dumped(fixture_snapshots()[10])


def test_the_stored_snapshot_text_is_the_body(api):
    """The snapshot goes out as the text the store keeps (what ``store.publish`` wrote), not
    parsed and serialised again."""
    expected = fixture_snapshots()[11]
    identity = api.client.get("/api/investor/metrics", headers={**bearer(api), "Accept-Encoding": "identity"})
    assert identity.status_code == 200, identity.text
    assert identity.content == b'{"success":true,"metrics":' + json.dumps(expected).encode() + b"}"
    assert "content-encoding" not in identity.headers
    assert identity.headers["content-type"] == "application/json"
    assert identity.headers["cache-control"] == "no-store"
    history = api.client.get("/api/investor/metrics", params={"history": 2},
                             headers={**bearer(api), "Accept-Encoding": "identity"})
    assert history.content == (b'{"success":true,"history":[' + json.dumps(expected).encode() + b","
                               + json.dumps(fixture_snapshots()[10]).encode() + b"]}")


def test_a_client_that_accepts_gzip_gets_the_same_body_compressed(api, monkeypatch):
    from include.investor_metrics.api import app as investor_api

    plain = api.client.get("/api/investor/metrics", headers={**bearer(api), "Accept-Encoding": "identity"})
    for _ in range(2):  # the second answer comes from the compressed-body cache
        answer = api.client.get("/api/investor/metrics", headers={**bearer(api), "Accept-Encoding": "gzip"})
        assert answer.status_code == 200
        assert answer.headers["content-encoding"] == "gzip" and "Accept-Encoding" in answer.headers["vary"]
        assert answer.content == plain.content  # httpx decodes it
        assert int(answer.headers["content-length"]) < len(plain.content)
    # Longer bodies are left to Airflow's own GZipMiddleware: compressed all the same.
    monkeypatch.setattr(investor_api, "GZIP_CACHE_MAX_BYTES", 2048)
    long = api.client.get("/api/investor/metrics", params={"history": 520},
                          headers={**bearer(api), "Accept-Encoding": "gzip"})
    assert long.headers["content-encoding"] == "gzip" and len(long.json()["history"]) == 12
    assert investor_api._gzipped.cache_info().currsize >= 1


def test_a_new_or_rerun_snapshot_is_served_at_once(api, store_elsewhere, fresh_database):
    """Nothing is cached between requests but compressed copies keyed by the body itself: a
    published or replaced snapshot is the next answer."""
    conn = connect(fresh_database)
    apply_metrics_schema(conn)

    def publish(snapshot: dict) -> None:
        end = datetime.fromisoformat(snapshot["period"]["end"].replace("Z", "+00:00"))
        store.publish(conn, snapshot, period_start=end - timedelta(days=7), period_end=end, run_id="t",
                      write_latest=lambda latest: None)

    def latest(encoding: str) -> dict:
        answer = api.client.get("/api/investor/metrics", headers={**bearer(api), "Accept-Encoding": encoding})
        assert answer.status_code == 200, answer.text
        return answer.json()["metrics"]

    try:
        store_elsewhere(db_env(fresh_database))
        older, newer = make_snapshot(WEEK_ENDS[-2], 10, "weekly"), make_snapshot(LATEST_END, 11, "weekly")
        publish(older)
        assert latest("gzip") == older and latest("identity") == older
        publish(newer)
        assert latest("gzip") == newer and latest("identity") == newer
        rerun = make_snapshot(LATEST_END, 11, "weekly")
        rerun["financial"]["mrr"] = 12345.67
        publish(rerun)  # the same period again: the row is replaced
        assert latest("gzip") == rerun and latest("identity") == rerun
    finally:
        conn.close()


def test_metrics_of_an_on_demand_period(api):
    answer = api.client.get("/api/investor/metrics", params={"period_end": iso(ON_DEMAND_END)}, headers=bearer(api))
    assert answer.json()["metrics"]["period"]["type"] == "on_demand"
    assert answer.json()["metrics"]["financial"]["mrr"] == 40500.5


def test_metrics_of_a_period_that_was_never_reported_is_404(api):
    answer = api.client.get("/api/investor/metrics", params={"period_end": "2026-11-16T09:00:00Z"},
                            headers=bearer(api))
    assert_error(answer, 404, "2026-11-16T09:00:00Z")


@pytest.mark.parametrize("bad", ["last sunday", "2026-11-22", "2026-11-22T09:00:00", "2026-13-01T00:00:00Z", ""])
def test_a_malformed_period_end_is_422_naming_it_and_the_format(api, bad):
    answer = api.client.get("/api/investor/metrics", params={"period_end": bad}, headers=bearer(api))
    assert_error(answer, 422, "period_end", "2026-11-22T09:00:00Z")


def test_history_lists_the_weekly_series_newest_first(api):
    answer = api.client.get("/api/investor/metrics", params={"history": 3}, headers=bearer(api))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert list(body) == ["success", "history"]
    ends = [s["period"]["end"] for s in body["history"]]
    assert ends == [iso(LATEST_END), iso(WEEK_ENDS[-2]), iso(WEEK_ENDS[-3])], "no on-demand report"
    assert _dumped(body["history"][0]) == _dumped(fixture_snapshots()[11])
    weekly = api.client.get("/api/investor/metrics", params={"history": 3, "type": "weekly"}, headers=bearer(api))
    assert weekly.json() == body


def test_history_of_on_demand_reports(api):
    answer = api.client.get("/api/investor/metrics", params={"history": 5, "type": "on_demand"},
                            headers=bearer(api))
    assert answer.status_code == 200, answer.text
    assert [s["period"]["type"] for s in answer.json()["history"]] == ["on_demand"]
    assert _dumped(answer.json()["history"][0]) == _dumped(fixture_snapshots()[12])
    latest = api.client.get("/api/investor/metrics", params={"type": "on_demand"}, headers=bearer(api))
    assert latest.json()["metrics"]["period"]["end"] == iso(ON_DEMAND_END)
    before = api.client.get("/api/investor/metrics", params={"history": 5, "type": "on_demand",
                                                             "period_end": iso(WEEK_ENDS[-2])}, headers=bearer(api))
    assert_error(before, 404, "on-demand", iso(WEEK_ENDS[-2]))
    assert_error(api.client.get("/api/investor/metrics", params={"type": "backfill"}, headers=bearer(api)),
                 422, "type")


def test_history_of_more_weeks_than_stored_returns_all_of_them(api):
    answer = api.client.get("/api/investor/metrics", params={"history": 520}, headers=bearer(api))
    ends = [s["period"]["end"] for s in answer.json()["history"]]
    assert len(ends) == 12 and ends == sorted(ends, reverse=True)
    assert iso(ON_DEMAND_END) not in ends


def test_history_up_to_a_period_end(api):
    answer = api.client.get("/api/investor/metrics", params={"history": 2, "period_end": iso(WEEK_ENDS[3])},
                            headers=bearer(api))
    assert [s["period"]["end"] for s in answer.json()["history"]] == [iso(WEEK_ENDS[3]), iso(WEEK_ENDS[2])]
    before_any = api.client.get("/api/investor/metrics", params={"history": 2, "period_end": "2020-01-05T00:00:00Z"},
                                headers=bearer(api))
    assert_error(before_any, 404, "2020-01-05T00:00:00Z")


@pytest.mark.parametrize("bad", ["0", "521", "-1", "ten", "2.5"])
def test_history_out_of_range_is_422_naming_it(api, bad):
    assert_error(api.client.get("/api/investor/metrics", params={"history": bad}, headers=bearer(api)), 422,
                 "history")


# --------------------------------------------------------------------------- GET /alerts
def test_alerts_newest_first_as_stored(api):
    answer = api.client.get("/api/investor/alerts", headers=bearer(api))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert list(body) == ["success", "alerts"] and body["success"] is True
    assert body["alerts"] == stored_alerts(api.db)
    assert [a["rule"] for a in body["alerts"]] == [
        "critical_system_failure", "uptime_below_target", "ai_accuracy_below_target",
        "mrr_growth_below_target", "services_degraded", "churn_spike"]
    assert body["alerts"][2]["title"] == XSS_TITLE  # data is returned as data (the page escapes it)
    assert list(body["alerts"][0])[:12] == list(evaluate.ALERT_FIELDS)


@pytest.mark.parametrize(("params", "expected"), [
    ({"severity": "high"}, {"high"}),
    ({"severity": "critical,high"}, {"critical", "high"}),
    ({"severity": ["critical", "low"]}, {"critical", "low"}),
    ({"severity": ["medium", "high,low,high"]}, {"medium", "high", "low"}),
])
def test_alerts_of_some_severities(api, params, expected):
    answer = api.client.get("/api/investor/alerts", params=params, headers=bearer(api))
    assert answer.status_code == 200, answer.text
    got = answer.json()["alerts"]
    assert got == [a for a in stored_alerts(api.db) if a["severity"] in expected]
    assert {a["severity"] for a in got} == expected


@pytest.mark.parametrize("bad", ["urgent", "high,", "critical,info", "", "Medium", "high, low", "hígh" * 500])
def test_an_unknown_severity_is_422_naming_it(api, bad):
    assert_error(api.client.get("/api/investor/alerts", params={"severity": bad}, headers=bearer(api)), 422,
                 "severity", "critical, high, medium, low")


def test_alerts_since(api):
    since = iso(WEEK_ENDS[-2])
    answer = api.client.get("/api/investor/alerts", params={"since": since}, headers=bearer(api))
    got = answer.json()["alerts"]
    assert got == stored_alerts(api.db, since=since)
    assert {a["period_end"] for a in got} == {iso(LATEST_END), iso(WEEK_ENDS[-2])} and len(got) == 4
    local = api.client.get("/api/investor/alerts", params={"since": "2026-11-15T10:00:00+01:00"},
                           headers=bearer(api))
    assert local.json()["alerts"] == got
    assert_error(api.client.get("/api/investor/alerts", params={"since": "yesterday"}, headers=bearer(api)),
                 422, "since", "ISO 8601")


def test_alerts_limit(api):
    answer = api.client.get("/api/investor/alerts", params={"limit": 2, "severity": "high,medium,critical"},
                            headers=bearer(api))
    assert [a["rule"] for a in answer.json()["alerts"]] == ["critical_system_failure", "uptime_below_target"]
    assert len(api.client.get("/api/investor/alerts", params={"limit": 1000}, headers=bearer(api)).json()["alerts"]) == 6
    for bad in ("0", "1001", "many"):
        assert_error(api.client.get("/api/investor/alerts", params={"limit": bad}, headers=bearer(api)), 422, "limit")


# --------------------------------------------------------------------------- POST /metrics/collect
def _run(api, run_id: str) -> dict:
    answer = api.client.get(f"/api/v2/dags/investor_metrics/dagRuns/{run_id}", headers=bearer(api))
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_collect_queues_a_real_manual_run(api):
    created = []
    try:
        answer = api.client.post("/api/investor/metrics/collect", headers=bearer(api))
        assert answer.status_code == 202, answer.text
        body = answer.json()
        assert body["success"] is True and body["state"] == "queued" and body["dag_id"] == "investor_metrics"
        created.append(body["dag_run_id"])
        run = _run(api, body["dag_run_id"])  # seen through Airflow's own public API
        assert run["state"] == "queued" and run["run_type"] == "manual"
        assert run["conf"] == {"send_email": False}
        assert run["triggering_user_name"] == "admin" and run["triggered_by"] == "rest_api"

        answer = api.client.post("/api/investor/metrics/collect", headers=bearer(api),
                                 json={"period_end": "2026-11-19T13:00:00+01:00", "send_email": True})
        assert answer.status_code == 202, answer.text
        created.append(answer.json()["dag_run_id"])
        run = _run(api, answer.json()["dag_run_id"])
        assert run["state"] == "queued"
        assert run["conf"] == {"send_email": True, "period_end": "2026-11-19T12:00:00Z"}

        # A run asked for from the page inside the UI is recorded as triggered from the UI.
        answer = api.client.post("/api/investor/metrics/collect", json={},
                                 headers={"Cookie": f"_token={api.tokens['admin']}",
                                          "Referer": "http://testserver/plugin/investor-metrics"})
        assert answer.status_code == 202, answer.text
        created.append(answer.json()["dag_run_id"])
        assert _run(api, answer.json()["dag_run_id"])["triggered_by"] == "ui"
    finally:
        for run_id in created:  # leave the session's metadata database as it was
            api.client.delete(f"/api/v2/dags/investor_metrics/dagRuns/{run_id}", headers=bearer(api))


@pytest.mark.parametrize(("body", "words"), [
    ({"period_end": "last sunday"}, ["period_end", "2026-11-22T09:00:00Z"]),
    ({"period_end": "2026-11-22T09:00:00"}, ["period_end", "UTC offset"]),
    ({"period_end": "2999-01-01T00:00:00Z"}, ["period_end", "future"]),
    ({"period_end": 20261122}, ["period_end"]),
    ({"send_email": "yes"}, ["send_email", "boolean"]),
    ({"sendEmail": True}, ["sendEmail", "not permitted"]),
    (["period_end"], ["body"]),
])
def test_collect_refuses_bad_parameters_with_422(api, body, words):
    before = api.client.get("/api/v2/dags/investor_metrics/dagRuns?limit=1", headers=bearer(api)).json()
    answer = api.client.post("/api/investor/metrics/collect", json=body, headers=bearer(api))
    assert_error(answer, 422, *words)
    after = api.client.get("/api/v2/dags/investor_metrics/dagRuns?limit=1", headers=bearer(api)).json()
    assert after["total_entries"] == before["total_entries"], "a refused request created no run"


def test_collect_refuses_a_body_that_is_not_json(api):
    answer = api.client.post("/api/investor/metrics/collect", content=b"period_end=now",
                             headers={**bearer(api), "Content-Type": "application/json"})
    assert_error(answer, 422, "body")


# --------------------------------------------------------------------------- bad parameters (issue 13: 10)
@pytest.mark.parametrize(("path", "params", "name"), [
    ("/api/investor/alerts", {"since": "9999-12-31T23:59:59-23:59"}, "since"),
    ("/api/investor/metrics", {"period_end": "0001-01-01T00:00:00+23:59"}, "period_end"),
    ("/api/investor/metrics", {"period_end": "0000-01-01T00:00:00Z"}, "period_end"),
    ("/api/investor/metrics", {"period_end": "9999-12-31T23:00:00-05:00", "history": 3}, "period_end"),
    ("/api/investor/metrics", {"period_end": "２０２６-11-22T09:00:00Z"}, "period_end"),
    ("/api/investor/metrics", {"period_end": "\u0000\ud7ff\ufffd" * 50}, "period_end"),
    ("/api/investor/alerts", {"since": "🙂" * 3000}, "since"),
    ("/api/investor/metrics", {"history": "9" * 400}, "history"),
    ("/api/investor/metrics", {"history": "1e3"}, "history"),
    ("/api/investor/alerts", {"limit": str(2**64)}, "limit"),
    ("/api/investor/alerts", {"limit": "-" + "9" * 50}, "limit"),
    ("/api/investor/alerts", {"severity": "crítical"}, "severity"),
    ("/api/investor/metrics", {"type": "ön_demand"}, "type"),
])
def test_bad_parameters_are_422_naming_them_never_500(api, path, params, name):
    error = assert_error(api.client.get(path, params=params, headers=bearer(api)), 422, name)
    assert len(error) < 1000, "the message does not echo a huge value"


@pytest.mark.parametrize(("period_end", "words"), [
    ("9999-12-31T23:59:59-23:59", ["period_end", "1970–9999"]),
    ("0001-01-01T00:00:00+23:59", ["period_end", "1970–9999"]),
    ("🙂" * 3000, ["period_end", "ISO 8601"]),
])
def test_collect_refuses_out_of_range_or_garbage_instants_with_422(api, period_end, words):
    before = api.client.get("/api/v2/dags/investor_metrics/dagRuns?limit=1", headers=bearer(api)).json()
    assert_error(api.client.post("/api/investor/metrics/collect", json={"period_end": period_end},
                                 headers=bearer(api)), 422, *words)
    after = api.client.get("/api/v2/dags/investor_metrics/dagRuns?limit=1", headers=bearer(api)).json()
    assert after["total_entries"] == before["total_entries"]


# --------------------------------------------------------------------------- "collect now" (issue 13: 3)
def test_a_collect_now_report_is_found_by_its_own_period_end(api, store_elsewhere, fresh_database):
    """A manual run without period_end (the page's button, the UI trigger): its period, decided
    by the pipeline from a trigger time with microseconds, is stored and found again by the
    snapshot's own ``period.end``; its alerts are found by the e-mail task's query."""
    from include.investor_metrics.weekly import tasks as pipeline

    run_after = datetime(2026, 11, 26, 8, 15, 42, 987654, tzinfo=UTC)
    context = {"dag_run": SimpleNamespace(run_type="manual", data_interval_end=run_after, run_after=run_after,
                                          run_id="manual__collect"),
               "params": {"period_end": None, "send_email": False}}
    period = pipeline.run_period(context)
    snapshot = make_snapshot(period.end, 11, "on_demand")
    snapshot["period"] = period.as_dict()
    fired = [_alert("uptime_below_target", "high", "system", period.end, "Uptime 98.7% is below 99.5%", 98.7, 99.5)]
    conn = connect(fresh_database)
    try:
        apply_metrics_schema(conn)
        store.publish(conn, snapshot, period_start=period.start, period_end=period.end, run_id="manual__collect")
        alert_store.upsert_alerts(conn, fired, run_id="manual__collect", period_end=period.end, series="on_demand")
        assert [a["rule"] for a in alert_store.alerts_for_period(conn, period.end, series="on_demand")] == [
            "uptime_below_target"], "send_alert_notifications would find the alert"
    finally:
        conn.close()
    store_elsewhere(db_env(fresh_database))
    answer = api.client.get("/api/investor/metrics", params={"period_end": snapshot["period"]["end"]},
                            headers=bearer(api))
    assert answer.status_code == 200, answer.text
    assert answer.json()["metrics"] == snapshot


# --------------------------------------------------------------------------- CSRF (issue 13: 10)
def _run_count(api) -> int:
    return api.client.get("/api/v2/dags/investor_metrics/dagRuns?limit=1", headers=bearer(api)).json()["total_entries"]


@pytest.mark.parametrize("headers", [
    {"Content-Type": "application/x-www-form-urlencoded", "Origin": "https://evil.example"},
    {"Content-Type": "application/x-www-form-urlencoded"},
    {"Content-Type": "text/plain", "Sec-Fetch-Site": "cross-site"},
    {"Content-Type": "application/json", "Origin": "https://evil.example"},
    {"Content-Type": "application/json", "Origin": "http://testserver.evil.example"},
    {"Content-Type": "application/json", "Origin": "null"},
    {"Content-Type": "application/json", "Sec-Fetch-Site": "same-site"},
    {"Content-Type": "application/json", "Origin": "http://testserver", "Sec-Fetch-Site": "cross-site"},
])
def test_a_cookie_authenticated_collect_must_be_same_origin_json(api, headers):
    """What a page of another site can make a browser send with the session cookie is refused,
    and no run is created."""
    before = _run_count(api)
    body = b"" if "json" not in headers["Content-Type"] else b"{}"
    answer = api.client.post("/api/investor/metrics/collect", content=body,
                             headers={"Cookie": f"_token={api.tokens['admin']}", **headers})
    assert_error(answer, 403, "CSRF")
    assert _run_count(api) == before


def test_a_same_origin_json_collect_with_the_cookie_is_accepted(api):
    answer = api.client.post("/api/investor/metrics/collect", json={"send_email": False},
                             headers={"Cookie": f"_token={api.tokens['admin']}", "Origin": "http://testserver",
                                      "Sec-Fetch-Site": "same-origin"})
    assert answer.status_code == 202, answer.text
    api.client.delete(f"/api/v2/dags/investor_metrics/dagRuns/{answer.json()['dag_run_id']}", headers=bearer(api))
    # A bearer token is not exposed to CSRF: no content type needed.
    answer = api.client.post("/api/investor/metrics/collect", headers={**bearer(api), "Origin": "https://elsewhere"})
    assert answer.status_code == 202, answer.text
    api.client.delete(f"/api/v2/dags/investor_metrics/dagRuns/{answer.json()['dag_run_id']}", headers=bearer(api))


# --------------------------------------------------------------------------- the store unavailable
@pytest.fixture()
def store_elsewhere(api):
    """Point the API at another metrics database (the pool re-reads the settings), then back."""
    from include.investor_metrics.api import app as investor_api

    def point_at(env: dict[str, str]):
        for key, value in env.items():
            api.mp.setenv(key, value)
        investor_api.app.state.store.reset()

    yield point_at
    point_at(db_env(api.db))


def test_database_down_is_503_without_secrets(api, store_elsewhere):
    port = closed_port()
    store_elsewhere({"DB_PORT": str(port), "DB_PASSWORD": "s3cret-do-not-leak"})
    for path in ("/api/investor/metrics", "/api/investor/alerts?severity=high", "/api/investor/metrics?history=4"):
        answer = api.client.get(path, headers=bearer(api))
        error = assert_error(answer, 503, "metrics store", "unavailable")
        assert answer.headers.get("Retry-After")
        for secret in ("s3cret", str(port), api.db.host, api.db.dbname, "postgres", "password"):
            assert secret not in answer.text, secret
        assert error
    store_elsewhere(db_env(api.db))
    assert api.client.get("/api/investor/metrics", headers=bearer(api)).status_code == 200


def test_database_not_configured_is_503_naming_the_variable(api, store_elsewhere):
    store_elsewhere({"DB_HOST": ""})
    assert_error(api.client.get("/api/investor/metrics", headers=bearer(api)), 503, "DB_HOST", "not configured")


def test_an_empty_store_is_404_and_has_no_alerts(api, store_elsewhere, fresh_database):
    store_elsewhere(db_env(fresh_database))  # no investor_metrics schema at all
    assert_error(api.client.get("/api/investor/metrics", headers=bearer(api)), 404, "no snapshot")
    assert_error(api.client.get("/api/investor/metrics?history=5", headers=bearer(api)), 404, "no snapshot")
    assert api.client.get("/api/investor/alerts", headers=bearer(api)).json() == {"success": True, "alerts": []}
    conn = connect(fresh_database)
    apply_metrics_schema(conn)
    conn.close()
    assert_error(api.client.get("/api/investor/metrics", headers=bearer(api)), 404, "investor_metrics DAG")


def test_the_pool_recovers_when_the_database_restarts(api):
    """A pooled connection killed by the server (restart, failover) costs no failed request."""
    assert api.client.get("/api/investor/metrics", headers=bearer(api)).status_code == 200
    admin = connect(api.db)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = %s AND application_name = 'investor-api'", (api.db.dbname,))
        assert cur.rowcount >= 1
    admin.close()
    assert api.client.get("/api/investor/metrics", headers=bearer(api)).status_code == 200


# --------------------------------------------------------------------------- OpenAPI, plugin, page
def test_the_openapi_document_is_served_and_valid(api):
    from fastapi.openapi.models import OpenAPI

    answer = api.client.get("/api/investor/openapi.json", headers=bearer(api, "viewer"))
    assert answer.status_code == 200, answer.text
    doc = answer.json()
    OpenAPI.model_validate(doc)  # FastAPI's model of the OpenAPI 3.1 document
    assert doc["openapi"].startswith("3.1")
    assert doc["servers"] == [{"url": "/api/investor"}]
    assert {"/metrics", "/metrics/collect", "/alerts", "/page"} <= set(doc["paths"])
    for path, operations in doc["paths"].items():
        for method, operation in operations.items():
            assert operation.get("responses"), (method, path)
            assert operation.get("security"), f"{method} {path} documents no authentication"
            if path != "/page":
                assert {"401", "403", "422", "503"} <= set(operation["responses"]), (method, path)
    assert set(doc["paths"]["/metrics"]["get"]["responses"]) >= {"200", "404"}
    assert "202" in doc["paths"]["/metrics/collect"]["post"]["responses"]
    assert doc["paths"]["/metrics/collect"]["post"]["requestBody"]
    params = {p["name"]: p for p in doc["paths"]["/alerts"]["get"]["parameters"]}
    assert params["limit"]["schema"]["maximum"] == 1000 and params["limit"]["schema"]["default"] == 100
    schemes = doc["components"]["securitySchemes"]
    assert any(s.get("type") == "oauth2" for s in schemes.values())
    assert any(s.get("scheme", "").lower() == "bearer" for s in schemes.values())
    # Every $ref resolves.
    text = json.dumps(doc)
    for ref in {part.split('"')[0] for part in text.split('"$ref": "#/components/schemas/')[1:]}:
        assert ref in doc["components"]["schemas"], ref


def test_the_openapi_document_needs_read_access_to_the_dag(api):
    assert_error(api.client.get("/api/investor/openapi.json", headers=bearer(api, "outsider")), 403, "read")
    assert_error(api.client.get("/api/investor/openapi.json"), 401, "Not authenticated")


def test_the_openapi_document_describes_each_parameter_exactly(api):
    from include.investor_metrics.period import INSTANT_PATTERN

    doc = api.client.get("/api/investor/openapi.json", headers=bearer(api)).json()

    def params(path, method="get"):
        return {p["name"]: p["schema"] for p in doc["paths"][path][method].get("parameters", [])}

    metrics, alerts_ = params("/metrics"), params("/alerts")
    for schema in (metrics["period_end"], alerts_["since"]):
        assert (schema["type"], schema["format"], schema["pattern"]) == ("string", "date-time", INSTANT_PATTERN)
        assert "anyOf" not in schema
    assert metrics["type"]["enum"] == ["weekly", "on_demand"]
    assert (metrics["history"]["type"], metrics["history"]["minimum"], metrics["history"]["maximum"]) == (
        "integer", 1, 520)
    assert (alerts_["limit"]["minimum"], alerts_["limit"]["maximum"]) == (1, 1000)
    assert alerts_["severity"]["type"] == "array"
    assert alerts_["severity"]["items"]["pattern"] == "^(?:critical|high|medium|low)(?:,(?:critical|high|medium|low))*$"
    body = doc["components"]["schemas"]["CollectRequest"]
    assert body["additionalProperties"] is False
    instant = next(s for s in body["properties"]["period_end"]["anyOf"] if s.get("type") == "string")
    assert (instant["format"], instant["pattern"]) == ("date-time", INSTANT_PATTERN)
    assert body["properties"]["send_email"]["type"] == "boolean"


def test_the_plugin_is_registered_with_airflow(api):
    plugins = api.client.get("/api/v2/plugins", headers=bearer(api)).json()["plugins"]
    plugin = next(p for p in plugins if p["name"] == "investor_metrics")
    assert plugin["fastapi_apps"][0]["url_prefix"] == "/api/investor"
    view = plugin["external_views"][0]
    assert view["name"] == "Investor metrics" and view["href"] == "/api/investor/page"
    assert view["destination"] == "nav" and view["url_route"] == "investor-metrics"


def test_the_page_is_served_to_a_user_with_a_strict_policy(api):
    page = api.client.get("/api/investor/page", headers={"Cookie": f"_token={api.tokens['viewer']}"})
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    csp = page.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "script-src 'sha256-" in csp and "frame-ancestors 'self'" in csp
    assert "unsafe-inline" not in csp
    assert "Collect now" in page.text and "http" not in page.text.split("<script>")[1].replace(
        "http://www.w3.org/2000/svg", ""), "the page loads nothing from the network"
    anonymous = api.client.get("/api/investor/page")
    assert anonymous.status_code == 401 and "Sign in to Airflow" in anonymous.text


# --------------------------------------------------------------------------- pure functions
def test_parse_instant():
    assert investor_queries.parse_instant(None, "since") is None
    assert investor_queries.parse_instant("2026-11-22T10:00:00+01:00", "since") == LATEST_END
    assert investor_queries.parse_instant("2026-11-22T09:00:00.000000Z", "since") == LATEST_END
    for bad, words in [("2026-11-22T09:00:00", "no UTC offset"), ("soon", "not an ISO 8601"),
                       (" 2026-11-22T09:00:00Z", "not an ISO 8601"), ("2026-11-22T09:00:00z", "not an ISO 8601"),
                       ("9999-12-31T23:59:59-23:59", "outside the years 1970–9999"),
                       ("0001-01-01T00:00:00+23:59", "outside the years 1970–9999")]:
        with pytest.raises(investor_queries.ParameterError, match=words) as caught:
            investor_queries.parse_instant(bad, "since")
        assert caught.value.parameter == "since" and str(caught.value).startswith("since ")


def test_parse_severities():
    assert investor_queries.parse_severities(None) is None
    assert investor_queries.parse_severities(["high,critical", "high", "low"]) == ("high", "critical", "low")
    for bad, shown in [("high,info", "'info'"), ("high, critical", "' critical'"), ("HIGH", "'HIGH'")]:
        with pytest.raises(investor_queries.ParameterError, match=f"got {shown}"):
            investor_queries.parse_severities([bad])


def test_collect_conf():
    now = datetime(2026, 11, 24, 10, tzinfo=UTC)
    assert investor_queries.collect_conf(None, False, now=now) == {"send_email": False}
    assert investor_queries.collect_conf("2026-11-22T10:00:00.5+01:00", True, now=now) == {
        "send_email": True, "period_end": "2026-11-22T09:00:00.500000Z"}
    assert investor_queries.collect_conf("2026-11-24T10:04:00Z", False, now=now)["period_end"] == "2026-11-24T10:04:00Z"
    with pytest.raises(investor_queries.ParameterError, match="future"):
        investor_queries.collect_conf("2026-11-24T10:06:00Z", False, now=now)


def test_the_store_is_found_like_the_pipeline_finds_it():
    def connection(host, **kw):
        return SimpleNamespace(host=host, port=kw.get("port"), schema=kw.get("schema"), login="u",
                               password="hunter2-secret", extra_dejson=kw.get("extra", {}))

    both = {"investor_metrics_db": connection("metrics", port=6543, schema="m", extra={"sslmode": "require"}),
            "chatterfix_db": connection("source")}
    target = investor_queries.resolve_store_target({}, both.get)
    assert (target.settings.host, target.settings.port, target.settings.dbname) == ("metrics", 6543, "m")
    assert target.options == {"sslmode": "require"} and "investor_metrics_db" in target.source
    source_only = investor_queries.resolve_store_target({}, {"chatterfix_db": connection("source")}.get)
    assert (source_only.settings.host, source_only.settings.port, source_only.settings.dbname) == (
        "source", 5432, "chatterfix_cmms")
    env = investor_queries.resolve_store_target({"DB_HOST": "h", "DB_PORT": "5433"}, {}.get)
    assert (env.settings.host, env.settings.port) == ("h", 5433)
    with pytest.raises(ConfigError, match="DB_HOST"):
        investor_queries.resolve_store_target({}, {}.get)
    assert "hunter2" not in repr(target)


def test_pool_size_setting():
    assert investor_queries.pool_size({}) == investor_queries.DEFAULT_POOL_SIZE
    assert investor_queries.pool_size({"INVESTOR_API_POOL_SIZE": "12"}) == 12
    with pytest.raises(ConfigError, match="INVESTOR_API_POOL_SIZE"):
        investor_queries.pool_size({"INVESTOR_API_POOL_SIZE": "0"})


def test_the_pool_bounds_its_connections(metrics_db):
    """At most ``size`` connections; a waiting request past ``wait`` is a 503-style refusal."""
    import threading

    target = investor_queries.StoreTarget(settings=metrics_db)
    pool = investor_queries.MetricsStore(size=2, wait=0.3, resolve=lambda: target)
    inside, release = threading.Barrier(3), threading.Event()

    def hold(conn):
        inside.wait(timeout=5)
        release.wait(timeout=5)
        return 1

    threads = [threading.Thread(target=pool.run, args=(hold,)) for _ in range(2)]
    for thread in threads:
        thread.start()
    inside.wait(timeout=5)
    with pytest.raises(investor_queries.StoreUnavailable, match="busy"):
        pool.run(lambda conn: 1)
    release.set()
    for thread in threads:
        thread.join()
    assert pool.run(lambda conn: investor_queries.metrics_answer(conn)["metrics"]["period"]["end"]) == iso(LATEST_END)
    pool.reset()


def test_unknown_paths_and_methods_answer_in_the_api_shape(api):
    assert_error(api.client.get("/api/investor/nope", headers=bearer(api)), 404, "Not Found")
    assert_error(api.client.delete("/api/investor/metrics", headers=bearer(api)), 405, "Method Not Allowed")
