"""The investor API's 401/403 against the FAB auth manager's roles, on a real ``airflow api-server``.

What docker-compose.yaml runs, minus Docker: the FAB auth manager
(``airflow.providers.fab.auth_manager.fab_auth_manager.FabAuthManager``), Airflow's metadata in a
fresh PostgreSQL database (``airflow db migrate`` creates the FAB tables too), the DAGs serialized
into it (``airflow dags reserialize``, what the DAG processor leaves), the users created by the
compose stack's own script (``docker/create_users.py``, which ``airflow-init`` runs) from the same
variables, and one more user whose role has no DAG access (``airflow roles create`` /
``airflow users create``). The plugin's metrics store is a fresh, empty database
(``AIRFLOW_CONN_INVESTOR_METRICS_DB``). Tokens come from the API server's ``POST /auth/token``.

Expected (SPEC section 11, docs/compose.md "Users and roles"):

=============  ==========================  ===========================  ==================
user           GET metrics / alerts / page  POST metrics/collect         why
=============  ==========================  ===========================  ==================
(no token)     401                         401                          not signed in
viewer         404 JSON / 200 / 200        403                          FAB ``Viewer``
operator       404 JSON / 200 / 200        202 (a queued run)           FAB ``Op``
outsider       403                         403                          a role without DAGs
norole         403                         403                          no role (FAB signs it in)
=============  ==========================  ===========================  ==================

(404: the store holds no snapshot yet, answered as the API's JSON error, not as a refusal.)
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest
from cryptography.fernet import Fernet

from dev.stack.processes import airflow_argv
from include.investor_metrics.db import apply_metrics_schema, connect
from tests.conftest import PROJECT_ROOT, free_port, temporary_database
from tests.integration.test_celery import Processes

pytestmark = [pytest.mark.stack, pytest.mark.timeout(900)]

FAB_AUTH_MANAGER = "airflow.providers.fab.auth_manager.fab_auth_manager.FabAuthManager"
DAG_ID = "investor_metrics"
PASSWORDS = {name: secrets.token_urlsafe(12)
             for name in ("admin", "viewer", "operator", "outsider", "norole")}
# the variables of .env that docker/create_users.py reads (docs/compose.md)
USER_VARIABLES = {
    "_AIRFLOW_WWW_USER_USERNAME": "admin", "_AIRFLOW_WWW_USER_PASSWORD": PASSWORDS["admin"],
    "_AIRFLOW_VIEWER_USERNAME": "viewer", "_AIRFLOW_VIEWER_PASSWORD": PASSWORDS["viewer"],
    "_AIRFLOW_OPERATOR_USERNAME": "operator", "_AIRFLOW_OPERATOR_PASSWORD": PASSWORDS["operator"],
}
NO_DAGS_ROLE = "NoDagAccess"
STARTUP_TIMEOUT = 240


def _run(argv: list[str], env: dict[str, str], timeout: float = 300, *, stdout_only: bool = False) -> str:
    done = subprocess.run(argv, env=env, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{' '.join(argv[-3:])} failed:\n{done.stdout[-3000:]}{done.stderr[-3000:]}"
    return done.stdout if stdout_only else done.stdout + done.stderr


def _request(method: str, url: str, *, token: str | None = None, body: dict | None = None):
    """(status, content type, body text) of one request; errors are answers too."""
    headers = {"Accept": "application/json"}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=60) as resp:  # noqa: S310 - 127.0.0.1
            return resp.status, resp.headers.get("content-type", ""), resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers.get("content-type", ""), exc.read().decode()


@pytest.fixture(scope="module")
def fab_server(pg_server, tmp_path_factory):
    """A real API server with the FAB auth manager; yields (base URL, tokens by user, env)."""
    root = tmp_path_factory.mktemp("fab")
    home = root / "airflow"
    home.mkdir()
    port = free_port()
    with temporary_database(pg_server, "cfx_fab_af") as metadata, \
            temporary_database(pg_server, "cfx_fab_store") as store:
        conn = connect(store)
        apply_metrics_schema(conn)  # an empty store: the pipeline has not run yet
        conn.close()
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("DB_", "AIRFLOW", "SMTP_", "INVESTOR_", "_AIRFLOW"))}
        env.update({
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__AUTH_MANAGER": FAB_AUTH_MANAGER,
            "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT_ROOT / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(PROJECT_ROOT / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode(),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": metadata.sqlalchemy_url(),
            "AIRFLOW__API__PORT": str(port),
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(32),
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(48),
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
            "AIRFLOW_CONN_INVESTOR_METRICS_DB": store.sqlalchemy_url().replace("+psycopg2", ""),
            "PYTHONPATH": os.pathsep.join(p for p in [str(PROJECT_ROOT), os.environ.get("PYTHONPATH", "")]
                                          if p),
            "GX_ANALYTICS_ENABLED": "false",
            "NO_PROXY": "*", "no_proxy": "*",
        })
        _run(airflow_argv("db", "migrate"), env)
        _run(airflow_argv("dags", "reserialize"), env)
        created = _run([sys.executable, str(PROJECT_ROOT / "docker" / "create_users.py")],
                       {**env, **USER_VARIABLES})
        for secret in PASSWORDS.values():
            assert secret not in created  # never a password in the log
        _run(airflow_argv("roles", "create", NO_DAGS_ROLE), env)
        for user, role in (("outsider", NO_DAGS_ROLE), ("norole", "Viewer")):
            _run(airflow_argv("users", "create", "--username", user, "--password", PASSWORDS[user],
                              "--firstname", user, "--lastname", "(test)", "--email", f"{user}@example.com",
                              "--role", role), env)
        # a user whose only role was taken away: no role at all
        _run(airflow_argv("users", "remove-role", "--username", "norole", "--role", "Viewer"), env)
        processes = Processes(root / "logs", secrets.token_hex(6))
        base = f"http://127.0.0.1:{port}"
        try:
            processes.start("api-server", airflow_argv("api-server"), env)
            deadline = time.monotonic() + STARTUP_TIMEOUT
            while True:
                processes.check_alive()
                try:
                    if _request("GET", f"{base}/api/v2/monitor/health")[0] == 200:
                        break
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    raise AssertionError("the API server did not answer\n" + processes.logs())
                time.sleep(1)
            tokens = {}
            for user, password in PASSWORDS.items():
                status, _type, text = _request("POST", f"{base}/auth/token",
                                               body={"username": user, "password": password})
                assert status == 201, f"{user}: {status} {text}"
                tokens[user] = json.loads(text)["access_token"]
            yield base, tokens, env, created
        finally:
            processes.stop_all()
            assert not processes.leftovers()


def test_the_compose_users_script_creates_the_users_with_their_roles(fab_server):
    _base, _tokens, env, created = fab_server
    assert "'admin': created with role 'Admin'" in created
    assert "'viewer': created with role 'Viewer'" in created
    assert "'operator': created with role 'Op'" in created
    listed = _run(airflow_argv("users", "list", "--output", "json"), env, stdout_only=True)
    # Airflow's warnings share stdout: the JSON is the line that starts with "["
    users = json.loads(next(line for line in listed.splitlines() if line.startswith("[")))
    roles = {u["username"]: u["roles"] for u in users}
    assert {name: roles.get(name) for name in PASSWORDS} == {
        "admin": ["Admin"], "viewer": ["Viewer"], "operator": ["Op"], "outsider": [NO_DAGS_ROLE],
        "norole": []}, roles
    # a second run (the next `docker compose up`) keeps them and fails on nothing
    again = _run([sys.executable, str(PROJECT_ROOT / "docker" / "create_users.py")],
                 {**env, **USER_VARIABLES})
    assert again.count("exists, kept") == 3, again


def test_a_wrong_password_gets_no_token(fab_server):
    base, *_ = fab_server
    status, _type, _text = _request("POST", f"{base}/auth/token",
                                    body={"username": "viewer", "password": "not-" + PASSWORDS["viewer"]})
    assert status == 401


READS = ("/api/investor/metrics", "/api/investor/alerts", "/api/investor/page", "/api/investor/openapi.json")
COLLECT = "/api/investor/metrics/collect"


@pytest.mark.parametrize("path", [*READS, COLLECT])
def test_no_token_is_401(fab_server, path):
    base, *_ = fab_server
    method = "POST" if path == COLLECT else "GET"
    status, _type, text = _request(method, base + path, body={} if method == "POST" else None)
    assert status == 401, text


@pytest.mark.parametrize("user", ["viewer", "operator", "admin"])
def test_readers_read_the_api_and_the_page(fab_server, user):
    base, tokens, *_ = fab_server
    status, ctype, text = _request("GET", f"{base}/api/investor/metrics", token=tokens[user])
    # the store is empty: the API's own JSON 404, not a refusal
    assert status == 404 and ctype.startswith("application/json"), (status, text)
    assert json.loads(text)["success"] is False
    status, ctype, text = _request("GET", f"{base}/api/investor/alerts", token=tokens[user])
    assert status == 200, text
    assert json.loads(text) == {"success": True, "alerts": []}
    status, ctype, text = _request("GET", f"{base}/api/investor/page", token=tokens[user])
    assert status == 200 and ctype.startswith("text/html"), (status, text[:300])
    status, ctype, _text = _request("GET", f"{base}/api/investor/openapi.json", token=tokens[user])
    assert status == 200


def test_the_viewer_cannot_collect(fab_server):
    base, tokens, *_ = fab_server
    status, _type, text = _request("POST", base + COLLECT, token=tokens["viewer"], body={})
    assert status == 403, text
    assert "trigger" in text


@pytest.mark.parametrize("user", ["outsider", "norole"])
@pytest.mark.parametrize("path", [*READS, COLLECT])
def test_without_dag_access_everything_is_403(fab_server, user, path):
    base, tokens, *_ = fab_server
    method = "POST" if path == COLLECT else "GET"
    status, _type, text = _request(method, base + path, token=tokens[user],
                                   body={} if method == "POST" else None)
    assert status == 403, (status, text[:300])


def test_the_operator_collects_a_queued_run(fab_server):
    base, tokens, *_ = fab_server
    status, _type, text = _request("POST", base + COLLECT, token=tokens["operator"],
                                   body={"send_email": False})
    assert status == 202, text
    answer = json.loads(text)
    assert answer["success"] is True and answer["state"] == "queued"
    # the run exists in Airflow's metadata, triggered by the operator
    status, _type, text = _request("GET", f"{base}/api/v2/dags/{DAG_ID}/dagRuns/{answer['dag_run_id']}",
                                   token=tokens["admin"])
    assert status == 200, text
    run = json.loads(text)
    assert run["run_type"] == "manual" and run["triggering_user_name"] == "operator"
