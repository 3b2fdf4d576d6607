"""The snapshots the API benchmark serves: ``--snapshots`` weekly copies of SPEC section 7's example,
published into a fresh metrics store with ``include.investor_metrics.weekly.snapshots.publish``."""

from __future__ import annotations

import copy
import json
from datetime import datetime, timedelta

from dev.bench.api.config import (
    AF_DB_NAME,
    DB_NAME,
    LATEST_END,
    say,
)
from include.investor_metrics.period import iso_utc
from include.investor_metrics.settings import PostgresSettings


def _example_snapshot() -> dict:
    """The example snapshot of SPEC section 7 (the contract's shape and realistic figures)."""
    return json.loads(EXAMPLE_SNAPSHOT)


EXAMPLE_SNAPSHOT = """{
 "timestamp": "2026-11-22T09:00:00Z",
 "generated_at": "2026-11-22T09:03:12Z",
 "period": {
  "start": "2026-11-15T09:00:00Z",
  "end": "2026-11-22T09:00:00Z",
  "type": "weekly"
 },
 "system_health": {
  "uptime_percentage": 99.7,
  "status": "healthy",
  "services_total": 5,
  "services_healthy": 5,
  "avg_response_time_ms": 194.0,
  "p95_response_time_ms": 410.0,
  "error_rate": 0.3,
  "services": {
   "api": {
    "uptime_percentage": 99.9,
    "avg_response_time_ms": 120.5,
    "healthy": true
   }
  }
 },
 "ai_platform": {
  "total_requests": 18211,
  "chat_requests": 15002,
  "api_requests": 3209,
  "cache_hit_rate": 31.4,
  "error_rate": 0.8,
  "active_providers": 3,
  "accuracy_rate": 94.7,
  "avg_latency_ms": 812.0,
  "p95_latency_ms": 2210.0,
  "providers": {}
 },
 "financial": {
  "mrr": 42500.0,
  "arr": 510000.0,
  "active_customers": 127,
  "mrr_growth_rate": 8.2,
  "customer_growth_rate": 4.1,
  "new_mrr": 1200.0,
  "reactivation_mrr": 0.0,
  "expansion_mrr": 350.0,
  "contraction_mrr": 90.0,
  "churned_mrr": 400.0,
  "net_new_mrr": 1060.0,
  "quick_ratio": 3.16,
  "arpa": 334.65,
  "lead_conversion_rate": 12.5
 },
 "business_health": {
  "churn_risk": "low",
  "growth_trajectory": "strong",
  "churned_customers": 1,
  "logo_churn_rate": 0.79,
  "revenue_churn_rate": 1.15,
  "churn_rate_28d": 1.6,
  "customer_satisfaction": {
   "nps": 41.0,
   "responses": 58
  },
  "platform_utilization": 88.2,
  "at_risk_customers": 6,
  "mrr_at_risk": 1890.0
 },
 "data_quality": {
  "success": true,
  "warnings": []
 },
 "alerts": []
}"""


def snapshots(count: int) -> list[tuple[dict, datetime, datetime]]:
    base = _example_snapshot()
    out = []
    for week in range(count):
        end = LATEST_END - timedelta(weeks=week)
        start = end - timedelta(days=7)
        snap = copy.deepcopy(base)
        snap["period"] = {"start": iso_utc(start), "end": iso_utc(end), "type": "weekly"}
        snap["timestamp"] = iso_utc(end)
        snap["generated_at"] = iso_utc(end + timedelta(minutes=3))
        fin = snap.get("financial")
        if isinstance(fin, dict) and isinstance(fin.get("mrr"), (int, float)):
            fin["mrr"] = round(fin["mrr"] * (1 - 0.004 * week), 2)
        out.append((snap, start, end))
    return out


def prepare_database(server, count: int) -> PostgresSettings:
    from dev.bench import common as bench
    from include.investor_metrics.db import apply_metrics_schema, connect
    from include.investor_metrics.weekly import snapshots as store

    for name in (DB_NAME, AF_DB_NAME):
        bench.drop_database(server, name)
        bench.ensure_database(server, name)
    settings = server.database(DB_NAME)
    conn = connect(settings)
    try:
        apply_metrics_schema(conn)
        for snap, start, end in reversed(snapshots(count)):
            store.publish(
                conn,
                snap,
                period_start=start,
                period_end=end,
                run_id=f"bench_api__{end:%Y%m%d}",
                write_latest=lambda latest: None,
            )
        with conn.cursor() as cur:
            cur.execute(
                "SELECT count(*), pg_size_pretty(pg_total_relation_size('investor_metrics.snapshots')) "
                "FROM investor_metrics.snapshots"
            )
            n, size = cur.fetchone()
        conn.commit()
    finally:
        conn.close()
    say(f"{DB_NAME}: {n} weekly snapshots published (table {size})")
    return settings
