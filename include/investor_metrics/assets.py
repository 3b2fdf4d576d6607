"""The Airflow Asset every published snapshot updates (SPEC 13), for the DAG files that emit it
(``investor_metrics``: ``archive_snapshot``) and the ones scheduled on it (``investor_metrics_slack``).

Each event carries ``snapshot_event_extra``: ``period_end`` (ISO 8601 UTC, as in the snapshot),
``period_type`` (``weekly``, ``backfill``, ``on_demand``), ``series`` (``weekly``, ``on_demand``:
where the snapshot is archived), ``mrr`` (the period's MRR in dollars, a float) and ``announce``
(true when the run e-mails the snapshot: scheduled weeks, manual runs with ``send_email``). Cheap to import:
only ``airflow.sdk``, which every DAG file imports anyway.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import Asset

from include.investor_metrics.contract import SNAPSHOT_ASSET_NAME, SNAPSHOT_ASSET_URI
from include.investor_metrics.period import iso_utc

SNAPSHOT_ASSET = Asset(name=SNAPSHOT_ASSET_NAME, uri=SNAPSHOT_ASSET_URI, group="investor_metrics")

EVENT_KEYS = ("period_end", "period_type", "mrr", "series")


def snapshot_event_extra(*, period_end: datetime, period_type: str, series: str, mrr,
                         announce: bool | None = None) -> dict:
    """The ``extra`` of the asset event for one published snapshot (JSON values only). ``announce``:
    whether the run e-mails the snapshot (what ``investor_metrics_slack`` posts on)."""
    extra = {"period_end": iso_utc(period_end), "period_type": period_type,
             "mrr": None if mrr is None else float(mrr), "series": series}
    if announce is not None:
        extra["announce"] = announce
    return extra
