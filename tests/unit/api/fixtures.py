"""Shared test data and fixtures of the investor API's tests (imported by path, not a conftest).

``api`` is ``airflow.api_fastapi.app.create_app()`` with the project's plugins (the test session's
AIRFLOW_HOME, its metadata migrated, the DAGs serialized), driven with FastAPI's TestClient.
Users are SimpleAuthManager's (``admin`` admin, ``viewer`` viewer, ``outsider`` a viewer whom the
auth manager refuses the investor_metrics DAG); tokens come from ``POST /auth/token``. The metrics
store (``metrics_db``) is a fresh database of the test PostgreSQL, filled by ``fill_store`` through
``include.investor_metrics.weekly.snapshots.publish`` and
``include.investor_metrics.weekly.alerts.store.upsert_alerts``. ``conftest.py`` of this folder
builds both once for its test files; a test file elsewhere imports the module-scoped ones (and
``store_elsewhere``) from here.
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

from dev.stack.processes import airflow_argv
from include.investor_metrics.db import apply_metrics_schema, connect
from include.investor_metrics.settings import PostgresSettings
from include.investor_metrics.weekly import snapshots as store
from include.investor_metrics.weekly.alerts import store as alert_store
from tests.conftest import PROJECT_ROOT

UTC = timezone.utc
LATEST_END = datetime(2026, 11, 22, 9, tzinfo=UTC)
WEEK_ENDS = [LATEST_END - timedelta(weeks=k) for k in range(11, -1, -1)]  # 12 weeks, oldest first
ON_DEMAND_END = datetime(2026, 11, 19, 12, tzinfo=UTC)
XSS_TITLE = "<img src=x onerror=\"document.title='pwned'\"> & <b>AI accuracy</b> 88.2% is below 90%"
XSS_NAME = "<img src=x onerror=\"document.title='pwned'\"><b>Hooli</b> & Co"
DEPTH_FROM = 2  # the two oldest weeks were published before the depth sections existed (SPEC 4b)
ENTERPRISE = "enterprise, annual"  # a plan name with a comma: a quoted CSV header cell


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
            "total_requests": 15000 + 300 * k, "chat_requests": 12000 + 200 * k,
            "api_requests": 3000 + 100 * k,
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
            "churn_risk": "low", "growth_trajectory": "strong", "churned_customers": 1,
            "logo_churn_rate": 0.79,
            "revenue_churn_rate": 1.15, "churn_rate_28d": 1.6,
            "customer_satisfaction": {"nps": float(30 + k), "responses": 58}, "platform_utilization": 88.2,
            "at_risk_customers": 6, "mrr_at_risk": 1890.0,
        },
        **(depth_sections(end, k) if k >= DEPTH_FROM else {}),
        "data_quality": {"success": True, "warnings": []},
        "alerts": [],
    }


def _plan(mrr: float, active: int, new=0.0, expansion=0.0, contraction=0.0, churned=0.0) -> dict:
    return {"mrr": mrr, "active_customers": active, "new_mrr": new, "reactivation_mrr": 0.0,
            "expansion_mrr": expansion, "contraction_mrr": contraction, "churned_mrr": churned,
            "net_new_mrr": round(new + expansion - contraction - churned, 2),
            "arpa": round(mrr / active, 2) if active else None}


def _months_before(end: datetime, count: int) -> list[datetime]:
    """The ``count`` most recent UTC month starts before ``end``, oldest first."""
    month = datetime(end.year, end.month, 1, tzinfo=UTC)
    found = []
    while len(found) < count:
        if month < end:
            found.append(month)
        month = datetime(month.year - (month.month == 1), (month.month - 2) % 12 + 1, 1, tzinfo=UTC)
    return found[::-1]


def _cohort(start: datetime, end: datetime, index: int) -> dict:
    """A cohort of 8..11 customers losing one member every second month (index 5: no member)."""
    customers = 0 if index == 5 else 8 + index % 4
    as_of, month = [], start
    while True:
        month = datetime(month.year + (month.month == 12), month.month % 12 + 1, 1, tzinfo=UTC)
        if month >= end:
            break
        as_of.append(month)
    as_of.append(end)
    points = []
    for j, instant in enumerate(as_of):
        active = max(customers - (j + 1) // 2, 0)
        points.append({
            "as_of": iso(instant), "active": active, "mrr": 250.0 * active,
            "logo_retention": round(100 * active / customers, 2) if customers else None,
            "mrr_retention": (round(100 * active / customers, 2) if customers else None),
        })
    return {"month": start.strftime("%Y-%m"), "customers": customers, "checkpoints": points}


def depth_sections(end: datetime, k: int) -> dict:
    """SPEC 4b's sections, hand-made: the plans add up to the week's totals (MRR 30,000.25 + 1,000 k,
    100 + 2 k customers, new 1,200, expansion 350, contraction 90, churned 400, net new 1,060); the
    movers are those movements; a "legacy" plan exists in weeks 2 and 3 only."""
    legacy = 500.0 if k in (2, 3) else 0.0
    by_plan = {
        ENTERPRISE: _plan(round(10000.0 + 300 * k, 2), 10, new=300.0, expansion=100.0),
        "professional": _plan(round(14000.25 + 500 * k, 2), 30 + k, new=600.0, expansion=200.0,
                              contraction=50.0, churned=300.0),
        "starter": _plan(round(6000.0 + 200 * k - legacy, 2), 60 + k - (2 if legacy else 0), new=300.0,
                         expansion=50.0, contraction=40.0, churned=100.0),
    }
    if legacy:
        by_plan["legacy"] = _plan(legacy, 2)
    return {
        "retention": {
            "nrr_12m": None if k == DEPTH_FROM else round(104.5 + 0.1 * k, 2),
            "grr_12m": None if k == DEPTH_FROM else 91.2, "nrr_1m": 100.8, "grr_1m": 98.9,
            "logo_retention_12m": None if k == DEPTH_FROM else 84.0,
            "cohorts": [_cohort(start, end, i) for i, start in enumerate(_months_before(end, 12))],
        },
        "segments": {"by_plan": by_plan},
        "movements": {"largest": [
            {"customer_id": 17, "name": "Globex Corporation", "kind": "new", "mrr_start": 0.0,
             "mrr_end": 1200.0, "change": 1200.0},
            {"customer_id": 4, "name": XSS_NAME, "kind": "churned", "mrr_start": 400.0, "mrr_end": 0.0,
             "change": -400.0},
            {"customer_id": 9, "name": "Initech", "kind": "expansion", "mrr_start": 250.0, "mrr_end": 450.0,
             "change": 200.0},
            {"customer_id": 23, "name": "Umbrella", "kind": "expansion", "mrr_start": 100.0,
             "mrr_end": 250.0, "change": 150.0},
            {"customer_id": 31, "name": None, "kind": "contraction", "mrr_start": 300.0, "mrr_end": 210.0,
             "change": -90.0},
        ]},
    }


def fixture_snapshots() -> list[dict]:
    """12 weeks (backfills, the latest weekly) and one on-demand period between the last two."""
    snapshots = [make_snapshot(end, k, "backfill" if k < 11 else "weekly") for k, end in enumerate(WEEK_ENDS)]
    on_demand = make_snapshot(ON_DEMAND_END, 10, "on_demand")
    on_demand["financial"]["mrr"] = 40500.5
    snapshots.append(on_demand)
    return snapshots


def make_alert(rule: str, severity: str, category: str, end: datetime, title: str, value=None,
               threshold=None):
    return {
        "rule": rule, "severity": severity, "category": category, "title": title,
        "message": f"{title}. Details for the week ending {iso(end)}.", "metric": None,
        "value": value, "threshold": threshold, "period_start": iso(end - timedelta(days=7)),
        "period_end": iso(end), "triggered_at": iso(end),
    }


def fixture_alerts() -> list[dict]:
    return [
        make_alert("critical_system_failure", "critical", "system", LATEST_END,
               "Critical: the platform was in a critical state"),
        make_alert("uptime_below_target", "high", "system", LATEST_END,
                   "Uptime 98.7% is below the 99.5% target",
               98.7, 99.5),
        make_alert("ai_accuracy_below_target", "medium", "ai", LATEST_END, XSS_TITLE, 88.2, 90.0),
        make_alert("mrr_growth_below_target", "medium", "financial", WEEK_ENDS[-2],
               "MRR growth 4.3% is below the 5% monthly target", 4.3, 5.0),
        make_alert("services_degraded", "low", "system", WEEK_ENDS[-3], "1 of 5 services not healthy",
                   4.0, 5.0),
        make_alert("churn_spike", "high", "business", WEEK_ENDS[-4], "Churn spike: 5 customers churned",
                   5.0, 2.0),
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


def make_metrics_db(pg_server):
    """The API's metrics store, filled with the fixture snapshots and alerts."""
    settings = create_database(pg_server, "cfx_api")
    fill_store(settings)
    yield settings
    drop_database(pg_server, settings.dbname)


def make_api(metrics_db, tmp_path_factory):
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
            assert done.returncode == 0, (
                f"airflow {' '.join(argv)} failed:\n{done.stdout[-3000:]}{done.stderr[-3000:]}")

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


# Module-scoped for the test files of other folders that import them (the fault suite, the page
# test); tests/unit/api/conftest.py builds them once for the whole folder (the app takes ~10 s).
metrics_db = pytest.fixture(make_metrics_db, scope="module", name="metrics_db")
api = pytest.fixture(make_api, scope="module", name="api")


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
