"""Access to the investor API (``include/investor_metrics/api/auth.py``): Airflow's user (bearer
token or the UI's session cookie), per-DAG read and trigger rights, CSRF for the session cookie."""

from __future__ import annotations

import pytest

from tests.unit.api.fixtures import LATEST_END, assert_error, bearer, iso

# The fixtures this module uses (bound by assignment, so they are no redefined imports).

# The TestClient of this FastAPI warns that Starlette prefers httpx2: not our concern here.
pytestmark = pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")


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
    from include.investor_metrics.api import auth

    assert auth._decides_in_memory()  # the test session's SimpleAuthManager: inline
    monkeypatch.setattr(auth, "_decides_in_memory", lambda: False)
    assert api.client.get("/api/investor/metrics", headers=bearer(api, "viewer")).status_code == 200
    assert_error(api.client.get("/api/investor/metrics", headers=bearer(api, "outsider")), 403, "read")
    assert_error(api.client.post("/api/investor/metrics/collect", headers=bearer(api, "viewer")), 403,
                 "trigger")
    assert_error(api.client.get("/api/investor/metrics"), 401, "Not authenticated")


def test_collecting_needs_permission_to_trigger_the_dag(api):
    for user in ("viewer", "outsider"):
        assert_error(api.client.post("/api/investor/metrics/collect", headers=bearer(api, user)), 403,
                     "investor_metrics", "trigger")
    runs = api.client.get("/api/v2/dags/investor_metrics/dagRuns?limit=100", headers=bearer(api)).json()
    assert not [r for r in runs["dag_runs"] if r.get("triggering_user_name") in ("viewer", "outsider")]


# --------------------------------------------------------------------------- CSRF (issue 13: 10)
def _run_count(api) -> int:
    runs = api.client.get("/api/v2/dags/investor_metrics/dagRuns?limit=1", headers=bearer(api))
    return runs.json()["total_entries"]


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
    api.client.delete(f"/api/v2/dags/investor_metrics/dagRuns/{answer.json()['dag_run_id']}",
                      headers=bearer(api))
    # A bearer token is not exposed to CSRF: no content type needed.
    answer = api.client.post("/api/investor/metrics/collect", headers={**bearer(api), "Origin": "https://elsewhere"})
    assert answer.status_code == 202, answer.text
    api.client.delete(f"/api/v2/dags/investor_metrics/dagRuns/{answer.json()['dag_run_id']}",
                      headers=bearer(api))
