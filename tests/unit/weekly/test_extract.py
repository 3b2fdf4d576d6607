"""The extracts (include/investor_metrics/weekly/extract.py) against a real PostgreSQL, on hand-made rows.

Boundaries are half-open [a, b): a row exactly at a window's start is in, one exactly at its end
is out. Offsets are calendar offsets in the period's time zone, checked across both DST changes
of America/New_York in 2026 (spring forward 8 March, fall back 1 November). The last test runs
``build_snapshot`` on the extracts of a small scenario and compares it with a hand-computed
snapshot.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pandas as pd
import pytest
from psycopg2 import sql

from include.investor_metrics.db import apply_metrics_schema, apply_source_schema, connect
from include.investor_metrics.period import weekly_period
from include.investor_metrics.weekly.extract import (
    extract_ai_metrics,
    extract_business_data,
    extract_health_checks,
    read_frames,
    write_frames,
)
from include.investor_metrics.weekly.metrics.snapshot import build_snapshot

UTC = timezone.utc
SECOND = timedelta(seconds=1)
MICRO = timedelta(microseconds=1)


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


# The UTC week most tests use: end − 14 d = 11-08 09:00, end − 28 d = 10-25 09:00,
# end − 1 month = 10-22 09:00, end − 90 d = 08-24 09:00.
END = utc(2026, 11, 22, 9)
PERIOD = weekly_period(END, "UTC")
START = PERIOD.start
LONG_AGO = utc(2026, 1, 1)


@pytest.fixture()
def conn(fresh_database):
    connection = connect(fresh_database)
    apply_source_schema(connection)
    apply_metrics_schema(connection)
    yield connection
    connection.close()


def insert(conn, table: str, columns: list[str], rows: list[tuple]) -> None:
    schema, _, name = table.rpartition(".")
    target = sql.Identifier(schema, name) if schema else sql.Identifier(name)
    statement = sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(
        target,
        sql.SQL(", ").join(map(sql.Identifier, columns)),
        sql.SQL(", ").join(sql.Placeholder() * len(columns)),
    )
    with conn.cursor() as cur:
        cur.executemany(statement, rows)
    conn.commit()


def insert_subscriptions(conn, rows):
    """rows: (subscription_id, customer_id, billing_interval, amount_cents, started_at, ended_at)."""
    insert(
        conn,
        "subscriptions",
        [
            "subscription_id",
            "customer_id",
            "plan",
            "billing_interval",
            "amount_cents",
            "started_at",
            "ended_at",
        ],
        [(sid, cid, "plan", interval, amount, start, end) for sid, cid, interval, amount, start, end in rows],
    )


def insert_events(conn, rows):
    """rows: (customer_id, occurred_at)."""
    insert(
        conn,
        "usage_events",
        ["event_id", "customer_id", "user_id", "event_type", "occurred_at"],
        [(i, cid, 1, "login", at) for i, (cid, at) in enumerate(rows, start=1)],
    )


def insert_nps(conn, rows):
    """rows: (response_id, customer_id, score, responded_at)."""
    insert(conn, "nps_responses", ["response_id", "customer_id", "score", "responded_at"], rows)


def insert_leads(conn, rows):
    """rows: (source, created_at, converted_at)."""
    insert(
        conn,
        "leads",
        ["lead_id", "source", "created_at", "converted_at"],
        [(i, *row) for i, row in enumerate(rows, start=1)],
    )


def insert_ai_requests(conn, rows):
    """rows: (provider, request_type, requested_at, latency_ms, cache_hit, status, feedback)."""
    insert(
        conn,
        "ai_requests",
        [
            "request_id",
            "provider",
            "request_type",
            "requested_at",
            "latency_ms",
            "cache_hit",
            "status",
            "feedback",
        ],
        [(i, *row) for i, row in enumerate(rows, start=1)],
    )


def insert_checks(conn, rows):
    """rows: (service, checked_at, ok, response_ms)."""
    insert(
        conn, "investor_metrics.service_health_checks", ["service", "checked_at", "ok", "response_ms"], rows
    )


def records(frame: pd.DataFrame) -> list[dict]:
    """Rows as plain dicts, missing values as None (for exact comparisons)."""
    return [
        {k: (None if not isinstance(v, (list, dict)) and pd.isna(v) else v) for k, v in row.items()}
        for row in frame.to_dict("records")
    ]


# --- business data -----------------------------------------------------------------------------


def test_subscriptions_are_the_rows_the_period_can_see(conn):
    earliest = utc(2026, 10, 22, 9)  # min(start, end − 28 d, end − 1 month) = end − 1 month
    insert_subscriptions(
        conn,
        [
            (1, 1, "month", 1000, LONG_AGO, None),  # running: in
            (2, 2, "month", 2000, LONG_AGO, earliest),  # ended exactly at earliest: in
            (3, 3, "month", 3000, LONG_AGO, earliest - SECOND),  # ended just before: out
            (4, 4, "month", 4000, END, None),  # starts exactly at end: out
            (5, 5, "year", 120000, END - SECOND, None),  # starts just before end: in
            (6, 1, "month", 500, utc(2025, 1, 1), utc(2025, 6, 1)),  # customer 1's old plan: out
            (7, 6, "month", 600, LONG_AGO, START),  # ended exactly at start: in, not "before start"
        ],
    )
    data = extract_business_data(conn, PERIOD)
    subs = data["subscriptions"]
    assert subs["subscription_id"].tolist() == [1, 2, 5, 7]
    assert records(subs.drop(columns="subscription_id")) == [
        {"customer_id": 1, "billing_interval": "month", "amount_cents": 1000,
         "started_at": pd.Timestamp(LONG_AGO), "ended_at": None},
        {"customer_id": 2, "billing_interval": "month", "amount_cents": 2000,
         "started_at": pd.Timestamp(LONG_AGO), "ended_at": pd.Timestamp(earliest)},
        {"customer_id": 5, "billing_interval": "year", "amount_cents": 120000,
         "started_at": pd.Timestamp(END - SECOND), "ended_at": None},
        {"customer_id": 6, "billing_interval": "month", "amount_cents": 600,
         "started_at": pd.Timestamp(LONG_AGO), "ended_at": pd.Timestamp(START)},
    ]  # fmt: skip
    assert str(subs["customer_id"].dtype) == "int64" and str(subs["amount_cents"].dtype) == "int64"
    assert str(subs["started_at"].dtype) == str(subs["ended_at"].dtype) == "datetime64[us, UTC]"
    assert subs["ended_at"].isna().tolist() == [True, False, True, False]
    # Customer 1: its 2025 plan ended before start; customer 2: ended 10-22 < start;
    # customer 5: never ended; customer 6: ended exactly at start, which is not before it.
    assert records(data["customer_history"]) == [
        {"customer_id": 1, "ended_before_start": True},
        {"customer_id": 2, "ended_before_start": True},
        {"customer_id": 5, "ended_before_start": False},
        {"customer_id": 6, "ended_before_start": False},
    ]


def test_usage_windows_are_half_open(conn):
    since_14d = utc(2026, 11, 8, 9)
    insert_events(
        conn,
        [
            (1, START),  # exactly at start: in the period and the 14 days
            (1, END),  # exactly at end: out
            (2, END - MICRO),  # just before end: in both
            (3, since_14d),  # exactly at end − 14 d: in the 14 days, not in the period
            (4, since_14d - SECOND),  # before both windows: customer 4 absent
            (5, END),  # only at end: customer 5 absent
            (None, START),  # no customer: cannot be attributed
        ],
    )
    usage = extract_business_data(conn, PERIOD)["usage"]
    assert records(usage) == [
        {"customer_id": 1, "events_in_period": 1, "events_last_14d": 1},
        {"customer_id": 2, "events_in_period": 1, "events_last_14d": 1},
        {"customer_id": 3, "events_in_period": 0, "events_last_14d": 1},
    ]
    assert usage.dtypes.astype(str).tolist() == ["int64", "int64", "int64"]


def test_nps_window_and_latest_score(conn):
    since_90d = utc(2026, 8, 24, 9)
    mid = utc(2026, 10, 1)
    insert_nps(
        conn,
        [
            (10, 1, 10, since_90d),  # exactly at end − 90 d: in
            (11, 1, 3, END - timedelta(hours=1)),  # latest of customer 1
            (20, 2, 8, mid),
            (21, 2, 9, mid),  # same instant, higher response_id: the latest
            (30, 3, 0, END),  # at end: out
            (31, 3, 7, since_90d - SECOND),  # before the window: out
            (40, None, 10, mid),  # no customer: still a response
        ],
    )
    frame = extract_business_data(conn, PERIOD)["nps"]
    assert records(frame) == [
        {"customer_id": 1, "responses": 2, "promoters": 1, "detractors": 1, "latest_score": 3},
        {"customer_id": 2, "responses": 2, "promoters": 1, "detractors": 0, "latest_score": 9},
        {"customer_id": None, "responses": 1, "promoters": 1, "detractors": 0, "latest_score": 10},
    ]


def test_leads_per_source_over_28_days(conn):
    since_28d = utc(2026, 10, 25, 9)
    insert_leads(
        conn,
        [
            ("web", since_28d, END - SECOND),  # in, converted before end
            ("web", END - timedelta(days=2), END),  # in, converted exactly at end: not converted
            ("web", END, END),  # created at end: out
            ("referral", since_28d - SECOND, since_28d),  # created before the window: out
            ("referral", utc(2026, 11, 20), None),  # in, not converted
        ],
    )
    assert records(extract_business_data(conn, PERIOD)["leads"]) == [
        {"source": "referral", "leads": 1, "converted": 0},
        {"source": "web", "leads": 2, "converted": 1},
    ]


# --- AI requests and health checks -------------------------------------------------------------

AI_ROWS = [
    # openai latencies 100, 200, 300, 400; anthropic 50 and one without a latency
    ("openai", "chat", START, 100, True, "ok", "correct"),
    ("openai", "chat", START + timedelta(hours=1), 200, False, "ok", "incorrect"),
    ("openai", "api", START + timedelta(hours=2), 300, False, "error", None),
    ("openai", "chat", END - MICRO, 400, False, "ok", "correct"),
    ("anthropic", "api", START + timedelta(days=1), 50, True, "ok", None),
    ("anthropic", "chat", START + timedelta(days=2), None, False, "ok", None),
    ("openai", "chat", END, 9999, True, "error", "incorrect"),  # at end: out
    ("openai", "chat", START - SECOND, 9999, True, "error", "incorrect"),  # before start: out
]


def test_ai_metrics_per_provider_and_total(conn):
    insert_ai_requests(conn, AI_ROWS)
    frame = extract_ai_metrics(conn, PERIOD)
    # p95 = percentile_cont(0.95): sorted values v, position p = 0.95·(n − 1), linear between
    # neighbours. openai [100, 200, 300, 400]: p = 2.85 → 300 + 0.85·100 = 385.
    # total [50, 100, 200, 300, 400]: p = 3.8 → 300 + 0.8·100 = 380; avg 1050 / 5 = 210.
    assert records(frame) == [
        {"provider": "anthropic", "is_total": False, "total_requests": 2, "chat_requests": 1,
         "api_requests": 1, "cache_hits": 1, "errors": 0, "ok_requests": 2, "correct": 0,
         "incorrect": 0, "avg_latency_ms": 50.0, "p95_latency_ms": 50.0},
        {"provider": "openai", "is_total": False, "total_requests": 4, "chat_requests": 3,
         "api_requests": 1, "cache_hits": 1, "errors": 1, "ok_requests": 3, "correct": 2,
         "incorrect": 1, "avg_latency_ms": 250.0, "p95_latency_ms": pytest.approx(385.0)},
        {"provider": None, "is_total": True, "total_requests": 6, "chat_requests": 4,
         "api_requests": 2, "cache_hits": 2, "errors": 1, "ok_requests": 5, "correct": 2,
         "incorrect": 1, "avg_latency_ms": 210.0, "p95_latency_ms": pytest.approx(380.0)},
    ]  # fmt: skip


def test_ai_metrics_without_requests_has_a_total_row_of_zeros(conn):
    frame = extract_ai_metrics(conn, PERIOD)
    assert len(frame) == 1 and bool(frame["is_total"].iloc[0]) and int(frame["total_requests"].iloc[0]) == 0


CHECK_ROWS = [
    ("api", START, True, 100),  # exactly at start: in
    ("api", START + timedelta(hours=1), True, 300),
    ("api", START + timedelta(hours=2), False, None),
    ("api", START + timedelta(hours=3), True, 200),  # latest api check in the period: ok
    ("api", END, False, None),  # at end: out
    ("web", START + timedelta(hours=1), True, 1000),
    ("web", START + timedelta(hours=2), False, 5000),  # latest web check: failed (its time ignored)
    ("other", START + timedelta(hours=1), True, 10),  # not configured
]


def test_health_checks_per_service_restricted_to_the_configured_ones(conn):
    insert_checks(conn, CHECK_ROWS)
    frame = extract_health_checks(conn, PERIOD, ["api", "web", "db"])
    # api ok times [100, 200, 300]: avg 200, p95 at 1.9 → 200 + 0.9·100 = 290.
    # total ok times [100, 200, 300, 1000]: avg 400, p95 at 2.85 → 300 + 0.85·700 = 895.
    # db has no checks: no row (metrics/system_health.py still counts it from the configured list).
    assert records(frame) == [
        {"service": "api", "is_total": False, "checks": 4, "ok_checks": 3, "failed_checks": 1,
         "avg_response_ms": 200.0, "p95_response_ms": pytest.approx(290.0), "latest_ok": True},
        {"service": "web", "is_total": False, "checks": 2, "ok_checks": 1, "failed_checks": 1,
         "avg_response_ms": 1000.0, "p95_response_ms": 1000.0, "latest_ok": False},
        {"service": None, "is_total": True, "checks": 6, "ok_checks": 4, "failed_checks": 2,
         "avg_response_ms": 400.0, "p95_response_ms": pytest.approx(895.0), "latest_ok": None},
    ]  # fmt: skip
    # No configured list (None or empty): every service with checks.
    for services in (None, []):
        frame = extract_health_checks(conn, PERIOD, services)
        assert frame["service"].tolist()[:3] == ["api", "other", "web"]
        assert int(frame.loc[frame["is_total"], "checks"].iloc[0]) == 7


# --- weeks across a DST change -----------------------------------------------------------------


def test_week_across_fall_back_is_169_hours(conn):
    # 2026-11-01 09:00 EST = 14:00Z; a week earlier is 2026-10-25 09:00 EDT = 13:00Z.
    period = weekly_period(utc(2026, 11, 1, 14), "America/New_York")
    assert period.start == utc(2026, 10, 25, 13) and period.hours == 169
    # end − 14 days = 2026-10-18 09:00 EDT = 13:00Z (not 14:00Z, which 14 × 24 h would give)
    insert_events(
        conn,
        [
            (1, utc(2026, 10, 25, 13, 30)),  # 09:30 EDT: in the period
            (2, utc(2026, 10, 25, 12, 59)),  # 08:59 EDT: before the period, in the 14 days
            (3, utc(2026, 10, 18, 13)),  # exactly end − 14 days: in the 14 days
            (4, utc(2026, 10, 18, 12, 59, 59)),  # before: out
            (5, utc(2026, 11, 1, 13, 59, 59)),  # 08:59:59 EST, just before end: in
        ],
    )
    insert_ai_requests(
        conn,
        [
            ("openai", "chat", utc(2026, 10, 25, 13, 30), 10, False, "ok", None),
            ("openai", "chat", utc(2026, 10, 25, 12, 59), 10, False, "ok", None),
        ],
    )
    insert_checks(
        conn, [("api", utc(2026, 10, 25, 13), True, 5), ("api", utc(2026, 10, 25, 12, 59), True, 5)]
    )
    assert records(extract_business_data(conn, period)["usage"]) == [
        {"customer_id": 1, "events_in_period": 1, "events_last_14d": 1},
        {"customer_id": 2, "events_in_period": 0, "events_last_14d": 1},
        {"customer_id": 3, "events_in_period": 0, "events_last_14d": 1},
        {"customer_id": 5, "events_in_period": 1, "events_last_14d": 1},
    ]
    ai = extract_ai_metrics(conn, period)
    assert int(ai.loc[ai["is_total"], "total_requests"].iloc[0]) == 1
    checks = extract_health_checks(conn, period, ["api"])
    assert int(checks.loc[checks["is_total"], "checks"].iloc[0]) == 1


def test_week_across_spring_forward_is_167_hours(conn):
    # 2026-03-08 09:00 EDT = 13:00Z; a week earlier is 2026-03-01 09:00 EST = 14:00Z.
    period = weekly_period(utc(2026, 3, 8, 13), "America/New_York")
    assert period.start == utc(2026, 3, 1, 14) and period.hours == 167
    insert_events(
        conn,
        [
            (1, utc(2026, 3, 1, 14)),  # exactly at start (09:00 EST): in
            (2, utc(2026, 3, 1, 13, 59, 59)),  # 08:59:59 EST: not in the period
            (3, utc(2026, 3, 8, 12, 59, 59)),  # 08:59:59 EDT, just before end: in
            (4, utc(2026, 3, 8, 13)),  # exactly at end: out
        ],
    )
    assert records(extract_business_data(conn, period)["usage"]) == [
        {"customer_id": 1, "events_in_period": 1, "events_last_14d": 1},
        {"customer_id": 2, "events_in_period": 0, "events_last_14d": 1},
        {"customer_id": 3, "events_in_period": 1, "events_last_14d": 1},
    ]


# --- frames between tasks ----------------------------------------------------------------------


def test_frames_round_trip_through_parquet(conn, tmp_path):
    insert_subscriptions(conn, [(1, 1, "month", 1000, LONG_AGO, None), (2, 2, "year", 5, LONG_AGO, START)])
    insert_nps(conn, [(1, None, 10, START)])
    insert_checks(conn, CHECK_ROWS)
    frames = extract_business_data(conn, PERIOD)
    frames["health"] = extract_health_checks(conn, PERIOD, ["api"])
    folder = write_frames(frames, str(tmp_path / "run" / "business"))
    back = read_frames(folder)
    assert sorted(back) == sorted(frames)
    for name, frame in frames.items():
        pd.testing.assert_frame_equal(back[name], frame, check_dtype=True)


# --- end to end: extracts → build_snapshot -----------------------------------------------------


def load_scenario(conn):
    """Seven customers in the UTC week [11-15 09:00, 11-22 09:00); MRR in twelfths of a cent
    (monthly × 12, yearly × 1), s = as of start, e = as of end, m = as of end − 1 month (10-22)."""
    upgrade = utc(2026, 11, 18)
    insert_subscriptions(
        conn,
        [
            (1, 1, "month", 10000, LONG_AGO, None),  # C1 s = e = m = 120000
            (2, 2, "month", 5000, LONG_AGO, upgrade),  # C2 s = m = 60000
            (3, 2, "month", 8000, upgrade, None),  # C2 e = 96000: expansion 36000
            (4, 3, "year", 120000, utc(2026, 2, 1), utc(2026, 11, 20)),  # C3 s = m = 120000, e = 0: churned
            (5, 4, "month", 2000, utc(2026, 11, 16), None),  # C4 e = 24000: new
            (6, 5, "month", 0, LONG_AGO, None),  # C5 free plan: never active
            (7, 6, "month", 3000, utc(2026, 3, 1), utc(2026, 6, 1)),  # C6 left in June...
            (8, 6, "month", 4000, utc(2026, 11, 17), None),  # ... came back: e = 48000 reactivation
            (9, 7, "year", 100000, utc(2026, 10, 30), None),  # C7 s = e = 100000, m = 0
        ],
    )
    insert_events(
        conn,
        [
            (1, utc(2026, 11, 16)), (1, utc(2026, 11, 20)),  # C1 used the product in the period
            (2, utc(2026, 11, 1)),  # C2 quiet for the last 14 days (since 11-08 09:00): at risk
            (4, utc(2026, 11, 17)),
            (5, utc(2026, 11, 17)),  # C5 (free) used it: not in the utilization denominator
            (6, utc(2026, 11, 18)),
            (7, utc(2026, 11, 21)),
            (1, END),  # at end: out
        ],
    )  # fmt: skip
    insert_nps(
        conn,
        [
            (1, 1, 10, utc(2026, 10, 1)),  # promoter
            (2, 4, 9, utc(2026, 10, 1)),  # promoter ...
            (3, 4, 5, utc(2026, 11, 19)),  # ... then a detractor: C4's latest is 5 → at risk
            (4, 2, 8, utc(2026, 9, 10)),  # passive
            (5, 3, 0, utc(2026, 8, 1)),  # before end − 90 days: out
        ],
    )
    insert_leads(
        conn,
        [
            ("web", utc(2026, 11, 1), utc(2026, 11, 3)),  # converted
            ("web", utc(2026, 11, 10), None),
            ("web", utc(2026, 11, 20), END),  # converted only at end: not converted
            ("referral", utc(2026, 10, 30), utc(2026, 11, 21)),  # converted
            ("web", utc(2026, 10, 20), utc(2026, 10, 21)),  # before end − 28 days: out
        ],
    )
    insert_ai_requests(
        conn, [*AI_ROWS, ("mistral", "api", START + timedelta(days=3), 1000, False, "error", None)]
    )
    insert_checks(conn, CHECK_ROWS)


EXPECTED_SNAPSHOT = {
    "timestamp": "2026-11-22T09:00:00Z",
    "period": {"start": "2026-11-15T09:00:00Z", "end": "2026-11-22T09:00:00Z", "type": "weekly"},
    "system_health": {
        "uptime_percentage": 66.67,  # 4 ok / 6 checks (other is not configured)
        "status": "critical",  # api uptime 75 < 90 (and web is down)
        "services_total": 3,  # api, web, db (db has no checks: counted, not healthy)
        "services_healthy": 1,  # api
        "avg_response_time_ms": 400.0,
        "p95_response_time_ms": 895.0,
        "error_rate": 33.33,  # 2 / 6
        "services": {
            "api": {"uptime_percentage": 75.0, "avg_response_time_ms": 200.0, "healthy": True},
            "web": {"uptime_percentage": 50.0, "avg_response_time_ms": 1000.0, "healthy": False},
            "db": {"uptime_percentage": None, "avg_response_time_ms": None, "healthy": False},
        },
    },
    "ai_platform": {
        # 7 requests: openai 4, anthropic 2, mistral 1 (an api error of 1000 ms)
        "total_requests": 7,
        "chat_requests": 4,
        "api_requests": 3,
        "cache_hit_rate": 28.57,  # 2 / 7
        "error_rate": 28.57,  # 2 / 7
        "active_providers": 2,  # mistral has no ok request
        "accuracy_rate": 66.67,  # 2 correct / 3 with feedback
        "avg_latency_ms": 341.67,  # (100 + 200 + 300 + 400 + 50 + 1000) / 6
        "p95_latency_ms": 850.0,  # [50, 100, 200, 300, 400, 1000] at 4.75 → 400 + 0.75·600
        "providers": {
            "anthropic": {
                "total_requests": 2,
                "chat_requests": 1,
                "api_requests": 1,
                "cache_hit_rate": 50.0,
                "error_rate": 0.0,
                "accuracy_rate": None,
                "avg_latency_ms": 50.0,
                "p95_latency_ms": 50.0,
            },
            "mistral": {
                "total_requests": 1,
                "chat_requests": 0,
                "api_requests": 1,
                "cache_hit_rate": 0.0,
                "error_rate": 100.0,
                "accuracy_rate": None,
                "avg_latency_ms": 1000.0,
                "p95_latency_ms": 1000.0,
            },
            "openai": {
                "total_requests": 4,
                "chat_requests": 3,
                "api_requests": 1,
                "cache_hit_rate": 25.0,
                "error_rate": 25.0,
                "accuracy_rate": 66.67,
                "avg_latency_ms": 250.0,
                "p95_latency_ms": 385.0,
            },
        },  # fmt: skip
    },
    "financial": {
        "mrr": 323.33,  # e: 120000 + 96000 + 24000 + 48000 + 100000 = 388000 → 323.333…
        "arr": 3880.0,  # 12 × 388000 / 1200
        "active_customers": 5,  # C1, C2, C4, C6, C7
        "mrr_growth_rate": 29.33,  # m = 120000 + 60000 + 120000 = 300000; 88000 / 300000
        "customer_growth_rate": 66.67,  # 3 (C1, C2, C3) → 5
        "new_mrr": 20.0,  # C4
        "reactivation_mrr": 40.0,  # C6
        "expansion_mrr": 30.0,  # C2
        "contraction_mrr": 0.0,
        "churned_mrr": 100.0,  # C3
        "net_new_mrr": -10.0,  # 388000 − 400000 (s: 120000 + 60000 + 120000 + 100000)
        "quick_ratio": 0.9,  # (24000 + 48000 + 36000) / 120000
        "arpa": 64.67,  # 388000 / 1200 / 5 = 64.666…
        "lead_conversion_rate": 50.0,  # 2 of 4
    },
    "business_health": {
        "churn_risk": "high",  # churn_rate_28d ≥ 5
        "growth_trajectory": "strong",  # 29.33 ≥ 5
        "churned_customers": 1,  # C3
        "logo_churn_rate": 25.0,  # 1 of 4 paying as of start (C1, C2, C3, C7)
        "revenue_churn_rate": 30.0,  # (120000 + 0) / 400000
        "churn_rate_28d": 33.33,  # paying as of 10-25 09:00: C1, C2, C3; C3 churned
        "customer_satisfaction": {"nps": 25.0, "responses": 4},  # (2 promoters − 1 detractor) / 4
        "platform_utilization": 80.0,  # C1, C4, C6, C7 of the 5 active (not C2)
        "at_risk_customers": 2,  # C2 (quiet 14 days), C4 (latest NPS 5)
        "mrr_at_risk": 100.0,  # (96000 + 24000) / 1200
    },
}


def test_snapshot_end_to_end_matches_hand_computed(conn, tmp_path):
    load_scenario(conn)
    services = ["api", "web", "db"]
    # As the DAG does: each extract writes its frames, the computation reads them back.
    business = read_frames(write_frames(extract_business_data(conn, PERIOD), str(tmp_path / "business")))
    ai = read_frames(write_frames({"ai": extract_ai_metrics(conn, PERIOD)}, str(tmp_path / "ai")))["ai"]
    health = read_frames(
        write_frames({"health": extract_health_checks(conn, PERIOD, services)}, str(tmp_path / "health"))
    )["health"]
    snapshot = build_snapshot(PERIOD, business, ai, health, services)
    assert snapshot == EXPECTED_SNAPSHOT
