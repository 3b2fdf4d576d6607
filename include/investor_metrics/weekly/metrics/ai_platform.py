"""The ai_platform section, from the AI-requests extract (requests in the period).

- total_requests, chat_requests, api_requests: request counts (all, by type).
- cache_hit_rate / error_rate: cache hits / errors in % of all requests.
- active_providers: distinct providers with ≥ 1 ok request.
- accuracy_rate: correct in % of the requests with feedback (correct + incorrect).
- avg_latency_ms / p95_latency_ms: mean / continuous 95th percentile (PostgreSQL
  ``percentile_cont``) of the latency of every request with one, errors included.
- providers: the same figures per provider (a request without a provider is under "unknown").
"""

from __future__ import annotations

import pandas as pd

from include.investor_metrics.weekly.metrics.frames import count, milliseconds, total_row
from include.investor_metrics.weekly.metrics.rounding import percentage

UNKNOWN_PROVIDER = "unknown"


def ai_figures(row: pd.Series | None) -> dict:
    """Request counts and rates of one extract row (a provider or the total)."""
    total = count(row, "total_requests")
    return {
        "total_requests": total,
        "chat_requests": count(row, "chat_requests"),
        "api_requests": count(row, "api_requests"),
        "cache_hit_rate": percentage(count(row, "cache_hits"), total),
        "error_rate": percentage(count(row, "errors"), total),
        "accuracy_rate": percentage(
            count(row, "correct"), count(row, "correct") + count(row, "incorrect")
        ),
        "avg_latency_ms": None if row is None else milliseconds(row["avg_latency_ms"]),
        "p95_latency_ms": None if row is None else milliseconds(row["p95_latency_ms"]),
    }


def active_providers(ai: pd.DataFrame) -> int:
    rows = ai[~ai["is_total"].astype(bool) & ai["provider"].notna()]
    return int((rows["ok_requests"] > 0).sum())


def ai_platform(ai: pd.DataFrame) -> dict:
    figures = ai_figures(total_row(ai))
    providers = {
        (UNKNOWN_PROVIDER if pd.isna(r["provider"]) else str(r["provider"])): ai_figures(r)
        for _, r in ai[~ai["is_total"].astype(bool)].iterrows()
    }
    return {
        "total_requests": figures["total_requests"],
        "chat_requests": figures["chat_requests"],
        "api_requests": figures["api_requests"],
        "cache_hit_rate": figures["cache_hit_rate"],
        "error_rate": figures["error_rate"],
        "active_providers": active_providers(ai),
        "accuracy_rate": figures["accuracy_rate"],
        "avg_latency_ms": figures["avg_latency_ms"],
        "p95_latency_ms": figures["p95_latency_ms"],
        "providers": providers,
    }
