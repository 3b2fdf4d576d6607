"""Which snapshot an asset event announces, and whether it is posted to Slack (SPEC 13: when the
e-mail would be sent — scheduled weeks, manual runs with ``send_email`` — never for backfills).

The event's ``extra`` (``archive_snapshot``'s Metadata) names the period: ``period_end`` (ISO,
UTC), ``period_type`` (``weekly`` | ``backfill`` | ``on_demand``), ``series``, ``mrr``; when it
carries ``announce`` (a bool, the weekly run's own e-mail decision) that decides. Without it the
period type does: a weekly (scheduled) week is posted, a backfill week never, an on-demand report
only when its source run was triggered with ``send_email`` (read from the source DAG run's conf).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from include.investor_metrics.period import as_instant
from include.investor_metrics.weekly.series import PERIOD_TYPES


@dataclass(frozen=True)
class SnapshotEvent:
    """One snapshot asset event: the period it announces and where it came from."""

    period_end: datetime
    period_type: str
    series: str
    announce: bool | None  # the extra's own verdict, None when it carries none
    source: str  # "<dag id>/<run id>", or "-" for an event created by hand (UI, REST API)
    timestamp: datetime | None = None


class NotASnapshotEvent(ValueError):
    """The event's extra does not name a snapshot (created by hand without the Metadata)."""


def snapshot_event(extra: Mapping | None, *, source_dag_id=None, source_run_id=None,
                   timestamp=None) -> SnapshotEvent:
    """The ``SnapshotEvent`` of an asset event's ``extra``; ``NotASnapshotEvent`` naming what is
    missing or malformed."""
    extra = extra or {}
    period_type = extra.get("period_type")
    if period_type not in PERIOD_TYPES:
        raise NotASnapshotEvent(f"its extra has no period_type of {', '.join(PERIOD_TYPES)} "
                                f"(got {period_type!r})")
    try:
        end = as_instant(str(extra.get("period_end") or ""))
    except ValueError as exc:
        raise NotASnapshotEvent(f"its extra has no valid period_end ({exc})") from None
    series = extra.get("series") or PERIOD_TYPES[period_type]
    if series != PERIOD_TYPES[period_type]:
        raise NotASnapshotEvent(f"its series {series!r} does not match period_type {period_type!r}")
    announce = extra.get("announce")
    source = f"{source_dag_id}/{source_run_id}" if source_dag_id and source_run_id else "-"
    return SnapshotEvent(end, period_type, series, announce if isinstance(announce, bool) else None,
                         source, timestamp)


def skip_reason(event: SnapshotEvent, source_conf=None) -> str | None:
    """Why ``event`` is not posted, or None when it is. ``source_conf``: a callable returning the
    source run's conf (asked only for an on-demand report whose extra says nothing), or None."""
    if event.period_type == "backfill":
        return "a backfill week is never announced"
    if event.announce is not None:
        return None if event.announce else f"its run sent no e-mail ({event.period_type}, announce=false)"
    if event.period_type == "weekly":
        return None
    conf = source_conf() if source_conf is not None else None
    if conf is None:
        return "an on-demand report whose source run is unknown: cannot tell whether it e-mailed"
    if _truthy(conf.get("send_email")):
        return None
    return "an on-demand report triggered without send_email"


def _truthy(value) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)
