"""Loading the dataset (``dev/demo_data/loader.py``) into fresh databases: determinism, "unless
already loaded", rows it did not load, indexes."""

from __future__ import annotations

import time

import pytest

from dev.demo_data import loader
from include.investor_metrics.db import apply_source_schema, connect
from include.investor_metrics.settings import PostgresSettings
from tests.unit.dev.demo_data.helpers import END, scalar, scratch_database

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
    loader.load(fresh_database, seed=42, **options)
    first = fingerprints(fresh_database)
    with scratch_database(pg_server) as other:
        loader.load(other, seed=42, **options)
        assert fingerprints(other) == first
        loader.load(other, seed=43, **options)
        different = fingerprints(other)
    assert all(rows > 0 for rows, _md5 in first.values())
    for table in TABLE_KEYS:
        assert different[table] != first[table], f"{table}: seed 43 gave the same rows as seed 42"


# ------------------------------------------------------------------------------------------------
# Unless already loaded
# ------------------------------------------------------------------------------------------------


def table_counts(settings: PostgresSettings) -> dict[str, int]:
    conn = connect(settings)
    try:
        with conn.cursor() as cur:
            return {table: scalar(cur, f"SELECT count(*) FROM {table}") for table in loader.LOADED_TABLES}
    finally:
        conn.close()


def test_a_second_load_with_the_same_parameters_does_nothing(fresh_database):
    options = {"end": END, "span_days": 60, "seed": 5, "progress": False}
    first = loader.load(fresh_database, **options)
    assert first.loaded and table_counts(fresh_database) == first.counts

    began = time.monotonic()
    again = loader.load(fresh_database, **options)
    assert not again.loaded
    assert time.monotonic() - began < 2
    assert again.counts == first.counts
    assert table_counts(fresh_database) == first.counts
    assert "already loaded" in again.describe()

    other = loader.load(fresh_database, **{**options, "seed": 6})  # other parameters: replaced
    assert other.loaded and table_counts(fresh_database) == other.counts
    forced = loader.load(fresh_database, **{**options, "seed": 6}, force=True)
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
        with pytest.raises(loader.DatasetError, match="customers"):
            loader.load(fresh_database, end=END, span_days=30, progress=False)
        with conn.cursor() as cur:
            assert scalar(cur, "SELECT name FROM customers") == "Real customer"
        conn.commit()
        summary = loader.load(fresh_database, end=END, span_days=30, progress=False, force=True)
        with conn.cursor() as cur:
            assert scalar(cur, "SELECT count(*) FROM customers WHERE name = 'Real customer'") == 0
            assert scalar(cur, "SELECT count(*) FROM customers") == summary.counts["customers"]
    finally:
        conn.close()


def test_indexes_survive_the_load(fresh_database):
    loader.load(fresh_database, end=END, span_days=30, progress=False)
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
