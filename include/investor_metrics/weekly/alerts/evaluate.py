"""Evaluating a snapshot (SPEC section 7) against the rules of ``rules.py``: the alerts it raises.
Pure — no clock, no I/O — so the same period always gives the same alerts.

An alert (times ISO 8601 UTC with ``Z``, like the snapshot)::

    {"id", "rule", "severity", "category", "title", "message", "metric", "value", "threshold",
     "period_start", "period_end", "triggered_at"}

Identity: the dedup key is ``"<rule>|<period end>"`` (period end as ``2026-11-22T09:00:00Z``) for a
week, ``"<rule>|on_demand|<period end>"`` for an on-demand report (probe incidents:
``"<rule>|<service>|<first failed probe>"``); the ``id`` is the first 16 hex digits of
``sha256(dedup_key)``. ``triggered_at`` is the period end, the instant the condition was observed.
A snapshot's own ``alerts`` list carries only these fields (``snapshot_alerts``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from datetime import datetime
from fractions import Fraction

from include.investor_metrics.contract import SEVERITY_RANK
from include.investor_metrics.period import as_instant, iso_utc, parse_period_end
from include.investor_metrics.weekly.alerts.rules import RULES, Rule, churn_spike_bound
from include.investor_metrics.weekly.alerts.thresholds import DEFAULT_THRESHOLDS
from include.investor_metrics.weekly.metrics.rounding import round_half_up
from include.investor_metrics.weekly.series import checked_series, series_of

ALERT_FIELDS = ("id", "rule", "severity", "category", "title", "message", "metric", "value", "threshold",
                "period_start", "period_end", "triggered_at")


def dedup_key(rule: str, period_end: datetime | str, series: str = "weekly") -> str:
    """``"<rule>|<period end ISO>"`` for a week, ``"<rule>|on_demand|<period end ISO>"`` for an
    on-demand report: one alert per (rule, series, period)."""
    if checked_series(series) == "weekly":
        return f"{rule}|{iso_utc(as_instant(period_end))}"
    return f"{rule}|on_demand|{iso_utc(as_instant(period_end))}"


def series_of_snapshot(snapshot: Mapping) -> str:
    return series_of((snapshot.get("period") or {}).get("type") or "weekly")


def alert_id(key: str) -> str:
    """The stable id of an alert: the first 16 hex digits of sha256(dedup key)."""
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def evaluate(snapshot: dict, *, thresholds: Mapping[str, float], previous_churned: list[int]) -> list[dict]:
    """The alerts a snapshot raises, most severe first. ``thresholds``: settings of
    ``load_thresholds`` (missing ones take their default); ``previous_churned``: churned customers of
    the previous weeks (``previous_churned_customers``). Pure: same input, same alerts."""
    settings = {**DEFAULT_THRESHOLDS, **thresholds}
    period_start = iso_utc(as_instant(snapshot["period"]["start"]))
    period_end = iso_utc(as_instant(snapshot["period"]["end"]))
    end = parse_period_end(period_end)
    series = series_of_snapshot(snapshot)
    week = f"{end.day} {end:%b %Y}"
    alerts = []
    for rule in RULES:
        fired = _test(rule, snapshot, settings, previous_churned)
        if fired is None:
            continue
        value, threshold, context = fired
        words = {"week": week, "value": _fmt(value), "threshold": _fmt(threshold), **context}
        key = dedup_key(rule.name, period_end, series)
        alerts.append({
            "id": alert_id(key),
            "rule": rule.name,
            "severity": rule.severity,
            "category": rule.category,
            "title": rule.title.format(**words),
            "message": rule.message.format(**words),
            "metric": rule.metric,
            "value": value,
            "threshold": threshold,
            "period_start": period_start,
            "period_end": period_end,
            "triggered_at": period_end,
        })
    return sort_alerts(alerts)


def _test(rule: Rule, snapshot: dict, settings: Mapping[str, float], previous_churned: list[int]):
    """None when ``rule`` does not fire, else (value, threshold, extra words for the templates)."""
    value = _get(snapshot, rule.metric)
    if value is None:
        return None
    if rule.comparison == "status_critical":
        if value != "critical":
            return None
        return None, None, _critical_words(snapshot)
    if rule.comparison == "below_total":
        total = _get(snapshot, "system_health.services_total")
        if total is None or not value < total:
            return None
        services = _get(snapshot, "system_health.services") or {}
        names = sorted(n for n, s in services.items() if not (s or {}).get("healthy"))
        return float(value), float(total), {
            "healthy": _fmt(value), "total": _fmt(total), "unhealthy": _fmt(total - value),
            "names": ", ".join(names) or "(not listed)",
        }
    if rule.comparison == "churn_spike":
        multiplier, minimum = settings["churn_spike"], settings["churn_spike_minimum"]
        bound = churn_spike_bound(previous_churned, multiplier=multiplier, minimum=minimum)
        if not value > bound:
            return None
        weeks = len(previous_churned)
        average = Fraction(sum(previous_churned), weeks) if weeks else Fraction(0)
        return float(value), round_half_up(bound), {
            "customers": "customer" if value == 1 else "customers",
            "multiplier": _fmt(multiplier), "minimum": _fmt(minimum), "average": _fmt(round_half_up(average)),
            "weeks": f"{weeks} weeks" if weeks != 1 else "week",
        }
    threshold = float(settings[rule.name])
    fires = value < threshold if rule.comparison == "<" else value > threshold
    if not fires:
        return None
    words = {}
    if rule.name == "uptime_below_target":
        words["worst_service"] = _worst_service(snapshot)
    if rule.name == "mrr_growth_below_target":
        mrr = _get(snapshot, "financial.mrr")
        words.update(moved="grew" if value >= 0 else "shrank", abs_value=_fmt(abs(value)),
                     mrr=f"{mrr:,.2f}" if mrr is not None else "n/a")
    return float(value), threshold, words


def _critical_words(snapshot: dict) -> dict:
    health = snapshot.get("system_health") or {}
    healthy, total = health.get("services_healthy"), health.get("services_total")
    low = sorted(
        (name, s["uptime_percentage"]) for name, s in (health.get("services") or {}).items()
        if s and s.get("uptime_percentage") is not None and s["uptime_percentage"] < 90
    )
    if low:
        reason = "; ".join(
            f"Service {name} was up only {_fmt(up)}% of the week (below 90%)" for name, up in low
        )
    elif healthy == 0:
        reason = "No service was healthy at the end of the week"
    else:
        reason = "The platform status was critical"
    uptime = health.get("uptime_percentage")
    return {"reason": reason, "uptime": _fmt(uptime) if uptime is not None else "n/a",
            "healthy": _fmt(healthy) if healthy is not None else "n/a",
            "total": _fmt(total) if total is not None else "n/a"}


def _worst_service(snapshot: dict) -> str:
    by_name = _get(snapshot, "system_health.services") or {}
    services = [(s["uptime_percentage"], name) for name, s in by_name.items()
                if s and s.get("uptime_percentage") is not None]
    if not services:
        return ""
    uptime, name = min(services)
    return f" The least available service was {name} ({_fmt(uptime)}%)."


def _get(snapshot: Mapping, path: str):
    node = snapshot
    for part in path.split("."):
        if not isinstance(node, Mapping):
            return None
        node = node.get(part)
    return node


def _fmt(value) -> str:
    """A number as an investor reads it: 99.49, 1,000.01, 5, 2.75."""
    if value is None:
        return "n/a"
    text = f"{float(value):,.2f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def sort_alerts(alerts: Iterable[dict]) -> list[dict]:
    """Newest first: triggered_at desc, then severity (critical first), then rule."""
    ordered = sorted(alerts, key=lambda a: (SEVERITY_RANK.get(a["severity"], 9), a["rule"]))
    return sorted(ordered, key=lambda a: a["triggered_at"], reverse=True)


def snapshot_alerts(alerts: Iterable[Mapping]) -> list[dict]:
    """The deterministic fields only (no run_id / notified): what a snapshot's ``alerts`` holds."""
    return [{field: alert.get(field) for field in ALERT_FIELDS} for alert in alerts]

