"""The investor API assembled (``include/investor_metrics/api/app.py``): its OpenAPI document, the
plugin that mounts it, the page (``page.py``), and the API's error shape for unknown paths."""

from __future__ import annotations

import json

import pytest

from tests.unit.api.fixtures import assert_error, bearer

# The fixtures this module uses (bound by assignment, so they are no redefined imports).

# The TestClient of this FastAPI warns that Starlette prefers httpx2: not our concern here.
pytestmark = pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")


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
        assert (schema["type"], schema["format"], schema["pattern"]) == (
            "string", "date-time", INSTANT_PATTERN)
        assert "anyOf" not in schema
    assert metrics["type"]["enum"] == ["weekly", "on_demand"]
    assert (metrics["history"]["type"], metrics["history"]["minimum"], metrics["history"]["maximum"]) == (
        "integer", 1, 520)
    assert (alerts_["limit"]["minimum"], alerts_["limit"]["maximum"]) == (1, 1000)
    assert alerts_["severity"]["type"] == "array"
    assert alerts_["severity"]["items"]["pattern"] == (
        "^(?:critical|high|medium|low)(?:,(?:critical|high|medium|low))*$")
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


def test_unknown_paths_and_methods_answer_in_the_api_shape(api):
    assert_error(api.client.get("/api/investor/nope", headers=bearer(api)), 404, "Not Found")
    assert_error(api.client.delete("/api/investor/metrics", headers=bearer(api)), 405, "Method Not Allowed")
