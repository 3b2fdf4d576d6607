"""The alert store and ``alert_history.json`` (``weekly/alerts/store.py``): one row per dedup key,
superseded alerts, the on-demand series, the order, concurrent runs, the history file."""

from __future__ import annotations

import json
import os
import random
import threading
from datetime import datetime, timedelta

import pytest

from include.investor_metrics.contract import SEVERITY_RANK
from include.investor_metrics.db import connect
from include.investor_metrics.period import iso_utc
from include.investor_metrics.weekly import archive
from include.investor_metrics.weekly.alerts import evaluate
from include.investor_metrics.weekly.alerts import store as alert_store
from tests.unit.weekly.alerts.sample_weeks import (
    BAD_WEEK,
    END,
    END_ISO,
    QUIET_HISTORY,
    healthy_snapshot,
    period_alerts,
    with_values,
)


def count_rows(conn) -> int:
    with conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM investor_metrics.alerts")
        return cur.fetchone()[0]


def test_upsert_twice_keeps_one_row_and_the_notified_flag(metrics_db):
    conn = connect(metrics_db)
    try:
        first = alert_store.upsert_alerts(conn, period_alerts(END, system_health__uptime_percentage=98.0),
                                          run_id="manual__1", period_end=END)
        assert [a["rule"] for a in first] == ["uptime_below_target"]
        assert first[0]["run_id"] == "manual__1" and first[0]["notified"] is False
        assert alert_store.mark_notified(conn, [first[0]["id"]]) == [first[0]["id"]]
        assert alert_store.mark_notified(conn, [first[0]["id"]]) == []  # already

        again = alert_store.upsert_alerts(conn, period_alerts(END, system_health__uptime_percentage=97.0),
                                          run_id="manual__2", period_end=END)
        assert count_rows(conn) == 1
        (stored,) = alert_store.alerts_for_period(conn, END)
        assert stored == again[0]
        assert stored["id"] == first[0]["id"]
        assert stored["notified"] is True  # kept once true
        assert (stored["value"], stored["run_id"]) == (97.0, "manual__2")
        assert "97%" in stored["message"]
        assert list(stored) == [*evaluate.ALERT_FIELDS, "run_id", "notified", "series"]
        assert stored["triggered_at"] == END_ISO
    finally:
        conn.close()


def test_a_rerun_removes_an_alert_that_no_longer_fires(metrics_db):
    other = END - timedelta(days=7)
    conn = connect(metrics_db)
    try:
        alert_store.upsert_alerts(conn, period_alerts(END, **BAD_WEEK), run_id="r1", period_end=END)
        alert_store.upsert_alerts(conn, period_alerts(other, **BAD_WEEK), run_id="r1", period_end=other)
        incident = {"dedup_key": f"critical_system_failure|api|{END_ISO}", "rule": "critical_system_failure",
                    "severity": "critical", "category": "system", "title": "api down", "message": "api down",
                    "metric": None, "value": 3, "threshold": 3, "period_start": END_ISO,
                    "period_end": END_ISO, "triggered_at": END_ISO, "service": "api"}
        alert_store.upsert_alerts(conn, [incident], run_id="probe")
        assert count_rows(conn) == 7

        # The period is rerun after a source fix: the uptime is now fine.
        fixed = {**BAD_WEEK, "system_health__uptime_percentage": 99.9}
        alert_store.upsert_alerts(conn, period_alerts(END, **fixed), run_id="r2", period_end=END)
        weekly = [a for a in alert_store.alerts_for_period(conn, END) if "service" not in a]
        assert sorted(a["rule"] for a in weekly) == ["ai_accuracy_below_target", "mrr_growth_below_target"]
        assert len(alert_store.alerts_for_period(conn, other)) == 3  # another period is untouched
        probe = [a for a in alert_store.all_alerts(conn) if a.get("service") == "api"]
        assert probe and probe[0]["id"] == evaluate.alert_id(incident["dedup_key"])  # a probe incident stays

        # Nothing fires any more: an empty evaluation clears the period's weekly alerts.
        assert alert_store.upsert_alerts(conn, [], run_id="r3", period_end=END) == []
        assert [a.get("service") for a in alert_store.alerts_for_period(conn, END)] == ["api"]
        assert count_rows(conn) == 4
    finally:
        conn.close()


def test_a_rerun_keeps_an_emailed_alert_as_superseded(metrics_db):
    """SPEC 6: an alert that was e-mailed (notified, or a delivered send-log row) and that a rerun no
    longer raises is kept with superseded_at; it is not a current alert; raised again, it is."""
    conn = connect(metrics_db)
    try:
        first = {a["rule"]: a for a in alert_store.upsert_alerts(conn, period_alerts(END, **BAD_WEEK),
                                                                 run_id="r1", period_end=END)}
        alert_store.mark_notified(conn, [first["uptime_below_target"]["id"]])
        with conn.cursor() as cur:
            cur.execute("INSERT INTO investor_metrics.send_log (kind, send_key, recipient, status) "
                        "VALUES ('alert', %s, 'ann@investors.example', 'sent')",
                        (first["ai_accuracy_below_target"]["id"],))
        conn.commit()
        assert alert_store.upsert_alerts(conn, [], run_id="r2", period_end=END) == []
        assert alert_store.alerts_for_period(conn, END) == []
        kept = {a["rule"]: a for a in alert_store.all_alerts(conn)}
        assert set(kept) == {"uptime_below_target", "ai_accuracy_below_target"}  # mrr growth: deleted
        assert all(a["superseded_at"] for a in kept.values())
        superseded_at = kept["uptime_below_target"]["superseded_at"]
        alert_store.upsert_alerts(conn, [], run_id="r3", period_end=END)  # a second rerun keeps the instant
        instants = {a["rule"]: a["superseded_at"] for a in alert_store.all_alerts(conn)}
        assert instants["uptime_below_target"] == superseded_at
        again = alert_store.upsert_alerts(conn, period_alerts(END, system_health__uptime_percentage=98.0),
                                          run_id="r4", period_end=END)
        current = [a["id"] for a in alert_store.alerts_for_period(conn, END)]
        assert current == [first["uptime_below_target"]["id"]]
        assert again[0]["notified"] is True and "superseded_at" not in again[0]
    finally:
        conn.close()


def on_demand_alerts(end: datetime, **values) -> list[dict]:
    snap = with_values(healthy_snapshot(iso_utc(end)), **values)
    snap["period"]["type"] = "on_demand"
    return evaluate.evaluate(snap, thresholds={}, previous_churned=QUIET_HISTORY)


def test_an_on_demand_report_has_alerts_of_its_own(metrics_db):
    """Same period end as a week: its own dedup keys and ids, its own series; storing it (or a rerun
    of it that raises nothing) never touches the week's alerts (SPEC 2, 6)."""
    weekly, on_demand = period_alerts(END, **BAD_WEEK), on_demand_alerts(END, **BAD_WEEK)
    assert {a["rule"] for a in weekly} == {a["rule"] for a in on_demand}
    assert not {a["id"] for a in weekly} & {a["id"] for a in on_demand}
    assert on_demand[0]["id"] == evaluate.alert_id(f"{on_demand[0]['rule']}|on_demand|{END_ISO}")
    conn = connect(metrics_db)
    try:
        alert_store.upsert_alerts(conn, weekly, run_id="scheduled__1", period_end=END)
        stored = alert_store.upsert_alerts(conn, on_demand, run_id="manual__1", period_end=END,
                                           series="on_demand")
        assert {a["series"] for a in stored} == {"on_demand"}
        assert count_rows(conn) == 2 * len(weekly)
        assert [a["id"] for a in alert_store.alerts_for_period(conn, END)] == [a["id"] for a in weekly]
        assert [a["id"] for a in alert_store.alerts_for_period(conn, END, series="on_demand")] == [
            a["id"] for a in on_demand]
        alert_store.upsert_alerts(conn, [], run_id="manual__2", period_end=END, series="on_demand")
        assert alert_store.alerts_for_period(conn, END, series="on_demand") == []
        assert [a["id"] for a in alert_store.alerts_for_period(conn, END)] == [a["id"] for a in weekly]
        with pytest.raises(ValueError, match="series"):
            alert_store.alerts_for_period(conn, END, series="backfill")
    finally:
        conn.close()


def test_upsert_refuses_alerts_of_another_period(metrics_db):
    conn = connect(metrics_db)
    try:
        with pytest.raises(ValueError, match="not of the period"):
            alert_store.upsert_alerts(conn, period_alerts(END, **BAD_WEEK), run_id="r",
                                      period_end=END - timedelta(days=7))
        assert count_rows(conn) == 0
    finally:
        conn.close()


def test_all_alerts_newest_first_then_severity_then_rule(metrics_db):
    conn = connect(metrics_db)
    try:
        ends = [END - timedelta(days=7 * k) for k in (2, 0, 1)]
        for end in ends:
            alert_store.upsert_alerts(conn, period_alerts(end, **BAD_WEEK, system_health__status="critical"),
                                      run_id="r", period_end=end)
        listed = alert_store.all_alerts(conn)
        keys = [(a["triggered_at"], a["severity"], a["rule"]) for a in listed]
        assert keys == sorted(keys, key=lambda k: (
            -datetime.fromisoformat(k[0].replace("Z", "+00:00")).timestamp(), SEVERITY_RANK[k[1]], k[2]))
        assert listed[0]["triggered_at"] == END_ISO and listed[0]["rule"] == "critical_system_failure"
        assert [a["rule"] for a in listed[:4]] == ["critical_system_failure", "uptime_below_target",
                                                   "ai_accuracy_below_target", "mrr_growth_below_target"]
        assert len(listed) == 12
        assert {a["severity"] for a in alert_store.all_alerts(conn, severity="critical")} == {"critical"}
        assert len(alert_store.all_alerts(conn, since=END - timedelta(days=7))) == 8
        assert len(alert_store.all_alerts(conn, limit=5)) == 5
        with pytest.raises(ValueError, match="severity"):
            alert_store.all_alerts(conn, severity="urgent")
        json.dumps(listed)  # JSON-ready
    finally:
        conn.close()


def test_the_store_works_through_a_psycopg3_connection(metrics_db):
    psycopg = pytest.importorskip("psycopg")
    from psycopg.rows import dict_row

    kwargs = {"host": metrics_db.host, "port": metrics_db.port, "dbname": metrics_db.dbname,
              "user": metrics_db.user}
    for row_factory in (None, dict_row):  # PostgresHook may hand out either row type
        conn = psycopg.connect(**kwargs, **({"row_factory": row_factory} if row_factory else {}))
        try:
            stored = alert_store.upsert_alerts(conn, period_alerts(END, **BAD_WEEK), run_id="hook",
                                               period_end=END)
            assert len(stored) == 3
            week_before = END - timedelta(days=7)
            assert alert_store.upsert_alerts(conn, [], run_id="hook", period_end=week_before) == []
            assert len(alert_store.mark_notified(conn, [a["id"] for a in stored])) in (0, 3)
            assert [a["id"] for a in alert_store.alerts_for_period(conn, END)] == [a["id"] for a in stored]
            assert all(a["notified"] for a in alert_store.all_alerts(conn))
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
                alert_store.upsert_alerts(conn, period_alerts(end, **BAD_WEEK), run_id=f"w{worker}",
                                          period_end=end)
                alert_store.publish_alert_history(conn, str(tmp_path))
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
        stored = alert_store.all_alerts(conn)
        assert count_rows(conn) == len(expected) == 24
    finally:
        conn.close()
    assert {a["id"] for a in stored} == set(expected)
    assert evaluate.snapshot_alerts(stored) == [expected[a["id"]] for a in stored]
    history = archive.read_json(str(tmp_path), archive.ALERT_HISTORY_NAME)
    assert history["alerts"] == stored
    assert [p.name for p in tmp_path.iterdir()] == [archive.ALERT_HISTORY_NAME]  # no temporary file left


def test_publish_alert_history_writes_every_alert_newest_first(metrics_db, tmp_path, monkeypatch):
    location = str(tmp_path / "archive")
    conn = connect(metrics_db)
    try:
        older = END - timedelta(days=7)
        alert_store.upsert_alerts(conn, period_alerts(older, **BAD_WEEK), run_id="backfill__1",
                                  period_end=older)
        path = alert_store.publish_alert_history(conn, location)
        assert path.endswith("alert_history.json")
        alert_store.upsert_alerts(conn, period_alerts(END, system_health__status="critical"),
                                  run_id="scheduled__2", period_end=END)
        alert_store.publish_alert_history(conn, location)
        doc = archive.read_json(location, archive.ALERT_HISTORY_NAME)
        assert doc["generated_from"] == "investor_metrics.alerts"
        assert [(a["period_end"], a["rule"]) for a in doc["alerts"]] == [
            (END_ISO, "critical_system_failure"),
            ("2026-11-15T09:00:00Z", "uptime_below_target"),
            ("2026-11-15T09:00:00Z", "ai_accuracy_below_target"),
            ("2026-11-15T09:00:00Z", "mrr_growth_below_target"),
        ]
        assert doc["alerts"][0]["run_id"] == "scheduled__2" and doc["alerts"][0]["notified"] is False
        assert doc["alerts"] == alert_store.all_alerts(conn)

        # A failed write leaves the previous file whole, and the lock is released.
        def boom(*_args, **_kwargs):
            raise OSError("disk full")

        alert_store.upsert_alerts(conn, period_alerts(END, **BAD_WEEK), run_id="scheduled__3", period_end=END)
        monkeypatch.setattr(archive.os, "replace", boom)
        with pytest.raises(OSError):
            alert_store.publish_alert_history(conn, location)
        assert archive.read_json(location, archive.ALERT_HISTORY_NAME) == doc
        monkeypatch.undo()
        alert_store.publish_alert_history(conn, location)
        assert len(archive.read_json(location, archive.ALERT_HISTORY_NAME)["alerts"]) == 6
        assert sorted(os.listdir(location)) == ["alert_history.json"]
    finally:
        conn.close()

