"""Alerts (SPEC section 6): each rule on both sides of its threshold, thresholds by configuration,
the churn history from the store or the source, the alert store and ``alert_history.json``."""

from __future__ import annotations

import copy
import hashlib
import importlib.util
import json
import os
import random
import secrets
import sys
import threading
from datetime import datetime, timedelta, timezone

import pendulum
import pytest

from dev.demo_data import loader
from include.investor_metrics.db import connect
from include.investor_metrics.period import calendar_offset, iso_utc, weekly_period
from include.investor_metrics.settings import ConfigError
from include.investor_metrics.weekly import alerts, archive, extract, metrics
from include.investor_metrics.weekly import snapshots as store

END = datetime(2026, 11, 22, 9, tzinfo=timezone.utc)
END_ISO = "2026-11-22T09:00:00Z"

# SPEC section 6, as the table says.
SPEC_TABLE = {
    "uptime_below_target": ("high", "system"),
    "critical_system_failure": ("critical", "system"),
    "mrr_growth_below_target": ("medium", "financial"),
    "churn_spike": ("high", "business"),
    "api_response_time_above_target": ("medium", "system"),
    "ai_accuracy_below_target": ("medium", "ai"),
    "services_degraded": ("low", "system"),
}
QUIET_HISTORY = [1, 0, 1, 0, 1, 0, 1, 0]  # mean 0.5: the bound is the floor, 2


def healthy_snapshot(end: str = END_ISO) -> dict:
    """A week in which nothing fires (SPEC section 7 shape)."""
    end_dt = datetime.fromisoformat(end.replace("Z", "+00:00"))
    return {
        "timestamp": end,
        "generated_at": "2026-11-22T09:03:12Z",
        "period": {"start": iso_utc(end_dt - timedelta(days=7)), "end": end, "type": "weekly"},
        "system_health": {
            "uptime_percentage": 99.7, "status": "healthy", "services_total": 3, "services_healthy": 3,
            "avg_response_time_ms": 194.0, "p95_response_time_ms": 410.0, "error_rate": 0.3,
            "services": {
                "api": {"uptime_percentage": 99.9, "avg_response_time_ms": 120.5, "healthy": True},
                "web": {"uptime_percentage": 99.6, "avg_response_time_ms": 220.0, "healthy": True},
                "database": {"uptime_percentage": 99.6, "avg_response_time_ms": 20.0, "healthy": True},
            },
        },
        "ai_platform": {"total_requests": 18211, "accuracy_rate": 94.7, "error_rate": 0.8, "providers": {}},
        "financial": {"mrr": 42500.0, "arr": 510000.0, "active_customers": 127, "mrr_growth_rate": 8.2},
        "business_health": {"churned_customers": 1, "churn_risk": "low"},
        "data_quality": {"success": True, "warnings": []},
        "alerts": [],
    }


def with_values(snapshot: dict, **paths) -> dict:
    """A copy with ``section__key=value`` replaced (``system_health__status="critical"``)."""
    snap = copy.deepcopy(snapshot)
    for path, value in paths.items():
        section, key = path.split("__")
        snap[section][key] = value
    return snap


def fired(snapshot: dict, *, previous=QUIET_HISTORY, thresholds=None) -> dict[str, dict]:
    found = alerts.evaluate(snapshot, thresholds=thresholds or {}, previous_churned=list(previous))
    return {a["rule"]: a for a in found}


# --------------------------------------------------------------------------- the rules
def test_a_healthy_week_raises_nothing():
    assert fired(healthy_snapshot()) == {}


@pytest.mark.parametrize(
    ("rule", "path", "quiet", "firing", "threshold"),
    [
        ("uptime_below_target", "system_health__uptime_percentage", 99.5, 99.49, 99.5),
        ("mrr_growth_below_target", "financial__mrr_growth_rate", 5.0, 4.99, 5.0),
        ("api_response_time_above_target", "system_health__avg_response_time_ms", 1000.0, 1000.01, 1000.0),
        ("ai_accuracy_below_target", "ai_platform__accuracy_rate", 90.0, 89.99, 90.0),
    ],
)
def test_each_threshold_rule_fires_strictly_past_its_threshold(rule, path, quiet, firing, threshold):
    assert rule not in fired(with_values(healthy_snapshot(), **{path: quiet}))
    alert = fired(with_values(healthy_snapshot(), **{path: firing}))[rule]
    assert (alert["value"], alert["threshold"]) == (firing, threshold)
    assert alert["metric"] == path.replace("__", ".")
    assert f"{threshold:g}".rstrip("0").rstrip(".") in alert["message"].replace(",", "")
    assert str(firing) in alert["title"].replace(",", "")


def test_services_degraded_fires_when_a_service_is_not_healthy():
    assert "services_degraded" not in fired(with_values(healthy_snapshot(), system_health__services_healthy=3))
    snap = with_values(healthy_snapshot(), system_health__services_healthy=2)
    snap["system_health"]["services"]["web"]["healthy"] = False
    alert = fired(snap)["services_degraded"]
    assert (alert["value"], alert["threshold"]) == (2, 3)
    assert "Not healthy: web" in alert["message"]


def test_critical_status_raises_critical_system_failure():
    assert "critical_system_failure" not in fired(with_values(healthy_snapshot(), system_health__status="degraded"))
    snap = with_values(healthy_snapshot(), system_health__status="critical", system_health__uptime_percentage=96.0)
    snap["system_health"]["services"]["api"]["uptime_percentage"] = 88.1
    found = fired(snap)
    alert = found["critical_system_failure"]
    assert alert["severity"] == "critical"
    assert alert["metric"] == "system_health.status"
    assert alert["value"] is None and alert["threshold"] is None
    assert "api was up only 88.1%" in alert["message"]
    assert list(found)[0] == "critical_system_failure"  # the most severe first


def test_churn_spike_fires_only_above_twice_the_mean_of_the_previous_weeks():
    history = [2, 3, 1, 2, 4, 2, 1, 1]  # mean 2, bound max(2, 4) = 4
    assert "churn_spike" not in fired(with_values(healthy_snapshot(), business_health__churned_customers=4),
                                      previous=history)
    alert = fired(with_values(healthy_snapshot(), business_health__churned_customers=5), previous=history)["churn_spike"]
    assert (alert["value"], alert["threshold"]) == (5, 4)
    assert "5 paying customers" in alert["message"]


def test_churn_spike_floor_and_short_history():
    # A quiet history: the bound is the floor of 2.
    assert "churn_spike" not in fired(with_values(healthy_snapshot(), business_health__churned_customers=2))
    assert fired(with_values(healthy_snapshot(), business_health__churned_customers=3))["churn_spike"]["threshold"] == 2
    # History start: no previous week, the bound is the floor; fewer than 8, their mean.
    assert alerts.churn_spike_bound([]) == 2
    assert alerts.churn_spike_bound([3, 4]) == 7
    three = with_values(healthy_snapshot(), business_health__churned_customers=3)
    assert "churn_spike" in fired(three, previous=[])
    assert "churn_spike" not in fired(with_values(healthy_snapshot(), business_health__churned_customers=7),
                                      previous=[3, 4])
    spike = fired(with_values(healthy_snapshot(), business_health__churned_customers=3), previous=[1, 0, 1])
    assert spike["churn_spike"]["threshold"] == 2  # max(2, 2 × 2/3)
    odd = fired(with_values(healthy_snapshot(), business_health__churned_customers=6), previous=[2, 3, 3])
    assert odd["churn_spike"]["threshold"] == 5.33  # 2 × 8/3, reported to 2 decimals


def test_severities_and_categories_are_those_of_the_spec():
    assert {r.name: (r.severity, r.category) for r in alerts.RULES} == SPEC_TABLE
    snap = with_values(
        healthy_snapshot(),
        system_health__uptime_percentage=80.0, system_health__status="critical",
        system_health__services_healthy=0, system_health__avg_response_time_ms=1500.0,
        financial__mrr_growth_rate=-3.0, business_health__churned_customers=30, ai_platform__accuracy_rate=50.0,
    )
    found = alerts.evaluate(snap, thresholds={}, previous_churned=QUIET_HISTORY)
    assert {a["rule"]: (a["severity"], a["category"]) for a in found} == SPEC_TABLE
    assert [a["severity"] for a in found] == sorted(
        (a["severity"] for a in found), key=alerts.SEVERITY_RANK.__getitem__
    )


@pytest.mark.parametrize(
    "path",
    ["system_health__uptime_percentage", "financial__mrr_growth_rate", "system_health__avg_response_time_ms",
     "ai_platform__accuracy_rate", "business_health__churned_customers", "system_health__services_healthy",
     "system_health__status"],
)
def test_a_null_metric_never_fires(path):
    assert fired(with_values(healthy_snapshot(), **{path: None}), previous=[]) == {}


def test_missing_sections_do_not_fire():
    snap = healthy_snapshot()
    del snap["ai_platform"], snap["system_health"]
    assert fired(snap) == {}


def test_an_alert_has_the_spec_fields_and_a_stable_identity():
    snap = with_values(healthy_snapshot(), system_health__uptime_percentage=98.0)
    first = alerts.evaluate(snap, thresholds={}, previous_churned=QUIET_HISTORY)
    again = alerts.evaluate(copy.deepcopy(snap), thresholds={}, previous_churned=QUIET_HISTORY)
    assert first == again
    (alert,) = first
    assert list(alert) == ["id", "rule", "severity", "category", "title", "message", "metric", "value",
                           "threshold", "period_start", "period_end", "triggered_at"]
    assert alert["id"] == hashlib.sha256(f"uptime_below_target|{END_ISO}".encode()).hexdigest()[:16]
    assert alert["period_start"] == "2026-11-15T09:00:00Z"
    assert alert["period_end"] == alert["triggered_at"] == END_ISO
    assert "98%" in alert["title"] and "99.5%" in alert["title"]
    assert "22 Nov 2026" in alert["message"]


def test_the_period_end_is_normalised_to_utc():
    snap = healthy_snapshot()
    snap["period"] = {"start": "2026-11-15T10:00:00+01:00", "end": "2026-11-22T10:00:00+01:00", "type": "weekly"}
    snap["system_health"]["uptime_percentage"] = 90.0
    (alert,) = alerts.evaluate(snap, thresholds={}, previous_churned=[])
    assert alert["period_end"] == END_ISO and alert["id"] == alerts.alert_id(f"uptime_below_target|{END_ISO}")


def test_thresholds_passed_in_override_the_defaults():
    snap = with_values(healthy_snapshot(), system_health__uptime_percentage=99.2, financial__mrr_growth_rate=4.0)
    assert set(fired(snap)) == {"uptime_below_target", "mrr_growth_below_target"}
    assert set(fired(snap, thresholds={"uptime_below_target": 99.0, "mrr_growth_below_target": 3})) == set()
    spike = with_values(healthy_snapshot(), business_health__churned_customers=4)
    assert "churn_spike" in fired(spike)
    assert "churn_spike" not in fired(spike, thresholds={"churn_spike_minimum": 4})
    assert "churn_spike" not in fired(spike, previous=[1] * 8, thresholds={"churn_spike": 4})


def test_snapshot_alerts_keep_only_the_deterministic_fields():
    (alert,) = alerts.evaluate(with_values(healthy_snapshot(), ai_platform__accuracy_rate=10.0),
                               thresholds={}, previous_churned=[])
    stored = {**alert, "run_id": "scheduled__x", "notified": True, "service": None}
    assert alerts.snapshot_alerts([stored]) == [alert]


# --------------------------------------------------------------------------- thresholds
def no_variable(_key):
    return None


def test_load_thresholds_defaults():
    assert alerts.load_thresholds(env={}, get_variable=no_variable) == {
        "uptime_below_target": 99.5, "churn_spike": 2.0, "mrr_growth_below_target": 5.0,
        "api_response_time_above_target": 1000.0, "ai_accuracy_below_target": 90.0, "churn_spike_minimum": 2.0,
    }


def test_load_thresholds_from_the_environment_then_the_variable():
    env = {"INVESTOR_ALERT_UPTIME_BELOW_TARGET": "99.0", "INVESTOR_ALERT_CHURN_SPIKE_MINIMUM": " 3 ",
           "INVESTOR_ALERT_AI_ACCURACY_BELOW_TARGET": ""}
    loaded = alerts.load_thresholds(env=env, get_variable=no_variable)
    assert (loaded["uptime_below_target"], loaded["churn_spike_minimum"]) == (99.0, 3.0)
    assert loaded["ai_accuracy_below_target"] == 90.0  # empty = unset

    seen = []

    def variable(key):
        seen.append(key)
        return json.dumps({"uptime_below_target": 98.5, "mrr_growth_below_target": 3})

    loaded = alerts.load_thresholds(env=env, get_variable=variable)
    assert seen == ["investor_alert_thresholds"]
    assert loaded["uptime_below_target"] == 98.5  # the Variable wins over the environment
    assert loaded["mrr_growth_below_target"] == 3.0
    assert loaded["churn_spike_minimum"] == 3.0  # the environment still applies to the rest
    # A Variable read with deserialize_json (a dict already) works too.
    assert alerts.load_thresholds(env={}, get_variable=lambda _k: {"churn_spike": 3})["churn_spike"] == 3.0


@pytest.mark.parametrize(
    ("env", "variable", "names"),
    [
        ({"INVESTOR_ALERT_UPTIME_BELOW_TARGET": "ninety-nine"}, None, "INVESTOR_ALERT_UPTIME_BELOW_TARGET"),
        ({"INVESTOR_ALERT_MRR_GROWTH_BELOW_TARGET": "nan"}, None, "INVESTOR_ALERT_MRR_GROWTH_BELOW_TARGET"),
        ({}, "{uptime_below_target: 99}", "investor_alert_thresholds"),
        ({}, "[99]", "investor_alert_thresholds"),
        ({}, '{"uptime_below_target": "high"}', "uptime_below_target"),
        ({}, '{"uptime_below_target": true}', "uptime_below_target"),
        ({}, '{"uptime_target": 99}', "uptime_target"),
        ({}, '{"services_degraded": 1}', "services_degraded"),
        ({"INVESTOR_ALERT_CHURN_SPIKE": "-1"}, None, "INVESTOR_ALERT_CHURN_SPIKE"),
    ],
)
def test_a_malformed_override_is_a_clear_error(env, variable, names):
    with pytest.raises(ConfigError, match=names):
        alerts.load_thresholds(env=env, get_variable=lambda _k: variable)


def test_load_thresholds_outside_a_task_reads_the_environment(monkeypatch):
    monkeypatch.setenv("INVESTOR_ALERT_AI_ACCURACY_BELOW_TARGET", "85")
    monkeypatch.delenv("AIRFLOW_VAR_INVESTOR_ALERT_THRESHOLDS", raising=False)
    assert alerts.load_thresholds()["ai_accuracy_below_target"] == 85.0


def test_load_thresholds_reads_the_airflow_variable(monkeypatch):
    # The real Airflow path: the Variable from its environment secrets backend, winning over INVESTOR_ALERT_*.
    monkeypatch.setenv("AIRFLOW_VAR_INVESTOR_ALERT_THRESHOLDS", '{"uptime_below_target": 97.5}')
    monkeypatch.setenv("INVESTOR_ALERT_UPTIME_BELOW_TARGET", "99.0")
    assert alerts.load_thresholds()["uptime_below_target"] == 97.5


def test_importing_the_module_reads_no_variable(monkeypatch):
    from airflow.sdk import Variable

    def refuse(*_args, **_kwargs):
        raise AssertionError("Variable.get called at import time")

    monkeypatch.setattr(Variable, "get", refuse)
    # A separate copy of the module (include.investor_metrics.weekly.alerts itself stays as other tests imported it).
    spec = importlib.util.spec_from_file_location("alerts_import_check", alerts.__file__)
    fresh = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, fresh)  # dataclasses look their module up
    spec.loader.exec_module(fresh)
    assert fresh.DEFAULT_THRESHOLDS == alerts.DEFAULT_THRESHOLDS


# --------------------------------------------------------------------------- the store
def period_alerts(end: datetime, **values) -> list[dict]:
    snap = with_values(healthy_snapshot(iso_utc(end)), **values)
    return alerts.evaluate(snap, thresholds={}, previous_churned=QUIET_HISTORY)


# A week raising three alerts (high, medium, medium).
BAD_WEEK = {"system_health__uptime_percentage": 98.0, "financial__mrr_growth_rate": 1.0,
            "ai_platform__accuracy_rate": 80.0}


def count_rows(conn) -> int:
    with conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM investor_metrics.alerts")
        return cur.fetchone()[0]


def test_upsert_twice_keeps_one_row_and_the_notified_flag(metrics_db):
    conn = connect(metrics_db)
    try:
        first = alerts.upsert_alerts(conn, period_alerts(END, system_health__uptime_percentage=98.0),
                                     run_id="manual__1", period_end=END)
        assert [a["rule"] for a in first] == ["uptime_below_target"]
        assert first[0]["run_id"] == "manual__1" and first[0]["notified"] is False
        assert alerts.mark_notified(conn, [first[0]["id"]]) == [first[0]["id"]]
        assert alerts.mark_notified(conn, [first[0]["id"]]) == []  # already

        again = alerts.upsert_alerts(conn, period_alerts(END, system_health__uptime_percentage=97.0),
                                     run_id="manual__2", period_end=END)
        assert count_rows(conn) == 1
        (stored,) = alerts.alerts_for_period(conn, END)
        assert stored == again[0]
        assert stored["id"] == first[0]["id"]
        assert stored["notified"] is True  # kept once true
        assert (stored["value"], stored["run_id"]) == (97.0, "manual__2")
        assert "97%" in stored["message"]
        assert list(stored) == [*alerts.ALERT_FIELDS, "run_id", "notified", "series"]
        assert stored["triggered_at"] == END_ISO
    finally:
        conn.close()


def test_a_rerun_removes_an_alert_that_no_longer_fires(metrics_db):
    other = END - timedelta(days=7)
    conn = connect(metrics_db)
    try:
        alerts.upsert_alerts(conn, period_alerts(END, **BAD_WEEK), run_id="r1", period_end=END)
        alerts.upsert_alerts(conn, period_alerts(other, **BAD_WEEK), run_id="r1", period_end=other)
        incident = {"dedup_key": f"critical_system_failure|api|{END_ISO}", "rule": "critical_system_failure",
                    "severity": "critical", "category": "system", "title": "api down", "message": "api down",
                    "metric": None, "value": 3, "threshold": 3, "period_start": END_ISO, "period_end": END_ISO,
                    "triggered_at": END_ISO, "service": "api"}
        alerts.upsert_alerts(conn, [incident], run_id="probe")
        assert count_rows(conn) == 7

        # The period is rerun after a source fix: the uptime is now fine.
        fixed = {**BAD_WEEK, "system_health__uptime_percentage": 99.9}
        alerts.upsert_alerts(conn, period_alerts(END, **fixed), run_id="r2", period_end=END)
        weekly = [a for a in alerts.alerts_for_period(conn, END) if "service" not in a]
        assert sorted(a["rule"] for a in weekly) == ["ai_accuracy_below_target", "mrr_growth_below_target"]
        assert len(alerts.alerts_for_period(conn, other)) == 3  # another period is untouched
        probe = [a for a in alerts.all_alerts(conn) if a.get("service") == "api"]
        assert probe and probe[0]["id"] == alerts.alert_id(incident["dedup_key"])  # a probe incident stays

        # Nothing fires any more: an empty evaluation clears the period's weekly alerts.
        assert alerts.upsert_alerts(conn, [], run_id="r3", period_end=END) == []
        assert [a.get("service") for a in alerts.alerts_for_period(conn, END)] == ["api"]
        assert count_rows(conn) == 4
    finally:
        conn.close()


def test_a_rerun_keeps_an_emailed_alert_as_superseded(metrics_db):
    """SPEC 6: an alert that was e-mailed (notified, or a delivered send-log row) and that a rerun no
    longer raises is kept with superseded_at; it is not a current alert; raised again, it is."""
    conn = connect(metrics_db)
    try:
        first = {a["rule"]: a for a in alerts.upsert_alerts(conn, period_alerts(END, **BAD_WEEK), run_id="r1",
                                                             period_end=END)}
        alerts.mark_notified(conn, [first["uptime_below_target"]["id"]])
        with conn.cursor() as cur:
            cur.execute("INSERT INTO investor_metrics.send_log (kind, send_key, recipient, status) VALUES ('alert', %s, 'ann@investors.example', 'sent')",
                        (first["ai_accuracy_below_target"]["id"],))
        conn.commit()
        assert alerts.upsert_alerts(conn, [], run_id="r2", period_end=END) == []
        assert alerts.alerts_for_period(conn, END) == []
        kept = {a["rule"]: a for a in alerts.all_alerts(conn)}
        assert set(kept) == {"uptime_below_target", "ai_accuracy_below_target"}  # mrr growth: deleted
        assert all(a["superseded_at"] for a in kept.values())
        superseded_at = kept["uptime_below_target"]["superseded_at"]
        alerts.upsert_alerts(conn, [], run_id="r3", period_end=END)  # a second rerun keeps the instant
        assert {a["rule"]: a["superseded_at"] for a in alerts.all_alerts(conn)}["uptime_below_target"] == superseded_at
        again = alerts.upsert_alerts(conn, period_alerts(END, system_health__uptime_percentage=98.0), run_id="r4",
                                     period_end=END)
        assert [a["id"] for a in alerts.alerts_for_period(conn, END)] == [first["uptime_below_target"]["id"]]
        assert again[0]["notified"] is True and "superseded_at" not in again[0]
    finally:
        conn.close()


def on_demand_alerts(end: datetime, **values) -> list[dict]:
    snap = with_values(healthy_snapshot(iso_utc(end)), **values)
    snap["period"]["type"] = "on_demand"
    return alerts.evaluate(snap, thresholds={}, previous_churned=QUIET_HISTORY)


def test_an_on_demand_report_has_alerts_of_its_own(metrics_db):
    """Same period end as a week: its own dedup keys and ids, its own series; storing it (or a rerun
    of it that raises nothing) never touches the week's alerts (SPEC 2, 6)."""
    weekly, on_demand = period_alerts(END, **BAD_WEEK), on_demand_alerts(END, **BAD_WEEK)
    assert {a["rule"] for a in weekly} == {a["rule"] for a in on_demand}
    assert not {a["id"] for a in weekly} & {a["id"] for a in on_demand}
    assert on_demand[0]["id"] == alerts.alert_id(f"{on_demand[0]['rule']}|on_demand|{END_ISO}")
    conn = connect(metrics_db)
    try:
        alerts.upsert_alerts(conn, weekly, run_id="scheduled__1", period_end=END)
        stored = alerts.upsert_alerts(conn, on_demand, run_id="manual__1", period_end=END, series="on_demand")
        assert {a["series"] for a in stored} == {"on_demand"}
        assert count_rows(conn) == 2 * len(weekly)
        assert [a["id"] for a in alerts.alerts_for_period(conn, END)] == [a["id"] for a in weekly]
        assert [a["id"] for a in alerts.alerts_for_period(conn, END, series="on_demand")] == [
            a["id"] for a in on_demand]
        alerts.upsert_alerts(conn, [], run_id="manual__2", period_end=END, series="on_demand")
        assert alerts.alerts_for_period(conn, END, series="on_demand") == []
        assert [a["id"] for a in alerts.alerts_for_period(conn, END)] == [a["id"] for a in weekly]
        with pytest.raises(ValueError, match="series"):
            alerts.alerts_for_period(conn, END, series="backfill")
    finally:
        conn.close()


def test_upsert_refuses_alerts_of_another_period(metrics_db):
    conn = connect(metrics_db)
    try:
        with pytest.raises(ValueError, match="not of the period"):
            alerts.upsert_alerts(conn, period_alerts(END, **BAD_WEEK), run_id="r",
                                 period_end=END - timedelta(days=7))
        assert count_rows(conn) == 0
    finally:
        conn.close()


def test_all_alerts_newest_first_then_severity_then_rule(metrics_db):
    conn = connect(metrics_db)
    try:
        ends = [END - timedelta(days=7 * k) for k in (2, 0, 1)]
        for end in ends:
            alerts.upsert_alerts(conn, period_alerts(end, **BAD_WEEK, system_health__status="critical"),
                                 run_id="r", period_end=end)
        listed = alerts.all_alerts(conn)
        keys = [(a["triggered_at"], a["severity"], a["rule"]) for a in listed]
        assert keys == sorted(keys, key=lambda k: (-datetime.fromisoformat(k[0].replace("Z", "+00:00")).timestamp(),
                                                   alerts.SEVERITY_RANK[k[1]], k[2]))
        assert listed[0]["triggered_at"] == END_ISO and listed[0]["rule"] == "critical_system_failure"
        assert [a["rule"] for a in listed[:4]] == ["critical_system_failure", "uptime_below_target",
                                                   "ai_accuracy_below_target", "mrr_growth_below_target"]
        assert len(listed) == 12
        assert {a["severity"] for a in alerts.all_alerts(conn, severity="critical")} == {"critical"}
        assert len(alerts.all_alerts(conn, since=END - timedelta(days=7))) == 8
        assert len(alerts.all_alerts(conn, limit=5)) == 5
        with pytest.raises(ValueError, match="severity"):
            alerts.all_alerts(conn, severity="urgent")
        json.dumps(listed)  # JSON-ready
    finally:
        conn.close()


def test_the_store_works_through_a_psycopg3_connection(metrics_db):
    psycopg = pytest.importorskip("psycopg")
    from psycopg.rows import dict_row

    kwargs = {"host": metrics_db.host, "port": metrics_db.port, "dbname": metrics_db.dbname, "user": metrics_db.user}
    for row_factory in (None, dict_row):  # PostgresHook may hand out either row type
        conn = psycopg.connect(**kwargs, **({"row_factory": row_factory} if row_factory else {}))
        try:
            stored = alerts.upsert_alerts(conn, period_alerts(END, **BAD_WEEK), run_id="hook", period_end=END)
            assert len(stored) == 3
            assert alerts.upsert_alerts(conn, [], run_id="hook", period_end=END - timedelta(days=7)) == []
            assert len(alerts.mark_notified(conn, [a["id"] for a in stored])) in (0, 3)
            assert [a["id"] for a in alerts.alerts_for_period(conn, END)] == [a["id"] for a in stored]
            assert all(a["notified"] for a in alerts.all_alerts(conn))
        finally:
            conn.close()


def test_parallel_runs_of_eight_weeks_lose_no_alert(metrics_db, tmp_path):
    ends = [END - timedelta(days=7 * k) for k in range(8)]
    expected = {a["id"]: a for end in ends for a in period_alerts(end, **BAD_WEEK)}
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def run(worker: int):
        conn = connect(metrics_db)
        try:
            barrier.wait()
            mine = list(ends)
            random.Random(worker).shuffle(mine)  # every worker reruns every week, in its own order
            for end in mine:
                alerts.upsert_alerts(conn, period_alerts(end, **BAD_WEEK), run_id=f"w{worker}", period_end=end)
                alerts.publish_alert_history(conn, str(tmp_path))
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            conn.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors

    conn = connect(metrics_db)
    try:
        stored = alerts.all_alerts(conn)
        assert count_rows(conn) == len(expected) == 24
    finally:
        conn.close()
    assert {a["id"] for a in stored} == set(expected)
    assert alerts.snapshot_alerts(stored) == [expected[a["id"]] for a in stored]
    history = archive.read_json(str(tmp_path), archive.ALERT_HISTORY_NAME)
    assert history["alerts"] == stored
    assert [p.name for p in tmp_path.iterdir()] == [archive.ALERT_HISTORY_NAME]  # no temporary file left


def test_publish_alert_history_writes_every_alert_newest_first(metrics_db, tmp_path, monkeypatch):
    location = str(tmp_path / "archive")
    conn = connect(metrics_db)
    try:
        older = END - timedelta(days=7)
        alerts.upsert_alerts(conn, period_alerts(older, **BAD_WEEK), run_id="backfill__1", period_end=older)
        path = alerts.publish_alert_history(conn, location)
        assert path.endswith("alert_history.json")
        alerts.upsert_alerts(conn, period_alerts(END, system_health__status="critical"), run_id="scheduled__2",
                             period_end=END)
        alerts.publish_alert_history(conn, location)
        doc = archive.read_json(location, archive.ALERT_HISTORY_NAME)
        assert doc["generated_from"] == "investor_metrics.alerts"
        assert [(a["period_end"], a["rule"]) for a in doc["alerts"]] == [
            (END_ISO, "critical_system_failure"),
            ("2026-11-15T09:00:00Z", "uptime_below_target"),
            ("2026-11-15T09:00:00Z", "ai_accuracy_below_target"),
            ("2026-11-15T09:00:00Z", "mrr_growth_below_target"),
        ]
        assert doc["alerts"][0]["run_id"] == "scheduled__2" and doc["alerts"][0]["notified"] is False
        assert doc["alerts"] == alerts.all_alerts(conn)

        # A failed write leaves the previous file whole, and the lock is released.
        def boom(*_args, **_kwargs):
            raise OSError("disk full")

        alerts.upsert_alerts(conn, period_alerts(END, **BAD_WEEK), run_id="scheduled__3", period_end=END)
        monkeypatch.setattr(archive.os, "replace", boom)
        with pytest.raises(OSError):
            alerts.publish_alert_history(conn, location)
        assert archive.read_json(location, archive.ALERT_HISTORY_NAME) == doc
        monkeypatch.undo()
        alerts.publish_alert_history(conn, location)
        assert len(archive.read_json(location, archive.ALERT_HISTORY_NAME)["alerts"]) == 6
        assert sorted(os.listdir(location)) == ["alert_history.json"]
    finally:
        conn.close()


# --------------------------------------------------------------------------- churn history
SPIKE_WEEK_END = datetime(2026, 11, 15, 9, tzinfo=timezone.utc)  # the generator's spike lies in this week


@pytest.fixture(scope="module")
def source_db(pg_server):
    """The synthetic dataset, 120 days to END, with a churn spike in the week of 8 Nov 2026."""
    name = f"cfx_alerts_{os.getpid()}_{secrets.token_hex(3)}"
    admin = connect(pg_server)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    settings = type(pg_server)(host=pg_server.host, port=pg_server.port, dbname=name, user=pg_server.user,
                               password=pg_server.password)
    try:
        loader.load(settings, end=END, span_days=120, churn_spike_week="2026-11-08", progress=False)
        yield settings
    finally:
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def pipeline_churned(source_conn, end: datetime, tz: str = "UTC") -> int:
    """churned_customers exactly as the weekly DAG computes it for the week ending ``end``."""
    period = weekly_period(end, tz)
    business = extract.extract_business_data(source_conn, period)
    return metrics.financial_and_business_health(period, business)[1]["churned_customers"]


def store_churned(metrics_conn, end: datetime, churned: int, tz: str = "UTC") -> None:
    period = weekly_period(end, tz, "backfill")
    snap = {"timestamp": iso_utc(end), "generated_at": iso_utc(end), "period": period.as_dict(),
            "business_health": {"churned_customers": churned}}
    with metrics_conn.cursor() as cur:
        store.upsert_snapshot(cur, snap, period_start=period.start, period_end=period.end, run_id="test")
    metrics_conn.commit()


def test_previous_churned_customers_from_the_store_or_the_source(source_db, metrics_db):
    source, metrics_conn = connect(source_db), connect(metrics_db)
    try:
        period = weekly_period(END, "UTC")
        ends = [END - timedelta(days=7 * k) for k in range(8, 0, -1)]  # oldest first
        expected = [pipeline_churned(source, end) for end in ends]
        assert expected[-1] >= 6  # the spike week is the last of the eight

        from_source = alerts.previous_churned_customers(metrics_conn, source, period)
        assert from_source == expected

        # Some weeks already have their snapshot (backfill weeks finish in any order): same answer.
        for k in (0, 3, 7):
            store_churned(metrics_conn, ends[k], expected[k])
        assert alerts.previous_churned_customers(metrics_conn, source, period) == expected
        for k in range(8):
            store_churned(metrics_conn, ends[k], expected[k])
        assert alerts.previous_churned_customers(metrics_conn, source, period) == expected

        # ... and the stored value is the one read (a marker shows it).
        store_churned(metrics_conn, ends[2], 99)
        marked = alerts.previous_churned_customers(metrics_conn, source, period)
        assert marked == expected[:2] + [99] + expected[3:]

        # The same through psycopg 3 connections (what PostgresHook hands out).
        psycopg = pytest.importorskip("psycopg")
        with psycopg.connect(metrics_db.dsn()) as metrics3, psycopg.connect(source_db.dsn()) as source3:
            assert alerts.previous_churned_customers(metrics3, source3, period) == marked
            with metrics3.cursor() as cur:
                cur.execute("DELETE FROM investor_metrics.snapshots")
            metrics3.commit()
            assert alerts.previous_churned_customers(metrics3, source3, period) == expected
    finally:
        source.close()
        metrics_conn.close()


def test_the_churn_baseline_reads_weekly_snapshots_only(source_db, metrics_db):
    """An on-demand report ending at a previous week's end is not that week (SPEC 2)."""
    source, metrics_conn = connect(source_db), connect(metrics_db)
    try:
        period = weekly_period(END, "UTC")
        ends = [END - timedelta(days=7 * k) for k in range(8, 0, -1)]
        expected = [pipeline_churned(source, end) for end in ends]
        on_demand = weekly_period(ends[5], "UTC", "on_demand")
        snap = {"timestamp": iso_utc(ends[5]), "generated_at": iso_utc(ends[5]), "period": on_demand.as_dict(),
                "business_health": {"churned_customers": 66}}
        with metrics_conn.cursor() as cur:
            store.upsert_snapshot(cur, snap, period_start=on_demand.start, period_end=on_demand.end, run_id="m")
        metrics_conn.commit()
        assert alerts.previous_churned_customers(metrics_conn, source, period) == expected
        store_churned(metrics_conn, ends[5], 44)  # the weekly row of that week is read
        assert alerts.previous_churned_customers(metrics_conn, source, period) == (
            expected[:5] + [44] + expected[6:]
        )
    finally:
        source.close()
        metrics_conn.close()


def test_a_stored_snapshot_of_a_different_calendar_week_is_not_used(source_db, metrics_db):
    source, metrics_conn = connect(source_db), connect(metrics_db)
    try:
        tz = "Europe/Paris"
        period = weekly_period(END, tz)
        ends = [calendar_offset(END, pendulum.timezone(tz), days=7 * k) for k in range(8, 0, -1)]
        # Across the end of summer time (25 Oct 2026) the week ends stay at 10:00 in Paris.
        assert iso_utc(ends[4]) == "2026-10-25T09:00:00Z" and iso_utc(ends[3]) == "2026-10-18T08:00:00Z"
        expected = [pipeline_churned(source, end, tz) for end in ends]
        assert alerts.previous_churned_customers(metrics_conn, source, period) == expected

        store_churned(metrics_conn, ends[3], 77, tz)  # the same week: used
        # A snapshot ending at the same instant but of another length (a UTC week, 168 h, where the
        # Paris week across the DST change is 169 h) is not the same week: recomputed from the source.
        assert weekly_period(ends[4], "UTC").start != weekly_period(ends[4], tz).start
        store_churned(metrics_conn, ends[4], 55, "UTC")
        assert alerts.previous_churned_customers(metrics_conn, source, period) == (
            expected[:3] + [77] + expected[4:]
        )
    finally:
        source.close()
        metrics_conn.close()


def test_the_generated_churn_spike_raises_the_alert(source_db, metrics_db):
    source, metrics_conn = connect(source_db), connect(metrics_db)
    try:
        for end, should_fire in ((SPIKE_WEEK_END, True), (SPIKE_WEEK_END - timedelta(days=7), False)):
            period = weekly_period(end, "UTC")
            previous = alerts.previous_churned_customers(metrics_conn, source, period)
            snap = with_values(healthy_snapshot(iso_utc(end)),
                               business_health__churned_customers=pipeline_churned(source, end))
            found = fired(snap, previous=previous)
            assert ("churn_spike" in found) is should_fire, (end, previous, snap["business_health"])
    finally:
        source.close()
        metrics_conn.close()
