"""The weekly summary (``mail/weekly_summary.py``): received end to end through a real SMTP
server (the project's sink) and a real PostgreSQL send log, read back with the standard library's
MIME parser; escaping, the change colours, the subject in the investor time zone.
"""

from __future__ import annotations

import copy
import email
import email.policy
import json
import re

from include.investor_metrics.mail import send as notify
from include.investor_metrics.mail import send_log
from include.investor_metrics.mail.alert_message import build_alert_message
from include.investor_metrics.mail.data_quality_failure import build_data_quality_failure
from include.investor_metrics.mail.formats import BAD, GOOD, NEUTRAL
from include.investor_metrics.mail.message import KIND_WEEKLY_SUMMARY, message_id
from include.investor_metrics.mail.smtp import smtp_connection
from include.investor_metrics.mail.weekly_summary import weekly_summary_key
from tests.unit.mail import helpers
from tests.unit.mail.helpers import (
    DATA_TEAM,
    ESCAPED_SCRIPT,
    RECIPIENTS,
    SCRIPT,
    SENDER,
    envelope_to,
    html_of,
    make_alert,
    sink_env,
    summary,
    text_of,
)

# The shared fixtures (pytest finds a fixture by its name in the test module).
no_airflow_smtp_connection = helpers.no_airflow_smtp_connection
sink = helpers.sink
snapshot = helpers.snapshot
history = helpers.history


def test_weekly_summary_reaches_every_recipient_once(sink, metrics_conn, snapshot, history):
    smtp = smtp_connection(env=sink_env(sink.port))
    key = weekly_summary_key(snapshot)
    assert key == "2026-11-22T09:00:00Z"

    assert notify.send_once(metrics_conn, kind=KIND_WEEKLY_SUMMARY, key=key,
                            message=summary(snapshot, history), run_id="scheduled__2026-11-22T09:00:00+00:00",
                            smtp_conn=smtp) is True

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
    assert str(msg["Subject"]) == (
        "ChatterFix investor metrics — week ending 22 Nov 2026: MRR $32,110 (+16.1% MoM)")
    assert msg["From"].addresses[0].addr_spec == SENDER
    # (a long header may be folded onto a continuation line; the id is the same)
    for rcpt, one in received.items():
        assert one["Message-ID"].strip() == message_id(KIND_WEEKLY_SUMMARY, key, SENDER, rcpt)
    assert len({one["Message-ID"].strip() for one in received.values()}) == len(RECIPIENTS)
    assert msg["Message-ID"].endswith("@chatterfix.example>")

    # multipart/mixed [ multipart/alternative [ text/plain, multipart/related [ html, 5 × png ] ], json ]
    # (4 trend charts and the MRR movements chart)
    assert msg.get_content_type() == "multipart/mixed"
    alternative, attachment = msg.get_payload()
    assert alternative.get_content_type() == "multipart/alternative"
    text_part, related = alternative.get_payload()
    assert text_part.get_content_type() == "text/plain"
    assert related.get_content_type() == "multipart/related"
    html_part, *images = related.get_payload()
    assert html_part.get_content_type() == "text/html"
    assert [image.get_content_type() for image in images] == ["image/png"] * 5
    assert all(image.get_content().startswith(b"\x89PNG\r\n\x1a\n") for image in images)
    assert all(image.get_content_disposition() == "inline" for image in images)
    html = html_part.get_content()
    referenced = re.findall(r"""src=["']cid:([^"']+)["']""", html)
    assert len(referenced) == 5
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

    status = send_log.send_status(metrics_conn, KIND_WEEKLY_SUMMARY, key)
    assert status["status"] == "sent" and sorted(status["sent_to"]) == sorted(RECIPIENTS)
    for rcpt, row in status["rows"].items():
        assert row["status"] == "sent" and row["sent_at"] is not None and row["attempts"] == 1
        assert row["message_id"] == received[rcpt]["Message-ID"].strip()
        assert row["subject"] == str(msg["Subject"])
        assert row["run_id"] == "scheduled__2026-11-22T09:00:00+00:00"
        assert row["lease_owner"] is None and row["lease_expires_at"] is None

    # A retry (or a rerun of the period) sends nothing more.
    assert notify.send_once(metrics_conn, kind=KIND_WEEKLY_SUMMARY, key=key,
                            message=summary(snapshot, history), run_id="manual__rerun",
                            smtp_conn=smtp) is False
    assert len(sink.files()) == len(RECIPIENTS)
    rows = send_log.send_status(metrics_conn, KIND_WEEKLY_SUMMARY, key)["rows"].values()
    assert {row["run_id"] for row in rows} == {"scheduled__2026-11-22T09:00:00+00:00"}



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
    assert kpi_cell(html, "mrr")[:2] == ("neutral", NEUTRAL)


def test_subject_handles_null_growth_and_the_investor_time_zone(snapshot, history):
    snapshot["financial"]["mrr_growth_rate"] = None
    assert str(summary(snapshot, history)["Subject"]).endswith("MRR $32,110 (MoM growth n/a)")
    snapshot["financial"]["mrr"] = None
    assert str(summary(snapshot, history)["Subject"]).endswith("MRR n/a (MoM growth n/a)")
    # 22 Nov 09:00 UTC is 22 Nov 01:00 in Los Angeles; a week ending at local midnight ends the day before.
    assert "week ending 22 Nov 2026" in str(summary(snapshot, history, tz="America/Los_Angeles")["Subject"])
    snapshot["period"] = {"start": "2026-11-15T23:00:00Z", "end": "2026-11-22T23:00:00Z", "type": "weekly"}
    assert "week ending 22 Nov 2026" in str(summary(snapshot, history, tz="Europe/Paris")["Subject"])
