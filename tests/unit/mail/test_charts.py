"""The charts (``mail/charts.py``, ``mail/movements_chart.py``): the last twelve weeks of real time,
one point or bar per stored week, a gap where a week has no snapshot."""

from __future__ import annotations

import copy
import math
from datetime import timezone

from include.investor_metrics.mail.charts import (
    TRENDS,
    broken_line,
    render_trend_chart,
    trend_figure,
    trend_window,
)
from include.investor_metrics.mail.movements_chart import movement_weeks, movements_figure
from include.investor_metrics.period import as_instant
from tests.unit.mail import helpers
from tests.unit.mail.helpers import summary, text_of

# The shared fixtures (pytest finds a fixture by its name in the test module).
snapshot = helpers.snapshot
history = helpers.history


def test_trend_charts_cover_the_last_twelve_weeks(snapshot, history):
    window = trend_window(snapshot, history + [history[3]])  # a duplicate is counted once
    assert len(window) == 12
    assert window[-1] is snapshot and window[0]["period"]["end"] == "2026-09-06T09:00:00Z"
    text = text_of(summary(snapshot, history))
    assert "MRR               $22,968 (6 Sep 2026) → $32,110 (22 Nov 2026)" in text
    # With no history at all the charts still render (one point each, and the movements chart).
    msg = summary(snapshot, [], previous=None)
    assert len([p for p in msg.walk() if p.get_content_type() == "image/png"]) == 5  # 4 trends, movements


# --- Honest time axis: x is real time, a week with no snapshot is a gap ---------------------------

def _weeks_ago(snapshot, history, *ks):
    """The stored snapshots ``ks`` weeks before ``snapshot`` (history[k - 1] ends k weeks before)."""
    return [history[k - 1] for k in ks]


def test_the_window_is_twelve_weeks_of_time_not_twelve_snapshots(snapshot, history):
    # The case: weeks 11, 10 and 9 before (6, 13, 20 Sep … 22 Nov is 11 weeks) and this one.
    window = trend_window(snapshot, _weeks_ago(snapshot, history, 11, 10, 9))
    assert [s["period"]["end"][:10] for s in window] == ["2026-09-06", "2026-09-13", "2026-09-20",
                                                         "2026-11-22"]
    # A snapshot 12 weeks before is out of the 12-week window, even when few are in it.
    old = copy.deepcopy(history[0])
    old["period"]["end"] = "2026-08-30T09:00:00Z"
    assert [s["period"]["end"][:10] for s in trend_window(snapshot, [old, history[0]])] == [
        "2026-11-15", "2026-11-22"]


def test_a_missing_week_is_a_gap_in_the_trend_line(snapshot, history):
    # Weeks 11, 10, 9 and 2, 1 before, then this one: weeks 8 … 3 have no snapshot.
    window = trend_window(snapshot, _weeks_ago(snapshot, history, 11, 10, 9, 2, 1))
    points = [(as_instant(s["period"]["end"]), s["financial"]["active_customers"]) for s in window]
    fig = trend_figure(points, TRENDS[1], timezone.utc)
    ax = fig.axes[0]
    line = ax.lines[0]
    xs, ys = list(line.get_xdata()), list(line.get_ydata())
    # x = days before the period end; a NaN point sits inside the 49-day gap, so it is not bridged.
    assert xs == [-77.0, -70.0, -63.0, -38.5, -14.0, -7.0, 0.0]
    assert [y for y in ys if not math.isnan(y)] == [94, 97, 100, 121, 124, 127]
    assert math.isnan(ys[3])
    # The axis spans the 12 weeks whatever is stored, ticks every third week ending on this one.
    assert ax.get_xlim() == (-80.5, 3.5)
    assert list(ax.get_xticks()) == [-63, -42, -21, 0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["20 Sep", "11 Oct", "1 Nov", "22 Nov"]
    # A PNG of it is drawn too.
    assert render_trend_chart(points, TRENDS[1], timezone.utc).startswith(b"\x89PNG")


def test_weekly_steps_across_a_dst_change_are_not_a_gap():
    # Weekly ends at local midnight in Europe/Berlin: 7 days less an hour apart across the change.
    xs, ys = broken_line([-7 - 1 / 24, 0.0], [1.0, 2.0])
    assert xs == [-7 - 1 / 24, 0.0] and ys == [1.0, 2.0]
    xs, ys = broken_line([-14.0, 0.0], [1.0, 2.0])  # one week missing
    assert xs[1] == -7.0 and math.isnan(ys[1])


def test_mrr_movements_chart_stacks_above_and_below_zero_with_gaps(snapshot, history):
    weeks_ago = (11, 10, 2)
    stored = _weeks_ago(snapshot, history, *weeks_ago)
    stored[0]["financial"].update(new_mrr=100.0, reactivation_mrr=20.0, expansion_mrr=30.0,
                                  contraction_mrr=40.0, churned_mrr=60.0, net_new_mrr=50.0)
    weeks = movement_weeks(trend_window(snapshot, stored))
    ax = movements_figure(weeks, timezone.utc).axes[0]
    bars = {}
    for bar in ax.patches:
        bars.setdefault(round(bar.get_x() + bar.get_width() / 2, 6), []).append(
            (bar.get_y(), bar.get_height()))
    # A bar per stored week at its real time; none in weeks 9 … 3 or week 1.
    assert sorted(bars) == [-77.0, -70.0, -14.0, 0.0]
    # 6 Sep: new 100, reactivation 20, expansion 30 stacked up; contraction 40, churned 60 down.
    assert sorted(bars[-77.0]) == [(-40.0, -60.0), (0.0, -40.0), (0.0, 100.0), (100.0, 20.0),
                                   (120.0, 30.0)]
    # This week (the sample): new 1,740 + expansion 349 up, contraction 650 down; no churn.
    assert sorted(bars[0.0]) == [(-650.0, 0.0), (0.0, -650.0), (0.0, 1740.0), (1740.0, 0.0), (1740.0, 349.0)]
    net = next(line for line in ax.lines if line.get_gid() == "net_new_mrr")
    xs, ys = list(net.get_xdata()), list(net.get_ydata())
    assert xs == [-77.0, -70.0, -42.0, -14.0, -7.0, 0.0]
    assert ys[:2] == [50.0, 1439.0] and ys[3] == ys[5] == 1439.0
    assert math.isnan(ys[2]) and math.isnan(ys[4])  # the line is broken across both gaps
