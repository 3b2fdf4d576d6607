"""Hand-made source rows for the depth tests, and the depth sections of a period computed from them
(the extract of ``weekly/depth`` plus the weekly extract's totals, as the snapshot will do)."""

from __future__ import annotations

from datetime import datetime, timezone

from include.investor_metrics.db import apply_source_schema, connect
from include.investor_metrics.period import Period, to_utc
from include.investor_metrics.weekly.depth.extract import extract_depth
from include.investor_metrics.weekly.depth.snapshot import depth_sections
from include.investor_metrics.weekly.extract import extract_business_data
from include.investor_metrics.weekly.metrics.revenue import mrr_as_of, mrr_movements
from tests.unit.weekly.test_extract import insert

UTC = timezone.utc


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def source_connection(database):
    """A connection to ``database`` holding the (empty) source tables; for a fixture to yield from:
    ``yield from source_connection(fresh_database)``."""
    connection = connect(database)
    apply_source_schema(connection)
    yield connection
    connection.close()


def add_subscriptions(conn, rows) -> None:
    """rows: (subscription_id, customer_id, plan, billing_interval, amount_cents, started_at, ended_at);
    a customers row named ``Customer <id>`` is added for every new customer id."""
    insert(conn, "subscriptions",
           ["subscription_id", "customer_id", "plan", "billing_interval", "amount_cents", "started_at",
            "ended_at"], rows)
    with conn.cursor() as cur:
        cur.execute("SELECT DISTINCT customer_id FROM customers")
        known = {r[0] for r in cur.fetchall()}
    new = sorted({r[1] for r in rows} - known)
    insert(conn, "customers", ["customer_id", "name", "plan", "created_at"],
           [(c, f"Customer {c}", "basic", utc(2020, 1, 1)) for c in new])


def weekly_totals(conn, period: Period) -> tuple[int, int]:
    """(mrr as of end, net new MRR), twelfths of a cent, as weekly/metrics.py computes them."""
    business = extract_business_data(conn, period)
    subscriptions = business["subscriptions"]
    start, end = to_utc(period.start), to_utc(period.end)
    movements = mrr_movements(subscriptions, business["customer_history"], start, end)
    return mrr_as_of(subscriptions, end), movements.net_new


def sections(conn, period: Period) -> dict:
    mrr, net_new = weekly_totals(conn, period)
    return depth_sections(period, extract_depth(conn, period), mrr_twelfths=mrr, net_new_mrr_twelfths=net_new)
