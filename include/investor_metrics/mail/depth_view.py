"""The investor-depth sections of the weekly summary (SPEC 4b), as rows for the HTML template and
the plain text: the cohort retention table (logo retention %, on a fixed colour scale), MRR by plan
and the largest movements of the week.

Built from the snapshot's ``retention``, ``segments`` and ``movements`` sections; a snapshot written
before they existed has none, and each builder returns None (the section is left out).
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from datetime import datetime

from include.investor_metrics.mail.formats import (
    BAD,
    GOOD,
    NEUTRAL,
    finite_number,
    format_value,
    lookup,
    text_table,
)

# Logo retention 0 … 100 % in 11 steps of 10 points (ColorBrewer "Blues"): fixed, so the same
# retention has the same colour every week and in every cohort.
RETENTION_SCALE = ("#f7fbff", "#eef5fc", "#deebf7", "#cfe1f2", "#c6dbef", "#9ecae1", "#6baed6",
                   "#4292c6", "#2171b5", "#08519c", "#08306b")
DARK_TEXT, LIGHT_TEXT = "#111827", "#ffffff"
NULL_CELL = "#f3f4f6"
KIND_LABELS = {"new": "New", "reactivation": "Reactivation", "expansion": "Expansion",
               "contraction": "Contraction", "churned": "Churned"}
PLAN_SWITCH_NOTE = ("A customer who switches plans shows as churned on the old plan and new on the other; "
                    "summed over plans, MRR and net new MRR equal the totals.")


def _luminance(colour: str) -> float:
    """WCAG relative luminance of ``#rrggbb``."""
    def channel(c: int) -> float:
        c = c / 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (int(colour[i:i + 2], 16) for i in (1, 3, 5))
    return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)


def contrast(a: str, b: str) -> float:
    """WCAG contrast ratio of two colours (1 … 21)."""
    high, low = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def retention_colours(pct: float) -> tuple[str, str]:
    """(background, text) of a logo-retention cell: the scale's step of ``pct`` (clamped to
    0 … 100), and whichever of dark or white text contrasts more with it."""
    step = min(max(int(pct // 10), 0), len(RETENTION_SCALE) - 1)
    background = RETENTION_SCALE[step]
    text = max((DARK_TEXT, LIGHT_TEXT), key=lambda t: contrast(background, t))
    return background, text


def month_label(month: str) -> str:
    """``2025-12`` → ``Dec 2025`` (unchanged when it is not ``YYYY-MM``)."""
    try:
        return f"{datetime.strptime(month, '%Y-%m'):%b %Y}"
    except (TypeError, ValueError):
        return str(month)


def _cell(point: Mapping) -> dict:
    pct = finite_number(lookup(point, ("logo_retention",)))
    if pct is None:
        return {"text": "—", "background": NULL_CELL, "color": NEUTRAL}
    background, color = retention_colours(pct)
    return {"text": format_value(pct, "pct0"), "background": background, "color": color}


def cohort_table(snapshot: Mapping) -> dict | None:
    """``{"columns": [1, …, n, "end"], "rows": [{month, customers, cells}]}``: a row per cohort
    (oldest first), a column per month since the cohort's start, then ``end`` (the period end).
    A checkpoint the cohort has not reached is an empty cell (None); a null rate is ``—``."""
    cohorts = lookup(snapshot, ("retention", "cohorts"))
    if not isinstance(cohorts, Sequence) or not cohorts:
        return None
    months = max(len(lookup(c, ("checkpoints",)) or []) - 1 for c in cohorts)
    months = max(months, 0)
    rows = []
    for one in cohorts:
        points = list(lookup(one, ("checkpoints",)) or [])
        cells: list[dict | None] = [None] * (months + 1)
        for k, point in enumerate(points[:-1]):
            cells[k] = _cell(point)
        if points:
            cells[months] = _cell(points[-1])
        rows.append({"month": month_label(lookup(one, ("month",))),
                     "customers": format_value(lookup(one, ("customers",)), "count"),
                     "cells": cells})
    return {"columns": [*range(1, months + 1), "end"], "rows": rows}


def plan_rows(snapshot: Mapping) -> list[dict] | None:
    """MRR by plan, the largest MRR first (ties by plan name)."""
    plans = lookup(snapshot, ("segments", "by_plan"))
    if not isinstance(plans, Mapping) or not plans:
        return None
    ordered = sorted(plans.items(), key=lambda kv: (-(finite_number(lookup(kv[1], ("mrr",))) or 0), kv[0]))
    rows = []
    for plan, figures in ordered:
        net = finite_number(lookup(figures, ("net_new_mrr",)))
        rows.append({
            "plan": str(plan),
            "mrr": format_value(lookup(figures, ("mrr",)), "money"),
            "customers": format_value(lookup(figures, ("active_customers",)), "count"),
            **{kind: format_value(lookup(figures, (f"{kind}_mrr",)), "money") for kind in KIND_LABELS},
            "net_new": format_value(net, "money"),
            "net_color": GOOD if (net or 0) > 0 else BAD if (net or 0) < 0 else NEUTRAL,
            "arpa": format_value(lookup(figures, ("arpa",)), "money2"),
        })
    return rows


def mover_rows(snapshot: Mapping) -> list[dict] | None:
    """The largest movements as the snapshot lists them (largest first)."""
    movers = lookup(snapshot, ("movements", "largest"))
    if not isinstance(movers, Sequence) or isinstance(movers, str | bytes):
        return None
    rows = []
    for mover in movers:
        if not isinstance(mover, Mapping):
            continue
        name = mover.get("name")
        change = finite_number(mover.get("change"))
        rows.append({
            "name": str(name) if name else f"customer #{mover.get('customer_id')}",
            "kind": KIND_LABELS.get(mover.get("kind"), str(mover.get("kind") or "n/a")),
            "start": format_value(mover.get("mrr_start"), "money2"),
            "end": format_value(mover.get("mrr_end"), "money2"),
            "change": ("+" if (change or 0) > 0 else "") + format_value(change, "money2"),
            "color": GOOD if (change or 0) > 0 else BAD if (change or 0) < 0 else NEUTRAL,
        })
    return rows


def depth_context(snapshot: Mapping) -> dict:
    """The template's ``cohorts``, ``plans``, ``movers`` (each None when the snapshot lacks it)."""
    return {"cohorts": cohort_table(snapshot), "plans": plan_rows(snapshot), "movers": mover_rows(snapshot),
            "plan_switch_note": PLAN_SWITCH_NOTE}


def depth_text(ctx: Mapping) -> list[str]:
    """The plain-text lines of the depth sections in ``ctx`` (those present), each block ending
    with an empty line."""
    lines: list[str] = []
    table = ctx.get("cohorts")
    if table:
        lines.append("COHORT LOGO RETENTION (% of the cohort active, by months since its start)")
        header = ["cohort", "size", *(str(c) for c in table["columns"])]
        body = [[row["month"], row["customers"], *(cell["text"] if cell else "" for cell in row["cells"])]
                for row in table["rows"]]
        lines += text_table([header, *body], right=range(1, len(header)))
        lines.append("")
    plans = ctx.get("plans")
    if plans:
        lines.append("MRR BY PLAN")
        header = ["plan", "MRR", "customers", "new", "reactivation", "expansion", "contraction", "churned",
                  "net new", "ARPA"]
        body = [[p["plan"], p["mrr"], p["customers"], *(p[kind] for kind in KIND_LABELS), p["net_new"],
                 p["arpa"]] for p in plans]
        lines += text_table([header, *body], right=range(1, len(header)))
        lines += textwrap.wrap(ctx["plan_switch_note"], 96, initial_indent="  ", subsequent_indent="  ")
        lines.append("")
    movers = ctx.get("movers")
    if movers is not None:
        lines.append("LARGEST MRR MOVEMENTS")
        if not movers:
            lines.append("  No customer's MRR changed this week.")
        else:
            header = ["customer", "kind", "MRR start", "", "MRR end", "change"]
            body = [[m["name"], m["kind"], m["start"], "→", m["end"], m["change"]] for m in movers]
            lines += text_table([header, *body], right=(2, 4, 5))
        lines.append("")
    return lines
