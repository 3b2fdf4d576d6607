"""Hand-made snapshots and asset events for the Slack tests (the real SDK event classes)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from include.investor_metrics.period import iso_utc

END = datetime(2026, 11, 22, 9, tzinfo=timezone.utc)
WEEK_BEFORE = END - timedelta(days=7)


def snapshot(end: datetime = END, *, period_type: str = "weekly", mrr: float = 32110.0,
             active: int = 118, alerts=(), retention: bool = True) -> dict:
    snap = {
        "timestamp": iso_utc(end),
        "generated_at": iso_utc(end + timedelta(minutes=3)),
        "period": {"start": iso_utc(end - timedelta(days=7)), "end": iso_utc(end), "type": period_type},
        "system_health": {"uptime_percentage": 99.91},
        "ai_platform": {"total_requests": 48210},
        "financial": {"mrr": mrr, "arr": mrr * 12, "active_customers": active, "mrr_growth_rate": 4.2,
                      "net_new_mrr": 1290.0},
        "alerts": list(alerts),
    }
    if retention:
        snap["retention"] = {"nrr_12m": 104.3}
    return snap


ALERT = {"id": "a1", "rule": "degraded_service", "severity": "high", "category": "system",
         "title": "Service <api> & friends degraded", "message": "p95 > 2 s on <api>", "metric": None,
         "value": None, "threshold": None}


def store(conn, snap: dict, run_id: str = "scheduled__x") -> None:
    from include.investor_metrics.period import as_instant
    from include.investor_metrics.weekly import snapshots

    snapshots.store_period(conn, snap, period_start=as_instant(snap["period"]["start"]),
                           period_end=as_instant(snap["period"]["end"]), run_id=run_id)


def extra(end: datetime = END, period_type: str = "weekly", **more) -> dict:
    series = "on_demand" if period_type == "on_demand" else "weekly"
    return {"period_end": iso_utc(end), "period_type": period_type, "mrr": 32110.0, "series": series, **more}


def asset_event(extra_: dict, *, minute: int = 0, run_id: str = "scheduled__2026-11-22"):
    from airflow.sdk.api.datamodels._generated import AssetReferenceAssetEventDagRun
    from airflow.sdk.execution_time.comms import AssetEventDagRunReferenceResult

    from include.investor_metrics.slack.tasks import snapshot_asset

    asset = snapshot_asset()  # its URI as the metadata database holds it (normalised)
    return AssetEventDagRunReferenceResult(
        asset=AssetReferenceAssetEventDagRun(name=asset.name, uri=asset.uri, extra={}),
        extra=extra_, source_task_id="archive_snapshot", source_dag_id="investor_metrics",
        source_run_id=run_id, source_map_index=-1, source_aliases=[],
        timestamp=END + timedelta(minutes=5 + minute))


def context(*events, run_id: str = "asset_triggered__1", conf=None) -> dict:
    """What the task runner gives the task body: the triggering events, the run id, the run."""
    from types import SimpleNamespace

    from airflow.sdk.execution_time.context import TriggeringAssetEventsAccessor

    return {"triggering_asset_events": TriggeringAssetEventsAccessor.build(events), "run_id": run_id,
            "dag_run": SimpleNamespace(conf=conf or {}, run_id=run_id)}
