"""The system_health section, from the health-checks extract (checks in the period; the services
counted are the configured ones, or when none are configured those with checks).

- uptime_percentage: ok checks in % of all checks; per service the same, in ``services``.
- services_total: services counted (a configured service without checks counts, not healthy);
  services_healthy: services whose latest check in the period is ok.
- avg_response_time_ms / p95_response_time_ms: mean / continuous 95th percentile
  (``percentile_cont``, computed in PostgreSQL) of the ok checks' response times.
- error_rate: failed checks in % of all checks.
- status: critical if no service is healthy or some service's uptime < 90, else healthy if
  uptime ≥ 99.5 and every service is healthy, else degraded.
"""

from __future__ import annotations

import pandas as pd

from include.investor_metrics.weekly.metrics.frames import count, milliseconds, total_row
from include.investor_metrics.weekly.metrics.rounding import percentage


def service_health(row: pd.Series | None) -> dict:
    """One service's figures; ``row`` None for a service without checks in the period."""
    if row is None:
        return {"uptime_percentage": None, "avg_response_time_ms": None, "healthy": False}
    latest_ok = row["latest_ok"]
    return {
        "uptime_percentage": percentage(int(row["ok_checks"]), int(row["checks"])),
        "avg_response_time_ms": milliseconds(row["avg_response_ms"]),
        "healthy": bool(not pd.isna(latest_ok) and latest_ok),
    }


def system_status(
    uptime_percentage: float | None, services: dict[str, dict], services_healthy: int, services_total: int
) -> str:
    if services_healthy == 0 or any(
        s["uptime_percentage"] is not None and s["uptime_percentage"] < 90 for s in services.values()
    ):
        return "critical"
    if uptime_percentage is not None and uptime_percentage >= 99.5 and services_healthy == services_total:
        return "healthy"
    return "degraded"


def system_health(health: pd.DataFrame, services: list[str] | None = None) -> dict:
    """The ``system_health`` section from the health-checks extract. ``services``: the configured
    services (the extract must have been restricted to the same list)."""
    per_service = health[~health["is_total"].astype(bool)]
    rows = {str(r["service"]): r for _, r in per_service.iterrows()}
    if services:
        unexpected = sorted(set(rows) - set(services))
        if unexpected:
            raise ValueError(
                f"health checks of unconfigured services {unexpected}: extract with the same list"
            )
        names = list(services)
    else:
        names = sorted(rows)
    by_service = {name: service_health(rows.get(name)) for name in names}
    healthy = sum(s["healthy"] for s in by_service.values())
    total = total_row(health)
    checks = count(total, "checks")
    uptime = percentage(count(total, "ok_checks"), checks)
    return {
        "uptime_percentage": uptime,
        "status": system_status(uptime, by_service, healthy, len(names)),
        "services_total": len(names),
        "services_healthy": healthy,
        "avg_response_time_ms": None if total is None else milliseconds(total["avg_response_ms"]),
        "p95_response_time_ms": None if total is None else milliseconds(total["p95_response_ms"]),
        "error_rate": percentage(count(total, "failed_checks"), checks),
        "services": by_service,
    }
