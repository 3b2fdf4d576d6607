"""Parsing the investor API's parameters without a server (``include/investor_metrics/api/params.py``):
instants through ``period.parse_instant`` (an ``InstantError`` naming the parameter), severities."""

from __future__ import annotations

import pytest

from include.investor_metrics import period
from include.investor_metrics.api import params
from tests.unit.api.fixtures import LATEST_END


def test_optional_instant():
    assert params.optional_instant(None, "since") is None
    assert params.optional_instant("2026-11-22T10:00:00+01:00", "since") == LATEST_END
    assert params.optional_instant("2026-11-22T09:00:00.000000Z", "since") == LATEST_END
    for bad, words in [("2026-11-22T09:00:00", "no UTC offset"), ("soon", "not an ISO 8601"),
                       (" 2026-11-22T09:00:00Z", "not an ISO 8601"),
                       ("2026-11-22T09:00:00z", "not an ISO 8601"),
                       ("9999-12-31T23:59:59-23:59", "outside the years 1970–9999"),
                       ("0001-01-01T00:00:00+23:59", "outside the years 1970–9999")]:
        with pytest.raises(period.InstantError, match=words) as caught:
            params.optional_instant(bad, "since")
        assert caught.value.parameter == "since" and str(caught.value).startswith("since ")


def test_parse_severities():
    assert params.parse_severities(None) is None
    assert params.parse_severities(["high,critical", "high", "low"]) == ("high", "critical", "low")
    for bad, shown in [("high,info", "'info'"), ("high, critical", "' critical'"), ("HIGH", "'HIGH'")]:
        with pytest.raises(params.ParameterError, match=f"got {shown}"):
            params.parse_severities([bad])
