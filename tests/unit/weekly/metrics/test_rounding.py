"""Exact money and rounding (``weekly/metrics/rounding.py``, ``frames.milliseconds``)."""

from __future__ import annotations

import pytest

from include.investor_metrics.weekly.metrics import frames, rounding


def test_money_rounds_half_up_to_cents():
    # 1206 twelfths = 1.005 dollars exactly → 1.01 (Python's round(1.005, 2) would give 1.0)
    assert rounding.dollars(1206) == 1.01
    assert rounding.dollars(-1206) == -1.01  # half away from zero
    assert rounding.percentage(1, 8) == 12.5
    assert rounding.percentage(1, 3) == 33.33
    assert rounding.percentage(2, 3) == 66.67
    assert rounding.percentage(1, 0) is None
    assert frames.milliseconds(100.005) == 100.01
    assert frames.milliseconds(float("nan")) is None


def test_the_largest_figure_a_snapshot_carries_exactly():
    assert rounding.dollars(12 * (10**15 - 1)) == 9999999999999.99  # $10^13 less a cent: exact
    with pytest.raises(rounding.MoneyRangeError):
        rounding.dollars(12 * (2**60 + 1))
