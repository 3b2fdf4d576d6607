"""The weekly summary to ``INVESTOR_EMAILS`` (SPEC section 8), built without I/O::

    multipart/mixed
    ├── multipart/alternative
    │   ├── text/plain             the same numbers, for clients that show no HTML
    │   └── multipart/related
    │       ├── text/html          inline CSS, tables, no script, no external resource
    │       └── image/png × 5      12-week trend charts and the MRR movements chart (cid:)
    └── application/json           the snapshot, metrics_YYYY-MM-DD_HH-MM-SS.json

Its exactly-once key is the period end (``weekly_summary_key``); an on-demand report has a key of
its own.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Mapping
from datetime import tzinfo
from email.message import EmailMessage

from include.investor_metrics.mail.alert_view import alerts_by_severity
from include.investor_metrics.mail.charts import TREND_WEEKS, trend_charts, trend_window
from include.investor_metrics.mail.depth_view import depth_context, depth_text
from include.investor_metrics.mail.formats import (
    BAD,
    GOOD,
    NEUTRAL,
    finite_number,
    format_value,
    lookup,
    money,
    period_bounds,
    period_label,
    text_table,
    week_ending_label,
)
from include.investor_metrics.mail.kpi_table import kpi_rows
from include.investor_metrics.mail.message import (
    KIND_WEEKLY_SUMMARY,
    checked_sender,
    new_message,
    recipient_list,
    render_template,
    safe_url,
    text_part_options,
)
from include.investor_metrics.mail.movements_chart import MOVEMENTS, movements_chart
from include.investor_metrics.period import as_instant, iso_utc
from include.investor_metrics.settings import resolve_timezone
from include.investor_metrics.weekly.archive import dumps as snapshot_json_bytes
from include.investor_metrics.weekly.archive import period_file_name

log = logging.getLogger(__name__)

ON_DEMAND_KEY_PREFIX = "on_demand|"
MAX_MESSAGE_BYTES = 300_000
DEFAULT_UPTIME_TARGET = 99.5


def weekly_summary_key(snapshot: Mapping, *, on_demand: bool | None = None) -> str:
    """The exactly-once key of a period's summary: its end, ISO 8601 in UTC; an on-demand report's
    is ``on_demand|<end>`` (``on_demand`` default: the snapshot's ``period.type``), so it never
    stands in for the scheduled week's summary of the same end."""
    if on_demand is None:
        on_demand = lookup(snapshot, ("period", "type")) == "on_demand"
    key = iso_utc(as_instant(snapshot["period"]["end"]))
    return ON_DEMAND_KEY_PREFIX + key if on_demand else key


def weekly_summary_subject(snapshot: Mapping, tz) -> str:
    """``ChatterFix investor metrics — week ending 22 Nov 2026: MRR $32,110 (+16.1% MoM)``."""
    tz = resolve_timezone(tz)
    end = as_instant(snapshot["period"]["end"])
    mrr = finite_number(lookup(snapshot, ("financial", "mrr")))
    growth = finite_number(lookup(snapshot, ("financial", "mrr_growth_rate")))
    mrr_text = money(mrr) if mrr is not None else "n/a"
    growth_text = f"{growth:+.1f}% MoM" if growth is not None else "MoM growth n/a"
    on_demand = " (on demand)" if lookup(snapshot, ("period", "type")) == "on_demand" else ""
    return (f"ChatterFix investor metrics{on_demand} — week ending {week_ending_label(end, tz)}: "
            f"MRR {mrr_text} ({growth_text})")


def _providers(snapshot: Mapping) -> list[dict]:
    providers = lookup(snapshot, ("ai_platform", "providers")) or {}
    rows = []
    if isinstance(providers, Mapping):
        by_requests = sorted(providers.items(),
                             key=lambda kv: -(finite_number(lookup(kv[1], ("total_requests",))) or 0))
        for name, stats in by_requests:
            rows.append({
                "name": str(name),
                "requests": format_value(lookup(stats, ("total_requests",)), "count"),
                "accuracy": format_value(lookup(stats, ("accuracy_rate",)), "pct1"),
                "latency": format_value(lookup(stats, ("avg_latency_ms",)), "ms"),
            })
    return rows


def _services(snapshot: Mapping) -> list[dict]:
    services = lookup(snapshot, ("system_health", "services")) or {}
    rows = []
    if isinstance(services, Mapping):
        for name, stats in services.items():
            healthy = lookup(stats, ("healthy",))
            rows.append({
                "name": str(name),
                "uptime": format_value(lookup(stats, ("uptime_percentage",)), "pct2"),
                "response": format_value(lookup(stats, ("avg_response_time_ms",)), "ms"),
                "healthy": "healthy" if healthy is True else "unhealthy" if healthy is False else "n/a",
                "color": GOOD if healthy is True else BAD if healthy is False else NEUTRAL,
            })
    return rows


def _status_line(snapshot: Mapping) -> tuple[str, str]:
    status = str(lookup(snapshot, ("system_health", "status")) or "unknown")
    total = finite_number(lookup(snapshot, ("system_health", "services_total")))
    healthy = finite_number(lookup(snapshot, ("system_health", "services_healthy")))
    text = f"System {status}"
    if total is not None and healthy is not None:
        text += f" · {healthy:.0f} of {total:.0f} services healthy"
    color = {"healthy": GOOD, "degraded": "#a16207", "critical": BAD}.get(status, NEUTRAL)
    return text, color


def _weekly_text(ctx: dict) -> str:
    lines = [ctx["heading"], ctx["period_label"], ctx["status_text"], ""]
    for group in ctx["kpi_groups"]:
        lines.append(group["name"].upper())
        lines += text_table([(r["label"], r["value"], r["change"]) for r in group["rows"]])
        lines.append("")
    movements = ctx["movements_chart"]
    lines.append(f"MRR MOVEMENTS (last {TREND_WEEKS} weeks; weeks with no snapshot are not listed)")
    lines += text_table([("week", *(label.lower() for _, label, *_ in MOVEMENTS), "net new"),
                         *movements["rows"]], right=range(1, len(MOVEMENTS) + 2))
    lines.append("")
    lines.append(f"TRENDS (last {TREND_WEEKS} weeks)")
    lines += text_table([(c["title"], c["summary"]) for c in ctx["charts"]])
    lines.append("")
    lines.append(f"ALERTS ({ctx['alert_count']})")
    if not ctx["alert_groups"]:
        lines.append("  No alerts this week.")
    for group in ctx["alert_groups"]:
        for alert in group["alerts"]:
            lines.append(f"  [{group['severity'].upper()}] {alert['title']}")
            if alert["message"]:
                lines.append(f"    {alert['message']}")
            if alert["value"] != "n/a" or alert["threshold"] != "n/a":
                lines.append(f"    value {alert['value']}, threshold {alert['threshold']}")
    lines.append("")
    lines += depth_text(ctx)
    if ctx["data_quality_warnings"]:
        lines.append("DATA QUALITY WARNINGS")
        lines += [f"  - {w}" for w in ctx["data_quality_warnings"]]
        lines.append("")
    if ctx["providers"]:
        lines.append("AI PROVIDERS")
        lines += text_table([("provider", "requests", "accuracy", "avg latency")]
                             + [(p["name"], p["requests"], p["accuracy"], p["latency"])
                                for p in ctx["providers"]])
        lines.append("")
    if ctx["services"]:
        lines.append("SERVICES")
        lines += text_table([("service", "uptime", "avg response", "status")]
                             + [(s["name"], s["uptime"], s["response"], s["healthy"])
                                for s in ctx["services"]])
        lines.append("")
    lines.append(f"The full snapshot is attached: {ctx['attachment_name']}")
    if ctx["airflow_url"]:
        lines.append(f"Airflow: {ctx['airflow_url']}")
    lines.append(f"Generated {ctx['generated_at']}. {ctx['footer']}")
    return "\n".join(lines) + "\n"


def build_weekly_summary(
    snapshot: Mapping,
    *,
    previous: Mapping | None,
    history: Iterable[Mapping],
    recipients: str | Iterable[str],
    sender: str,
    airflow_url: str | None,
    tz: str | tzinfo | None = None,
    uptime_target: float | None = DEFAULT_UPTIME_TARGET,
) -> EmailMessage:
    """The weekly investor e-mail for ``snapshot`` (SPEC section 7 shape).

    ``previous``: the previous week's snapshot (changes are shown against it; None → "—");
    ``history``: stored snapshots (any order, e.g. ``store.history``), the last 12 weeks up to this
    one are charted; ``tz``: the investor time zone (default ``INVESTOR_TIMEZONE``).
    The Message-ID is that of (``weekly_summary``, period end).
    """
    tz = resolve_timezone(tz)
    recipients = recipient_list(recipients)
    start, end = period_bounds(snapshot["period"])
    key = weekly_summary_key(snapshot)
    subject = weekly_summary_subject(snapshot, tz)
    msg = new_message(kind=KIND_WEEKLY_SUMMARY, key=key, subject=subject, sender=sender,
                      recipients=recipients)
    domain = checked_sender(sender).rpartition("@")[2]
    digest = hashlib.sha256(key.encode()).hexdigest()[:12]

    window = trend_window(snapshot, history)
    charts = trend_charts(window, tz, uptime_target=uptime_target)
    movements = movements_chart(window, tz)
    for chart in (movements, *charts):
        chart["cid"] = f"chart-{chart['key']}.{digest}@{domain}"
    alerts = list(snapshot.get("alerts") or [])
    alert_groups = alerts_by_severity(alerts)
    status_text, status_color = _status_line(snapshot)
    warnings = lookup(snapshot, ("data_quality", "warnings")) or []
    growth = finite_number(lookup(snapshot, ("financial", "mrr_growth_rate")))
    kpi_groups = kpi_rows(snapshot, previous)
    by_key = {row["key"]: row for group in kpi_groups for row in group["rows"]}
    ctx = {
        "subject": subject,
        "heading": f"ChatterFix investor metrics — week ending {week_ending_label(end, tz)}",
        "week_ending": week_ending_label(end, tz),
        "period_label": period_label(start, end, tz),
        "status_text": status_text,
        "status_color": status_color,
        "tiles": [
            {"label": "MRR", "value": by_key["mrr"]["value"],
             "note": f"{growth:+.1f}% MoM" if growth is not None else "MoM growth n/a",
             "color": GOOD if (growth or 0) > 0 else BAD if (growth or 0) < 0 else NEUTRAL},
            {"label": "Active customers", "value": by_key["active_customers"]["value"],
             "note": by_key["active_customers"]["change"], "color": by_key["active_customers"]["color"]},
            {"label": "Uptime", "value": by_key["uptime_percentage"]["value"],
             "note": by_key["uptime_percentage"]["change"], "color": by_key["uptime_percentage"]["color"]},
        ],
        "kpi_groups": kpi_groups,
        "has_previous": previous is not None,
        "charts": charts,
        "chart_rows": [charts[i:i + 2] for i in range(0, len(charts), 2)],
        "movements_chart": movements,
        "trend_weeks": TREND_WEEKS,
        "movement_legend": [{"label": label, "color": colour} for _, label, colour, _ in MOVEMENTS],
        **depth_context(snapshot),
        "alert_groups": alert_groups,
        "alert_count": len(alerts),
        "data_quality_warnings": [str(w) if not isinstance(w, Mapping) else str(w.get("message") or w)
                                  for w in warnings],
        "providers": _providers(snapshot),
        "services": _services(snapshot),
        "airflow_url": safe_url(airflow_url),
        "attachment_name": period_file_name(end),
        "generated_at": str(snapshot.get("generated_at") or "n/a"),
        "footer": ("Computed from the ChatterFix application database for the period above; changes compare "
                   "with the previous week's snapshot."),
        "colors": {"good": GOOD, "bad": BAD, "neutral": NEUTRAL},
    }
    ctx["preheader"] = (f"MRR {by_key['mrr']['value']} ({ctx['tiles'][0]['note']}) · "
                        f"{by_key['active_customers']['value']} customers · "
                        f"uptime {by_key['uptime_percentage']['value']}"
                        f" · {len(alerts)} alert{'s' if len(alerts) != 1 else ''}")

    msg.set_content(_weekly_text(ctx), **text_part_options())
    msg.add_alternative(render_template("weekly_summary.html.j2", **ctx), subtype="html",
                        **text_part_options())
    html_part = msg.get_payload()[1]
    for chart in (*charts, movements):
        html_part.add_related(chart["png"], maintype="image", subtype="png", cid=f"<{chart['cid']}>",
                              disposition="inline", filename=f"{chart['key']}.png")
    msg.add_attachment(snapshot_json_bytes(snapshot), maintype="application", subtype="json",
                       filename=ctx["attachment_name"])
    size = len(msg.as_bytes())
    # content is bounded (7 rules, a few services, 12 cohorts, 10 movers); say so if it is not
    if size > MAX_MESSAGE_BYTES:
        log.warning("the weekly summary is %d bytes, over the %d-byte budget", size, MAX_MESSAGE_BYTES)
    return msg
