"""The weekly summary's trend charts: the last ``TREND_WEEKS`` weeks of four KPIs, each drawn as a
small PNG (matplotlib, imported when a chart is drawn). The same data gives the same bytes.

The time axis is honest: x is real time (days before the current period end), a week with no
snapshot is a gap (no point, the line broken), never a neighbour of the weeks around it."""

from __future__ import annotations

import io
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo

from include.investor_metrics.mail.formats import (
    BAD,
    NEUTRAL,
    finite_number,
    format_value,
    local_date,
    lookup,
)
from include.investor_metrics.period import as_instant

TREND_WEEKS = 12
CHART_LINE = "#2563eb"
GAP_DAYS = 10.5  # consecutive weekly snapshots are 7 days (± a DST hour) apart; 14 means a week is missing


@dataclass(frozen=True)
class Trend:
    """One chart: its key (the image's file name), title, snapshot path and value format."""

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
    """The snapshots of the ``weeks`` weeks up to and including ``snapshot``, oldest first (one per
    period end; the current snapshot wins over a stored copy of itself). The window is time, not a
    count: a snapshot that ends ``weeks`` weeks or more before ``snapshot`` is out, however few
    there are in between (half a week of slack absorbs a DST hour)."""
    end = as_instant(snapshot["period"]["end"])
    oldest = end - timedelta(days=7 * (weeks - 1) + 3.5)
    by_end: dict[datetime, Mapping] = {}
    for item in history or ():
        try:
            item_end = as_instant(item["period"]["end"])
        except (KeyError, TypeError, ValueError):
            continue
        if oldest < item_end < end:
            by_end[item_end] = item
    by_end[end] = snapshot
    return [by_end[k] for k in sorted(by_end)]


def axis_formatter(fmt: str):
    """The y-axis labels of a chart of values in ``fmt``: ``$32k``, ``99.5%``, ``1,811``."""
    def label(value, _pos=None):
        if fmt == "money":
            sign = "-" if value < 0 else ""
            value = abs(value)
            return f"{sign}${value / 1000:,.0f}k" if value >= 10_000 else f"{sign}${value:,.0f}"
        if fmt == "pct2":
            return f"{value:.1f}%"
        if abs(value) >= 10_000:
            return f"{value / 1000:,.0f}k"
        return f"{value:,.0f}"

    return label


def days_before(instant: datetime, end: datetime) -> float:
    """The x position of ``instant`` on a chart ending at ``end``: days, negative before it."""
    return (instant - end).total_seconds() / 86_400


def broken_line(xs: Sequence[float], ys: Sequence[float]) -> tuple[list[float], list[float]]:
    """``xs``, ``ys`` with a NaN point inside every gap longer than ``GAP_DAYS``: matplotlib breaks
    a line at NaN, so a week with no snapshot is never bridged."""
    out_x: list[float] = []
    out_y: list[float] = []
    for x, y in zip(xs, ys, strict=True):
        if out_x and x - out_x[-1] > GAP_DAYS:
            out_x.append((x + out_x[-1]) / 2)
            out_y.append(math.nan)
        out_x.append(x)
        out_y.append(y)
    return out_x, out_y


def week_axis(ax, end: datetime, tz: tzinfo, weeks: int = TREND_WEEKS) -> None:
    """An x axis of real time: the ``weeks`` weeks to ``end`` (x = 0), every third week labelled
    with its local date, whether or not it has a snapshot."""
    ax.set_xlim(-7 * (weeks - 1) - 3.5, 3.5)
    ticks = [-7 * k for k in range(0, weeks, 3)][::-1]
    ax.set_xticks(ticks)
    ax.set_xticklabels([f"{(end + timedelta(days=t)).astimezone(tz).day} "
                        f"{(end + timedelta(days=t)).astimezone(tz):%b}" for t in ticks])


def png_bytes(fig) -> bytes:
    """The figure as PNG, without a timestamp (the same data gives the same bytes)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()


def trend_figure(points: Sequence[tuple[datetime, float | None]], trend: Trend, tz: tzinfo, *,
                 target: float | None = None):
    """A small line chart (450 × 240 px, shown at 290 px wide: sharp on high-DPI screens) of
    ``points`` (instant, value), oldest first, the last one the current week.

    Drawn with matplotlib's object API on the Agg canvas (no pyplot global state: safe in a
    worker thread)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    fig = Figure(figsize=(3.0, 1.6), dpi=150)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    end = points[-1][0]
    xs, ys = broken_line([days_before(d, end) for d, _ in points],
                         [math.nan if v is None else v for _, v in points])
    known = [(x, y) for x, y in zip(xs, ys, strict=True) if not math.isnan(y)]
    if known:
        ax.plot(xs, ys, color=CHART_LINE, linewidth=1.6, marker="o", markersize=2.6)
        if len(known) > 1 and target is None:
            ax.fill_between(xs, ys, min(y for _, y in known), color=CHART_LINE, alpha=0.07, linewidth=0)
        last_x, last_y = known[-1]
        ax.plot([last_x], [last_y], marker="o", markersize=4.5, color=CHART_LINE)
    else:
        ax.text(0.5, 0.5, "no data", transform=ax.transAxes, ha="center", va="center", color=NEUTRAL,
                fontsize=8)
    week_axis(ax, end, tz)
    if target is not None and known:
        ax.axhline(target, color=BAD, linewidth=0.8, linestyle=(0, (3, 2)))
        ax.text(ax.get_xlim()[0], target, f" target {target:g}%", color=BAD, fontsize=5.5, va="bottom",
                ha="left")
        low = min(min(y for _, y in known), target)
        high = max(max(y for _, y in known), target)
        pad = max((high - low) * 0.15, 0.05)
        ax.set_ylim(low - pad, min(high + pad, 100.0 + pad))
    ax.yaxis.set_major_locator(MaxNLocator(nbins=4))
    ax.yaxis.set_major_formatter(FuncFormatter(axis_formatter(trend.fmt)))
    style_axes(ax)
    fig.tight_layout(pad=0.4)
    return fig


def style_axes(ax) -> None:
    """The charts' common look: small grey labels, a light horizontal grid, a bottom spine only."""
    ax.tick_params(labelsize=6, length=0, colors="#4b5563")
    ax.set_axisbelow(True)  # the grid behind bars and lines
    ax.grid(axis="y", color="#e5e7eb", linewidth=0.6)
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)
    ax.spines["bottom"].set_color("#d1d5db")


def render_trend_chart(points: Sequence[tuple[datetime, float | None]], trend: Trend, tz: tzinfo, *,
                       target: float | None = None) -> bytes:
    """``trend_figure`` as PNG bytes."""
    return png_bytes(trend_figure(points, trend, tz, target=target))


def trend_charts(window: Sequence[Mapping], tz: tzinfo, *, uptime_target: float | None) -> list[dict]:
    """One chart per trend over ``window``: key, title, weeks, a first → last summary, the PNG."""
    charts = []
    for trend in TRENDS:
        points = [(as_instant(s["period"]["end"]), finite_number(lookup(s, trend.path))) for s in window]
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
