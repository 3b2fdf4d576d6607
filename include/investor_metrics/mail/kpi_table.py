"""The KPI table of the weekly summary: which numbers it shows, in which groups, how each is
formatted and which direction of change is good news (green) or bad news (red)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from include.investor_metrics.mail.formats import (
    BAD,
    GOOD,
    NEUTRAL,
    format_change,
    format_value,
    lookup,
)


@dataclass(frozen=True)
class Kpi:
    """One row: its key (the HTML's ``data-kpi``), label, snapshot path and format."""

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
    ("Retention", (
        Kpi("nrr_12m", "Net revenue retention (12 months)", ("retention", "nrr_12m"), "pct1", "up"),
        Kpi("grr_12m", "Gross revenue retention (12 months)", ("retention", "grr_12m"), "pct1", "up"),
        Kpi("nrr_1m", "Net revenue retention (1 month)", ("retention", "nrr_1m"), "pct1", "up"),
        Kpi("grr_1m", "Gross revenue retention (1 month)", ("retention", "grr_1m"), "pct1", "up"),
        Kpi("logo_retention_12m", "Logo retention (12 months)", ("retention", "logo_retention_12m"), "pct1",
            "up"),
    )),
    ("Customers", (
        Kpi("active_customers", "Active customers", ("financial", "active_customers"), "count", "up"),
        Kpi("churned_customers", "Churned customers", ("business_health", "churned_customers"), "count",
            "down"),
        Kpi("logo_churn_rate", "Logo churn", ("business_health", "logo_churn_rate"), "pct2", "down"),
        Kpi("revenue_churn_rate", "Revenue churn", ("business_health", "revenue_churn_rate"), "pct2", "down"),
        Kpi("nps", "NPS", ("business_health", "customer_satisfaction", "nps"), "num1", "up"),
        Kpi("mrr_at_risk", "MRR at risk", ("business_health", "mrr_at_risk"), "money", "down"),
        Kpi("lead_conversion_rate", "Lead conversion", ("financial", "lead_conversion_rate"), "pct1", "up"),
    )),
    ("Platform", (
        Kpi("uptime_percentage", "Uptime", ("system_health", "uptime_percentage"), "pct2", "up"),
        Kpi("avg_response_time_ms", "Avg response time", ("system_health", "avg_response_time_ms"), "ms",
            "down"),
        Kpi("error_rate", "Error rate", ("system_health", "error_rate"), "pct2", "down"),
    )),
    ("AI assistant", (
        Kpi("ai_total_requests", "AI requests", ("ai_platform", "total_requests"), "count", "up"),
        Kpi("ai_accuracy_rate", "AI accuracy", ("ai_platform", "accuracy_rate"), "pct1", "up"),
        Kpi("ai_avg_latency_ms", "AI avg latency", ("ai_platform", "avg_latency_ms"), "ms", "down"),
    )),
)

# Groups shown only when the snapshot has their section (older snapshots do not).
OPTIONAL_GROUPS = {"Retention": "retention"}


def _tone(delta: float | None, better: str | None) -> str:
    if not delta or better is None:
        return "neutral"
    return "good" if (delta > 0) == (better == "up") else "bad"


def kpi_rows(snapshot: Mapping, previous: Mapping | None) -> list[dict]:
    """One dict per KPI group: its rows with value, change against ``previous`` and tone. A group
    whose sections the snapshot lacks (``retention`` in a snapshot older than SPEC 4b) is left out."""
    groups = []
    for name, kpis in KPI_GROUPS:
        section = OPTIONAL_GROUPS.get(name)
        if section is not None and not isinstance(lookup(snapshot, (section,)), Mapping):
            continue  # a snapshot written before the section existed
        rows = []
        for kpi in kpis:
            current = lookup(snapshot, kpi.path)
            change, delta = format_change(current, lookup(previous, kpi.path), kpi.fmt)
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

