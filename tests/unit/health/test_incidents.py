"""health/incidents.py: three failed probes in a row open one critical_system_failure incident, the
first ok probe resolves it; each e-mail goes out exactly once (SMTP failures, retries, concurrent
rounds), threaded under the opening."""

from __future__ import annotations

import json
import threading

import pytest

from include.investor_metrics.db import connect
from include.investor_metrics.health.incidents import (
    handle_incidents,
    incident_alert,
    incident_message,
    resolution_message,
)
from include.investor_metrics.health.probe import probe_all, record_checks
from include.investor_metrics.weekly.alerts import evaluate
from tests.conftest import free_port
from tests.unit.health.peers import (  # noqa: F401 - env, metrics_conn, service: fixtures
    INVESTORS,
    SENDER,
    TIMEOUT,
    at,
    checks,
    env,
    incidents,
    iso,
    metrics_conn,
    outbox,
    play_round,
    rows,
    service,
)


def test_incident_messages_escape_what_a_service_said_and_thread_together():
    alert = incident_alert("api", at(1), at(3), "RemoteProtocolError: <script>x</script>", tz="UTC")
    alert["triggered_at"] = alert["period_end"]
    opening = incident_message(alert, recipients=INVESTORS, sender=SENDER, tz="UTC",
                                      airflow_url="javascript:alert(1)")
    html = opening.get_body(("html",)).get_content()
    assert "<script>" not in html and "&lt;script&gt;" in html and "javascript:" not in html
    assert opening["Subject"] == "[CRITICAL] ChatterFix: api is down: 3 health probes failed in a row"
    closing = resolution_message({**alert, "resolved_at": at(30)}, recipients=INVESTORS, sender=SENDER,
                                        tz="Europe/Paris")
    assert closing["In-Reply-To"] == opening["Message-ID"]
    assert closing["Subject"] == "[RESOLVED] ChatterFix: api answers again after 2 h 25 min down"
    assert "Answered at:   20 Nov 2026 13:30 (Europe/Paris)" in closing.get_body(("plain",)).get_content()


# --------------------------------------------------------------------------- incidents
def alert_mails(env) -> list:  # noqa: F811 - the fixtures
    return [m for m in outbox(env) if m["Subject"].startswith("[CRITICAL]")]


def resolution_mails(env) -> list:  # noqa: F811 - the fixtures
    return [m for m in outbox(env) if m["Subject"].startswith("[RESOLVED]")]


def test_three_failures_open_one_incident_and_recovery_resolves_it(env, service, metrics_conn):  # noqa: F811 - the fixtures
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
    fields = ("dedup_key", "rule", "severity", "category", "service", "value", "threshold", "period_start",
              "period_end", "triggered_at", "resolved_at", "notified")
    assert {k: incident[k] for k in fields} == {
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


def test_an_smtp_failure_fails_the_round_and_the_retry_sends_the_alert_once(
        env, service, metrics_conn, monkeypatch):  # noqa: F811 - the fixtures
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


def test_concurrent_rounds_open_one_incident(env, service, metrics_db):  # noqa: F811 - the fixtures
    api = service().down()
    services = {"api": api.url}
    conn = connect(metrics_db)
    try:
        record_checks(conn, at(0), probe_all(services, timeout=TIMEOUT))
        record_checks(conn, at(1), probe_all(services, timeout=TIMEOUT))
        record_checks(conn, at(2), probe_all(services, timeout=TIMEOUT))
    finally:
        conn.close()
    results, errors = [], []

    def handle():
        own = connect(metrics_db)
        try:
            results.append(handle_incidents(own, services, at(2), run_id="concurrent"))
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
