"""Investor alerts (SPEC section 6): the rules, their thresholds, the alert store and its history.

Rules (``RULES``; evaluated by the pure function ``evaluate`` on a snapshot of SPEC section 7):

=================================  ==========================================  ========  ========
rule                               fires when                                  severity  category
=================================  ==========================================  ========  ========
``critical_system_failure``        system_health.status = "critical"           critical  system
``uptime_below_target``            system_health.uptime_percentage < 99.5      high      system
``churn_spike``                    business_health.churned_customers > bound   high      business
``mrr_growth_below_target``        financial.mrr_growth_rate < 5               medium    financial
``api_response_time_above_target`` system_health.avg_response_time_ms > 1000   medium    system
``ai_accuracy_below_target``       ai_platform.accuracy_rate < 90              medium    ai
``services_degraded``              services_healthy < services_total           low       system
=================================  ==========================================  ========  ========

- The comparison is on the reported (rounded) value of the snapshot, strictly: uptime 99.5 does not
  fire, 99.49 does. A null value (e.g. no rated AI answer, hence no accuracy_rate) never fires.
- ``churn_spike``: bound = max(minimum, multiplier × mean churned_customers of the previous weeks),
  defaults max(2, 2 × mean of the 8 previous weeks). At the start of the history, fewer than 8
  previous weeks may be given: the mean is over those given; with none the bound is the minimum.
  (``previous_churned_customers`` always returns 8 weeks: a week before any data has 0 churned.)
  The alert's ``threshold`` is that bound (2 decimals).
- ``services_degraded``: the alert's value is services_healthy, its threshold services_total.
- ``critical_system_failure`` (weekly form): value and threshold are null; the message says why
  (no healthy service, or which services were up less than 90 % of the week). The probe DAG raises
  the same rule per incident with its own dedup key (see below); this module only stores it.

Thresholds (``load_thresholds``, called by the alert task at run time, never at import):

===================================  =======  ========================================
setting                              default  environment variable
===================================  =======  ========================================
``uptime_below_target``              99.5     ``INVESTOR_ALERT_UPTIME_BELOW_TARGET``
``mrr_growth_below_target``          5        ``INVESTOR_ALERT_MRR_GROWTH_BELOW_TARGET``
``churn_spike`` (the multiplier)     2        ``INVESTOR_ALERT_CHURN_SPIKE``
``churn_spike_minimum``              2        ``INVESTOR_ALERT_CHURN_SPIKE_MINIMUM``
``api_response_time_above_target``   1000     ``INVESTOR_ALERT_API_RESPONSE_TIME_ABOVE_TARGET``
``ai_accuracy_below_target``         90       ``INVESTOR_ALERT_AI_ACCURACY_BELOW_TARGET``
===================================  =======  ========================================

The Airflow Variable ``investor_alert_thresholds`` (JSON object ``{"setting": number}``, e.g.
``{"uptime_below_target": 99.0}``) wins over the environment, which wins over the defaults.
``critical_system_failure`` and ``services_degraded`` have no number to configure. An unknown
setting, a non-number, or a Variable that is not a JSON object is a ``ConfigError`` naming the
variable and the setting. Outside a task (no Airflow, or no Variable backend) only the environment
is read.

Identity and determinism: an alert's dedup key is ``"<rule>|<period end>"`` (period end as
``2026-11-22T09:00:00Z``) for the weekly rules (probe incidents: ``"<rule>|<service>|<first failed
probe>"``), and its ``id`` is the first 16 hex digits of ``sha256(dedup_key)``. ``triggered_at`` of a
weekly alert is the period end (the instant the condition was observed); no clock is read, so the
same period always gives the same alerts.

An alert (``evaluate``; times ISO 8601 UTC with ``Z``, like the snapshot)::

    {"id", "rule", "severity", "category", "title", "message", "metric", "value", "threshold",
     "period_start", "period_end", "triggered_at"}

The store (``investor_metrics.alerts``) adds ``run_id``, ``notified`` and ``series`` (``weekly`` or
``on_demand``; and, present only when set, ``service`` / ``resolved_at`` for probe incidents and
``superseded_at``). An on-demand report's alerts have their own identity: dedup key
``"<rule>|on_demand|<period end>"``, so an on-demand run at a week's end never touches the week's
alerts. ``upsert_alerts`` is an UPSERT on the dedup key (a rerun updates the row, ``notified`` stays
true once true). Given ``period_end``, the alerts are the period's whole evaluation: the period's
rule alerts that no longer fire are retired in the same transaction — one that was e-mailed
(``notified``, or a delivered send-log row) is kept and marked ``superseded_at``, any other is
deleted. Superseded alerts are not current (``alerts_for_period`` leaves them out) but stay in the
history. Runs of the same period serialise on the period's advisory lock (``lock_period``), the
one under which the pipeline stores a period's snapshot and alerts together
(``store.store_period``), so the current alerts are always those of the snapshot stored last.

``alert_history.json`` (``publish_alert_history``) is regenerated from the store under an advisory
lock, so the last writer writes the full, current history. Its shape::

    {"generated_from": "investor_metrics.alerts",
     "order": "triggered_at desc, severity (critical, high, medium, low), rule",
     "alerts": [<every stored alert, newest first, with run_id and notified>]}

A snapshot's own ``alerts`` list carries only the deterministic fields (``snapshot_alerts``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from fractions import Fraction

from include.investor_metrics.contract import SEVERITY_RANK
from include.investor_metrics.db import read_sql
from include.investor_metrics.period import (
    Period,
    as_instant,
    calendar_offset,
    iso_utc,
    parse_period_end,
    to_utc,
    weekly_period,
)
from include.investor_metrics.settings import ConfigError, airflow_variable

log = logging.getLogger(__name__)

ALERT_FIELDS = ("id", "rule", "severity", "category", "title", "message", "metric", "value", "threshold",
                "period_start", "period_end", "triggered_at")
STORED_FIELDS = (*ALERT_FIELDS, "run_id", "notified")
OPTIONAL_STORED_FIELDS = ("series", "service", "resolved_at", "superseded_at")  # present when set

THRESHOLDS_VARIABLE = "investor_alert_thresholds"
ENV_PREFIX = "INVESTOR_ALERT_"
HISTORY_LOCK = "investor_metrics.alert_history"
PERIOD_LOCK_PREFIX = "investor_metrics.alerts|"
CHURN_SPIKE_WEEKS = 8


@dataclass(frozen=True)
class Rule:
    """One alert rule. ``metric`` is the dotted path of the value in the snapshot; ``comparison``
    how it is tested: ``<`` / ``>`` against the threshold, ``status_critical``, ``churn_spike``
    (against the computed bound), ``below_total`` (services_healthy < services_total)."""

    name: str
    severity: str
    category: str
    metric: str
    comparison: str
    default_threshold: float | None
    title: str
    message: str


RULES: tuple[Rule, ...] = (
    Rule(
        "critical_system_failure", "critical", "system", "system_health.status", "status_critical", None,
        title="Critical: the platform was in a critical state in the week ending {week}",
        message="{reason}. Over the week the platform was up {uptime}% of the time, with {healthy} of "
                "{total} services healthy at the end of the week.",
    ),
    Rule(
        "uptime_below_target", "high", "system", "system_health.uptime_percentage", "<", 99.5,
        title="Uptime {value}% is below the {threshold}% target",
        message="In the week ending {week} the ChatterFix platform was up {value}% of the time, below "
                "our {threshold}% target.{worst_service}",
    ),
    Rule(
        "churn_spike", "high", "business", "business_health.churned_customers", "churn_spike", 2,
        title="Churn spike: {value} {customers} churned in the week ending {week}",
        message="{value} paying {customers} cancelled in the week ending {week}, above the alert level "
                "of {threshold} ({multiplier} × the average of {average} a week over the previous "
                "{weeks}, and at least {minimum}).",
    ),
    Rule(
        "mrr_growth_below_target", "medium", "financial", "financial.mrr_growth_rate", "<", 5,
        title="MRR growth {value}% is below the {threshold}% monthly target",
        message="Monthly recurring revenue {moved} {abs_value}% over the last month, to ${mrr} in the "
                "week ending {week}; the target is {threshold}% month-over-month growth.",
    ),
    Rule(
        "api_response_time_above_target", "medium", "system", "system_health.avg_response_time_ms", ">",
        1000,
        title="Average response time {value} ms is above the {threshold} ms target",
        message="In the week ending {week} our services answered in {value} ms on average, slower than "
                "the {threshold} ms target.",
    ),
    Rule(
        "ai_accuracy_below_target", "medium", "ai", "ai_platform.accuracy_rate", "<", 90,
        title="AI assistant accuracy {value}% is below the {threshold}% target",
        message="In the week ending {week} users rated {value}% of the AI assistant's answers correct, "
                "below the {threshold}% target.",
    ),
    Rule(
        "services_degraded", "low", "system", "system_health.services_healthy", "below_total", None,
        title="{unhealthy} of {total} services not healthy at the end of the week ending {week}",
        message="At the end of the week ending {week}, {healthy} of {total} services were healthy. "
                "Not healthy: {names}.",
    ),
)
RULES_BY_NAME = {rule.name: rule for rule in RULES}
WEEKLY_RULES = tuple(rule.name for rule in RULES)

# Every configurable setting: each rule's own number (for churn_spike, the multiplier of the
# previous weeks' mean) plus the churn-spike floor.
DEFAULT_THRESHOLDS: dict[str, float] = {
    **{rule.name: float(rule.default_threshold) for rule in RULES if rule.default_threshold is not None},
    "churn_spike_minimum": 2.0,
}


# --------------------------------------------------------------------------- thresholds
def env_variable(setting: str) -> str:
    """``uptime_below_target`` → ``INVESTOR_ALERT_UPTIME_BELOW_TARGET``."""
    return ENV_PREFIX + setting.upper()


def _number(raw, where: str) -> float:
    if isinstance(raw, bool):
        raise ConfigError(f"{where} must be a number, got {raw!r}")
    try:
        value = float(raw.strip() if isinstance(raw, str) else raw)
    except (TypeError, ValueError):
        raise ConfigError(f"{where} must be a number, got {raw!r}") from None
    if not math.isfinite(value):
        raise ConfigError(f"{where} must be a finite number, got {raw!r}")
    return value


def _airflow_variable(key: str):
    return airflow_variable(key, fallback="alert thresholds from the environment only")


def load_thresholds(
    *, env: Mapping[str, str] | None = None, get_variable: Callable[[str], object] | None = None
) -> dict[str, float]:
    """Every threshold setting: defaults < ``INVESTOR_ALERT_*`` environment < the Airflow Variable
    ``investor_alert_thresholds``. Call it in a task (it may read the Variable), not at import."""
    env = os.environ if env is None else env
    get_variable = _airflow_variable if get_variable is None else get_variable
    thresholds = dict(DEFAULT_THRESHOLDS)
    for setting in DEFAULT_THRESHOLDS:
        name = env_variable(setting)
        raw = env.get(name, "")
        if raw.strip():
            thresholds[setting] = _number(raw, name)

    raw = get_variable(THRESHOLDS_VARIABLE)
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return _checked(thresholds)
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError as exc:
            raise ConfigError(
                f"Airflow Variable {THRESHOLDS_VARIABLE} is not valid JSON ({exc}); expected an object "
                'such as {"uptime_below_target": 99.0}'
            ) from None
    if not isinstance(raw, Mapping):
        raise ConfigError(
            f"Airflow Variable {THRESHOLDS_VARIABLE} must be a JSON object such as "
            f'{{"uptime_below_target": 99.0}}, got {type(raw).__name__}'
        )
    for setting, value in raw.items():
        if setting not in DEFAULT_THRESHOLDS:
            hint = " (it has no threshold to configure)" if setting in RULES_BY_NAME else ""
            raise ConfigError(
                f"Airflow Variable {THRESHOLDS_VARIABLE} names unknown setting {setting!r}{hint}; "
                f"known: {', '.join(DEFAULT_THRESHOLDS)}"
            )
        thresholds[setting] = _number(value, f"Airflow Variable {THRESHOLDS_VARIABLE}: {setting}")
    return _checked(thresholds)


def _checked(thresholds: dict[str, float]) -> dict[str, float]:
    for setting in ("churn_spike", "churn_spike_minimum"):
        if thresholds[setting] < 0:
            raise ConfigError(f"alert setting {setting} ({env_variable(setting)}) must not be negative")
    return thresholds


# --------------------------------------------------------------------------- evaluation (pure)
def dedup_key(rule: str, period_end: datetime | str, series: str = "weekly") -> str:
    """``"<rule>|<period end ISO>"`` for a week, ``"<rule>|on_demand|<period end ISO>"`` for an
    on-demand report: one alert per (rule, series, period)."""
    if series == "weekly":
        return f"{rule}|{_iso(period_end)}"
    if series == "on_demand":
        return f"{rule}|on_demand|{_iso(period_end)}"
    raise ValueError(f"alert series must be weekly or on_demand, got {series!r}")


def series_of_snapshot(snapshot: Mapping) -> str:
    from include.investor_metrics.weekly.snapshots import series_of

    return series_of((snapshot.get("period") or {}).get("type") or "weekly")


def alert_id(key: str) -> str:
    """The stable id of an alert: the first 16 hex digits of sha256(dedup key)."""
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def churn_spike_bound(previous_churned: list[int], *, multiplier: float = 2, minimum: float = 2) -> Fraction:
    """max(minimum, multiplier × mean of ``previous_churned``) (just the minimum with no history)."""
    bound = Fraction(minimum)
    if previous_churned:
        mean = Fraction(sum(int(c) for c in previous_churned), len(previous_churned))
        bound = max(bound, Fraction(multiplier) * mean)
    return bound


def evaluate(snapshot: dict, *, thresholds: Mapping[str, float], previous_churned: list[int]) -> list[dict]:
    """The alerts a snapshot raises, most severe first. ``thresholds``: settings of
    ``load_thresholds`` (missing ones take their default); ``previous_churned``: churned customers of
    the previous weeks (``previous_churned_customers``). Pure: same input, same alerts."""
    settings = {**DEFAULT_THRESHOLDS, **thresholds}
    period_start = _iso(snapshot["period"]["start"])
    period_end = _iso(snapshot["period"]["end"])
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
        return float(value), _round2(bound), {
            "customers": "customer" if value == 1 else "customers",
            "multiplier": _fmt(multiplier), "minimum": _fmt(minimum), "average": _fmt(_round2(average)),
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


def _round2(value: Fraction) -> float:
    from include.investor_metrics.weekly.metrics import round_half_up

    return round_half_up(value)


def _fmt(value) -> str:
    """A number as an investor reads it: 99.49, 1,000.01, 5, 2.75."""
    if value is None:
        return "n/a"
    text = f"{float(value):,.2f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def _iso(value: datetime | str) -> str:
    return iso_utc(as_instant(value))


def sort_alerts(alerts: Iterable[dict]) -> list[dict]:
    """Newest first: triggered_at desc, then severity (critical first), then rule."""
    ordered = sorted(alerts, key=lambda a: (SEVERITY_RANK.get(a["severity"], 9), a["rule"]))
    return sorted(ordered, key=lambda a: a["triggered_at"], reverse=True)


def snapshot_alerts(alerts: Iterable[Mapping]) -> list[dict]:
    """The deterministic fields only (no run_id / notified): what a snapshot's ``alerts`` holds."""
    return [{field: alert.get(field) for field in ALERT_FIELDS} for alert in alerts]


# --------------------------------------------------------------------------- churn history
def previous_churned_customers(
    metrics_conn, source_conn, period: Period, weeks: int = CHURN_SPIKE_WEEKS
) -> list[int]:
    """churned_customers of the ``weeks`` weeks before ``period``, oldest first. Week k ends at
    period end − 7k calendar days (the period's time zone). A week with a stored snapshot of the same
    calendar week is read from ``investor_metrics.snapshots``; the others are computed from the
    source with the same definition (``metrics.churned_customers`` on the subscriptions extract), so
    the answer does not depend on the order in which backfill runs finish."""
    from include.investor_metrics.weekly import extract, metrics

    ends = [calendar_offset(period.end, _tz(period), days=7 * k) for k in range(weeks, 0, -1)]
    periods = {end: weekly_period(end, period.tz) for end in ends}
    with metrics_conn.cursor() as cur:
        cur.execute(read_sql("alerts_previous_churned.sql"), {"period_ends": ends})
        stored = {to_utc(row["period_end"]): row for row in _rows(cur)}
    churned: dict[datetime, int] = {}
    for end, week in periods.items():
        row = stored.get(end)
        if row and row["churned_customers"] is not None and to_utc(row["period_start"]) == week.start:
            churned[end] = int(row["churned_customers"])
    missing = [end for end in ends if end not in churned]
    if missing:
        # One subscriptions extract spanning every missing week: it holds each row any of those
        # weeks can see, and churned customers only look at subscriptions.
        span = Period(start=min(periods[e].start for e in missing), end=max(missing), tz=period.tz)
        subscriptions = extract.run_query(
            source_conn, "extract_subscriptions.sql", extract.period_bounds(span),
            extract.SUBSCRIPTIONS_COLUMNS,
        )
        for end in missing:
            churned[end] = metrics.churned_customers(subscriptions, periods[end].start, end)
        log.info("churned customers of %d previous week(s) computed from the source", len(missing))
    return [churned[end] for end in ends]


def _tz(period: Period):
    import pendulum

    return pendulum.timezone(period.tz)


# --------------------------------------------------------------------------- the store
def _rows(cur) -> list[dict]:
    """Rows as dicts, whatever the cursor's row type (tuples, psycopg 3 dict rows)."""
    names = [d[0] for d in cur.description]
    return [dict(row) if isinstance(row, Mapping) else dict(zip(names, row, strict=True))
            for row in cur.fetchall()]


def alert_record(row: Mapping) -> dict:
    """A stored alert, JSON-ready: SPEC fields in order, times as ISO 8601 UTC with ``Z``."""
    record = {}
    for field in STORED_FIELDS:
        value = row.get(field)
        if isinstance(value, datetime):
            value = iso_utc(value)
        elif field in ("value", "threshold") and value is not None:
            value = float(value)
        record[field] = value
    record["notified"] = bool(record["notified"])
    for field in OPTIONAL_STORED_FIELDS:
        value = row.get(field)
        if value is not None:
            record[field] = iso_utc(value) if isinstance(value, datetime) else value
    return record


def _key_of(alert: Mapping, series: str = "weekly") -> str:
    return alert.get("dedup_key") or dedup_key(alert["rule"], alert["period_end"], series)


def _instant(value):
    return None if value is None else as_instant(value)


def period_lock_key(period_end: datetime | str, series: str = "weekly") -> str:
    """The advisory lock under which a period's snapshot and alerts are stored."""
    return PERIOD_LOCK_PREFIX + (_iso(period_end) if series == "weekly" else f"{series}|{_iso(period_end)}")


def lock_period(cur, period_end: datetime | str, *, series: str = "weekly") -> None:
    """Take the period's transaction-level advisory lock (released at COMMIT / ROLLBACK)."""
    cur.execute("SELECT pg_advisory_xact_lock(hashtext(%(key)s::text))",
                {"key": period_lock_key(period_end, series)})


def store_period_alerts(cur, alerts: Iterable[Mapping], *, run_id: str | None,
                        period_end: datetime | str | None = None, series: str = "weekly") -> list[dict]:
    """Store ``alerts`` in the caller's transaction (no lock, no commit: see ``upsert_alerts`` and
    ``store.store_period``). With ``period_end``, ``alerts`` is the period's whole evaluation: the
    period's rule alerts of ``series`` that are not in it are superseded (kept, ``superseded_at``
    set) when they were e-mailed (``notified``, or a delivered send-log row), deleted otherwise."""
    alerts = list(alerts)
    period_iso = None if period_end is None else _iso(period_end)
    if period_iso is not None:
        stray = [a["rule"] for a in alerts
                 if a["rule"] in WEEKLY_RULES and _iso(a["period_end"]) != period_iso]
        if stray:
            raise ValueError(f"alerts {stray} are not of the period ending {period_iso}")
        firing = {_key_of(a, series) for a in alerts}
        stale = sorted(key for key in (dedup_key(rule, period_iso, series) for rule in WEEKLY_RULES)
                       if key not in firing)
        cur.execute(read_sql("alerts_supersede_stale.sql"), {"dedup_keys": stale})
        (outcome,) = _rows(cur)
        if outcome["superseded"] or outcome["deleted"]:
            log.info("period ending %s (%s): %d alert(s) no longer fire: %d e-mailed, kept as superseded; "
                     "%d deleted", period_iso, series, outcome["superseded"] + outcome["deleted"],
                     outcome["superseded"], outcome["deleted"])
    stored = {}
    # Same order in every run: two runs upserting the same keys cannot deadlock.
    for alert in sorted(alerts, key=lambda a: _key_of(a, series)):
        key = _key_of(alert, series)
        cur.execute(read_sql("alerts_upsert.sql"), {
            "id": alert.get("id") or alert_id(key),
            "dedup_key": key,
            "rule": alert["rule"],
            "severity": alert["severity"],
            "category": alert["category"],
            "title": alert["title"],
            "message": alert["message"],
            "metric": alert.get("metric"),
            "value": alert.get("value"),
            "threshold": alert.get("threshold"),
            "period_start": _instant(alert["period_start"]),
            "period_end": _instant(alert["period_end"]),
            "triggered_at": _instant(alert["triggered_at"]),
            "run_id": run_id,
            "notified": bool(alert.get("notified", False)),
            "service": alert.get("service"),
            "series": series,
        })
        stored[key] = alert_record(_rows(cur)[0])
    return [stored[_key_of(a, series)] for a in alerts]


def upsert_alerts(conn, alerts: Iterable[Mapping], *, run_id: str | None,
                  period_end: datetime | str | None = None, series: str = "weekly") -> list[dict]:
    """Store ``alerts`` (one row per dedup key; a rerun updates it, ``notified`` kept once true) and,
    when ``period_end`` is given, retire that period's rule alerts (of ``series``) that are not in
    ``alerts`` (``alerts`` is then the whole evaluation of the period: pass it even when nothing
    fired): superseded when e-mailed, else deleted. One transaction under the period's lock,
    committed here. Returns the stored alerts (``alert_record``), in ``alerts``' order."""
    alerts = list(alerts)
    period_iso = None if period_end is None else _iso(period_end)
    # Runs of one period serialise (a consistent retire + upsert); different periods do not wait.
    lock_keys = sorted({_iso(a["period_end"]) for a in alerts} | ({period_iso} if period_iso else set()))
    try:
        with conn.cursor() as cur:
            for iso in lock_keys:
                lock_period(cur, iso, series=series)
            stored = store_period_alerts(cur, alerts, run_id=run_id, period_end=period_end, series=series)
        conn.commit()
    except Exception:
        conn.rollback()
        raise
    return stored


def _select(conn, *, period_end=None, severity=None, since=None, limit=None, series=None,
            current_only=False) -> list[dict]:
    params = {"period_end": _instant(period_end), "severity": severity, "since": _instant(since),
              "limit": limit, "series": series, "current_only": current_only}
    with conn.cursor() as cur:
        cur.execute(read_sql("alerts_select.sql"), params)
        return [alert_record(row) for row in _rows(cur)]


def alerts_for_period(conn, period_end: datetime | str, *, series: str = "weekly") -> list[dict]:
    """The current alerts of the period ending ``period_end`` in ``series`` (default the weeks),
    most severe first; superseded alerts are not current."""
    if series not in ("weekly", "on_demand"):
        raise ValueError(f"series must be weekly or on_demand, got {series!r}")
    return _select(conn, period_end=period_end, series=series, current_only=True)


def all_alerts(conn, *, severity: str | None = None, since: datetime | str | None = None,
               limit: int | None = None) -> list[dict]:
    """Every stored alert, superseded ones included, newest first (triggered_at desc, severity
    critical → low, rule); optionally only one ``severity``, those triggered at or after ``since``,
    the first ``limit``."""
    if severity is not None and severity not in SEVERITY_RANK:
        raise ValueError(f"severity must be one of {', '.join(SEVERITY_RANK)}, got {severity!r}")
    return _select(conn, severity=severity, since=since, limit=limit)


def mark_notified(conn, alert_ids: Iterable[str], *, commit: bool = True) -> list[str]:
    """Mark alerts as e-mailed; returns the ids that changed. ``commit=False`` leaves the
    transaction open (e.g. to commit together with a send-log row)."""
    ids = sorted(set(alert_ids))
    try:
        with conn.cursor() as cur:
            cur.execute(read_sql("alerts_mark_notified.sql"), {"ids": ids})
            changed = [row["id"] for row in _rows(cur)]
        if commit:
            conn.commit()
    except Exception:
        conn.rollback()
        raise
    return changed


# --------------------------------------------------------------------------- alert_history.json
def alert_history_document(alerts: list[dict]) -> dict:
    return {
        "generated_from": "investor_metrics.alerts",
        "order": "triggered_at desc, severity (critical, high, medium, low), rule",
        "alerts": alerts,
    }


def publish_alert_history(conn, location: str) -> str:
    """Rewrite ``alert_history.json`` in the archive ``location`` from the store (every alert, newest
    first), atomically. Runs hold an advisory lock from reading the store to replacing the file, so
    concurrent runs write one after the other and the last one writes the full current history.
    Returns the file's path."""
    from include.investor_metrics.weekly import archive

    target = archive.archive_path(location) / archive.ALERT_HISTORY_NAME
    with conn.cursor() as cur:
        # A session lock (not a transaction one) so that it holds in autocommit mode too.
        cur.execute("SELECT pg_advisory_lock(hashtext(%(key)s::text))", {"key": HISTORY_LOCK})
    try:
        history = all_alerts(conn)
        archive.write_atomic(target, archive.dumps(alert_history_document(history)))
        conn.commit()
    except Exception:
        conn.rollback()
        raise
    finally:
        with conn.cursor() as cur:
            cur.execute("SELECT pg_advisory_unlock(hashtext(%(key)s::text))", {"key": HISTORY_LOCK})
        conn.commit()
    log.info("alert history: %d alert(s) in %s", len(history), target)
    return str(target)
