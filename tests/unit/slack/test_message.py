"""The Slack message of a snapshot, built without I/O: numbers, change, alerts, escaping."""

from __future__ import annotations

import json
from datetime import timezone

from include.investor_metrics.slack.message import MAX_ALERTS_LISTED, build_payload, escape, headline_rows
from tests.unit.slack.helpers import ALERT, WEEK_BEFORE, snapshot


def test_escape_the_three_characters_slack_reserves():
    assert escape("a & <b> c") == "a &amp; &lt;b&gt; c"
    assert escape("&amp;") == "&amp;amp;"  # escaped once more: shown as written


def test_headline_numbers_and_their_change_against_the_previous_week():
    rows = {r["label"]: r for r in headline_rows(snapshot(), snapshot(WEEK_BEFORE, mrr=30820.0, active=115))}
    assert rows["MRR"] == {"label": "MRR", "value": "$32,110", "change": "+$1,290 (+4.2%)"}
    assert rows["ARR"]["value"] == "$385,320"
    assert rows["Active customers"]["change"] == "+3 (+2.6%)"
    assert rows["NRR (12 months)"] == {"label": "NRR (12 months)", "value": "104.3%", "change": "no change"}
    assert rows["Uptime"]["value"] == "99.91%"
    assert rows["AI requests"]["value"] == "48,210"
    assert list(rows) == ["MRR", "ARR", "Active customers", "MRR growth (MoM)", "Net new MRR",
                          "NRR (12 months)", "Uptime", "AI requests"]


def test_nrr_is_left_out_of_a_snapshot_without_retention():
    labels = [r["label"] for r in headline_rows(snapshot(retention=False), None)]
    assert "NRR (12 months)" not in labels and len(labels) == 7


def test_payload_blocks_the_alerts_escaped_and_the_fallback_text():
    payload = build_payload(snapshot(alerts=[ALERT]), snapshot(WEEK_BEFORE, mrr=30820.0), timezone.utc)
    text = json.dumps(payload)
    assert payload["blocks"][0]["text"]["text"] == "ChatterFix investor metrics — Week ending 22 Nov 2026"
    fields = [f["text"] for f in payload["blocks"][1]["fields"]]
    assert fields[0] == "*MRR*\n$32,110\n_+$1,290 (+4.2%)_"
    assert "Change against the week ending 15 Nov 2026" in text
    alerts = payload["blocks"][4]["text"]["text"]
    assert alerts.startswith("*Alerts (1)*\n• :large_orange_circle: *high* ")
    assert "Service &lt;api&gt; &amp; friends degraded — p95 &gt; 2 s on &lt;api&gt;" in alerts
    assert "<api>" not in text  # no raw angle bracket from data anywhere
    assert payload["text"] == ("ChatterFix investor metrics — Week ending 22 Nov 2026: MRR $32,110 "
                               "(+$1,290 (+4.2%) vs previous week), 1 alert")


def test_no_previous_week_and_no_alerts():
    payload = build_payload(snapshot(), None, timezone.utc)
    assert payload["blocks"][1]["fields"][0]["text"] == "*MRR*\n$32,110"
    assert payload["blocks"][2]["elements"][0]["text"] == \
        "No earlier week in the metrics store to compare with"
    assert payload["blocks"][4]["text"]["text"] == "*Alerts*\nNo alerts this period."
    assert payload["text"].endswith("MRR $32,110")


def test_many_alerts_are_capped_most_severe_first():
    alerts = [dict(ALERT, id=f"a{i}", severity="low", title=f"low {i}") for i in range(12)]
    alerts.append(dict(ALERT, id="c", severity="critical", title="down", message=""))
    text = build_payload(snapshot(alerts=alerts), None, timezone.utc)["blocks"][4]["text"]["text"]
    lines = text.splitlines()
    assert lines[0] == "*Alerts (13)*"
    assert lines[1] == "• :red_circle: *critical* down"
    assert len(lines) == 1 + MAX_ALERTS_LISTED + 1 and lines[-1].startswith("… and 3 more")


def test_an_on_demand_report_is_titled_by_its_period():
    title = build_payload(snapshot(period_type="on_demand"), None, timezone.utc)["blocks"][0]["text"]["text"]
    assert title == ("ChatterFix investor metrics — On-demand report, "
                     "15 Nov 2026 09:00 – 22 Nov 2026 09:00 (UTC)")
