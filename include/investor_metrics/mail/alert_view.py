"""How an alert is shown in an e-mail: its headline (``uptime 98.10% below target 99.5%``), its
value and threshold, its severity (unknown ones count as low), the summary's severity groups, and
which alerts are urgent (critical and high: e-mailed on their own)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from include.investor_metrics.contract import SEVERITIES, URGENT_SEVERITIES
from include.investor_metrics.mail.formats import SEVERITY_STYLE, finite_number


def _metric_name(metric: str | None) -> str:
    """``system_health.uptime_percentage`` → ``uptime_percentage`` (alerts name a snapshot path)."""
    return (metric or "").lower().rpartition(".")[2]


def _alert_number(metric: str | None, value, percent: str = ".2f") -> str:
    """An alert's value as its message shows it: milliseconds, a percentage (``percent`` its
    format: a measured value to 2 decimals, a threshold as written), else the number."""
    number = finite_number(value)
    if number is None:
        return "n/a"
    metric = _metric_name(metric)
    if metric.endswith("_ms"):
        return f"{number:,.0f} ms"
    if "rate" in metric or "percentage" in metric or "accuracy" in metric:
        return f"{number:{percent}}%"
    return f"{number:g}"


def _alert_threshold(metric: str | None, value) -> str:
    return _alert_number(metric, value, percent="g")


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
    value, threshold = finite_number(alert.get("value")), finite_number(alert.get("threshold"))
    if template and value is not None and threshold is not None:
        return template.format(value=_alert_number(alert.get("metric"), alert.get("value")),
                               threshold=_alert_threshold(alert.get("metric"), alert.get("threshold")))
    return str(alert.get("title") or alert.get("rule") or "alert")


def severity_of(alert: Mapping) -> str:
    """The alert's severity, lower case; one that is not in ``SEVERITIES`` counts as ``low``."""
    severity = str(alert.get("severity", "")).lower()
    return severity if severity in SEVERITIES else "low"


def view_of(alert: Mapping) -> dict:
    """What the templates show of an alert: every field as text, value and threshold formatted."""
    metric = alert.get("metric")
    return {
        "id": str(alert.get("id", "")),
        "rule": str(alert.get("rule", "")),
        "severity": severity_of(alert),
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
    views = [view_of(a) for a in alerts or ()]
    for severity in SEVERITIES:
        members = [v for v in views if v["severity"] == severity]
        if members:
            badge, tint = SEVERITY_STYLE[severity]
            groups.append({"severity": severity, "label": severity.capitalize(), "color": badge,
                           "tint": tint, "alerts": members})
    return groups


def urgent_alerts(alerts: Iterable[Mapping]) -> list[Mapping]:
    """The critical and high alerts, most severe first (those are emailed on their own)."""
    urgent = [a for a in alerts or () if severity_of(a) in URGENT_SEVERITIES]
    return sorted(urgent, key=lambda a: (SEVERITIES.index(severity_of(a)), str(a.get("rule")),
                                         str(a.get("id"))))
