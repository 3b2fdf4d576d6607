"""The history as CSV (SPEC section 11): ``GET /metrics?format=csv`` over Airflow's app and the
fixture store, and the pure functions of ``include/investor_metrics/api/csv_export.py``."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest

from include.investor_metrics.api import csv_export
from include.investor_metrics.db import apply_metrics_schema, connect
from include.investor_metrics.weekly import snapshots as store
from tests.unit.api.fixtures import (
    ENTERPRISE,
    LATEST_END,
    WEEK_ENDS,
    assert_error,
    bearer,
    db_env,
    iso,
    make_snapshot,
)

pytestmark = pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")

METRICS = "/api/investor/metrics"
PLAN_FIGURES = ["mrr", "active_customers", "new_mrr", "reactivation_mrr", "expansion_mrr", "contraction_mrr",
                "churned_mrr", "net_new_mrr", "arpa"]
# The header of the fixture history, written out by hand from the snapshots' shape.
HEADER = [
    "period.start", "period.end", "period.type", "timestamp", "generated_at",
    *("system_health." + k for k in (
        "uptime_percentage", "status", "services_total", "services_healthy", "avg_response_time_ms",
        "p95_response_time_ms", "error_rate", "services.api.uptime_percentage",
        "services.api.avg_response_time_ms", "services.api.healthy")),
    *("ai_platform." + k for k in (  # "providers" is {}: no column
        "total_requests", "chat_requests", "api_requests", "cache_hit_rate", "error_rate",
        "active_providers", "accuracy_rate", "avg_latency_ms", "p95_latency_ms")),
    *("financial." + k for k in (
        "mrr", "arr", "active_customers", "mrr_growth_rate", "customer_growth_rate", "new_mrr",
        "reactivation_mrr", "expansion_mrr", "contraction_mrr", "churned_mrr", "net_new_mrr", "quick_ratio",
        "arpa", "lead_conversion_rate")),
    *("business_health." + k for k in (
        "churn_risk", "growth_trajectory", "churned_customers", "logo_churn_rate", "revenue_churn_rate",
        "churn_rate_28d", "customer_satisfaction.nps", "customer_satisfaction.responses",
        "platform_utilization", "at_risk_customers", "mrr_at_risk")),
    # retention.cohorts, movements.largest, data_quality.warnings and alerts are lists: left out.
    *("retention." + k for k in ("nrr_12m", "grr_12m", "nrr_1m", "grr_1m", "logo_retention_12m")),
    # the plans of the newest week in its order, then "legacy" (weeks 2 and 3 only) after them
    *(f"segments.by_plan.{plan}.{k}" for plan in (ENTERPRISE, "professional", "starter", "legacy")
      for k in PLAN_FIGURES),
    "data_quality.success",
]


def _csv(api, **params):
    answer = api.client.get(METRICS, params={"format": "csv", **params}, headers=bearer(api))
    assert answer.status_code == 200, answer.text
    return answer, list(csv.reader(io.StringIO(answer.content.decode("utf-8"), newline="")))


def test_the_history_as_csv_one_row_per_week_newest_first(api):
    answer, rows = _csv(api, history=12)
    assert answer.headers["content-type"] == "text/csv; charset=utf-8"
    assert answer.headers["content-disposition"] == (
        'attachment; filename="investor-metrics-weekly-2026-09-06-to-2026-11-22.csv"')
    assert answer.headers["cache-control"] == "no-store"
    header, body = rows[0], rows[1:]
    assert header == HEADER
    assert [row[1] for row in body] == [iso(end) for end in reversed(WEEK_ENDS)], "newest first, weekly only"
    assert {len(row) for row in body} == {len(HEADER)}
    newest = dict(zip(header, body[0], strict=True))
    assert {key: newest[key] for key in (
        "period.start", "period.type", "system_health.status", "system_health.services.api.healthy",
        "financial.mrr", "financial.arr", "financial.active_customers", "financial.net_new_mrr",
        "business_health.customer_satisfaction.nps", "retention.nrr_12m", "retention.grr_12m",
        "retention.logo_retention_12m", f"segments.by_plan.{ENTERPRISE}.mrr",
        "segments.by_plan.professional.arpa", "segments.by_plan.starter.active_customers",
        "segments.by_plan.legacy.mrr", "data_quality.success")} == {
        "period.start": "2026-11-15T09:00:00Z", "period.type": "weekly", "system_health.status": "healthy",
        "system_health.services.api.healthy": "true", "financial.mrr": "41000.25",
        "financial.arr": "492003.0", "financial.active_customers": "122", "financial.net_new_mrr": "1060.0",
        "business_health.customer_satisfaction.nps": "41.0", "retention.nrr_12m": "105.6",
        "retention.grr_12m": "91.2", "retention.logo_retention_12m": "84.0",
        f"segments.by_plan.{ENTERPRISE}.mrr": "13300.0",  # 10,000 + 300 × 11
        "segments.by_plan.professional.arpa": "475.62",  # 19,500.25 / 41
        "segments.by_plan.starter.active_customers": "71", "segments.by_plan.legacy.mrr": "",
        "data_quality.success": "true",
    }
    by_end = {row[1]: dict(zip(header, row, strict=True)) for row in body}
    # Weeks 0 and 1 have no depth sections (empty cells); week 2 has no base set a year before
    # (null); "legacy" is a plan of weeks 2 and 3 only.
    for k, nrr, legacy in [(0, "", ""), (1, "", ""), (2, "", "500.0"), (3, "104.8", "500.0"),
                           (4, "104.9", "")]:
        row = by_end[iso(WEEK_ENDS[k])]
        assert (row["retention.nrr_12m"], row["segments.by_plan.legacy.mrr"]) == (nrr, legacy), k
    assert by_end[iso(WEEK_ENDS[0])]["retention.nrr_1m"] == ""
    assert by_end[iso(WEEK_ENDS[2])]["retention.nrr_1m"] == "100.8"
    assert by_end[iso(WEEK_ENDS[2])]["segments.by_plan.starter.mrr"] == "5900.0"  # 6,000 + 400 − 500


def test_the_csv_text_is_quoted_and_crlf_terminated(api):
    answer, _ = _csv(api, history=2)
    text = answer.content.decode("utf-8")
    lines = text.split("\r\n")
    assert lines[-1] == "" and len(lines) == 4, "a header, two rows, CRLF after each"
    assert lines[0].startswith("period.start,period.end,period.type,timestamp,generated_at,")
    assert (',"segments.by_plan.enterprise, annual.mrr",'
            '"segments.by_plan.enterprise, annual.active_customers",') in lines[0], "a comma quotes a cell"
    assert lines[1].startswith("2026-11-15T09:00:00Z,2026-11-22T09:00:00Z,weekly,2026-11-22T09:00:00Z,"
                               "2026-11-22T09:03:12Z,99.69,healthy,5,5,201.0,410.0,0.3,99.9,120.5,true,")
    assert "\n" not in text.replace("\r\n", "")


def test_without_history_the_csv_is_the_latest_snapshot_as_one_row(api):
    answer, rows = _csv(api)
    assert answer.headers["content-disposition"] == (
        'attachment; filename="investor-metrics-latest-2026-11-22.csv"')
    assert len(rows) == 2 and rows[1][:3] == ["2026-11-15T09:00:00Z", "2026-11-22T09:00:00Z", "weekly"]
    one, rows = _csv(api, period_end="2026-11-15T10:00:00+01:00")
    assert len(rows) == 2 and rows[1][1] == "2026-11-15T09:00:00Z"


def test_on_demand_reports_as_csv(api):
    answer, rows = _csv(api, history=5, type="on_demand")
    assert answer.headers["content-disposition"] == (
        'attachment; filename="investor-metrics-on-demand-2026-11-19.csv"')
    assert len(rows) == 2
    row = dict(zip(rows[0], rows[1], strict=True))
    assert (row["period.start"], row["period.end"], row["period.type"], row["financial.mrr"]) == (
        "2026-11-12T12:00:00Z", "2026-11-19T12:00:00Z", "on_demand", "40500.5")
    _, latest = _csv(api, type="on_demand")
    assert latest == rows


def test_format_json_is_the_default_and_other_formats_are_422(api):
    default = api.client.get(METRICS, params={"history": 2}, headers=bearer(api))
    explicit = api.client.get(METRICS, params={"history": 2, "format": "json"}, headers=bearer(api))
    assert explicit.headers["content-type"] == "application/json" and explicit.content == default.content
    for bad in ("xml", "CSV", ""):
        assert_error(api.client.get(METRICS, params={"format": bad}, headers=bearer(api)), 422, "format")


def test_csv_needs_the_same_access_as_json(api):
    params = {"format": "csv", "history": 3}
    assert_error(api.client.get(METRICS, params=params), 401, "Not authenticated")
    assert_error(api.client.get(METRICS, params=params, headers=bearer(api, "outsider")), 403)
    viewer = api.client.get(METRICS, params=params, headers=bearer(api, "viewer"))
    assert viewer.status_code == 200 and viewer.headers["content-type"].startswith("text/csv")
    cookie = api.client.get(METRICS, params={"format": "csv"},
                            headers={"Cookie": f"_token={api.tokens['viewer']}"})
    assert cookie.status_code == 200, "the page's session cookie works for the download too"


def test_nothing_to_export_is_a_json_404(api):
    answer = api.client.get(METRICS, headers=bearer(api),
                            params={"format": "csv", "history": 3, "period_end": "2020-01-05T00:00:00Z"})
    assert_error(answer, 404, "2020-01-05T00:00:00Z")


def test_the_openapi_document_describes_the_format_and_the_csv_answer(api):
    doc = api.client.get("/api/investor/openapi.json", headers=bearer(api)).json()
    operation = doc["paths"]["/metrics"]["get"]
    schema = next(p["schema"] for p in operation["parameters"] if p["name"] == "format")
    assert (schema["type"], schema["enum"], schema["default"]) == ("string", ["json", "csv"], "json")
    content = operation["responses"]["200"]["content"]
    assert set(content) == {"application/json", "text/csv"}
    assert content["text/csv"]["schema"]["type"] == "string"


def test_text_that_a_spreadsheet_would_run_is_escaped(api, store_elsewhere, fresh_database):
    """OWASP's CSV injection defence, through the store: text cells (and header cells) starting
    with = + - @ tab or CR get a leading apostrophe; numbers stay numbers; quotes are doubled."""
    snapshot = make_snapshot(LATEST_END, 11, "weekly")
    snapshot["system_health"]["status"] = "=HYPERLINK(\"http://evil.example\",\"click\")"
    snapshot["system_health"]["services"] = {"@SUM(A1)": {"healthy": False}, "-api": {"healthy": True}}
    snapshot["business_health"]["churn_risk"] = "+1+1"
    snapshot["business_health"]["growth_trajectory"] = "-2+3"
    snapshot["data_quality"] = {"success": False, "note": "\tcmd", "detail": "said \"hi\",\nthen left"}
    snapshot["financial"]["net_new_mrr"] = -90.5
    conn = connect(fresh_database)
    try:
        apply_metrics_schema(conn)
        store.publish(conn, snapshot, period_start=LATEST_END - timedelta(days=7), period_end=LATEST_END,
                      run_id="t", write_latest=lambda latest: None)
    finally:
        conn.close()
    store_elsewhere(db_env(fresh_database))
    answer, rows = _csv(api, history=1)
    row = dict(zip(rows[0], rows[1], strict=True))
    assert row["system_health.status"] == "'=HYPERLINK(\"http://evil.example\",\"click\")"
    assert row["system_health.services.@SUM(A1).healthy"] == "false"
    assert row["system_health.services.-api.healthy"] == "true"
    assert (row["business_health.churn_risk"], row["business_health.growth_trajectory"]) == ("'+1+1", "'-2+3")
    assert (row["data_quality.note"], row["data_quality.detail"]) == ("'\tcmd", "said \"hi\",\nthen left")
    assert row["financial.net_new_mrr"] == "-90.5", "a number is not text: no apostrophe"
    raw = answer.content.decode("utf-8")
    assert ",\"'=HYPERLINK(\"\"http://evil.example\"\",\"\"click\"\")\"," in raw
    assert ",\"said \"\"hi\"\",\nthen left\"" in raw


# --------------------------------------------------------------------------- the pure functions
def test_columns_are_the_union_in_first_seen_order_grouped_by_prefix():
    newer = {"period": {"start": "a", "end": "b"}, "x": 1, "plans": {"pro": {"mrr": 2}}, "rows": [1]}
    older = {"x": 0, "plans": {"old": {"mrr": 1}, "pro": {"mrr": 1, "arpa": 3}}, "y": None,
             "period": {"end": "c", "type": "weekly"}}
    assert csv_export.columns([newer, older]) == [
        "period.start", "period.end", "period.type", "x", "plans.pro.mrr", "plans.pro.arpa", "plans.old.mrr",
        "y"]
    assert csv_export.csv_text([newer, older]).split("\r\n") == [
        "period.start,period.end,period.type,x,plans.pro.mrr,plans.pro.arpa,plans.old.mrr,y",
        "a,b,,1,2,,,", ",c,weekly,0,1,3,1,", ""]


@pytest.mark.parametrize(("value", "text"), [
    (None, ""), (True, "true"), (False, "false"), (0, "0"), (-3, "-3"), (1.5, "1.5"), (-0.25, "-0.25"),
    (1e-07, "1e-07"), ("healthy", "healthy"), ("=1+1", "'=1+1"), ("+1", "'+1"), ("-1", "'-1"),
    ("@A1", "'@A1"), ("\tx", "'\tx"), ("\rx", "'\rx"), ("a=b", "a=b"), ("", ""), ("'quoted", "'quoted"),
])
def test_a_cell(value, text):
    assert csv_export.cell(value) == text


def test_the_file_name():
    one = [{"period": {"end": "2026-11-22T09:00:00Z"}}]
    several = [one[0], {"period": {"end": "2026-09-06T09:00:00Z"}}]
    assert csv_export.filename(one, "latest") == "investor-metrics-latest-2026-11-22.csv"
    assert csv_export.filename(several, "on_demand") == (
        "investor-metrics-on-demand-2026-09-06-to-2026-11-22.csv")
    hostile = [{"period": {"end": '"; evil=1'}}]
    assert csv_export.filename(hostile, "weekly") == "investor-metrics-weekly-1.csv"
    assert csv_export.filename([{}], "weekly") == "investor-metrics-weekly-unknown.csv"
