"""The Slack message of one snapshot, built without I/O: a Block Kit payload (header, the headline
numbers with their change against the previous week, the period's alerts) and a plain ``text``
fallback for notifications. Every text that comes from data is escaped for Slack (``&``, ``<``,
``>``: https://docs.slack.dev/messaging/formatting-message-text#escaping), so a service or
customer name can neither break the markup nor form a link or a mention."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from include.investor_metrics.contract import SEVERITIES
from include.investor_metrics.mail.alert_view import severity_of, view_of
from include.investor_metrics.mail.formats import (
    format_change,
    format_value,
    lookup,
    period_bounds,
    period_label,
    week_ending_label,
)

# (label, snapshot path, format of include/investor_metrics/mail/formats.py)
HEADLINE = (
    ("MRR", ("financial", "mrr"), "money"),
    ("ARR", ("financial", "arr"), "money"),
    ("Active customers", ("financial", "active_customers"), "count"),
    ("MRR growth (MoM)", ("financial", "mrr_growth_rate"), "pct1"),
    ("Net new MRR", ("financial", "net_new_mrr"), "money"),
    ("NRR (12 months)", ("retention", "nrr_12m"), "pct1"),  # only when the snapshot has retention
    ("Uptime", ("system_health", "uptime_percentage"), "pct2"),
    ("AI requests", ("ai_platform", "total_requests"), "count"),
)
MAX_ALERTS_LISTED = 10
MAX_SECTION_CHARS = 3000  # Slack's limit on a section's text
SEVERITY_EMOJI = {"critical": ":red_circle:", "high": ":large_orange_circle:",
                  "medium": ":large_yellow_circle:", "low": ":large_blue_circle:"}


def escape(text) -> str:
    """``text`` safe inside Slack ``mrkdwn``: ``&`` → ``&amp;``, ``<`` → ``&lt;``, ``>`` → ``&gt;``."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def title_of(snapshot: Mapping, tz) -> str:
    """``Week ending 22 Nov 2026``, or ``On-demand report, 15 Nov 2026 09:00 – 22 Nov ... (UTC)``."""
    start, end = period_bounds(snapshot["period"])
    if lookup(snapshot, ("period", "type")) == "on_demand":
        return f"On-demand report, {period_label(start, end, tz)}"
    return f"Week ending {week_ending_label(end, tz)}"


def headline_rows(snapshot: Mapping, previous: Mapping | None) -> list[dict]:
    """One row per headline number the snapshot has: label, value, change against ``previous``
    (``—`` when either side lacks it). NRR is left out of a snapshot without ``retention``."""
    rows = []
    for label, path, fmt in HEADLINE:
        if path[0] == "retention" and not isinstance(lookup(snapshot, ("retention",)), Mapping):
            continue
        change, _delta = format_change(lookup(snapshot, path), lookup(previous, path), fmt)
        rows.append({"label": label, "value": format_value(lookup(snapshot, path), fmt), "change": change})
    return rows


def alert_lines(alerts: Sequence[Mapping]) -> list[str]:
    """The period's alerts, most severe first, one escaped mrkdwn line each (at most
    ``MAX_ALERTS_LISTED``, then how many more)."""
    ordered = sorted(alerts or (), key=lambda a: (SEVERITIES.index(severity_of(a)), str(a.get("rule"))))
    lines = []
    for alert in ordered[:MAX_ALERTS_LISTED]:
        view = view_of(alert)
        line = f"{SEVERITY_EMOJI[view['severity']]} *{view['severity']}* {escape(view['headline'])}"
        if view["message"] and view["message"] != view["headline"]:
            line += f" — {escape(view['message'])}"
        lines.append("• " + line)
    if len(ordered) > MAX_ALERTS_LISTED:
        lines.append(f"… and {len(ordered) - MAX_ALERTS_LISTED} more (see the weekly e-mail)")
    return lines


def _clip(text: str, limit: int = MAX_SECTION_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def build_payload(snapshot: Mapping, previous: Mapping | None, tz, *, link: str | None = None) -> dict:
    """The webhook body of ``snapshot``'s update: ``text`` (the fallback a notification shows) and
    ``blocks``. ``previous``: the snapshot it is compared with (None: no change shown)."""
    title = title_of(snapshot, tz)
    rows = headline_rows(snapshot, previous)
    fields = [{"type": "mrkdwn",
               "text": f"*{r['label']}*\n{r['value']}" + (f"\n_{escape(r['change'])}_" if previous else "")}
              for r in rows]
    if previous is not None:
        before = period_bounds(previous["period"])[1]
        compared = f"Change against the week ending {week_ending_label(before, tz)}"
    else:
        compared = "No earlier week in the metrics store to compare with"
    alerts = list(snapshot.get("alerts") or [])
    lines = alert_lines(alerts)
    if alerts:
        alert_text = f"*Alerts ({len(alerts)})*\n" + "\n".join(lines)
    else:
        alert_text = "*Alerts*\nNo alerts this period."
    header = f"ChatterFix investor metrics — {title}"[:150]  # Slack's limit on a header
    blocks = [
        {"type": "header", "text": {"type": "plain_text", "text": header}},
        {"type": "section", "fields": fields[:10]},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": escape(compared)}]},
        {"type": "divider"},
        {"type": "section", "text": {"type": "mrkdwn", "text": _clip(alert_text)}},
    ]
    if link:
        blocks.append({"type": "context", "elements": [
            {"type": "mrkdwn", "text": f"<{escape(link)}|The run in Airflow>"}]})
    mrr = next((r for r in rows if r["label"] == "MRR"), None)
    summary = f"ChatterFix investor metrics — {title}"
    if mrr is not None:
        summary += f": MRR {mrr['value']}" + (f" ({mrr['change']} vs previous week)" if previous else "")
    if alerts:
        summary += f", {len(alerts)} alert{'s' if len(alerts) != 1 else ''}"
    return {"text": escape(summary), "blocks": blocks}
