"""Hand-made frames with the extract's columns, for the metric tests; no database.

Every expected number in the tests is worked out by hand in a comment. MRR is in twelfths of a
cent: a monthly plan of N cents is 12·N twelfths, a yearly plan of N cents is N twelfths, and
dollars = twelfths / 1200.

The period of these tests is the UTC week [2026-11-15 09:00, 2026-11-22 09:00): end − 1 month is
2026-10-22 09:00, end − 28 days 2026-10-25 09:00, end − 14 days 2026-11-08 09:00.
"""

from __future__ import annotations

from datetime import datetime, timezone

import pandas as pd

from include.investor_metrics.period import weekly_period
from include.investor_metrics.weekly.metrics.snapshot import build_snapshot

UTC = timezone.utc
END = datetime(2026, 11, 22, 9, tzinfo=UTC)
PERIOD = weekly_period(END, "UTC")
START = PERIOD.start
LONG_AGO = datetime(2026, 1, 1, tzinfo=UTC)
MID = datetime(2026, 11, 18, tzinfo=UTC)  # inside the period


# --- hand-made frames, with the extract's columns --------------------------------------------------


def subscriptions(*rows) -> pd.DataFrame:
    """rows: (customer_id, billing_interval, amount_cents, started_at, ended_at or None)."""
    frame = pd.DataFrame(
        rows, columns=["customer_id", "billing_interval", "amount_cents", "started_at", "ended_at"]
    )
    frame.insert(0, "subscription_id", range(1, len(frame) + 1))
    for column in ("subscription_id", "customer_id", "amount_cents"):
        frame[column] = frame[column].astype("int64")
    frame["billing_interval"] = frame["billing_interval"].astype("str")
    for column in ("started_at", "ended_at"):
        frame[column] = pd.to_datetime(frame[column], utc=True).dt.as_unit("us")
    return frame


def history(ended_before_start: dict[int, bool] | None = None) -> pd.DataFrame:
    items = (ended_before_start or {}).items()
    return pd.DataFrame(
        {
            "customer_id": pd.Series([c for c, _ in items], dtype="int64"),
            "ended_before_start": pd.Series([b for _, b in items], dtype="bool"),
        }
    )


def usage(*rows) -> pd.DataFrame:
    """rows: (customer_id, events_in_period, events_last_14d)."""
    return pd.DataFrame(rows, columns=["customer_id", "events_in_period", "events_last_14d"]).astype("int64")


def nps(*rows) -> pd.DataFrame:
    """rows: (customer_id, responses, promoters, detractors, latest_score)."""
    columns = ["customer_id", "responses", "promoters", "detractors", "latest_score"]
    return pd.DataFrame(rows, columns=columns).astype("int64")


def leads(*rows) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["source", "leads", "converted"])
    return frame.astype({"source": "str", "leads": "int64", "converted": "int64"})


AI_COLUMNS = [
    "provider", "is_total", "total_requests", "chat_requests", "api_requests", "cache_hits", "errors",
    "ok_requests", "correct", "incorrect", "avg_latency_ms", "p95_latency_ms",
]  # fmt: skip
HEALTH_COLUMNS = [
    "service", "is_total", "checks", "ok_checks", "failed_checks", "avg_response_ms",
    "p95_response_ms", "latest_ok",
]  # fmt: skip


def ai(*rows) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=AI_COLUMNS)
    return frame.astype({"provider": "str", "is_total": "bool"})


def health(*rows) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=HEALTH_COLUMNS)
    return frame.astype({"service": "str", "is_total": "bool", "latest_ok": "boolean"})


def business(subs: pd.DataFrame, hist: pd.DataFrame | None = None, **frames) -> dict:
    return {
        "subscriptions": subs,
        "customer_history": hist if hist is not None else history(),
        "usage": frames.get("usage", usage()),
        "nps": frames.get("nps", nps()),
        "leads": frames.get("leads", leads()),
    }


def financial(subs, hist=None, **frames) -> dict:
    return build_snapshot(PERIOD, business(subs, hist, **frames), ai(), health())["financial"]


def business_health(subs, hist=None, **frames) -> dict:
    return build_snapshot(PERIOD, business(subs, hist, **frames), ai(), health())["business_health"]
