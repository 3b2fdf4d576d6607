"""The synthetic ChatterFix dataset (``dev/demo_data/generator.py``), loaded into a real PostgreSQL.

One two-year demo dataset with both knobs (outage week, churn spike week) is loaded once for the
module and checked for every SPEC section 3 rule and the shapes the metrics need; smaller loads
into fresh databases check determinism, "unless already loaded" and the command line.
"""

from __future__ import annotations

import os
import secrets
import time
from contextlib import contextmanager
from datetime import date, datetime, timedelta, timezone

import numpy as np
import pytest

from dev.demo_data import generator
from include.investor_metrics.db import apply_source_schema, connect
from include.investor_metrics.settings import PostgresSettings

END = datetime(2026, 11, 22, 9, 0, tzinfo=timezone.utc)
START = END - timedelta(days=730)
OUTAGE_WEEK = date(2026, 10, 5)
SPIKE_WEEK = date(2026, 9, 14)
UTC = timezone.utc


@contextmanager
def scratch_database(pg_server: PostgresSettings):
    """A second fresh database (``fresh_database`` gives one per test)."""
    name = f"cfx_gen_{os.getpid()}_{secrets.token_hex(4)}"
    admin = connect(pg_server)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    try:
        yield PostgresSettings(
            host=pg_server.host,
            port=pg_server.port,
            dbname=name,
            user=pg_server.user,
            password=pg_server.password,
        )
    finally:
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@pytest.fixture(scope="module")
def demo(pg_server):
    """(cursor, summary) of the two-year demo dataset with an outage week and a churn spike."""
    with scratch_database(pg_server) as settings:
        summary = generator.load(
            settings,
            end=END,
            scale="demo",
            seed=42,
            outage_week=OUTAGE_WEEK,
            churn_spike_week=SPIKE_WEEK,
            progress=False,
        )
        conn = connect(settings)
        conn.autocommit = True
        try:
            with conn.cursor() as cur:
                yield cur, summary
        finally:
            conn.close()


def scalar(cur, sql: str, params=None):
    cur.execute(sql, params)
    return cur.fetchone()[0]


def midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


# ------------------------------------------------------------------------------------------------
# Determinism
# ------------------------------------------------------------------------------------------------

TABLE_KEYS = {
    "customers": "customer_id",
    "subscriptions": "subscription_id",
    "leads": "lead_id",
    "nps_responses": "response_id",
    "usage_events": "event_id",
    "ai_requests": "request_id",
    "investor_metrics.service_health_checks": "service, checked_at",
}


def fingerprints(settings: PostgresSettings) -> dict[str, tuple[int, str]]:
    """(rows, md5 of every row in key order) per table."""
    conn = connect(settings)
    try:
        with conn.cursor() as cur:
            cur.execute("SET TIME ZONE 'UTC'")
            result = {}
            for table, key in TABLE_KEYS.items():
                # Table and key names come from the fixed dict above.
                cur.execute(f"SELECT count(*), md5(string_agg(t::text, '|' ORDER BY {key})) FROM {table} t")
                result[table] = cur.fetchone()
            return result
    finally:
        conn.close()


def test_same_seed_and_end_give_identical_rows_and_another_seed_differs(fresh_database, pg_server):
    options = {"end": END, "scale": "demo", "span_days": 120, "progress": False}
    generator.load(fresh_database, seed=42, **options)
    first = fingerprints(fresh_database)
    with scratch_database(pg_server) as other:
        generator.load(other, seed=42, **options)
        assert fingerprints(other) == first
        generator.load(other, seed=43, **options)
        different = fingerprints(other)
    assert all(rows > 0 for rows, _md5 in first.values())
    for table in TABLE_KEYS:
        assert different[table] != first[table], f"{table}: seed 43 gave the same rows as seed 42"


def test_generation_without_a_database_is_deterministic():
    def encoded(seed: int) -> list[bytes]:
        params = generator.DatasetParams.build(end=END, seed=seed, span_days=30)
        return [generator.encode_binary_copy(chunk.columns) for chunk in generator.generate(params)]

    assert encoded(7) == encoded(7)
    assert encoded(7) != encoded(8)


# ------------------------------------------------------------------------------------------------
# SPEC section 3 rules
# ------------------------------------------------------------------------------------------------

RULES = {
    "customers: customer_id unique": "SELECT count(*) - count(DISTINCT customer_id) FROM customers",
    "customers: not null": (
        "SELECT count(*) FROM customers "
        "WHERE customer_id IS NULL OR name IS NULL OR plan IS NULL OR created_at IS NULL"
    ),
    "subscriptions: subscription_id unique": (
        "SELECT count(*) - count(DISTINCT subscription_id) FROM subscriptions"
    ),
    "subscriptions: customer exists": (
        "SELECT count(*) FROM subscriptions s "
        "WHERE NOT EXISTS (SELECT 1 FROM customers c WHERE c.customer_id = s.customer_id)"
    ),
    "subscriptions: billing_interval in (month, year)": (
        "SELECT count(*) FROM subscriptions WHERE billing_interval IS NULL "
        "OR billing_interval NOT IN ('month', 'year')"
    ),
    "subscriptions: amount_cents >= 0": (
        "SELECT count(*) FROM subscriptions WHERE amount_cents IS NULL OR amount_cents < 0"
    ),
    "subscriptions: ended_at null or > started_at": (
        "SELECT count(*) FROM subscriptions WHERE started_at IS NULL OR ended_at <= started_at"
    ),
    "leads: lead_id unique": "SELECT count(*) - count(DISTINCT lead_id) FROM leads",
    "leads: converted_at null or >= created_at": "SELECT count(*) FROM leads WHERE converted_at < created_at",
    "leads: customer_id set exactly when converted": (
        "SELECT count(*) FROM leads WHERE (converted_at IS NULL) <> (customer_id IS NULL)"
    ),
    "leads: converted customer exists": (
        "SELECT count(*) FROM leads l WHERE l.customer_id IS NOT NULL "
        "AND NOT EXISTS (SELECT 1 FROM customers c WHERE c.customer_id = l.customer_id)"
    ),
    "nps_responses: response_id unique": "SELECT count(*) - count(DISTINCT response_id) FROM nps_responses",
    "nps_responses: score 0..10": (
        "SELECT count(*) FROM nps_responses WHERE score IS NULL OR score NOT BETWEEN 0 AND 10"
    ),
    "nps_responses: customer exists": (
        "SELECT count(*) FROM nps_responses n "
        "WHERE NOT EXISTS (SELECT 1 FROM customers c WHERE c.customer_id = n.customer_id)"
    ),
    "usage_events: event_id unique": "SELECT count(*) - count(DISTINCT event_id) FROM usage_events",
    "usage_events: customer_id not null": "SELECT count(*) FROM usage_events WHERE customer_id IS NULL",
    "usage_events: customer exists": (
        "SELECT count(*) FROM usage_events u "
        "WHERE NOT EXISTS (SELECT 1 FROM customers c WHERE c.customer_id = u.customer_id)"
    ),
    "ai_requests: request_id unique": "SELECT count(*) - count(DISTINCT request_id) FROM ai_requests",
    "ai_requests: request_type in (chat, api)": (
        "SELECT count(*) FROM ai_requests WHERE request_type IS NULL OR request_type NOT IN ('chat', 'api')"
    ),
    "ai_requests: status in (ok, error)": (
        "SELECT count(*) FROM ai_requests WHERE status IS NULL OR status NOT IN ('ok', 'error')"
    ),
    "ai_requests: feedback null, correct or incorrect": (
        "SELECT count(*) FROM ai_requests WHERE feedback NOT IN ('correct', 'incorrect')"
    ),
    "ai_requests: latency_ms >= 0": "SELECT count(*) FROM ai_requests WHERE latency_ms IS NULL OR latency_ms < 0",
    "ai_requests: customer exists when set": (
        "SELECT count(*) FROM ai_requests a WHERE a.customer_id IS NOT NULL "
        "AND NOT EXISTS (SELECT 1 FROM customers c WHERE c.customer_id = a.customer_id)"
    ),
    "health checks: ok rows have a response time and no error": (
        "SELECT count(*) FROM investor_metrics.service_health_checks "
        "WHERE ok AND (response_ms IS NULL OR response_ms < 0 OR error IS NOT NULL)"
    ),
    "health checks: failed rows have an error, status 503 or null": (
        "SELECT count(*) FROM investor_metrics.service_health_checks "
        "WHERE NOT ok AND (error IS NULL OR coalesce(status_code, 503) <> 503)"
    ),
}

TIMESTAMPS = [
    ("customers", "created_at"),
    ("subscriptions", "started_at"),
    ("subscriptions", "ended_at"),
    ("leads", "created_at"),
    ("leads", "converted_at"),
    ("nps_responses", "responded_at"),
    ("usage_events", "occurred_at"),
    ("ai_requests", "requested_at"),
    ("investor_metrics.service_health_checks", "checked_at"),
]


def test_every_spec_section_3_rule_holds(demo):
    cur, _summary = demo
    bad = {rule: scalar(cur, sql) for rule, sql in RULES.items()}
    assert {rule: n for rule, n in bad.items() if n} == {}


def test_every_timestamp_lies_in_the_window(demo):
    cur, _summary = demo
    outside = {}
    for table, column in TIMESTAMPS:
        # Names come from the fixed list above; the bounds are bind parameters.
        sql = f"SELECT count(*) FROM {table} WHERE {column} < %(start)s OR {column} >= %(end)s"
        outside[f"{table}.{column}"] = scalar(cur, sql, {"start": START, "end": END})
    assert {name: n for name, n in outside.items() if n} == {}
    assert scalar(cur, "SELECT min(created_at) FROM customers") < START + timedelta(days=90)


def test_counts_match_the_summary_and_the_demo_scale(demo):
    cur, summary = demo
    assert summary.loaded
    for table, rows in summary.counts.items():
        assert scalar(cur, f"SELECT count(*) FROM {table}") == rows, table
    assert summary.counts["customers"] == 150
    assert 100_000 <= summary.counts["usage_events"] <= 400_000
    assert summary.counts["ai_requests"] > 20_000
    assert summary.seconds < 30


# ------------------------------------------------------------------------------------------------
# Shapes the metrics need
# ------------------------------------------------------------------------------------------------

MRR = "CASE billing_interval WHEN 'year' THEN amount_cents / 12.0 ELSE amount_cents END"
SHAPES = {
    "upgrade at one instant": f"""
        SELECT count(*) FROM subscriptions a JOIN subscriptions b
          ON b.customer_id = a.customer_id AND b.started_at = a.ended_at
         WHERE a.plan <> 'ai_addon' AND b.plan <> 'ai_addon'
           AND {MRR.replace("amount_cents", "b.amount_cents").replace("billing_interval", "b.billing_interval")}
             > {MRR.replace("amount_cents", "a.amount_cents").replace("billing_interval", "a.billing_interval")}
    """,
    "downgrade at one instant": f"""
        SELECT count(*) FROM subscriptions a JOIN subscriptions b
          ON b.customer_id = a.customer_id AND b.started_at = a.ended_at
         WHERE a.plan <> 'ai_addon' AND b.plan <> 'ai_addon'
           AND {MRR.replace("amount_cents", "b.amount_cents").replace("billing_interval", "b.billing_interval")}
             < {MRR.replace("amount_cents", "a.amount_cents").replace("billing_interval", "a.billing_interval")}
    """,
    "reactivation weeks after a churn": """
        SELECT count(*) FROM subscriptions a JOIN subscriptions b
          ON b.customer_id = a.customer_id AND b.started_at >= a.ended_at + interval '14 days'
         WHERE NOT EXISTS (
               SELECT 1 FROM subscriptions c
                WHERE c.customer_id = a.customer_id AND c.started_at < b.started_at
                  AND coalesce(c.ended_at, 'infinity') > a.ended_at)
    """,
    "free plan": "SELECT count(*) FROM subscriptions WHERE plan = 'free' AND amount_cents = 0",
    "annual amount not divisible by 12": (
        "SELECT count(*) FROM subscriptions WHERE billing_interval = 'year' AND amount_cents % 12 <> 0"
    ),
    "annual amount divisible by 12": (
        "SELECT count(*) FROM subscriptions WHERE billing_interval = 'year' AND amount_cents % 12 = 0"
    ),
    "two concurrent subscriptions": """
        SELECT count(*) FROM subscriptions a JOIN subscriptions b
          ON b.customer_id = a.customer_id AND a.subscription_id < b.subscription_id
         WHERE a.started_at < coalesce(b.ended_at, 'infinity') AND b.started_at < coalesce(a.ended_at, 'infinity')
    """,
    "churned customer with no running subscription": """
        SELECT count(*) FROM customers c
         WHERE NOT EXISTS (SELECT 1 FROM subscriptions s WHERE s.customer_id = c.customer_id
                                                         AND s.ended_at IS NULL)
    """,
    "monthly and annual billing": "SELECT count(DISTINCT billing_interval) - 1 FROM subscriptions",
    "anonymous AI request": "SELECT count(*) FROM ai_requests WHERE customer_id IS NULL",
}


def test_subscription_and_event_shapes_exist(demo):
    cur, _summary = demo
    found = {shape: scalar(cur, sql) for shape, sql in SHAPES.items()}
    assert {shape: n for shape, n in found.items() if not n} == {}


def test_plans_and_prices(demo):
    cur, _summary = demo
    cur.execute("SELECT DISTINCT plan FROM customers")
    assert {row[0] for row in cur.fetchall()} <= {"free", "starter", "professional", "enterprise"}
    cur.execute(
        "SELECT plan, billing_interval, max(amount_cents) FROM subscriptions "
        "WHERE plan <> 'ai_addon' GROUP BY 1, 2"
    )
    list_prices = {(plan, interval): cents for plan, interval, cents in cur.fetchall()}
    assert list_prices[("starter", "month")] == 4_900
    assert list_prices[("professional", "month")] == 19_900
    assert list_prices[("enterprise", "month")] == 79_900
    assert list_prices[("enterprise", "year")] == 799_000  # 10 × monthly, one annual amount
    assert list_prices[("free", "month")] == 0


def churned_customers(cur, start: datetime, end: datetime) -> int:
    """SPEC section 4: customers with MRR > 0 as of ``start`` and none as of ``end``."""
    return scalar(
        cur,
        """
        WITH paying AS (
            SELECT t, customer_id FROM subscriptions, unnest(ARRAY[%(start)s, %(end)s]::timestamptz[]) AS t
             WHERE started_at < t AND (ended_at IS NULL OR ended_at >= t) AND amount_cents > 0)
        SELECT count(DISTINCT customer_id) FROM paying p
         WHERE p.t = %(start)s
           AND NOT EXISTS (SELECT 1 FROM paying q WHERE q.t = %(end)s AND q.customer_id = p.customer_id)
        """,
        {"start": start, "end": end},
    )


def paying_customers(cur, at: datetime) -> int:
    return scalar(
        cur,
        "SELECT count(DISTINCT customer_id) FROM subscriptions "
        "WHERE started_at < %(t)s AND (ended_at IS NULL OR ended_at >= %(t)s) AND amount_cents > 0",
        {"t": at},
    )


def test_monthly_logo_churn_is_one_to_two_percent_and_customers_grow(demo):
    cur, _summary = demo
    months = [datetime(2025, 11, 1, tzinfo=UTC) + timedelta(days=30.4 * i) for i in range(13)]
    spike = midnight(SPIKE_WEEK)
    normal = [(a, b) for a, b in zip(months, months[1:], strict=False) if not a <= spike < b]
    churned = sum(churned_customers(cur, a, b) for a, b in normal)
    paying = sum(paying_customers(cur, a) for a, _b in normal)
    assert 0.8 <= 100 * churned / paying <= 3.0
    assert paying_customers(cur, END) > 1.3 * paying_customers(cur, END - timedelta(days=365))


def test_leads_nps_usage_and_ai_look_real(demo):
    cur, _summary = demo
    conversion = scalar(cur, "SELECT 100.0 * count(converted_at) / count(*) FROM leads")
    assert 10 <= conversion <= 20
    nps = scalar(
        cur,
        "SELECT 100.0 * (count(*) FILTER (WHERE score >= 9) - count(*) FILTER (WHERE score <= 6)) / count(*) "
        "FROM nps_responses",
    )
    assert 25 <= nps <= 55
    cur.execute(
        "SELECT extract(isodow FROM occurred_at) >= 6, count(*) / count(DISTINCT occurred_at::date) "
        "FROM usage_events GROUP BY 1"
    )
    per_day = dict(cur.fetchall())
    assert per_day[True] < 0.5 * per_day[False], "weekends should be quieter"
    users = scalar(cur, "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY n) FROM "
                        "(SELECT count(DISTINCT user_id) n FROM usage_events GROUP BY customer_id) u")  # fmt: skip
    assert 2 <= users <= 20
    assert scalar(cur, "SELECT count(DISTINCT event_type) FROM usage_events") >= 4
    cur.execute(
        """
        SELECT count(DISTINCT provider),
               100.0 * avg(cache_hit::int),
               100.0 * avg((status = 'error')::int),
               100.0 * count(*) FILTER (WHERE feedback = 'correct') / count(feedback),
               100.0 * avg((request_type = 'chat')::int)
          FROM ai_requests
        """
    )
    providers, cache_hit_rate, error_rate, accuracy, chat_share = cur.fetchone()
    assert providers == 4
    assert 25 <= cache_hit_rate <= 35
    assert 0.5 <= error_rate <= 2
    assert 92 <= accuracy <= 96
    assert 60 <= chat_share <= 95


def test_health_checks_every_5_minutes_for_5_services(demo):
    cur, _summary = demo
    cur.execute(
        "SELECT service, count(*), count(DISTINCT checked_at), "
        "       count(*) FILTER (WHERE extract(epoch FROM checked_at)::bigint % 300 <> 0) "
        "  FROM investor_metrics.service_health_checks GROUP BY service ORDER BY service"
    )
    rows = cur.fetchall()
    grid_points = int((END - START).total_seconds() // 300)  # START is on the grid
    assert [r[0] for r in rows] == sorted(["api", "web", "database", "ai_gateway", "notifications"])
    assert all(count == distinct == grid_points and off_grid == 0 for _s, count, distinct, off_grid in rows)
    failed = scalar(cur, "SELECT count(*) FROM investor_metrics.service_health_checks WHERE NOT ok")
    assert failed > 0


# ------------------------------------------------------------------------------------------------
# Knobs
# ------------------------------------------------------------------------------------------------


def uptime(cur, start: datetime, end: datetime) -> float:
    return float(
        scalar(
            cur,
            "SELECT 100.0 * avg(ok::int) FROM investor_metrics.service_health_checks "
            "WHERE checked_at >= %s AND checked_at < %s",
            (start, end),
        )
    )


def test_outage_week_pushes_uptime_below_target(demo):
    cur, _summary = demo
    week = midnight(OUTAGE_WEEK)
    assert uptime(cur, week, week + timedelta(days=7)) < 99.5
    # The SPEC's Sunday 09:00 reporting week that overlaps it sees the whole outage too.
    assert uptime(cur, datetime(2026, 10, 4, 9, tzinfo=UTC), datetime(2026, 10, 11, 9, tzinfo=UTC)) < 99.5
    assert uptime(cur, week - timedelta(days=7), week) >= 99.5
    weekly = [
        uptime(cur, START + timedelta(days=7 * i), START + timedelta(days=7 * (i + 1))) for i in range(104)
    ]
    assert sum(u < 99.5 for u in weekly) == 1


def test_churn_spike_week_churns_many_customers(demo):
    cur, _summary = demo
    week = midnight(SPIKE_WEEK)
    spike = churned_customers(cur, week, week + timedelta(days=7))
    previous = [churned_customers(cur, week - timedelta(days=7 * i), week - timedelta(days=7 * (i - 1)))
                for i in range(1, 9)]  # fmt: skip
    assert spike >= 5
    assert spike > max(2, 2 * np.mean(previous)), (spike, previous)  # the SPEC's churn_spike rule fires
    assert 0.07 <= spike / paying_customers(cur, week) <= 0.15
    # A Sunday 09:00 reporting week overlapping the knob's week sees the spike as well.
    sunday = datetime(2026, 9, 13, 9, tzinfo=UTC)
    assert churned_customers(cur, sunday, sunday + timedelta(days=7)) >= spike - 1


def test_knob_weeks_must_lie_inside_the_data():
    with pytest.raises(ValueError, match="outage_week"):
        generator.DatasetParams.build(end=END, span_days=30, outage_week=date(2026, 1, 5))
    with pytest.raises(ValueError, match="churn_spike_week"):
        generator.DatasetParams.build(end=END, churn_spike_week="2026-11-20")
    with pytest.raises(ValueError, match="end"):
        generator.DatasetParams.build(end=datetime(2026, 11, 22, 9))  # naive
    with pytest.raises(ValueError, match="scale"):
        generator.DatasetParams.build(end=END, scale="huge")


# ------------------------------------------------------------------------------------------------
# Unless already loaded
# ------------------------------------------------------------------------------------------------


def table_counts(settings: PostgresSettings) -> dict[str, int]:
    conn = connect(settings)
    try:
        with conn.cursor() as cur:
            return {table: scalar(cur, f"SELECT count(*) FROM {table}") for table in generator.LOADED_TABLES}
    finally:
        conn.close()


def test_a_second_load_with_the_same_parameters_does_nothing(fresh_database):
    options = {"end": END, "span_days": 60, "seed": 5, "progress": False}
    first = generator.load(fresh_database, **options)
    assert first.loaded and table_counts(fresh_database) == first.counts

    began = time.monotonic()
    again = generator.load(fresh_database, **options)
    assert not again.loaded
    assert time.monotonic() - began < 2
    assert again.counts == first.counts
    assert table_counts(fresh_database) == first.counts
    assert "already loaded" in again.describe()

    other = generator.load(fresh_database, **{**options, "seed": 6})  # other parameters: replaced
    assert other.loaded and table_counts(fresh_database) == other.counts
    forced = generator.load(fresh_database, **{**options, "seed": 6}, force=True)
    assert forced.loaded and forced.counts == other.counts and table_counts(fresh_database) == other.counts
    conn = connect(fresh_database)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT seed, span_days, end_at, row_counts FROM investor_metrics.demo_dataset")
            assert cur.fetchall() == [(6, 60, END, other.counts)]
    finally:
        conn.close()


def test_rows_it_did_not_load_are_kept_unless_forced(fresh_database):
    conn = connect(fresh_database)
    try:
        apply_source_schema(conn)
        with conn.cursor() as cur:
            cur.execute("INSERT INTO customers VALUES (1, 'Real customer', 'starter', %s)", (END,))
        conn.commit()
        with pytest.raises(generator.DatasetError, match="customers"):
            generator.load(fresh_database, end=END, span_days=30, progress=False)
        with conn.cursor() as cur:
            assert scalar(cur, "SELECT name FROM customers") == "Real customer"
        conn.commit()
        summary = generator.load(fresh_database, end=END, span_days=30, progress=False, force=True)
        with conn.cursor() as cur:
            assert scalar(cur, "SELECT count(*) FROM customers WHERE name = 'Real customer'") == 0
            assert scalar(cur, "SELECT count(*) FROM customers") == summary.counts["customers"]
    finally:
        conn.close()


def test_indexes_survive_the_load(fresh_database):
    generator.load(fresh_database, end=END, span_days=30, progress=False)
    conn = connect(fresh_database)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT indexname FROM pg_indexes WHERE schemaname IN ('public', 'investor_metrics')")
            names = {row[0] for row in cur.fetchall()}
    finally:
        conn.close()
    assert {
        "usage_events_occurred_at_idx",
        "ai_requests_requested_at_idx",
        "subscriptions_customer_id_idx",
        "service_health_checks_checked_at_idx",
    } <= names


# ------------------------------------------------------------------------------------------------
# Binary COPY encoding and the command line
# ------------------------------------------------------------------------------------------------


def test_binary_copy_round_trip(fresh_database):
    window = generator.Window(start_us=generator._epoch_us(END), end_us=generator._epoch_us(END) + 10**9)
    columns = [
        generator.int_column("id", np.array([1, 2, 3]), null=np.array([False, True, False])),
        generator.free_text_column("name", ["Acme Co.", "Ünïcode GmbH", ""]),
        generator.text_column("kind", ("a", "bbb"), np.array([1, -1, 0])),
        generator.timestamp_column("at", window, np.array([0, generator.NO_END, 1_500_000])),
        generator.bool_column("ok", np.array([True, False, True])),
        generator.int_column("ms", np.array([7, -1, 2**31 - 1]), ">i4"),
        generator.int_column("score", np.array([0, 10, 5]), ">i2"),
    ]
    conn = connect(fresh_database)
    try:
        with conn.cursor() as cur:
            cur.execute(
                "CREATE TEMP TABLE t (id bigint, name text, kind text, at timestamptz, ok boolean, "
                "ms integer, score smallint)"
            )
            import io

            cur.copy_expert(
                "COPY t FROM STDIN WITH (FORMAT binary)", io.BytesIO(generator.encode_binary_copy(columns))
            )
            cur.execute("SELECT * FROM t ORDER BY score")
            rows = cur.fetchall()
    finally:
        conn.close()
    assert rows == [
        (1, "Acme Co.", "bbb", END, True, 7, 0),
        (3, "", "a", END + timedelta(seconds=1.5), True, 2**31 - 1, 5),
        (None, "Ünïcode GmbH", None, None, False, -1, 10),
    ]


def test_command_line_loads_then_says_already_loaded(fresh_database, capsys):
    argv = [
        "--dsn",
        fresh_database.dsn(),
        "--end",
        "2026-11-22T09:00:00Z",
        "--span-days",
        "30",
        "--no-progress",
    ]
    assert generator.main(argv) == 0
    out = capsys.readouterr().out
    assert "end: 2026-11-22T09:00:00Z" in out and "Loaded ChatterFix demo dataset" in out
    assert generator.main(argv) == 0
    assert "already loaded" in capsys.readouterr().out
    assert generator.main([*argv, "--outage-week", "2020-01-06"]) == 2
    assert "outage_week" in capsys.readouterr().err


def test_default_end_is_now_floored_to_the_hour():
    now = datetime(2026, 11, 22, 9, 41, 12, 345, tzinfo=UTC)
    assert generator.default_end(now) == datetime(2026, 11, 22, 9, tzinfo=UTC)
