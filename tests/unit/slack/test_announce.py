"""Which asset events are posted: scheduled weeks and on-demand reports that e-mailed; never backfills."""

from __future__ import annotations

import pytest

from include.investor_metrics.slack.announce import NotASnapshotEvent, skip_reason, snapshot_event
from tests.unit.slack.helpers import END, extra


def test_a_snapshot_event_from_the_extra():
    event = snapshot_event(extra(), source_dag_id="investor_metrics", source_run_id="scheduled__1")
    assert (event.period_end, event.period_type, event.series) == (END, "weekly", "weekly")
    assert event.announce is None
    assert event.source == "investor_metrics/scheduled__1"


@pytest.mark.parametrize(("bad", "says"), [
    ({}, "period_type"),
    (extra(period_type="monthly"), "period_type"),
    (extra(period_end="last sunday"), "period_end"),
    (extra(series="on_demand"), "does not match"),
])
def test_an_event_without_the_metadata_is_no_snapshot_event(bad, says):
    with pytest.raises(NotASnapshotEvent, match=says):
        snapshot_event(bad)


def never_asked():
    raise AssertionError("the source run must not be read")


def test_the_extra_announce_decides_but_never_for_a_backfill():
    assert skip_reason(snapshot_event(extra(announce=True)), never_asked) is None
    assert "announce=false" in skip_reason(snapshot_event(extra(announce=False)), never_asked)
    backfill = snapshot_event(extra(period_type="backfill", announce=True))
    assert "backfill" in skip_reason(backfill, never_asked)


def test_without_announce_the_period_type_and_the_source_run_decide():
    assert skip_reason(snapshot_event(extra()), never_asked) is None  # a scheduled week
    assert "backfill" in skip_reason(snapshot_event(extra(period_type="backfill")), never_asked)
    on_demand = snapshot_event(extra(period_type="on_demand"))
    assert skip_reason(on_demand, lambda: {"send_email": True}) is None
    assert skip_reason(on_demand, lambda: {"send_email": "true"}) is None
    assert "without send_email" in skip_reason(on_demand, lambda: {"send_email": False})
    assert "without send_email" in skip_reason(on_demand, lambda: {})
    assert "unknown" in skip_reason(on_demand, lambda: None)
