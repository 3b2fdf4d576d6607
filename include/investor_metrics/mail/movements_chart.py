"""The MRR movements chart of the weekly summary (SPEC 4b): over the trend window, one stacked bar
per week, new + reactivation + expansion MRR above zero, contraction + churned MRR below, and net
new MRR as a line. Drawn from each week's ``financial`` section, so history written before SPEC 4b
charts too. Real time on the x axis (``charts.week_axis``): a week with no snapshot has no bar and
breaks the line."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import tzinfo

from include.investor_metrics.mail.charts import (
    axis_formatter,
    broken_line,
    days_before,
    png_bytes,
    style_axes,
    week_axis,
)
from include.investor_metrics.mail.formats import finite_number, format_value, lookup
from include.investor_metrics.period import as_instant

# (field of ``financial``, legend label, colour, sign): the stacking order, from zero outwards.
MOVEMENTS = (
    ("new_mrr", "New", "#16a34a", 1),
    ("reactivation_mrr", "Reactivation", "#0d9488", 1),
    ("expansion_mrr", "Expansion", "#86efac", 1),
    ("contraction_mrr", "Contraction", "#fca5a5", -1),
    ("churned_mrr", "Churned", "#dc2626", -1),
)
NET_LINE = "#1f2a44"
BAR_DAYS = 4.2  # a bar's width in days: 60 % of a week, so neighbouring weeks stay apart


def movement_weeks(window: Sequence[Mapping]) -> list[dict]:
    """Per snapshot of ``window``: its end, each movement (dollars, positive; None when absent)
    and net new MRR."""
    weeks = []
    for snapshot in window:
        week = {"end": as_instant(snapshot["period"]["end"])}
        for field, *_ in MOVEMENTS:
            week[field] = finite_number(lookup(snapshot, ("financial", field)))
        week["net_new_mrr"] = finite_number(lookup(snapshot, ("financial", "net_new_mrr")))
        weeks.append(week)
    return weeks


def movements_figure(weeks: Sequence[Mapping], tz: tzinfo):
    """The chart (885 × 330 px, shown 590 px wide) of ``movement_weeks``, the last the current week."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    fig = Figure(figsize=(5.9, 2.2), dpi=150)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    end = weeks[-1]["end"]
    xs = [days_before(week["end"], end) for week in weeks]
    above = [0.0] * len(weeks)
    below = [0.0] * len(weeks)
    for field, label, colour, sign in MOVEMENTS:
        heights = [sign * (week[field] or 0.0) for week in weeks]
        if not any(heights):
            continue
        bottoms = above if sign > 0 else below
        ax.bar(xs, heights, width=BAR_DAYS, bottom=list(bottoms), color=colour, label=label, linewidth=0)
        for i, height in enumerate(heights):
            bottoms[i] += height
    net = [math.nan if week["net_new_mrr"] is None else week["net_new_mrr"] for week in weeks]
    line_x, line_y = broken_line(xs, net)
    ax.plot(line_x, line_y, color=NET_LINE, linewidth=1.4, marker="o", markersize=3, label="Net new",
            gid="net_new_mrr")
    ax.axhline(0, color="#9ca3af", linewidth=0.8)
    ax.margins(y=0.15)  # room for a labelled tick beyond the tallest bar on either side
    week_axis(ax, end, tz)
    ax.yaxis.set_major_locator(MaxNLocator(nbins=5))
    ax.yaxis.set_major_formatter(FuncFormatter(axis_formatter("money")))
    style_axes(ax)
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=6, frameon=False)
    fig.tight_layout(pad=0.4)
    return fig


def movements_chart(window: Sequence[Mapping], tz: tzinfo) -> dict:
    """The chart's entry for the e-mail: key, title, weeks, a text summary, the PNG."""
    weeks = movement_weeks(window)
    current = weeks[-1]
    parts = [f"{label.lower()} {format_value(current[field], 'money')}" for field, label, *_ in MOVEMENTS]
    return {
        "key": "mrr_movements",
        "title": "MRR movements",
        "weeks": len(weeks),
        "summary": f"this week: {', '.join(parts)}; net new {format_value(current['net_new_mrr'], 'money')}",
        "rows": [(f"{w['end'].astimezone(tz).day} {w['end'].astimezone(tz):%b}",
                  *(format_value(w[field], "money") for field, *_ in MOVEMENTS),
                  format_value(w["net_new_mrr"], "money")) for w in weeks],
        "png": png_bytes(movements_figure(weeks, tz)),
    }
