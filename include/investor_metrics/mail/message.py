"""The investor e-mails of SPEC section 8, built as ``email.message.EmailMessage`` objects.

Nothing here touches the network, a database or the clock: ``include/investor_metrics/mail/send.py`` sends what these
functions build, exactly once. Three messages:

- the **weekly summary** (``build_weekly_summary``) to ``INVESTOR_EMAILS``::

      multipart/mixed
      ├── multipart/alternative
      │   ├── text/plain             the same numbers, for clients that show no HTML
      │   └── multipart/related
      │       ├── text/html          inline CSS, tables, no script, no external resource
      │       └── image/png × 4      12-week trend charts, referenced from the HTML as cid:
      └── application/json           the snapshot, metrics_YYYY-MM-DD_HH-MM-SS.json

- an **alert message** per critical or high alert (``build_alert_message``), sent before the summary;
- the **data-quality failure** message (``build_data_quality_failure``) to ``DATA_TEAM_EMAILS``.

Every value that comes from the data is HTML-escaped: the HTML is rendered by Jinja2 with
autoescaping on, so escaping is the default and not something a template author must remember.
The Message-ID is derived from the message's exactly-once key (kind, key), so a message that a
crash-and-retry sends twice carries the same Message-ID both times and a client can drop the copy.
"""

from __future__ import annotations

import email.policy
import hashlib
import io
import logging
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta, tzinfo
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import parseaddr
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlsplit

from include.investor_metrics.contract import SEVERITIES, URGENT_SEVERITIES
from include.investor_metrics.period import Period, as_instant, iso_utc, tz_label
from include.investor_metrics.settings import parse_address_list
from include.investor_metrics.weekly.archive import dumps as snapshot_json_bytes
from include.investor_metrics.weekly.archive import period_file_name

log = logging.getLogger(__name__)

TEMPLATES_DIR = Path(__file__).resolve().parents[1] / "templates"

KIND_WEEKLY_SUMMARY = "weekly_summary"
KIND_ALERT = "alert"
KIND_DATA_QUALITY_FAILURE = "data_quality_failure"
KIND_DELIVERY_REPORT = "delivery_report"  # to DATA_TEAM_EMAILS: refused addresses, unknown outcomes
ON_DEMAND_KEY_PREFIX = "on_demand|"

MAX_MESSAGE_BYTES = 300_000
TREND_WEEKS = 12
DEFAULT_UPTIME_TARGET = 99.5
SENDER_NAME = "ChatterFix"

# Colours (inline CSS: e-mail clients ignore <style> blocks often enough not to rely on them).
GOOD, BAD, NEUTRAL = "#15803d", "#b91c1c", "#6b7280"
SEVERITY_STYLE = {  # badge background, card tint
    "critical": ("#b91c1c", "#fef2f2"),
    "high": ("#c2410c", "#fff7ed"),
    "medium": ("#a16207", "#fefce8"),
    "low": ("#1d4ed8", "#eff6ff"),
}
CHART_LINE = "#2563eb"


# --------------------------------------------------------------------------- small helpers
def _number(value) -> float | None:
    """A finite number, or None (null, missing, a bool, NaN are not numbers to report)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _lookup(snapshot: Mapping | None, path: Sequence[str]):
    node = snapshot
    for part in path:
        if not isinstance(node, Mapping):
            return None
        node = node.get(part)
    return node


def _timezone(tz) -> tzinfo:
    if tz is None:
        from include.investor_metrics.settings import investor_timezone

        return investor_timezone()
    if isinstance(tz, str):
        import pendulum

        return pendulum.timezone(tz)
    return tz


def period_bounds(period) -> tuple[datetime, datetime]:
    """(start, end) of a ``Period``, or of a snapshot's ``period`` dict of ISO strings."""
    if isinstance(period, Period):
        return period.start, period.end
    if isinstance(period, Mapping):
        return as_instant(period["start"]), as_instant(period["end"])
    raise TypeError(f"period must be an include.investor_metrics.period.Period or a dict with start/end, got {type(period).__name__}")


def local_date(instant: datetime, tz: tzinfo) -> str:
    local = instant.astimezone(tz)
    return f"{local.day} {local:%b %Y}"


def week_ending_label(period_end: datetime, tz: tzinfo) -> str:
    """``22 Nov 2026``: the local date the week ends on. A week that ends at local midnight ends on
    the day before (a week to Monday 00:00 is the week ending Sunday)."""
    local = period_end.astimezone(tz)
    if local.time() == time(0):
        local -= timedelta(days=1)
    return f"{local.day} {local:%b %Y}"


def period_label(start: datetime, end: datetime, tz: tzinfo) -> str:
    s, e = start.astimezone(tz), end.astimezone(tz)
    return f"{s.day} {s:%b %Y %H:%M} – {e.day} {e:%b %Y %H:%M} ({tz_label(tz)})"


def _one_line(text, limit: int = 200) -> str:
    """Header-safe text: no line breaks (a header injection), bounded length."""
    flat = re.sub(r"\s+", " ", str(text)).strip()
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _recipients(recipients: str | Iterable[str], name: str = "recipients") -> list[str]:
    if isinstance(recipients, str):
        return parse_address_list(recipients, name)
    return parse_address_list(",".join(recipients), name)


def _sender(sender: str) -> str:
    address = parseaddr(sender)[1]
    parse_address_list(address, "sender (INVESTOR_EMAIL)")
    return address


def _safe_url(url: str | None) -> str | None:
    """Only http(s) links go into a message (never ``javascript:`` or a relative path)."""
    if not url:
        return None
    parts = urlsplit(url)
    return url if parts.scheme in {"http", "https"} and parts.netloc else None


def message_id(kind: str, key: str, sender: str, recipient: str | None = None) -> str:
    """The deterministic Message-ID of the message with exactly-once key (kind, key), in the
    sender's domain: ``<cfx.<kind>.<digest of kind and key>@domain>``; a recipient's own copy
    appends a digest of the address (``...<digest>.<recipient digest>@domain``). A resend after an
    unknown outcome carries the same id, so a receiver can drop it."""
    domain = _sender(sender).rpartition("@")[2]
    digest = hashlib.sha256(f"{kind}\x1f{key}".encode()).hexdigest()[:24]
    local = f"cfx.{re.sub(r'[^A-Za-z0-9_-]', '-', kind)}.{digest}"
    if recipient:
        local += "." + _recipient_digest(recipient)
    return f"<{local}@{domain}>"


def _recipient_digest(recipient: str) -> str:
    return hashlib.sha256(recipient.strip().lower().encode()).hexdigest()[:12]


# One of our Message-IDs, message-level or of some recipient's copy (re-addressing is repeatable).
_OUR_MESSAGE_ID = re.compile(r"<(cfx\.[A-Za-z0-9_-]+\.[0-9a-f]{24})(?:\.[0-9a-f]{12})?@([^>\s]+)>")


def address_to(message: EmailMessage, *, kind: str, key: str, recipient: str) -> str:
    """Address ``message`` to ``recipient`` alone (its own ``To:`` and Message-ID, no other
    recipient in any header); a reply's ``In-Reply-To``/``References`` to one of our messages point
    at that recipient's copy of it. Returns the Message-ID."""
    mine = _recipient_digest(recipient)
    for header in ("In-Reply-To", "References"):
        value = message.get(header)
        if value is not None:
            del message[header]
            message[header] = _OUR_MESSAGE_ID.sub(lambda m: f"<{m.group(1)}.{mine}@{m.group(2)}>", str(value))
    for header in ("To", "Cc", "Bcc", "Message-ID", "X-ChatterFix-Send-Key"):
        del message[header]
    message["To"] = recipient
    message["X-ChatterFix-Send-Key"] = _one_line(f"{kind}:{key}", 250)
    mid = message_id(kind, key, parseaddr(str(message["From"]))[1], recipient)
    message["Message-ID"] = mid
    return mid


# Headers up to RFC 5322's 998 characters: Python's default 78-column folding puts a subject that
# starts with "[HIGH]" on a continuation line, which some clients show with a leading space.
MESSAGE_POLICY = email.policy.default.clone(max_line_length=998)


def _new_message(*, kind: str, key: str, subject: str, sender: str, recipients: list[str]) -> EmailMessage:
    msg = EmailMessage(policy=MESSAGE_POLICY)
    msg["Subject"] = _one_line(subject, 250)
    msg["From"] = Address(SENDER_NAME, addr_spec=_sender(sender))
    msg["To"] = ", ".join(recipients)
    msg["Message-ID"] = message_id(kind, key, sender)
    msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies to a report
    msg["X-Auto-Response-Suppress"] = "All"
    msg["X-ChatterFix-Send-Key"] = _one_line(f"{kind}:{key}", 250)
    return msg


@lru_cache(maxsize=1)
def _templates():
    import jinja2

    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES_DIR)),
        autoescape=True,  # every value is escaped unless a template says otherwise (none does)
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render_template(name: str, **context) -> str:
    return _templates().get_template(name).render(**context)


# --------------------------------------------------------------------------- number formats
def _money(value: float, decimals: int = 0) -> str:
    sign = "-" if value < 0 else ""
    return f"{sign}${abs(value):,.{decimals}f}"


_FORMATS = {
    # kind: (value formatter, display decimals of a change, change unit)
    "money": (lambda v: _money(v), 0),
    "money2": (lambda v: _money(v, 2), 2),
    "count": (lambda v: f"{v:,.0f}", 0),
    "pct1": (lambda v: f"{v:.1f}%", 1),
    "pct2": (lambda v: f"{v:.2f}%", 2),
    "ratio": (lambda v: f"{v:.2f}", 2),
    "num1": (lambda v: f"{v:.1f}", 1),
    "ms": (lambda v: f"{v:,.0f} ms", 0),
}


def format_value(value, fmt: str) -> str:
    number = _number(value)
    return "n/a" if number is None else _FORMATS[fmt][0](number)


def format_change(current, previous, fmt: str) -> tuple[str, float | None]:
    """The change text and the (display-rounded) delta, None when there is nothing to compare."""
    cur, prev = _number(current), _number(previous)
    if cur is None or prev is None:
        return "—", None
    decimals = _FORMATS[fmt][1]
    delta = round(cur - prev, decimals)
    if delta == 0:
        return "no change", 0.0
    sign = "+" if delta > 0 else "-"
    if fmt in ("money", "money2"):
        text = f"{sign}{_money(abs(delta), decimals)}"
    elif fmt in ("pct1", "pct2"):
        text = f"{sign}{abs(delta):.{decimals}f} pp"
    elif fmt == "ms":
        text = f"{sign}{abs(delta):,.0f} ms"
    elif fmt == "count":
        text = f"{sign}{abs(delta):,.0f}"
    else:
        text = f"{sign}{abs(delta):.{decimals}f}"
    if fmt in ("money", "money2", "count") and prev != 0:
        text += f" ({(cur - prev) / abs(prev) * 100:+.1f}%)"
    return text, delta


# --------------------------------------------------------------------------- the KPI table
@dataclass(frozen=True)
class Kpi:
    key: str
    label: str
    path: tuple[str, ...]
    fmt: str
    better: str | None  # "up", "down", or None when neither direction is good news


KPI_GROUPS: tuple[tuple[str, tuple[Kpi, ...]], ...] = (
    ("Revenue", (
        Kpi("mrr", "MRR", ("financial", "mrr"), "money", "up"),
        Kpi("arr", "ARR", ("financial", "arr"), "money", "up"),
        Kpi("mrr_growth_rate", "MRR growth (MoM)", ("financial", "mrr_growth_rate"), "pct1", "up"),
        Kpi("net_new_mrr", "Net new MRR", ("financial", "net_new_mrr"), "money", "up"),
        Kpi("churned_mrr", "Churned MRR", ("financial", "churned_mrr"), "money", "down"),
        Kpi("quick_ratio", "Quick ratio", ("financial", "quick_ratio"), "ratio", "up"),
        Kpi("arpa", "ARPA", ("financial", "arpa"), "money2", "up"),
    )),
    ("Customers", (
        Kpi("active_customers", "Active customers", ("financial", "active_customers"), "count", "up"),
        Kpi("churned_customers", "Churned customers", ("business_health", "churned_customers"), "count", "down"),
        Kpi("logo_churn_rate", "Logo churn", ("business_health", "logo_churn_rate"), "pct2", "down"),
        Kpi("revenue_churn_rate", "Revenue churn", ("business_health", "revenue_churn_rate"), "pct2", "down"),
        Kpi("nps", "NPS", ("business_health", "customer_satisfaction", "nps"), "num1", "up"),
        Kpi("mrr_at_risk", "MRR at risk", ("business_health", "mrr_at_risk"), "money", "down"),
        Kpi("lead_conversion_rate", "Lead conversion", ("financial", "lead_conversion_rate"), "pct1", "up"),
    )),
    ("Platform", (
        Kpi("uptime_percentage", "Uptime", ("system_health", "uptime_percentage"), "pct2", "up"),
        Kpi("avg_response_time_ms", "Avg response time", ("system_health", "avg_response_time_ms"), "ms", "down"),
        Kpi("error_rate", "Error rate", ("system_health", "error_rate"), "pct2", "down"),
    )),
    ("AI assistant", (
        Kpi("ai_total_requests", "AI requests", ("ai_platform", "total_requests"), "count", "up"),
        Kpi("ai_accuracy_rate", "AI accuracy", ("ai_platform", "accuracy_rate"), "pct1", "up"),
        Kpi("ai_avg_latency_ms", "AI avg latency", ("ai_platform", "avg_latency_ms"), "ms", "down"),
    )),
)


def _tone(delta: float | None, better: str | None) -> str:
    if not delta or better is None:
        return "neutral"
    return "good" if (delta > 0) == (better == "up") else "bad"


def kpi_rows(snapshot: Mapping, previous: Mapping | None) -> list[dict]:
    """One dict per KPI group: its rows with value, change against ``previous`` and tone."""
    groups = []
    for name, kpis in KPI_GROUPS:
        rows = []
        for kpi in kpis:
            current = _lookup(snapshot, kpi.path)
            change, delta = format_change(current, _lookup(previous, kpi.path), kpi.fmt)
            tone = _tone(delta, kpi.better)
            rows.append({
                "key": kpi.key,
                "label": kpi.label,
                "value": format_value(current, kpi.fmt),
                "change": change,
                "tone": tone,
                "color": {"good": GOOD, "bad": BAD}.get(tone, NEUTRAL),
                "arrow": "▲" if (delta or 0) > 0 else "▼" if (delta or 0) < 0 else "",
            })
        groups.append({"name": name, "rows": rows})
    return groups


# --------------------------------------------------------------------------- trend charts
@dataclass(frozen=True)
class Trend:
    key: str
    title: str
    path: tuple[str, ...]
    fmt: str


TRENDS = (
    Trend("mrr", "MRR", ("financial", "mrr"), "money"),
    Trend("active_customers", "Active customers", ("financial", "active_customers"), "count"),
    Trend("uptime", "Uptime", ("system_health", "uptime_percentage"), "pct2"),
    Trend("ai_requests", "AI requests", ("ai_platform", "total_requests"), "count"),
)


def trend_window(snapshot: Mapping, history: Iterable[Mapping], weeks: int = TREND_WEEKS) -> list[Mapping]:
    """The last ``weeks`` snapshots up to and including ``snapshot``, oldest first (one per period
    end; the current snapshot wins over a stored copy of itself)."""
    end = as_instant(snapshot["period"]["end"])
    by_end: dict[datetime, Mapping] = {}
    for item in history or ():
        try:
            item_end = as_instant(item["period"]["end"])
        except (KeyError, TypeError, ValueError):
            continue
        if item_end < end:
            by_end[item_end] = item
    by_end[end] = snapshot
    return [by_end[k] for k in sorted(by_end)][-weeks:]


def _axis_formatter(fmt: str):
    def label(value, _pos=None):
        if fmt == "money":
            return f"${value / 1000:,.0f}k" if abs(value) >= 10_000 else f"${value:,.0f}"
        if fmt == "pct2":
            return f"{value:.1f}%"
        if abs(value) >= 10_000:
            return f"{value / 1000:,.0f}k"
        return f"{value:,.0f}"

    return label


def render_trend_chart(points: Sequence[tuple[datetime, float | None]], trend: Trend, tz: tzinfo, *,
                       target: float | None = None) -> bytes:
    """A small PNG line chart (450 × 240 px, shown at 290 px wide: sharp on high-DPI screens).

    Drawn with matplotlib's object API on the Agg canvas (no pyplot global state: safe in a
    worker thread); no timestamp in the PNG, so the same data gives the same bytes."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    fig = Figure(figsize=(3.0, 1.6), dpi=150)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    xs = list(range(len(points)))
    ys = [math.nan if v is None else v for _, v in points]
    known = [(x, y) for x, y in zip(xs, ys, strict=True) if not math.isnan(y)]
    if known:
        ax.plot(xs, ys, color=CHART_LINE, linewidth=1.6, marker="o", markersize=2.6)
        if len(known) > 1 and target is None:
            ax.fill_between(xs, ys, min(y for _, y in known), color=CHART_LINE, alpha=0.07, linewidth=0)
        last_x, last_y = known[-1]
        ax.plot([last_x], [last_y], marker="o", markersize=4.5, color=CHART_LINE)
    else:
        ax.text(0.5, 0.5, "no data", transform=ax.transAxes, ha="center", va="center", color=NEUTRAL, fontsize=8)
    if target is not None and known:
        ax.axhline(target, color=BAD, linewidth=0.8, linestyle=(0, (3, 2)))
        ax.text(0, target, f" target {target:g}%", color=BAD, fontsize=5.5, va="bottom", ha="left")
        low = min(min(y for _, y in known), target)
        high = max(max(y for _, y in known), target)
        pad = max((high - low) * 0.15, 0.05)
        ax.set_ylim(low - pad, min(high + pad, 100.0 + pad))
    ticks = xs[::-3][::-1] if len(xs) > 6 else xs  # every third week, ending on this one
    ax.set_xticks(ticks)
    ax.set_xticklabels([f"{points[i][0].astimezone(tz).day} {points[i][0].astimezone(tz):%b}" for i in ticks])
    ax.yaxis.set_major_locator(MaxNLocator(nbins=4))
    ax.yaxis.set_major_formatter(FuncFormatter(_axis_formatter(trend.fmt)))
    ax.tick_params(labelsize=6, length=0, colors="#4b5563")
    ax.grid(axis="y", color="#e5e7eb", linewidth=0.6)
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)
    ax.spines["bottom"].set_color("#d1d5db")
    if len(xs) == 1:
        ax.set_xlim(-0.5, 0.5)
    fig.tight_layout(pad=0.4)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()


def trend_charts(window: Sequence[Mapping], tz: tzinfo, *, uptime_target: float | None) -> list[dict]:
    charts = []
    for trend in TRENDS:
        points = [(as_instant(s["period"]["end"]), _number(_lookup(s, trend.path))) for s in window]
        known = [(d, v) for d, v in points if v is not None]
        if known:
            first, last = known[0], known[-1]
            summary = (f"{format_value(first[1], trend.fmt)} ({local_date(first[0], tz)}) → "
                       f"{format_value(last[1], trend.fmt)} ({local_date(last[0], tz)})")
        else:
            summary = "no data"
        target = uptime_target if trend.key == "uptime" else None
        charts.append({
            "key": trend.key,
            "title": trend.title,
            "weeks": len(points),
            "summary": summary,
            "latest": format_value(points[-1][1], trend.fmt) if points else "n/a",
            "png": render_trend_chart(points, trend, tz, target=target),
        })
    return charts


# --------------------------------------------------------------------------- alerts
def _metric_name(metric: str | None) -> str:
    """``system_health.uptime_percentage`` → ``uptime_percentage`` (alerts name a snapshot path)."""
    return (metric or "").lower().rpartition(".")[2]


def _alert_number(metric: str | None, value) -> str:
    number = _number(value)
    if number is None:
        return "n/a"
    metric = _metric_name(metric)
    if metric.endswith("_ms"):
        return f"{number:,.0f} ms"
    if "rate" in metric or "percentage" in metric or "accuracy" in metric:
        return f"{number:.2f}%"
    return f"{number:g}"


def _alert_threshold(metric: str | None, value) -> str:
    number = _number(value)
    if number is None:
        return "n/a"
    metric = _metric_name(metric)
    if metric.endswith("_ms"):
        return f"{number:,.0f} ms"
    if "rate" in metric or "percentage" in metric or "accuracy" in metric:
        return f"{number:g}%"
    return f"{number:g}"


_ALERT_HEADLINES = {
    "uptime_below_target": "uptime {value} below target {threshold}",
    "mrr_growth_below_target": "MRR growth {value} below target {threshold}",
    "ai_accuracy_below_target": "AI accuracy {value} below target {threshold}",
    "api_response_time_above_target": "API response time {value} above target {threshold}",
    "churn_spike": "{value} churned customers, above the spike bound of {threshold}",
}


def alert_headline(alert: Mapping) -> str:
    """``uptime 98.10% below target 99.5%`` for the threshold rules, else the alert's title."""
    template = _ALERT_HEADLINES.get(str(alert.get("rule")))
    if template and _number(alert.get("value")) is not None and _number(alert.get("threshold")) is not None:
        return template.format(value=_alert_number(alert.get("metric"), alert.get("value")),
                               threshold=_alert_threshold(alert.get("metric"), alert.get("threshold")))
    return str(alert.get("title") or alert.get("rule") or "alert")


def _severity(alert: Mapping) -> str:
    severity = str(alert.get("severity", "")).lower()
    return severity if severity in SEVERITIES else "low"


def _alert_view(alert: Mapping) -> dict:
    metric = alert.get("metric")
    return {
        "id": str(alert.get("id", "")),
        "rule": str(alert.get("rule", "")),
        "severity": _severity(alert),
        "category": str(alert.get("category", "")),
        "title": str(alert.get("title") or alert_headline(alert)),
        "headline": alert_headline(alert),
        "message": str(alert.get("message", "")),
        "metric": str(metric or ""),
        "value": _alert_number(metric, alert.get("value")),
        "threshold": _alert_threshold(metric, alert.get("threshold")),
    }


def alerts_by_severity(alerts: Iterable[Mapping]) -> list[dict]:
    """Non-empty severity groups, most severe first, with their colours."""
    groups = []
    views = [_alert_view(a) for a in alerts or ()]
    for severity in SEVERITIES:
        members = [v for v in views if v["severity"] == severity]
        if members:
            badge, tint = SEVERITY_STYLE[severity]
            groups.append({"severity": severity, "label": severity.capitalize(), "color": badge,
                           "tint": tint, "alerts": members})
    return groups


def urgent_alerts(alerts: Iterable[Mapping]) -> list[Mapping]:
    """The critical and high alerts, most severe first (those are emailed on their own)."""
    urgent = [a for a in alerts or () if _severity(a) in URGENT_SEVERITIES]
    return sorted(urgent, key=lambda a: (SEVERITIES.index(_severity(a)), str(a.get("rule")), str(a.get("id"))))


# --------------------------------------------------------------------------- weekly summary
def weekly_summary_key(snapshot: Mapping, *, on_demand: bool | None = None) -> str:
    """The exactly-once key of a period's summary: its end, ISO 8601 in UTC; an on-demand report's
    is ``on_demand|<end>`` (``on_demand`` default: the snapshot's ``period.type``), so it never
    stands in for the scheduled week's summary of the same end."""
    if on_demand is None:
        on_demand = _lookup(snapshot, ("period", "type")) == "on_demand"
    key = iso_utc(as_instant(snapshot["period"]["end"]))
    return ON_DEMAND_KEY_PREFIX + key if on_demand else key


def weekly_summary_subject(snapshot: Mapping, tz) -> str:
    tz = _timezone(tz)
    end = as_instant(snapshot["period"]["end"])
    mrr = _number(_lookup(snapshot, ("financial", "mrr")))
    growth = _number(_lookup(snapshot, ("financial", "mrr_growth_rate")))
    mrr_text = _money(mrr) if mrr is not None else "n/a"
    growth_text = f"{growth:+.1f}% MoM" if growth is not None else "MoM growth n/a"
    on_demand = " (on demand)" if _lookup(snapshot, ("period", "type")) == "on_demand" else ""
    return (f"ChatterFix investor metrics{on_demand} — week ending {week_ending_label(end, tz)}: "
            f"MRR {mrr_text} ({growth_text})")


def _providers(snapshot: Mapping) -> list[dict]:
    providers = _lookup(snapshot, ("ai_platform", "providers")) or {}
    rows = []
    if isinstance(providers, Mapping):
        for name, stats in sorted(providers.items(), key=lambda kv: -(_number(_lookup(kv[1], ("total_requests",))) or 0)):
            rows.append({
                "name": str(name),
                "requests": format_value(_lookup(stats, ("total_requests",)), "count"),
                "accuracy": format_value(_lookup(stats, ("accuracy_rate",)), "pct1"),
                "latency": format_value(_lookup(stats, ("avg_latency_ms",)), "ms"),
            })
    return rows


def _services(snapshot: Mapping) -> list[dict]:
    services = _lookup(snapshot, ("system_health", "services")) or {}
    rows = []
    if isinstance(services, Mapping):
        for name, stats in services.items():
            healthy = _lookup(stats, ("healthy",))
            rows.append({
                "name": str(name),
                "uptime": format_value(_lookup(stats, ("uptime_percentage",)), "pct2"),
                "response": format_value(_lookup(stats, ("avg_response_time_ms",)), "ms"),
                "healthy": "healthy" if healthy is True else "unhealthy" if healthy is False else "n/a",
                "color": GOOD if healthy is True else BAD if healthy is False else NEUTRAL,
            })
    return rows


def _status_line(snapshot: Mapping) -> tuple[str, str]:
    status = str(_lookup(snapshot, ("system_health", "status")) or "unknown")
    total = _number(_lookup(snapshot, ("system_health", "services_total")))
    healthy = _number(_lookup(snapshot, ("system_health", "services_healthy")))
    text = f"System {status}"
    if total is not None and healthy is not None:
        text += f" · {healthy:.0f} of {total:.0f} services healthy"
    color = {"healthy": GOOD, "degraded": "#a16207", "critical": BAD}.get(status, NEUTRAL)
    return text, color


def _text_table(rows: Sequence[Sequence[str]], indent: str = "  ") -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return [indent + "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]


def _weekly_text(ctx: dict) -> str:
    lines = [ctx["heading"], ctx["period_label"], ctx["status_text"], ""]
    for group in ctx["kpi_groups"]:
        lines.append(group["name"].upper())
        lines += _text_table([(r["label"], r["value"], r["change"]) for r in group["rows"]])
        lines.append("")
    lines.append(f"TRENDS (last {TREND_WEEKS} weeks)")
    lines += _text_table([(c["title"], c["summary"]) for c in ctx["charts"]])
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
    if ctx["data_quality_warnings"]:
        lines.append("DATA QUALITY WARNINGS")
        lines += [f"  - {w}" for w in ctx["data_quality_warnings"]]
        lines.append("")
    if ctx["providers"]:
        lines.append("AI PROVIDERS")
        lines += _text_table([("provider", "requests", "accuracy", "avg latency")]
                             + [(p["name"], p["requests"], p["accuracy"], p["latency"]) for p in ctx["providers"]])
        lines.append("")
    if ctx["services"]:
        lines.append("SERVICES")
        lines += _text_table([("service", "uptime", "avg response", "status")]
                             + [(s["name"], s["uptime"], s["response"], s["healthy"]) for s in ctx["services"]])
        lines.append("")
    lines.append(f"The full snapshot is attached: {ctx['attachment_name']}")
    if ctx["airflow_url"]:
        lines.append(f"Airflow: {ctx['airflow_url']}")
    lines.append(f"Generated {ctx['generated_at']}. {ctx['footer']}")
    return "\n".join(lines) + "\n"


def _text_part_options() -> dict:
    # quoted-printable: 7-bit safe through any relay, still readable in the raw source.
    return {"cte": "quoted-printable"}


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
    tz = _timezone(tz)
    recipients = _recipients(recipients)
    start, end = period_bounds(snapshot["period"])
    key = weekly_summary_key(snapshot)
    subject = weekly_summary_subject(snapshot, tz)
    msg = _new_message(kind=KIND_WEEKLY_SUMMARY, key=key, subject=subject, sender=sender, recipients=recipients)
    domain = _sender(sender).rpartition("@")[2]
    digest = hashlib.sha256(key.encode()).hexdigest()[:12]

    charts = trend_charts(trend_window(snapshot, history), tz, uptime_target=uptime_target)
    for chart in charts:
        chart["cid"] = f"chart-{chart['key']}.{digest}@{domain}"
    alerts = list(snapshot.get("alerts") or [])
    alert_groups = alerts_by_severity(alerts)
    status_text, status_color = _status_line(snapshot)
    warnings = _lookup(snapshot, ("data_quality", "warnings")) or []
    growth = _number(_lookup(snapshot, ("financial", "mrr_growth_rate")))
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
        "alert_groups": alert_groups,
        "alert_count": len(alerts),
        "data_quality_warnings": [str(w) if not isinstance(w, Mapping) else str(w.get("message") or w) for w in warnings],
        "providers": _providers(snapshot),
        "services": _services(snapshot),
        "airflow_url": _safe_url(airflow_url),
        "attachment_name": period_file_name(end),
        "generated_at": str(snapshot.get("generated_at") or "n/a"),
        "footer": ("Computed from the ChatterFix application database for the period above; changes compare "
                   "with the previous week's snapshot."),
        "colors": {"good": GOOD, "bad": BAD, "neutral": NEUTRAL},
    }
    ctx["preheader"] = (f"MRR {by_key['mrr']['value']} ({ctx['tiles'][0]['note']}) · "
                        f"{by_key['active_customers']['value']} customers · uptime {by_key['uptime_percentage']['value']}"
                        f" · {len(alerts)} alert{'s' if len(alerts) != 1 else ''}")

    msg.set_content(_weekly_text(ctx), **_text_part_options())
    msg.add_alternative(render_template("weekly_summary.html.j2", **ctx), subtype="html", **_text_part_options())
    html_part = msg.get_payload()[1]
    for chart in charts:
        html_part.add_related(chart["png"], maintype="image", subtype="png", cid=f"<{chart['cid']}>",
                              disposition="inline", filename=f"{chart['key']}.png")
    msg.add_attachment(snapshot_json_bytes(snapshot), maintype="application", subtype="json",
                       filename=ctx["attachment_name"])
    size = len(msg.as_bytes())
    if size > MAX_MESSAGE_BYTES:  # content is bounded (7 rules, a few services); say so if it is not
        log.warning("the weekly summary is %d bytes, over the %d-byte budget", size, MAX_MESSAGE_BYTES)
    return msg


# --------------------------------------------------------------------------- alert messages
def alert_key(alert: Mapping) -> str:
    """The exactly-once key of an alert message: the alert's id (one message per alert)."""
    key = str(alert.get("id") or "").strip()
    if not key:
        raise ValueError(f"alert {alert.get('rule')!r} has no id: it cannot be sent exactly once")
    return key


def alert_subject(alert: Mapping, tz) -> str:
    tz = _timezone(tz)
    headline = alert_headline(alert)
    subject = f"[{_severity(alert).upper()}] ChatterFix: {headline}"
    if alert.get("period_end") and "week ending" not in headline.lower():
        subject += f" (week ending {week_ending_label(as_instant(alert['period_end']), tz)})"
    return _one_line(subject, 250)


def build_alert_message(
    alert: Mapping,
    *,
    recipients: str | Iterable[str],
    sender: str,
    period=None,
    airflow_url: str | None = None,
    tz: str | tzinfo | None = None,
) -> EmailMessage:
    """One message for one alert (text + HTML); its exactly-once key is (``alert``, alert id).

    ``period`` (a ``Period`` or a ``{"start", "end"}`` dict) defaults to the alert's own period."""
    tz = _timezone(tz)
    recipients = _recipients(recipients)
    view = _alert_view(alert)
    if period is None and alert.get("period_start") and alert.get("period_end"):
        period = {"start": alert["period_start"], "end": alert["period_end"]}
    start_end = period_bounds(period) if period is not None else None
    subject = alert_subject(alert if alert.get("period_end") or start_end is None
                            else {**alert, "period_end": start_end[1]}, tz)
    msg = _new_message(kind=KIND_ALERT, key=alert_key(alert), subject=subject, sender=sender, recipients=recipients)
    if view["severity"] in URGENT_SEVERITIES:
        msg["Importance"] = "high"
    badge, tint = SEVERITY_STYLE[view["severity"]]
    triggered = alert.get("triggered_at")
    ctx = {
        "subject": subject,
        "alert": view,
        "badge": badge,
        "tint": tint,
        "period_label": period_label(*start_end, tz) if start_end else "n/a",
        "triggered_at": (local_date(as_instant(triggered), tz) + as_instant(triggered).astimezone(tz).strftime(" %H:%M")
                         + f" ({tz_label(tz)})") if triggered else "n/a",
        "airflow_url": _safe_url(airflow_url),
    }
    text = [
        subject, "",
        view["title"],
        view["message"], "",
        f"Severity:   {view['severity']}",
        f"Category:   {view['category']}",
        f"Rule:       {view['rule']}",
        f"Metric:     {view['metric'] or 'n/a'}",
        f"Value:      {view['value']}",
        f"Threshold:  {view['threshold']}",
        f"Period:     {ctx['period_label']}",
        f"Triggered:  {ctx['triggered_at']}",
        f"Alert id:   {view['id']}",
    ]
    if ctx["airflow_url"]:
        text += ["", f"Airflow: {ctx['airflow_url']}"]
    text += ["", "The weekly summary has the full numbers."]
    msg.set_content("\n".join(text) + "\n", **_text_part_options())
    msg.add_alternative(render_template("alert.html.j2", **ctx), subtype="html", **_text_part_options())
    return msg


def build_alert_messages(
    alerts: Iterable[Mapping],
    *,
    recipients: str | Iterable[str],
    sender: str,
    period=None,
    airflow_url: str | None = None,
    tz: str | tzinfo | None = None,
) -> list[tuple[str, EmailMessage]]:
    """``(alert id, message)`` for each critical or high alert of a run, most severe first."""
    tz = _timezone(tz)
    return [
        (alert_key(alert), build_alert_message(alert, recipients=recipients, sender=sender, period=period,
                                               airflow_url=airflow_url, tz=tz))
        for alert in urgent_alerts(alerts)
    ]


# --------------------------------------------------------------------------- data-quality failure
MAX_FAILURE_TEXT = 20_000


def build_data_quality_failure(
    message_text: str,
    *,
    report_path: str | None,
    period,
    recipients: str | Iterable[str],
    sender: str,
    tz: str | tzinfo | None = None,
    airflow_url: str | None = None,
) -> EmailMessage:
    """The message the validation failure callback sends to ``DATA_TEAM_EMAILS`` (never investors).
    Its exactly-once key is (``data_quality_failure``, period end)."""
    tz = _timezone(tz)
    recipients = _recipients(recipients, "DATA_TEAM_EMAILS")
    start, end = period_bounds(period)
    subject = (f"[DATA QUALITY] ChatterFix investor metrics: validation failed, "
               f"week ending {week_ending_label(end, tz)}")
    msg = _new_message(kind=KIND_DATA_QUALITY_FAILURE, key=iso_utc(end), subject=subject, sender=sender,
                       recipients=recipients)
    details = str(message_text or "").strip() or "(no details)"
    if len(details) > MAX_FAILURE_TEXT:
        details = details[:MAX_FAILURE_TEXT] + f"\n… ({len(details) - MAX_FAILURE_TEXT} more characters in the task log)"
    report = str(report_path) if report_path else None
    ctx = {
        "subject": subject,
        "period_label": period_label(start, end, tz),
        "details": details,
        "report": report,
        "report_url": _safe_url(report),  # a local path is shown as text: clients block file:// links
        "airflow_url": _safe_url(airflow_url),
    }
    text = [
        subject, "",
        f"Period: {ctx['period_label']}",
        "Validation of the source data failed, so this period's metrics were not computed and no",
        "investor e-mail was sent for it. Fix the data (or the rule), then clear the failed task.",
        "", "What failed:", details, "",
        f"Data-quality report: {report or 'n/a'}",
    ]
    if ctx["airflow_url"]:
        text.append(f"Airflow: {ctx['airflow_url']}")
    msg.set_content("\n".join(text) + "\n", **_text_part_options())
    msg.add_alternative(render_template("data_quality_failure.html.j2", **ctx), subtype="html",
                        **_text_part_options())
    return msg


# --------------------------------------------------------------------------- delivery report
_PROBLEM_TEXT = {
    "refused": "permanently refused by the SMTP server: not delivered, and not retried",
    "unknown": "outcome unknown (the connection dropped or timed out after the message data was sent)",
}


def build_delivery_report(
    *,
    kind: str,
    key: str,
    report_key: str,
    subject: str | None,
    problems: Sequence[Mapping],
    recipients: str | Iterable[str],
    sender: str,
) -> EmailMessage:
    """The message that tells ``DATA_TEAM_EMAILS`` of delivery problems of the e-mail (kind, key):
    ``problems`` are send-log rows (recipient, status, smtp_code, last_error, message_id,
    unknown_outcomes). Plain text: it is read by data engineers, next to the task log."""
    recipients = _recipients(recipients, "DATA_TEAM_EMAILS")
    refused = [p for p in problems if p.get("status") == "refused"]
    what = "refused recipient(s)" if refused and len(refused) == len(problems) else "delivery problem(s)"
    title = f"[DELIVERY] ChatterFix investor e-mail {kind} {key}: {len(problems)} {what}"
    msg = _new_message(kind=KIND_DELIVERY_REPORT, key=report_key, subject=title, sender=sender, recipients=recipients)
    lines = [title, "", f"E-mail:      {kind} {key}", f"Subject:     {_one_line(subject or 'n/a')}", ""]
    for problem in problems:
        status = str(problem.get("status"))
        unknown = int(problem.get("unknown_outcomes") or 0)
        if status == "refused":
            text = _PROBLEM_TEXT["refused"]
        elif status == "sent":
            text = (f"{_PROBLEM_TEXT['unknown']} {unknown} time(s); since resent with the same Message-ID "
                    f"and accepted: the recipient may hold two copies that mail clients merge")
        else:
            text = (f"{_PROBLEM_TEXT['unknown']} {unknown} time(s); the retry resends it once with the same "
                    f"Message-ID, so mail clients drop a copy")
        code = problem.get("smtp_code")
        lines += [f"- {_one_line(problem.get('recipient'))}: {text}",
                  f"    SMTP reply: {code if code is not None else 'n/a'} {_one_line(problem.get('last_error') or '')}",
                  f"    Message-ID: {problem.get('message_id') or 'n/a'}"]
    lines += ["", "The send log (investor_metrics.send_log) has one row per recipient of this e-mail."]
    if refused:
        lines.append("Fix or remove a refused address in INVESTOR_EMAILS; the others were not held up.")
    msg.set_content("\n".join(lines) + "\n", **_text_part_options())
    return msg
