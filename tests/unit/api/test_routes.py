"""The JSON routes of the investor API (``include/investor_metrics/api/routes.py``) over Airflow's
app: ``GET /metrics`` and ``GET /alerts`` (answered by ``queries``, encoded by ``responses``),
``POST /metrics/collect`` (``collect``), and the 422 of every malformed parameter (``params``)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from types import SimpleNamespace

import pytest

from include.investor_metrics.db import apply_metrics_schema, connect
from include.investor_metrics.weekly import snapshots as store
from include.investor_metrics.weekly.alerts import evaluate
from include.investor_metrics.weekly.alerts import store as alert_store
from tests.unit.api.fixtures import (
    LATEST_END,
    ON_DEMAND_END,
    UTC,
    WEEK_ENDS,
    XSS_TITLE,
    assert_error,
    bearer,
    db_env,
    fixture_snapshots,
    iso,
    make_alert,
    make_snapshot,
    stored_alerts,
)

# The fixtures this module uses (bound by assignment, so they are no redefined imports).

# The TestClient of this FastAPI warns that Starlette prefers httpx2: not our concern here.
pytestmark = pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")


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
    from include.investor_metrics.api import responses

    plain = api.client.get("/api/investor/metrics", headers={**bearer(api), "Accept-Encoding": "identity"})
    for _ in range(2):  # the second answer comes from the compressed-body cache
        answer = api.client.get("/api/investor/metrics", headers={**bearer(api), "Accept-Encoding": "gzip"})
        assert answer.status_code == 200
        assert answer.headers["content-encoding"] == "gzip" and "Accept-Encoding" in answer.headers["vary"]
        assert answer.content == plain.content  # httpx decodes it
        assert int(answer.headers["content-length"]) < len(plain.content)
    # Longer bodies are left to Airflow's own GZipMiddleware: compressed all the same.
    monkeypatch.setattr(responses, "GZIP_CACHE_MAX_BYTES", 2048)
    long = api.client.get("/api/investor/metrics", params={"history": 520},
                          headers={**bearer(api), "Accept-Encoding": "gzip"})
    assert long.headers["content-encoding"] == "gzip" and len(long.json()["history"]) == 12
    assert responses._gzipped.cache_info().currsize >= 1


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
    answer = api.client.get("/api/investor/metrics", params={"period_end": iso(ON_DEMAND_END)},
                            headers=bearer(api))
    assert answer.json()["metrics"]["period"]["type"] == "on_demand"
    assert answer.json()["metrics"]["financial"]["mrr"] == 40500.5


def test_metrics_of_a_period_that_was_never_reported_is_404(api):
    answer = api.client.get("/api/investor/metrics", params={"period_end": "2026-11-16T09:00:00Z"},
                            headers=bearer(api))
    assert_error(answer, 404, "2026-11-16T09:00:00Z")


@pytest.mark.parametrize("bad", ["last sunday", "2026-11-22", "2026-11-22T09:00:00", "2026-13-01T00:00:00Z",
                                 ""])
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
    weekly = api.client.get("/api/investor/metrics", params={"history": 3, "type": "weekly"},
                            headers=bearer(api))
    assert weekly.json() == body


def test_history_of_on_demand_reports(api):
    answer = api.client.get("/api/investor/metrics", params={"history": 5, "type": "on_demand"},
                            headers=bearer(api))
    assert answer.status_code == 200, answer.text
    assert [s["period"]["type"] for s in answer.json()["history"]] == ["on_demand"]
    assert _dumped(answer.json()["history"][0]) == _dumped(fixture_snapshots()[12])
    latest = api.client.get("/api/investor/metrics", params={"type": "on_demand"}, headers=bearer(api))
    assert latest.json()["metrics"]["period"]["end"] == iso(ON_DEMAND_END)
    before = api.client.get("/api/investor/metrics",
                            params={"history": 5, "type": "on_demand", "period_end": iso(WEEK_ENDS[-2])},
                            headers=bearer(api))
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
    before_any = api.client.get("/api/investor/metrics",
                                params={"history": 2, "period_end": "2020-01-05T00:00:00Z"},
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
    every = api.client.get("/api/investor/alerts", params={"limit": 1000}, headers=bearer(api))
    assert len(every.json()["alerts"]) == 6
    for bad in ("0", "1001", "many"):
        assert_error(api.client.get("/api/investor/alerts", params={"limit": bad}, headers=bearer(api)), 422,
                     "limit")


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
    fired = [make_alert("uptime_below_target", "high", "system", period.end, "Uptime 98.7% is below 99.5%",
                        98.7, 99.5)]
    conn = connect(fresh_database)
    try:
        apply_metrics_schema(conn)
        store.publish(conn, snapshot, period_start=period.start, period_end=period.end,
                      run_id="manual__collect")
        alert_store.upsert_alerts(conn, fired, run_id="manual__collect", period_end=period.end,
                                  series="on_demand")
        assert [a["rule"] for a in alert_store.alerts_for_period(conn, period.end, series="on_demand")] == [
            "uptime_below_target"], "send_alert_notifications would find the alert"
    finally:
        conn.close()
    store_elsewhere(db_env(fresh_database))
    answer = api.client.get("/api/investor/metrics", params={"period_end": snapshot["period"]["end"]},
                            headers=bearer(api))
    assert answer.status_code == 200, answer.text
    assert answer.json()["metrics"] == snapshot
