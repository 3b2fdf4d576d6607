"""The investor e-mails end to end: a real SMTP server (aiosmtpd on 127.0.0.1, the project's sink)
and a real PostgreSQL send log (SPEC section 8, issue 4 "Email").

Each message is read back from the sink's outbox as the receiver gets it (``.eml`` with the
envelope in ``X-Envelope-*`` headers) and parsed with the standard library's MIME parser.
"""

from __future__ import annotations

import asyncio
import copy
import email
import email.policy
import json
import re
import threading
import time
from datetime import datetime, timedelta, timezone

import pytest

from dev.stack import smtp_sink
from include.investor_metrics.db import connect
from include.investor_metrics.mail import message as email_report
from include.investor_metrics.mail import send as notify
from include.investor_metrics.mail.message import (
    BAD,
    GOOD,
    KIND_ALERT,
    KIND_WEEKLY_SUMMARY,
    build_alert_message,
    build_alert_messages,
    build_data_quality_failure,
    build_weekly_summary,
    weekly_summary_key,
)
from include.investor_metrics.settings import ConfigError
from tests.conftest import free_port

SENDER = "investors@chatterfix.example"
RECIPIENTS = ["ann@fund-a.example", "bob@fund-b.example", "cy@angels.example"]
DATA_TEAM = ["data@chatterfix.example"]
PASSWORD = "s3cr3t-Pa55word-7f1e"
SCRIPT = "<script>alert(1)</script>"
ESCAPED_SCRIPT = "&lt;script&gt;alert(1)&lt;/script&gt;"

# A real snapshot of the demo stack (SPEC section 7 shape), period ending 22 Nov 2026 09:00 UTC.
SAMPLE_SNAPSHOT = json.loads("""
{
  "timestamp": "2026-11-22T09:00:00Z",
  "generated_at": "2026-11-26T10:00:25Z",
  "period": {"start": "2026-11-15T09:00:00Z", "end": "2026-11-22T09:00:00Z", "type": "weekly"},
  "system_health": {"uptime_percentage": 99.94, "status": "healthy", "services_total": 5, "services_healthy": 5,
    "avg_response_time_ms": 214.88, "p95_response_time_ms": 671.0, "error_rate": 0.06,
    "services": {
      "api": {"healthy": true, "uptime_percentage": 99.9, "avg_response_time_ms": 149.89},
      "web": {"healthy": true, "uptime_percentage": 99.8, "avg_response_time_ms": 227.08},
      "database": {"healthy": true, "uptime_percentage": 100.0, "avg_response_time_ms": 18.55},
      "ai_gateway": {"healthy": true, "uptime_percentage": 100.0, "avg_response_time_ms": 565.06},
      "notifications": {"healthy": true, "uptime_percentage": 100.0, "avg_response_time_ms": 113.77}}},
  "ai_platform": {"total_requests": 1811, "chat_requests": 1488, "api_requests": 323, "cache_hit_rate": 29.21,
    "error_rate": 0.94, "active_providers": 4, "accuracy_rate": 95.31, "avg_latency_ms": 631.53,
    "p95_latency_ms": 1760.0,
    "providers": {
      "local": {"error_rate": 1.52, "api_requests": 35, "accuracy_rate": 95.24, "chat_requests": 163,
        "avg_latency_ms": 342.66, "cache_hit_rate": 28.28, "p95_latency_ms": 784.15, "total_requests": 198},
      "google": {"error_rate": 0.4, "api_requests": 49, "accuracy_rate": 87.69, "chat_requests": 204,
        "avg_latency_ms": 494.98, "cache_hit_rate": 34.39, "p95_latency_ms": 1351.4, "total_requests": 253},
      "openai": {"error_rate": 0.95, "api_requests": 147, "accuracy_rate": 96.94, "chat_requests": 691,
        "avg_latency_ms": 668.62, "cache_hit_rate": 28.88, "p95_latency_ms": 1674.65, "total_requests": 838},
      "anthropic": {"error_rate": 0.96, "api_requests": 92, "accuracy_rate": 96.75, "chat_requests": 430,
        "avg_latency_ms": 747.75, "cache_hit_rate": 27.59, "p95_latency_ms": 2125.05, "total_requests": 522}}},
  "financial": {"mrr": 32109.67, "arr": 385316.0, "active_customers": 127, "mrr_growth_rate": 16.1,
    "customer_growth_rate": 9.48, "new_mrr": 1740.0, "reactivation_mrr": 0.0, "expansion_mrr": 349.0,
    "contraction_mrr": 650.0, "churned_mrr": 0.0, "net_new_mrr": 1439.0, "quick_ratio": 3.21, "arpa": 252.83,
    "lead_conversion_rate": 15.38},
  "business_health": {"churn_risk": "low", "growth_trajectory": "strong", "churned_customers": 0,
    "logo_churn_rate": 0.0, "revenue_churn_rate": 2.12, "churn_rate_28d": 0.86,
    "customer_satisfaction": {"nps": 41.86, "responses": 86}, "platform_utilization": 95.28,
    "at_risk_customers": 11, "mrr_at_risk": 1943.33},
  "data_quality": {"success": true, "warnings": []},
  "alerts": []
}
""")
PERIOD_END = datetime(2026, 11, 22, 9, tzinfo=timezone.utc)


def _iso(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def make_alert(rule="uptime_below_target", severity="high", *, value=98.1, threshold=99.5,
               metric="system_health.uptime_percentage", message="Uptime was 98.1% against a 99.5% target",
               **extra) -> dict:
    alert = {
        "id": f"{rule}-2026-11-22", "rule": rule, "severity": severity, "category": "system",
        "title": rule.replace("_", " ").capitalize(), "message": message, "metric": metric,
        "value": value, "threshold": threshold, "period_start": "2026-11-15T09:00:00Z",
        "period_end": "2026-11-22T09:00:00Z", "triggered_at": "2026-11-22T09:00:00Z",
        "run_id": "scheduled__2026-11-22T09:00:00+00:00", "notified": False,
    }
    alert.update(extra)
    return alert


@pytest.fixture()
def snapshot() -> dict:
    return copy.deepcopy(SAMPLE_SNAPSHOT)


@pytest.fixture()
def history(snapshot) -> list[dict]:
    """The 11 weeks before the sample one (fabricated: steady growth, one bad uptime week),
    newest first as ``store.history`` returns them."""
    weeks = []
    for k in range(1, 12):
        week = copy.deepcopy(snapshot)
        end = PERIOD_END - timedelta(days=7 * k)
        week["period"] = {"start": _iso(end - timedelta(days=7)), "end": _iso(end), "type": "backfill"}
        week["financial"]["mrr"] = round(snapshot["financial"]["mrr"] * 0.97 ** k, 2)
        week["financial"]["active_customers"] = snapshot["financial"]["active_customers"] - 3 * k
        week["system_health"]["uptime_percentage"] = 99.2 if k == 5 else 99.9
        week["ai_platform"]["total_requests"] = int(snapshot["ai_platform"]["total_requests"] * 0.95 ** k)
        week["business_health"]["logo_churn_rate"] = 0.8
        weeks.append(week)
    return weeks


class Sink:
    """The project's SMTP sink on a port of its own; ``stop``/``start`` simulate an outage."""

    def __init__(self, outbox, port, handler=None, **smtp_kwargs):
        self.outbox, self.port, self.handler, self.smtp_kwargs = outbox, port, handler, smtp_kwargs
        self.controller = None

    def start(self):
        if self.handler is None and not self.smtp_kwargs:
            self.controller = smtp_sink.start(self.outbox, port=self.port)
        else:
            from aiosmtpd.controller import Controller

            handler = self.handler or smtp_sink.OutboxHandler(self.outbox)
            self.controller = Controller(handler, hostname="127.0.0.1", port=self.port, **self.smtp_kwargs)
            self.controller.start()
        return self

    def stop(self):
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    def files(self):
        return smtp_sink.messages(self.outbox)

    def parsed(self):
        return [email.message_from_bytes(path.read_bytes(), policy=email.policy.default) for path in self.files()]


@pytest.fixture()
def sink(tmp_path):
    box = Sink(tmp_path / "outbox", free_port()).start()
    yield box
    box.stop()


def sink_env(port: int, **extra) -> dict:
    return {"SMTP_SERVER": "127.0.0.1", "SMTP_PORT": str(port), "INVESTOR_EMAIL": SENDER,
            "SMTP_STARTTLS": "false", "SMTP_SSL": "false", "INVESTOR_EMAILS": ", ".join(RECIPIENTS), **extra}


@pytest.fixture(autouse=True)
def no_airflow_smtp_connection(monkeypatch):
    """Tests choose their SMTP settings; a developer's AIRFLOW_CONN_SMTP_DEFAULT must not leak in."""
    monkeypatch.delenv("AIRFLOW_CONN_SMTP_DEFAULT", raising=False)


def psycopg3_connect(settings, **kwargs):
    import psycopg

    return psycopg.connect(host=settings.host, port=settings.port, dbname=settings.dbname,
                           user=settings.user, password=settings.password, **kwargs)


def summary(snapshot, history, **kwargs):
    options = {"previous": history[0] if history else None, "history": history, "recipients": RECIPIENTS, "sender": SENDER,
               "airflow_url": "http://localhost:8080/dags/investor_metrics/runs/scheduled__2026-11-22",
               "tz": "UTC"}
    options.update(kwargs)
    return build_weekly_summary(snapshot, **options)


def html_of(message) -> str:
    return message.get_body(("html",)).get_content()


def text_of(message) -> str:
    return message.get_body(("plain",)).get_content()


def envelope_to(message) -> list[str]:
    return sorted(address.strip() for address in str(message["X-Envelope-To"]).split(","))


# --------------------------------------------------------------------------- weekly summary
def test_weekly_summary_reaches_every_recipient_once(sink, metrics_conn, snapshot, history):
    smtp = notify.smtp_connection(env=sink_env(sink.port))
    key = weekly_summary_key(snapshot)
    assert key == "2026-11-22T09:00:00Z"

    assert notify.send_once(metrics_conn, kind=KIND_WEEKLY_SUMMARY, key=key, message=summary(snapshot, history),
                            run_id="scheduled__2026-11-22T09:00:00+00:00", smtp_conn=smtp) is True

    # One message per recipient, each addressed to that recipient alone.
    paths = sink.files()
    assert len(paths) == len(RECIPIENTS)
    received = {}
    for path in paths:
        raw = path.read_bytes()
        assert len(raw) < 300_000
        one = email.message_from_bytes(raw, policy=email.policy.default)
        [rcpt] = envelope_to(one)
        assert [a.addr_spec for a in one["To"].addresses] == [rcpt]
        received[rcpt] = one
    assert sorted(received) == sorted(RECIPIENTS)
    msg = received[RECIPIENTS[0]]
    assert str(msg["X-Envelope-From"]) == SENDER
    assert str(msg["Subject"]) == "ChatterFix investor metrics — week ending 22 Nov 2026: MRR $32,110 (+16.1% MoM)"
    assert msg["From"].addresses[0].addr_spec == SENDER
    # (a long header may be folded onto a continuation line; the id is the same)
    for rcpt, one in received.items():
        assert one["Message-ID"].strip() == email_report.message_id(KIND_WEEKLY_SUMMARY, key, SENDER, rcpt)
    assert len({one["Message-ID"].strip() for one in received.values()}) == len(RECIPIENTS)
    assert msg["Message-ID"].endswith("@chatterfix.example>")

    # multipart/mixed [ multipart/alternative [ text/plain, multipart/related [ html, 4 × png ] ], json ]
    assert msg.get_content_type() == "multipart/mixed"
    alternative, attachment = msg.get_payload()
    assert alternative.get_content_type() == "multipart/alternative"
    text_part, related = alternative.get_payload()
    assert text_part.get_content_type() == "text/plain"
    assert related.get_content_type() == "multipart/related"
    html_part, *images = related.get_payload()
    assert html_part.get_content_type() == "text/html"
    assert [image.get_content_type() for image in images] == ["image/png"] * 4
    assert all(image.get_content().startswith(b"\x89PNG\r\n\x1a\n") for image in images)
    assert all(image.get_content_disposition() == "inline" for image in images)
    html = html_part.get_content()
    referenced = re.findall(r"""src=["']cid:([^"']+)["']""", html)
    assert len(referenced) == 4
    assert set(referenced) == {image["Content-ID"].strip("<>") for image in images}
    assert "<script" not in html.lower() and "http://" not in html.replace(
        "http://localhost:8080/dags/investor_metrics/runs/scheduled__2026-11-22", "")

    # The snapshot, attached as the archive names it.
    assert attachment.get_content_type() == "application/json"
    assert attachment.get_filename() == "metrics_2026-11-22_09-00-00.json"
    assert json.loads(attachment.get_content()) == snapshot

    # The same numbers in both alternatives.
    text = text_part.get_content()
    for number in ("$32,110", "$385,316", "127", "16.1%", "99.94%", "1,811", "95.3%", "41.9", "3.21"):
        assert number in text and number in html, number

    status = notify.send_status(metrics_conn, KIND_WEEKLY_SUMMARY, key)
    assert status["status"] == "sent" and sorted(status["sent_to"]) == sorted(RECIPIENTS)
    for rcpt, row in status["rows"].items():
        assert row["status"] == "sent" and row["sent_at"] is not None and row["attempts"] == 1
        assert row["message_id"] == received[rcpt]["Message-ID"].strip() and row["subject"] == str(msg["Subject"])
        assert row["run_id"] == "scheduled__2026-11-22T09:00:00+00:00"
        assert row["lease_owner"] is None and row["lease_expires_at"] is None

    # A retry (or a rerun of the period) sends nothing more.
    assert notify.send_once(metrics_conn, kind=KIND_WEEKLY_SUMMARY, key=key, message=summary(snapshot, history),
                            run_id="manual__rerun", smtp_conn=smtp) is False
    assert len(sink.files()) == len(RECIPIENTS)
    rows = notify.send_status(metrics_conn, KIND_WEEKLY_SUMMARY, key)["rows"].values()
    assert {row["run_id"] for row in rows} == {"scheduled__2026-11-22T09:00:00+00:00"}


def test_each_message_shows_only_its_own_recipient(sink, metrics_conn, snapshot, history):
    """Point 11 of issue 13: no investor sees another's address, in any header or the envelope."""
    smtp = notify.smtp_connection(env=sink_env(sink.port))
    assert notify.send_once(metrics_conn, kind=KIND_WEEKLY_SUMMARY, key=weekly_summary_key(snapshot),
                            message=summary(snapshot, history), run_id="r", smtp_conn=smtp)
    alert = build_alert_message(make_alert(), recipients=RECIPIENTS, sender=SENDER, tz="UTC")
    assert notify.send_once(metrics_conn, kind=KIND_ALERT, key="a1", message=alert, run_id="r", smtp_conn=smtp)
    files = sink.files()
    assert len(files) == 2 * len(RECIPIENTS)
    for path in files:
        one = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        [own] = envelope_to(one)
        headers = "\n".join(f"{name}: {value}" for name, value in one.items() if not name.startswith("X-Envelope"))
        for other in set(RECIPIENTS) - {own}:
            assert other not in headers, (own, other)
        assert own in str(one["To"]) and one["Cc"] is None and one["Bcc"] is None


def test_concurrent_senders_of_one_key_deliver_one_message(sink, metrics_db, snapshot, history):
    """Four workers (psycopg2 and psycopg 3, one in autocommit mode) send the same summary at once."""
    smtp = notify.smtp_connection(env=sink_env(sink.port))
    connections = [connect(metrics_db), connect(metrics_db), psycopg3_connect(metrics_db),
                   psycopg3_connect(metrics_db, autocommit=True)]
    barrier = threading.Barrier(len(connections))
    results, errors = [], []

    def worker(conn):
        try:
            message = summary(snapshot, history)
            barrier.wait()
            results.append(notify.send_once(conn, kind=KIND_WEEKLY_SUMMARY, key=weekly_summary_key(snapshot),
                                            message=message, run_id="r", smtp_conn=smtp))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(conn,)) for conn in connections]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    try:
        assert not errors
        assert sorted(results) == [False, False, False, True]  # the first holds every lease, the others wait
        assert sorted(envelope_to(m)[0] for m in sink.parsed()) == sorted(RECIPIENTS)  # one copy each
        assert connections[3].autocommit is True  # restored
    finally:
        for conn in connections:
            conn.close()


class SlowOutbox(smtp_sink.OutboxHandler):
    """Takes a second to accept each message, and says when a message is being received."""

    def __init__(self, outbox):
        super().__init__(outbox)
        self.receiving = threading.Event()

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        self.receiving.set()
        await asyncio.sleep(1.0)
        return await super().handle_DATA(server, session, envelope)


def test_second_sender_waits_for_the_first_and_sends_nothing(tmp_path, metrics_db, snapshot, history):
    handler = SlowOutbox(tmp_path / "outbox")
    slow = Sink(tmp_path / "outbox", free_port(), handler=handler).start()
    smtp = notify.smtp_connection(env=sink_env(slow.port))
    first_conn, second_conn = connect(metrics_db), psycopg3_connect(metrics_db)
    outcome = {}

    def first():
        outcome["first"] = notify.send_once(first_conn, kind=KIND_WEEKLY_SUMMARY, key=weekly_summary_key(snapshot),
                                            message=summary(snapshot, history), run_id="first", smtp_conn=smtp)

    try:
        thread = threading.Thread(target=first)
        thread.start()
        assert handler.receiving.wait(30)  # the first sender is mid-conversation, holding the leases
        started = time.monotonic()
        second = notify.send_once(second_conn, kind=KIND_WEEKLY_SUMMARY, key=weekly_summary_key(snapshot),
                                  message=summary(snapshot, history), run_id="second", smtp_conn=smtp)
        waited = time.monotonic() - started
        thread.join(30)
        assert outcome["first"] is True and second is False
        assert waited > 0.5  # it waited for the first sender's leases instead of sending
        assert len(slow.files()) == len(RECIPIENTS)
    finally:
        slow.stop()
        first_conn.close()
        second_conn.close()


class RejectingOutbox(smtp_sink.OutboxHandler):
    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        return "554 5.7.1 Message rejected (test)"


@pytest.mark.parametrize("outage", ["server stopped", "wrong port", "message rejected"])
def test_smtp_failure_raises_marks_nothing_and_the_retry_sends_exactly_one(
        outage, tmp_path, sink, metrics_conn, snapshot, history):
    key = weekly_summary_key(snapshot)
    good = notify.smtp_connection(env=sink_env(sink.port))
    bad, rejecting = good, None
    if outage == "server stopped":
        sink.stop()
    elif outage == "wrong port":
        bad = notify.smtp_connection(env=sink_env(free_port()))
    else:
        rejecting = Sink(tmp_path / "rejected", free_port(), handler=RejectingOutbox(tmp_path / "rejected")).start()
        bad = notify.smtp_connection(env=sink_env(rejecting.port))

    try:
        with pytest.raises(notify.EmailDeliveryError, match=r"could not send .* through 127\.0\.0\.1:\d+ \(connection 'smtp_default'"):
            notify.send_once(metrics_conn, kind=KIND_WEEKLY_SUMMARY, key=key, message=summary(snapshot, history),
                             run_id="try-1", smtp_conn=bad)
    finally:
        if rejecting is not None:
            rejecting.stop()
    status = notify.send_status(metrics_conn, KIND_WEEKLY_SUMMARY, key)
    assert status["sent_to"] == []
    # deferred (a rejected message: each tried) or not attempted after the link failed (pending):
    # all owed, none left leased
    statuses = [row["status"] for row in status["rows"].values()]
    assert statuses[0] == "deferred" and set(statuses) <= {"deferred", "pending"}, statuses
    assert sink.files() == []

    if outage == "server stopped":
        sink.start()
    assert notify.send_once(metrics_conn, kind=KIND_WEEKLY_SUMMARY, key=key, message=summary(snapshot, history),
                            run_id="try-2", smtp_conn=good) is True
    assert notify.send_once(metrics_conn, kind=KIND_WEEKLY_SUMMARY, key=key, message=summary(snapshot, history),
                            run_id="try-3", smtp_conn=good) is False
    assert len(sink.files()) == len(RECIPIENTS)
    rows = notify.send_status(metrics_conn, KIND_WEEKLY_SUMMARY, key)["rows"].values()
    assert {(row["status"], row["run_id"]) for row in rows} == {("sent", "try-2")}


def test_every_value_from_the_data_is_html_escaped(snapshot, history):
    snapshot["ai_platform"]["providers"][SCRIPT] = {"total_requests": 5, "accuracy_rate": 90.0,
                                                    "avg_latency_ms": 100.0}
    snapshot["system_health"]["services"][SCRIPT] = {"healthy": False, "uptime_percentage": 1.0}
    snapshot["alerts"] = [make_alert(message=f"Customer {SCRIPT} churned", title=f"Title {SCRIPT}")]
    snapshot["data_quality"]["warnings"] = [f"warning {SCRIPT}"]
    msg = summary(snapshot, history, airflow_url="javascript:alert(1)")
    html = html_of(msg)

    assert "<script" not in html.lower()
    assert "javascript:" not in html  # only http(s) links are rendered
    assert html.count(ESCAPED_SCRIPT) == 5  # provider, service, alert title, alert message, warning
    assert f"Customer {SCRIPT} churned" in text_of(msg)  # plain text is shown as text, never rendered

    alert_html = html_of(build_alert_message(make_alert(message=SCRIPT, title=SCRIPT), recipients=RECIPIENTS,
                                             sender=SENDER, tz="UTC"))
    assert "<script" not in alert_html.lower() and ESCAPED_SCRIPT in alert_html
    failure_html = html_of(build_data_quality_failure(f"column name {SCRIPT} is null", report_path=SCRIPT,
                                                      period=snapshot["period"], recipients=DATA_TEAM,
                                                      sender=SENDER, tz="UTC"))
    assert "<script" not in failure_html.lower() and ESCAPED_SCRIPT in failure_html


def kpi_cell(html: str, key: str) -> tuple[str, str, str]:
    """(tone, colour, text) of the change cell of the KPI row ``key``."""
    row = re.search(rf'<tr data-kpi="{key}">(.*?)</tr>', html, re.S).group(1)
    cell = re.search(r'data-tone="(\w+)" style="[^"]*color:(#[0-9a-f]{6});[^"]*">(.*?)</td>', row, re.S)
    return cell.group(1), cell.group(2), cell.group(3)


def test_changes_are_green_when_better_and_red_when_worse(snapshot, history):
    previous = copy.deepcopy(history[0])
    previous["business_health"]["logo_churn_rate"] = 1.5  # churn went down to 0.0: good news
    previous["system_health"]["avg_response_time_ms"] = 150.0  # response time went up: bad news
    previous["financial"]["mrr"] = 30000.0  # MRR went up: good news
    html = html_of(summary(snapshot, history, previous=previous))
    assert kpi_cell(html, "logo_churn_rate") == ("good", GOOD, "▼&nbsp;-1.50 pp")
    assert kpi_cell(html, "avg_response_time_ms") == ("bad", BAD, "▲&nbsp;+65 ms")
    assert kpi_cell(html, "mrr") == ("good", GOOD, "▲&nbsp;+$2,110 (+7.0%)")
    assert kpi_cell(html, "arr")[0] == "neutral"  # unchanged

    previous["business_health"]["logo_churn_rate"] = 0.0
    snapshot["business_health"]["logo_churn_rate"] = 2.4  # churn went up: bad news
    snapshot["financial"]["mrr"] = 28000.0
    html = html_of(summary(snapshot, history, previous=previous))
    assert kpi_cell(html, "logo_churn_rate") == ("bad", BAD, "▲&nbsp;+2.40 pp")
    assert kpi_cell(html, "mrr") == ("bad", BAD, "▼&nbsp;-$2,000 (-6.7%)")
    assert "+2.40 pp" in text_of(summary(snapshot, history, previous=previous))

    # No previous week: no change shown, nothing coloured.
    html = html_of(summary(snapshot, history, previous=None))
    assert kpi_cell(html, "mrr")[:2] == ("neutral", email_report.NEUTRAL)


def test_subject_handles_null_growth_and_the_investor_time_zone(snapshot, history):
    snapshot["financial"]["mrr_growth_rate"] = None
    assert str(summary(snapshot, history)["Subject"]).endswith("MRR $32,110 (MoM growth n/a)")
    snapshot["financial"]["mrr"] = None
    assert str(summary(snapshot, history)["Subject"]).endswith("MRR n/a (MoM growth n/a)")
    # 22 Nov 09:00 UTC is 22 Nov 01:00 in Los Angeles; a week ending at local midnight ends the day before.
    assert "week ending 22 Nov 2026" in str(summary(snapshot, history, tz="America/Los_Angeles")["Subject"])
    snapshot["period"] = {"start": "2026-11-15T23:00:00Z", "end": "2026-11-22T23:00:00Z", "type": "weekly"}
    assert "week ending 22 Nov 2026" in str(summary(snapshot, history, tz="Europe/Paris")["Subject"])


def test_trend_charts_cover_the_last_twelve_weeks(snapshot, history):
    window = email_report.trend_window(snapshot, history + [history[3]])  # a duplicate is counted once
    assert len(window) == 12
    assert window[-1] is snapshot and window[0]["period"]["end"] == "2026-09-06T09:00:00Z"
    text = text_of(summary(snapshot, history))
    assert "MRR               $22,968 (6 Sep 2026) → $32,110 (22 Nov 2026)" in text
    # With no history at all the charts still render (one point each).
    msg = summary(snapshot, [], previous=None)
    assert len([p for p in msg.walk() if p.get_content_type() == "image/png"]) == 4


# --------------------------------------------------------------------------- alerts
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
    assert str(msg["Subject"]) == "[CRITICAL] ChatterFix: uptime 98.10% below target 99.5% (week ending 22 Nov 2026)"
    assert str(dict(built)[failure["id"]]["Subject"]) == (
        "[CRITICAL] ChatterFix: Service api failed 3 probes in a row (week ending 22 Nov 2026)")
    titled = make_alert("critical_system_failure", "critical", title="Critical: the platform was in a critical "
                        "state in the week ending 22 Nov 2026", value="critical", threshold=None)
    assert str(build_alert_message(titled, recipients=RECIPIENTS, sender=SENDER, tz="UTC")["Subject"]) == (
        "[CRITICAL] ChatterFix: Critical: the platform was in a critical state in the week ending 22 Nov 2026")
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
    assert notify.send_status(metrics_conn, KIND_ALERT, critical["id"])["status"] == "sent"

    # A rerun of the period (same alert ids) e-mails nothing more.
    assert notify.send_alert_notifications(metrics_conn, [medium, critical, failure], run_id="r2", tz="UTC") == []
    assert len(sink.files()) == 2 * len(RECIPIENTS)


def test_data_quality_failure_goes_to_the_data_team_only(sink, metrics_conn, monkeypatch, snapshot):
    for name, value in sink_env(sink.port, DATA_TEAM_EMAILS=", ".join(DATA_TEAM)).items():
        monkeypatch.setenv(name, value)
    report = "/srv/airflow/docs/investors/data_quality/index.html"
    assert notify.send_data_quality_failure(metrics_conn, "expect_column_values_to_not_be_null failed: customers.name",
                                            report_path=report, period=snapshot["period"], run_id="r1",
                                            try_number=1, tz="UTC")
    [msg] = sink.parsed()
    assert envelope_to(msg) == DATA_TEAM
    assert str(msg["Subject"]) == ("[DATA QUALITY] ChatterFix investor metrics: validation failed, "
                                   "week ending 22 Nov 2026")
    assert report in text_of(msg) and "customers.name" in html_of(msg)
    # A second callback of the same try sends nothing more ...
    assert not notify.send_data_quality_failure(metrics_conn, "again", report_path=report,
                                                period=snapshot["period"], run_id="r1", try_number=1, tz="UTC")
    assert len(sink.files()) == 1
    # ... but the run cleared and failing again (its next try) alerts again (issue 13, point 14).
    assert notify.send_data_quality_failure(metrics_conn, "again", report_path=report,
                                            period=snapshot["period"], run_id="r1", try_number=2, tz="UTC")
    assert len(sink.files()) == 2
    assert notify.send_status(metrics_conn, "data_quality_failure", "2026-11-22T09:00:00Z|r1|try 2")["status"] == "sent"

    monkeypatch.delenv("DATA_TEAM_EMAILS")
    assert notify.send_data_quality_failure(metrics_conn, "x", report_path=None, period=snapshot["period"],
                                            run_id="r2", tz="UTC") is False
    assert len(sink.files()) == 2


# --------------------------------------------------------------------------- configuration
def test_connection_from_the_seed_variables():
    from airflow.sdk import Connection

    conn = notify.smtp_connection(env=sink_env(2525))
    assert (conn.conn_type, conn.host, conn.port, conn.login) == ("smtp", "127.0.0.1", 2525, SENDER)
    assert conn.extra_dejson["disable_tls"] is True and conn.extra_dejson["disable_ssl"] is True
    assert notify.sender_address(conn) == SENDER
    hook = notify.smtp_hook(conn)
    hook.smtp_connection = hook.get_connection("ignored")
    assert (hook.host, hook.port, hook.use_ssl, hook.smtp_starttls, hook.from_email) == (
        "127.0.0.1", 2525, False, False, SENDER)

    defaults = notify.smtp_connection(env={"SMTP_SERVER": "smtp.example.com", "INVESTOR_EMAIL": SENDER})
    assert defaults.port == 587
    assert defaults.extra_dejson["disable_tls"] is False  # STARTTLS on by default (SPEC section 10)
    assert defaults.extra_dejson["disable_ssl"] is True
    ssl = notify.smtp_connection(env={"SMTP_SERVER": "smtp.example.com", "SMTP_PORT": "465", "SMTP_SSL": "true"})
    assert ssl.extra_dejson["disable_ssl"] is False and ssl.extra_dejson["disable_tls"] is True

    with pytest.raises(ConfigError, match="SMTP_SERVER"):
        notify.smtp_connection(env={"INVESTOR_EMAIL": SENDER})
    with pytest.raises(ConfigError, match="SMTP_STARTTLS"):
        notify.smtp_connection(env=sink_env(25, SMTP_STARTTLS="maybe"))
    with pytest.raises(ConfigError, match="INVESTOR_EMAIL"):
        notify.sender_address(Connection(conn_id="smtp_default", conn_type="smtp", host="h"), env={})


def test_an_airflow_connection_wins_over_the_variables(monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_SMTP_DEFAULT", json.dumps({
        "conn_type": "smtp", "host": "smtp.airflow.example", "port": 2526, "login": "relay-user",
        "password": PASSWORD, "extra": {"from_email": "reports@chatterfix.example", "disable_ssl": True},
    }))
    conn = notify.smtp_connection(env=sink_env(2525))
    assert (conn.host, conn.port, conn.login) == ("smtp.airflow.example", 2526, "relay-user")
    assert notify.sender_address(conn, env=sink_env(2525)) == "reports@chatterfix.example"
    assert PASSWORD not in notify.describe_connection(conn)


def test_a_failing_connection_lookup_falls_back_to_the_variables(monkeypatch, caplog):
    from airflow.sdk import Connection
    from airflow.sdk.exceptions import AirflowSecretsBackendAccessDenied

    def broken(cls, conn_id):
        raise RuntimeError("no API server to ask")

    monkeypatch.setattr(Connection, "get", classmethod(broken))
    assert notify.smtp_connection(env=sink_env(2525)).host == "127.0.0.1"
    assert "RuntimeError" in caplog.text

    def denied(cls, conn_id):
        raise AirflowSecretsBackendAccessDenied("denied")

    monkeypatch.setattr(Connection, "get", classmethod(denied))
    with pytest.raises(AirflowSecretsBackendAccessDenied):
        notify.smtp_connection(env=sink_env(2525))


def test_a_malformed_investor_list_is_a_clear_error(sink, metrics_conn, monkeypatch, snapshot, history):
    for name, value in sink_env(sink.port, INVESTOR_EMAILS="ann@fund-a.example, bob at fund-b").items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=r"INVESTOR_EMAILS has malformed address\(es\): bob at fund-b"):
        notify.send_weekly_summary(metrics_conn, snapshot, previous=history[0], history=history, run_id="r")
    monkeypatch.setenv("INVESTOR_EMAILS", "")
    with pytest.raises(ConfigError, match="INVESTOR_EMAILS is not set"):
        notify.send_weekly_summary(metrics_conn, snapshot, previous=history[0], history=history, run_id="r")
    assert sink.files() == []
    assert notify.send_status(metrics_conn, KIND_WEEKLY_SUMMARY, weekly_summary_key(snapshot)) is None


def test_the_seed_variables_alone_deliver_the_summary(sink, metrics_conn, monkeypatch, snapshot, history):
    for name, value in sink_env(sink.port).items():
        monkeypatch.setenv(name, value)
    assert notify.send_weekly_summary(metrics_conn, snapshot, previous=history[0], history=history, run_id="r",
                                      tz="UTC") is True
    assert notify.send_weekly_summary(metrics_conn, snapshot, previous=history[0], history=history, run_id="r",
                                      tz="UTC") is False
    received = sink.parsed()
    assert sorted(envelope_to(m)[0] for m in received) == sorted(RECIPIENTS)
    assert {str(m["X-Envelope-From"]) for m in received} == {SENDER}


# --------------------------------------------------------------------------- secrets
def _authenticator(server, session, envelope, mechanism, auth_data):
    from aiosmtpd.smtp import AuthResult, LoginPassword

    ok = isinstance(auth_data, LoginPassword) and auth_data == (SENDER.encode(), PASSWORD.encode())
    return AuthResult(success=ok, handled=False)


def _all_text(exc: BaseException) -> str:
    import traceback

    return "".join(traceback.format_exception(exc)) + repr(exc.args)


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")
def test_the_password_never_appears_in_messages_errors_or_logs(tmp_path, metrics_conn, snapshot, history, caplog):
    caplog.set_level("DEBUG")
    auth = Sink(tmp_path / "outbox", free_port(), authenticator=_authenticator, auth_require_tls=False,
                auth_required=True).start()
    try:
        wrong = notify.smtp_connection(env=sink_env(auth.port, EMAIL_PASSWORD="not-" + PASSWORD))
        with pytest.raises(notify.EmailDeliveryError, match="SMTPAuthenticationError") as failed:
            notify.send_once(metrics_conn, kind=KIND_WEEKLY_SUMMARY, key=weekly_summary_key(snapshot),
                             message=summary(snapshot, history), run_id="r", smtp_conn=wrong)
        assert PASSWORD not in _all_text(failed.value)
        assert auth.files() == []

        right = notify.smtp_connection(env=sink_env(auth.port, EMAIL_PASSWORD=PASSWORD))
        assert PASSWORD not in notify.describe_connection(right)
        assert notify.send_once(metrics_conn, kind=KIND_WEEKLY_SUMMARY, key=weekly_summary_key(snapshot),
                                message=summary(snapshot, history), run_id="r", smtp_conn=right) is True
        assert len(auth.files()) == len(RECIPIENTS)
        assert all(PASSWORD.encode() not in path.read_bytes() for path in auth.files())
    finally:
        auth.stop()
    assert PASSWORD not in caplog.text


def test_a_server_that_echoes_the_password_does_not_leak_it(sink, metrics_conn, snapshot, history, monkeypatch):
    import smtplib

    def echoing_login(self, user, password, **kwargs):
        raise smtplib.SMTPAuthenticationError(535, f"bad credentials {user}:{password}".encode())

    monkeypatch.setattr(smtplib.SMTP, "login", echoing_login)
    conn = notify.smtp_connection(env=sink_env(sink.port, EMAIL_PASSWORD=PASSWORD))
    with pytest.raises(notify.EmailDeliveryError) as failed:
        notify.send_once(metrics_conn, kind=KIND_WEEKLY_SUMMARY, key=weekly_summary_key(snapshot),
                         message=summary(snapshot, history), run_id="r", smtp_conn=conn)
    assert "***" in str(failed.value)
    assert PASSWORD not in _all_text(failed.value)
    assert failed.value.__cause__ is None and failed.value.__suppress_context__


# --------------------------------------------------------------------------- message identity
def test_message_ids_are_deterministic_per_kind_and_key(snapshot, history):
    first, second = summary(snapshot, history), summary(snapshot, history)
    assert first["Message-ID"] == second["Message-ID"]
    other_week = copy.deepcopy(snapshot)
    other_week["period"]["end"] = "2026-11-29T09:00:00Z"
    assert summary(other_week, history)["Message-ID"] != first["Message-ID"]
    assert email_report.message_id(KIND_ALERT, "x", SENDER) != email_report.message_id(KIND_WEEKLY_SUMMARY, "x", SENDER)
    assert first["Auto-Submitted"] == "auto-generated"
