"""The three extract steps of the weekly DAG (SPEC sections 2, 3): SQL pushed down to PostgreSQL.

What leaves the database is at most one row per customer / provider / service / lead source,
never raw events; only the (small) subscriptions table is extracted as rows, and only the rows a
period's metrics can see. Each function takes a DB-API connection (a psycopg2 connection, or
anything with ``.cursor()``, e.g. ``PostgresHook.get_conn()``) and a ``period.Period``, runs a query
from ``include/investor_metrics/sql/extract/*.sql`` with named bind parameters, and returns
DataFrames whose columns and dtypes are fixed even when there are no rows.

Every window is half-open [a, b) and every offset is a calendar offset in the period's time zone
(``Period.offset``). All instants are bound as timezone-aware UTC datetimes, and timestamps come
back as ``datetime64[.., UTC]``.

Frame contracts (the metric functions of ``include/investor_metrics/weekly/metrics/`` rely on them):

``extract_business_data`` → ``{"subscriptions", "customer_history", "usage", "nps", "leads"}``
  - subscriptions: subscription_id, customer_id (int64), billing_interval (str),
    amount_cents (int64), started_at, ended_at (UTC; NaT = still running); the rows with
    ``started_at < end`` and ``ended_at`` null or ``>= min(start, end − 28 d, end − 1 month)``.
  - customer_history: customer_id, ended_before_start (bool: some subscription of the customer
    ended before ``start``), one row per customer in ``subscriptions``.
  - usage: customer_id, events_in_period ([start, end)), events_last_14d ([end − 14 d, end));
    customers with at least one event in either window.
  - nps: customer_id (null for responses without a customer), responses, promoters (9–10),
    detractors (0–6), latest_score; responses in [end − 90 d, end).
  - leads: source, leads, converted (``converted_at < end``); leads created in [end − 28 d, end).

``extract_ai_metrics`` → one row per provider plus a total row: provider (null on the total
  row), is_total, total_requests, chat_requests, api_requests, cache_hits, errors, ok_requests,
  correct, incorrect, avg_latency_ms, p95_latency_ms (over every request with a latency, errors
  included; p95 = PostgreSQL ``percentile_cont(0.95)``).

``extract_health_checks`` → one row per service plus a total row: service (null on the total
  row), is_total, checks, ok_checks, failed_checks, avg_response_ms, p95_response_ms (over ok
  checks with a response time), latest_ok (ok flag of the service's latest check; null on the
  total row).

``write_frames`` / ``read_frames`` move such frames between tasks as Parquet files in a
run-scoped folder (a local path or an fsspec URL); only the folder's path travels through XCom.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from datetime import datetime

import pandas as pd

from include.investor_metrics import storage
from include.investor_metrics.db import read_sql
from include.investor_metrics.period import Period, to_utc

# Column → kind, per extract: the frame's contract, applied even to an empty result.
SUBSCRIPTIONS_COLUMNS = {
    "subscription_id": "int",
    "customer_id": "int",
    "billing_interval": "str",
    "amount_cents": "int",
    "started_at": "time",
    "ended_at": "time",
}
CUSTOMER_HISTORY_COLUMNS = {"customer_id": "int", "ended_before_start": "bool"}
USAGE_COLUMNS = {"customer_id": "int", "events_in_period": "int", "events_last_14d": "int"}
NPS_COLUMNS = {
    "customer_id": "int",
    "responses": "int",
    "promoters": "int",
    "detractors": "int",
    "latest_score": "int",
}
LEADS_COLUMNS = {"source": "str", "leads": "int", "converted": "int"}
AI_METRICS_COLUMNS = {
    "provider": "str",
    "is_total": "bool",
    "total_requests": "int",
    "chat_requests": "int",
    "api_requests": "int",
    "cache_hits": "int",
    "errors": "int",
    "ok_requests": "int",
    "correct": "int",
    "incorrect": "int",
    "avg_latency_ms": "float",
    "p95_latency_ms": "float",
}
HEALTH_CHECKS_COLUMNS = {
    "service": "str",
    "is_total": "bool",
    "checks": "int",
    "ok_checks": "int",
    "failed_checks": "int",
    "avg_response_ms": "float",
    "p95_response_ms": "float",
    "latest_ok": "nullable_bool",
}

BUSINESS_FRAMES = ("subscriptions", "customer_history", "usage", "nps", "leads")


def period_bounds(period: Period) -> dict[str, datetime]:
    """The instants the period's queries are bound to, all UTC and tz-aware (one place)."""
    start, end = to_utc(period.start), to_utc(period.end)
    since_28d = period.offset(days=28)
    return {
        "start": start,
        "end": end,
        "since_14d": period.offset(days=14),
        "since_28d": since_28d,
        "since_90d": period.offset(days=90),
        # The earliest "as of" instant a metric looks at: start (movements), end − 28 days
        # (churn_rate_28d) and end − 1 month (growth rates).
        "earliest": min(start, since_28d, period.offset(months=1)),
    }


def extract_business_data(conn, period: Period) -> dict[str, pd.DataFrame]:
    """Subscriptions (rows) and per-customer / per-source aggregates of usage, NPS and leads."""
    bounds = period_bounds(period)
    subscriptions = run_query(conn, "extract/subscriptions.sql", bounds, SUBSCRIPTIONS_COLUMNS)
    customer_ids = sorted({int(c) for c in subscriptions["customer_id"].dropna().unique()})
    history = run_query(
        conn,
        "extract/customer_history.sql",
        {"start": bounds["start"], "customer_ids": customer_ids},
        CUSTOMER_HISTORY_COLUMNS,
    )
    return {
        "subscriptions": subscriptions,
        "customer_history": history,
        "usage": run_query(conn, "extract/usage.sql", bounds, USAGE_COLUMNS),
        "nps": run_query(conn, "extract/nps.sql", bounds, NPS_COLUMNS),
        "leads": run_query(conn, "extract/leads.sql", bounds, LEADS_COLUMNS),
    }


def extract_ai_metrics(conn, period: Period) -> pd.DataFrame:
    """Per-provider and total figures of the AI requests in the period."""
    return run_query(conn, "extract/ai_metrics.sql", period_bounds(period), AI_METRICS_COLUMNS)


def extract_health_checks(conn, period: Period, services: list[str] | None = None) -> pd.DataFrame:
    """Per-service and total figures of the health checks in the period (``services``: only
    those, when given and not empty)."""
    params = {**period_bounds(period), "services": list(services or [])}
    return run_query(conn, "extract/health_checks.sql", params, HEALTH_CHECKS_COLUMNS)


def run_query(conn, sql_file: str, params: Mapping, columns: Mapping[str, str]) -> pd.DataFrame:
    """Run ``include/investor_metrics/sql/<sql_file>`` with named parameters; a frame with
    ``columns``' dtypes."""
    cursor = conn.cursor()
    try:
        cursor.execute(read_sql(sql_file), dict(params))
        names = [d[0] for d in cursor.description]
        rows = cursor.fetchall()
    finally:
        cursor.close()
    missing = set(columns) - set(names)
    if missing:
        raise RuntimeError(f"{sql_file} did not return the column(s) {sorted(missing)}")
    frame = pd.DataFrame.from_records(rows, columns=names)
    return pd.DataFrame({name: _typed(frame[name], kind) for name, kind in columns.items()})


def _typed(values: pd.Series, kind: str) -> pd.Series:
    if kind == "int":
        # int64 as agreed; a null (only in rows validation will reject) keeps the nullable Int64.
        values = pd.to_numeric(values, errors="raise")
        return values.astype("int64") if not values.isna().any() else values.astype("Int64")
    if kind == "float":
        return pd.to_numeric(values, errors="raise").astype("float64")
    if kind == "bool":
        return values.astype("bool")
    if kind == "nullable_bool":
        return values.astype("boolean")
    if kind == "str":
        return values.astype("str")  # pandas' string dtype: a SQL null stays missing (NaN)
    if kind == "time":
        return pd.to_datetime(values, utc=True).dt.as_unit("us")
    raise ValueError(f"unknown column kind {kind!r}")


def write_frames(frames: Mapping[str, pd.DataFrame], folder: str) -> str:
    """Write each frame to ``<folder>/<name>.parquet`` (a local folder or an object store), each
    file whole or absent; returns the folder (for XCom)."""
    for name, frame in frames.items():
        buffer = io.BytesIO()
        frame.to_parquet(buffer, engine="pyarrow", index=False)
        storage.write_bytes_atomic(storage.join(folder, f"{name}.parquet"), buffer.getvalue())
    return str(folder)


def read_frames(folder: str) -> dict[str, pd.DataFrame]:
    """Every ``<name>.parquet`` of ``folder`` as ``{name: frame}`` (empty when there is none)."""
    fs, root = storage.filesystem(folder)
    fs.invalidate_cache(root)  # an object store's listing may be cached from before another task wrote
    frames = {}
    for path in sorted(fs.glob(f"{root}/*.parquet")):
        name = path.rsplit("/", 1)[-1].removesuffix(".parquet")
        with fs.open(path, "rb") as handle:
            frames[name] = pd.read_parquet(handle, engine="pyarrow")
    return frames
