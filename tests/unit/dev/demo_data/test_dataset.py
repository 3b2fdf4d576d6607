"""The synthetic ChatterFix dataset (``dev/demo_data/``), loaded into a real PostgreSQL.

One two-year demo dataset with both knobs (outage week, churn spike week) is loaded once for the
module and checked for every SPEC section 3 rule and the shapes the metrics need; generation alone
(no database) is deterministic.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pytest

from dev.demo_data import dataset, loader
from dev.demo_data.columns import encode_binary_copy
from dev.demo_data.params import DatasetParams
from include.investor_metrics.db import connect
from tests.unit.dev.demo_data.helpers import (
    END,
    OUTAGE_WEEK,
    SPIKE_WEEK,
    START,
    UTC,
    midnight,
    scalar,
    scratch_database,
)


@pytest.fixture(scope="module")
def demo(pg_server):
    """(cursor, summary) of the two-year demo dataset with an outage week and a churn spike."""
    with scratch_database(pg_server) as settings:
        summary = loader.load(
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


def test_generation_without_a_database_is_deterministic():
    def encoded(seed: int) -> list[bytes]:
        params = DatasetParams.build(end=END, seed=seed, span_days=30)
        return [encode_binary_copy(chunk.columns) for chunk in dataset.generate(params)]

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
    "ai_requests: latency_ms >= 0": (
        "SELECT count(*) FROM ai_requests WHERE latency_ms IS NULL OR latency_ms < 0"
    ),
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


def mrr_of(alias: str) -> str:
    """``MRR`` of the subscription rows aliased ``alias``."""
    return MRR.replace("amount_cents", f"{alias}.amount_cents").replace(
        "billing_interval", f"{alias}.billing_interval"
    )


SHAPES = {
    "upgrade at one instant": f"""
        SELECT count(*) FROM subscriptions a JOIN subscriptions b
          ON b.customer_id = a.customer_id AND b.started_at = a.ended_at
         WHERE a.plan <> 'ai_addon' AND b.plan <> 'ai_addon'
           AND {mrr_of("b")} > {mrr_of("a")}
    """,
    "downgrade at one instant": f"""
        SELECT count(*) FROM subscriptions a JOIN subscriptions b
          ON b.customer_id = a.customer_id AND b.started_at = a.ended_at
         WHERE a.plan <> 'ai_addon' AND b.plan <> 'ai_addon'
           AND {mrr_of("b")} < {mrr_of("a")}
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
         WHERE a.started_at < coalesce(b.ended_at, 'infinity')
           AND b.started_at < coalesce(a.ended_at, 'infinity')
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
    users = scalar(cur, "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY n) FROM (SELECT "
                        "count(DISTINCT user_id) n FROM usage_events GROUP BY customer_id) u")  # fmt: skip
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
