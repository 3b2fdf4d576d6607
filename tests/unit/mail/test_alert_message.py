"""Alert messages (``mail/alert_message.py``): each critical or high alert on its own message,
to each recipient alone, once."""

from __future__ import annotations

from include.investor_metrics.mail import send as notify
from include.investor_metrics.mail import send_log
from include.investor_metrics.mail.alert_message import build_alert_message, build_alert_messages
from include.investor_metrics.mail.message import KIND_ALERT
from tests.unit.mail import helpers
from tests.unit.mail.helpers import RECIPIENTS, SENDER, envelope_to, html_of, make_alert, sink_env, text_of

# The shared fixtures (pytest finds a fixture by its name in the test module).
no_airflow_smtp_connection = helpers.no_airflow_smtp_connection
sink = helpers.sink


def test_a_critical_alert_gets_its_own_message(sink, metrics_conn, monkeypatch):
    critical = make_alert(severity="critical")
    failure = make_alert("critical_system_failure", "critical", value="critical", threshold=None,
                         metric="system_health.status",
                         title="Service api failed 3 probes in a row", message="api: timeout")
    medium = make_alert("mrr_growth_below_target", "medium", value=3.1, threshold=5,
                        metric="financial.mrr_growth_rate")

    built = build_alert_messages([medium, critical, failure], recipients=RECIPIENTS, sender=SENDER, tz="UTC")
    assert [alert_id for alert_id, _ in built] == [failure["id"], critical["id"]]  # medium is not urgent
    msg = dict(built)[critical["id"]]
    assert str(msg["Subject"]) == (
        "[CRITICAL] ChatterFix: uptime 98.10% below target 99.5% (week ending 22 Nov 2026)")
    assert str(dict(built)[failure["id"]]["Subject"]) == (
        "[CRITICAL] ChatterFix: Service api failed 3 probes in a row (week ending 22 Nov 2026)")
    titled = make_alert("critical_system_failure", "critical",
                        title="Critical: the platform was in a critical state in the week ending 22 Nov 2026",
                        value="critical", threshold=None)
    assert str(build_alert_message(titled, recipients=RECIPIENTS, sender=SENDER, tz="UTC")["Subject"]) == (
        "[CRITICAL] ChatterFix: Critical: the platform was in a critical state in the week ending "
        "22 Nov 2026")
    assert "Value:      98.10%" in text_of(msg) and "98.10%" in html_of(msg)

    for name, value in sink_env(sink.port).items():
        monkeypatch.setenv(name, value)
    sent = notify.send_alert_notifications(metrics_conn, [medium, critical, failure], run_id="r1", tz="UTC")
    assert sent == [failure["id"], critical["id"]]
    received = sink.parsed()
    # each alert on its own message, to each recipient alone
    assert sorted((str(m["Subject"]), envelope_to(m)[0]) for m in received) == sorted(
        (str(m["Subject"]), rcpt) for _, m in built for rcpt in RECIPIENTS)
    for message in received:
        assert message.get_body(("plain",)) is not None and message.get_body(("html",)) is not None
    assert len({str(m["Message-ID"]).strip() for m in received}) == 2 * len(RECIPIENTS)
    assert send_log.send_status(metrics_conn, KIND_ALERT, critical["id"])["status"] == "sent"

    # A rerun of the period (same alert ids) e-mails nothing more.
    assert notify.send_alert_notifications(metrics_conn, [medium, critical, failure], run_id="r2",
                                           tz="UTC") == []
    assert len(sink.files()) == 2 * len(RECIPIENTS)
