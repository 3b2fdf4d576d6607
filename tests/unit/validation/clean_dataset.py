"""The clean dataset the validation tests share (tests/unit/validation, tests/faults): the week
[2026-11-15 09:00, 2026-11-22 09:00) UTC, rows that break no rule, and the fixtures that load it.
A test adds exactly N bad rows (ids >= 900000), checks the validation's count, and deletes them
again (``REMOVE_BAD_ROWS``), so the rule cases of a module share one database; cases that change
the schema or the health checks get a fresh database each (``clean_db``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone

import pytest

from include.investor_metrics.db import apply_metrics_schema, apply_source_schema, connect
from include.investor_metrics.period import weekly_period
from include.investor_metrics.settings import PostgresSettings
from include.investor_metrics.validation.runner import ValidationResult, validate_period
from tests.conftest import temporary_database

PERIOD = weekly_period(datetime(2026, 11, 22, 9, tzinfo=timezone.utc), "UTC")
# Windows of this period: leads from 2026-10-25 09:00, NPS from 2026-08-24 09:00, usage from
# 2026-11-08 09:00, AI requests and health checks from 2026-11-15 09:00; all up to 2026-11-22 09:00.

CLEAN_ROWS = """
INSERT INTO customers VALUES
    (1, 'Acme', 'pro', '2026-01-05T00:00:00Z'),
    (2, 'Globex', 'starter', '2026-02-10T00:00:00Z'),
    (3, 'Initech', 'pro', '2026-03-15T00:00:00Z');
INSERT INTO subscriptions VALUES
    (10, 1, 'pro', 'month', 5000, '2026-02-01T00:00:00Z', NULL),
    (11, 2, 'starter', 'year', 120000, '2026-03-01T00:00:00Z', NULL),
    (12, 3, 'pro', 'month', 2000, '2026-04-01T00:00:00Z', '2026-10-01T00:00:00Z');
INSERT INTO leads VALUES
    (100, 'web', '2026-11-01T10:00:00Z', '2026-11-01T10:00:00Z', 3),
    (101, 'referral', '2026-11-10T10:00:00Z', NULL, NULL);
INSERT INTO nps_responses VALUES
    (200, 1, 10, '2026-10-01T12:00:00Z'),
    (201, 2, 0, '2026-11-16T12:00:00Z');
INSERT INTO usage_events VALUES
    (300, 1, 11, 'login', '2026-11-16T08:00:00Z'),
    (301, 2, 21, 'work_order', '2026-11-10T08:00:00Z'),
    (302, 1, 12, 'login', '2026-11-20T08:00:00Z');
INSERT INTO ai_requests VALUES
    (400, 1, 'openai', 'chat', '2026-11-16T09:30:00Z', 800, true, 'ok', 'correct'),
    (401, NULL, 'anthropic', 'api', '2026-11-17T09:30:00Z', 0, false, 'error', NULL),
    (402, 2, 'openai', 'chat', '2026-11-18T09:30:00Z', 650, false, 'ok', 'incorrect');
-- Two services probed every 5 minutes through the whole period: 2016 rounds each.
INSERT INTO investor_metrics.service_health_checks (service, checked_at, ok, response_ms, status_code)
SELECT service, checked_at, true, 120, 200
FROM unnest(ARRAY['api', 'web']) AS service,
     generate_series('2026-11-15T09:00:00Z'::timestamptz, '2026-11-22T08:55:00Z', interval '5 minutes')
         AS checked_at;
"""


REMOVE_BAD_ROWS = """
DELETE FROM customers WHERE customer_id >= 900000 OR customer_id IS NULL;
DELETE FROM subscriptions WHERE subscription_id >= 900000 OR subscription_id IS NULL;
DELETE FROM leads WHERE lead_id >= 900000 OR lead_id IS NULL;
DELETE FROM nps_responses WHERE response_id >= 900000 OR response_id IS NULL;
DELETE FROM usage_events WHERE event_id >= 900000 OR event_id IS NULL;
DELETE FROM ai_requests WHERE request_id >= 900000 OR request_id IS NULL;
"""


def _load_clean_dataset(settings: PostgresSettings) -> None:
    conn = connect(settings)
    try:
        apply_source_schema(conn)
        apply_metrics_schema(conn)
        with conn.cursor() as cur:
            cur.execute(CLEAN_ROWS)
        conn.commit()
    finally:
        conn.close()


def _execute(settings: PostgresSettings, sql: str) -> None:
    conn = connect(settings)
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
        conn.commit()
    finally:
        conn.close()


@pytest.fixture(scope="module")
def shared_clean_db(pg_server: PostgresSettings):
    """One database with the clean dataset for the rule cases (each one cleans up after itself)."""
    with temporary_database(pg_server, "cfx_validate") as settings:
        _load_clean_dataset(settings)
        yield settings


@pytest.fixture()
def with_bad_rows(shared_clean_db: PostgresSettings):
    """Add rows to the shared clean database for one test; they are removed afterwards."""

    def add(sql: str) -> PostgresSettings:
        _execute(shared_clean_db, sql)
        return shared_clean_db

    try:
        yield add
    finally:
        _execute(shared_clean_db, REMOVE_BAD_ROWS)


@pytest.fixture()
def clean_db(fresh_database: PostgresSettings) -> PostgresSettings:
    """A database of its own with the clean dataset (for tests that change tables)."""
    _load_clean_dataset(fresh_database)
    return fresh_database


def _validate(settings: PostgresSettings, **kwargs) -> ValidationResult:
    kwargs.setdefault("services", None)
    kwargs.setdefault("report_dir", None)
    return validate_period(settings.sqlalchemy_url(), PERIOD, **kwargs)


@contextmanager
def _statements() -> Iterator[list[str]]:
    """Every SQL statement any SQLAlchemy engine (GX's included) sends meanwhile."""
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    sent: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        sent.append(" ".join(statement.split()))

    event.listen(Engine, "before_cursor_execute", record)
    try:
        yield sent
    finally:
        event.remove(Engine, "before_cursor_execute", record)


# What GX sends only for a result format with samples, or for ExpectColumnValuesToBeUnique's count.
SAMPLE_QUERY = " AS unexpected_values"
WINDOW_COUNT = "OVER (PARTITION BY"
