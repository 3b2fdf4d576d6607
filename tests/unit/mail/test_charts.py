"""The trend charts (``mail/charts.py``): the last twelve weeks, one point per week."""

from __future__ import annotations

from include.investor_metrics.mail.charts import trend_window
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
    # With no history at all the charts still render (one point each).
    msg = summary(snapshot, [], previous=None)
    assert len([p for p in msg.walk() if p.get_content_type() == "image/png"]) == 4
