"""The dataset's parameters (``dev/demo_data/params.py``): a bad one is refused by name."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from dev.demo_data import params
from tests.unit.dev.demo_data.helpers import END


def test_knob_weeks_must_lie_inside_the_data():
    with pytest.raises(ValueError, match="outage_week"):
        params.DatasetParams.build(end=END, span_days=30, outage_week=date(2026, 1, 5))
    with pytest.raises(ValueError, match="churn_spike_week"):
        params.DatasetParams.build(end=END, churn_spike_week="2026-11-20")
    with pytest.raises(ValueError, match="end"):
        params.DatasetParams.build(end=datetime(2026, 11, 22, 9))  # naive
    with pytest.raises(ValueError, match="scale"):
        params.DatasetParams.build(end=END, scale="huge")
