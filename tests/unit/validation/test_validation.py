"""The validation step (include/investor_metrics/validation/runner.py) against a real PostgreSQL, on hand-made rows.

The period is the week [2026-11-15 09:00, 2026-11-22 09:00) UTC. The clean dataset below breaks
no rule; each rule case adds exactly N bad rows (ids >= 900000) to it, checks that the validation
fails on that rule with bad_rows == N, and deletes them again, so the rule cases share one
database. Cases that change the schema or the health checks get a fresh database each.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

import pytest

from include.investor_metrics.db import apply_metrics_schema, apply_source_schema, connect
from include.investor_metrics.period import weekly_period
from include.investor_metrics.settings import PostgresSettings
from include.investor_metrics.validation.runner import (
    HEALTH_TABLE,
    SOURCE_TABLES,
    DataValidationError,
    ValidationResult,
    validate_period,
)
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

# Each case: table, column, rule, SQL adding the bad rows, number of bad rows.
RULE_CASES = [
    pytest.param(
        "customers", "customer_id", "id unique",
        "INSERT INTO customers VALUES (900001, 'Dup A', 'pro', '2026-05-01Z'), (900001, 'Dup B', 'pro', '2026-05-01Z')",
        2, id="customers.id_unique",
    ),
    pytest.param(
        "customers", "name", "not null",
        "INSERT INTO customers VALUES (900001, NULL, 'pro', '2026-05-01Z'), (900002, NULL, 'pro', '2026-05-01Z')",
        2, id="customers.name_not_null",
    ),
    pytest.param(
        "customers", "plan", "not null",
        "INSERT INTO customers VALUES (900001, 'A', NULL, '2026-05-01Z'), (900002, 'B', NULL, '2026-05-01Z')",
        2, id="customers.plan_not_null",
    ),
    pytest.param(
        "customers", "created_at", "not null",
        "INSERT INTO customers VALUES (900001, 'A', 'pro', NULL), (900002, 'B', 'pro', NULL)",
        2, id="customers.created_at_not_null",
    ),
    pytest.param(
        "subscriptions", "subscription_id", "id unique",
        "INSERT INTO subscriptions VALUES (900001, 1, 'pro', 'month', 100, '2026-05-01Z', NULL),"
        " (900001, 2, 'pro', 'month', 100, '2026-05-01Z', NULL)",
        2, id="subscriptions.id_unique",
    ),
    pytest.param(
        "subscriptions", "customer_id", "customer exists",
        # an unknown customer, and no customer at all
        "INSERT INTO subscriptions VALUES (900001, 424242, 'pro', 'month', 100, '2026-05-01Z', NULL),"
        " (900002, NULL, 'pro', 'month', 100, '2026-05-01Z', NULL)",
        2, id="subscriptions.customer_exists",
    ),
    pytest.param(
        "subscriptions", "billing_interval", "interval in (month, year)",
        "INSERT INTO subscriptions VALUES (900001, 1, 'pro', 'week', 100, '2026-05-01Z', NULL),"
        " (900002, 1, 'pro', NULL, 100, '2026-05-01Z', NULL), (900003, 1, 'pro', 'Month', 100, '2026-05-01Z', NULL)",
        3, id="subscriptions.interval_in_set",
    ),
    pytest.param(
        "subscriptions", "amount_cents", "amount >= 0",
        "INSERT INTO subscriptions VALUES (900001, 1, 'pro', 'month', -1, '2026-05-01Z', NULL),"
        " (900002, 1, 'pro', 'month', NULL, '2026-05-01Z', NULL)",
        2, id="subscriptions.amount_non_negative",
    ),
    pytest.param(
        # near the bigint maximum (12 x it wrapped int64: MRR $49.99), and one cent above the ceiling
        "subscriptions", "amount_cents", "amount <= 1000000000000",
        "INSERT INTO subscriptions VALUES (900001, 1, 'pro', 'month', 9223372036854775807, '2026-05-01Z', NULL),"
        " (900002, 2, 'pro', 'year', 1000000000001, '2026-05-01Z', NULL)",
        2, id="subscriptions.amount_ceiling",
    ),
    pytest.param(
        "subscriptions", "ended_at", "ended_at null or > started_at",
        # ended at the very instant it started, and before it started
        "INSERT INTO subscriptions VALUES (900001, 1, 'pro', 'month', 100, '2026-05-01Z', '2026-05-01Z'),"
        " (900002, 1, 'pro', 'month', 100, '2026-05-01Z', '2026-04-01Z')",
        2, id="subscriptions.ended_after_started",
    ),
    pytest.param(
        "leads", "lead_id", "id unique",
        "INSERT INTO leads VALUES (900001, 'web', '2026-11-02Z', NULL, NULL), (900001, 'ads', '2026-11-03Z', NULL, NULL)",
        2, id="leads.id_unique",
    ),
    pytest.param(
        "leads", "converted_at", "converted_at null or >= created_at",
        # the first lead sits exactly at the window's start (end - 28 days): it is in the window
        "INSERT INTO leads VALUES (900001, 'web', '2026-10-25T09:00:00Z', '2026-10-25T08:59:59Z', 1),"
        " (900002, 'web', '2026-11-05Z', '2026-11-01Z', 2)",
        2, id="leads.converted_after_created",
    ),
    pytest.param(
        "nps_responses", "response_id", "id unique",
        "INSERT INTO nps_responses VALUES (900001, 1, 8, '2026-11-01Z'), (900001, 2, 7, '2026-11-02Z')",
        2, id="nps_responses.id_unique",
    ),
    pytest.param(
        "nps_responses", "score", "score between 0 and 10",
        "INSERT INTO nps_responses VALUES (900001, 1, -1, '2026-11-01Z'), (900002, 1, 11, '2026-11-01Z'),"
        " (900003, 1, NULL, '2026-11-01Z')",
        3, id="nps_responses.score_0_10",
    ),
    pytest.param(
        "usage_events", "event_id", "id unique",
        "INSERT INTO usage_events VALUES (900001, 1, 1, 'login', '2026-11-16Z'), (900001, 2, 2, 'login', '2026-11-17Z')",
        2, id="usage_events.id_unique",
    ),
    pytest.param(
        "usage_events", "customer_id", "not null",
        # end - 14 days is in the window, though it is before the period's start
        "INSERT INTO usage_events VALUES (900001, NULL, 1, 'login', '2026-11-08T09:00:00Z'),"
        " (900002, NULL, 2, 'login', '2026-11-21Z')",
        2, id="usage_events.customer_id_not_null",
    ),
    pytest.param(
        "ai_requests", "request_id", "id unique",
        "INSERT INTO ai_requests VALUES (900001, 1, 'openai', 'chat', '2026-11-16Z', 5, false, 'ok', NULL),"
        " (900001, 1, 'openai', 'chat', '2026-11-17Z', 5, false, 'ok', NULL)",
        2, id="ai_requests.id_unique",
    ),
    pytest.param(
        "ai_requests", "request_type", "request_type in (chat, api)",
        "INSERT INTO ai_requests VALUES (900001, 1, 'openai', 'batch', '2026-11-16Z', 5, false, 'ok', NULL),"
        " (900002, 1, 'openai', NULL, '2026-11-17Z', 5, false, 'ok', NULL)",
        2, id="ai_requests.request_type_in_set",
    ),
    pytest.param(
        "ai_requests", "status", "status in (ok, error)",
        # the first request sits exactly at the period's start: it is in the period
        "INSERT INTO ai_requests VALUES (900001, 1, 'openai', 'chat', '2026-11-15T09:00:00Z', 5, false, 'timeout', NULL),"
        " (900002, 1, 'openai', 'chat', '2026-11-17Z', 5, false, NULL, NULL)",
        2, id="ai_requests.status_in_set",
    ),
    pytest.param(
        "ai_requests", "feedback", "feedback null or in (correct, incorrect)",
        "INSERT INTO ai_requests VALUES (900001, 1, 'openai', 'chat', '2026-11-16Z', 5, false, 'ok', 'maybe'),"
        " (900002, 1, 'openai', 'chat', '2026-11-17Z', 5, false, 'ok', 'Correct')",
        2, id="ai_requests.feedback_in_set",
    ),
    pytest.param(
        "ai_requests", "latency_ms", "latency >= 0",
        "INSERT INTO ai_requests VALUES (900001, 1, 'openai', 'chat', '2026-11-16Z', -5, false, 'ok', NULL),"
        " (900002, 1, 'openai', 'chat', '2026-11-17Z', NULL, false, 'ok', NULL)",
        2, id="ai_requests.latency_non_negative",
    ),
]

# A NULL id in each table (inside the table's window), 2 rows each: "id not null".
RULE_CASES += [
    pytest.param(table, column, "id not null", sql, 2, id=f"{table}.id_not_null")
    for table, column, sql in [
        ("customers", "customer_id",
         "INSERT INTO customers VALUES (NULL, 'A', 'pro', '2026-05-01Z'), (NULL, 'B', 'pro', '2026-05-01Z')"),
        ("subscriptions", "subscription_id",
         "INSERT INTO subscriptions VALUES (NULL, 1, 'pro', 'month', 100, '2026-05-01Z', NULL),"
         " (NULL, 2, 'pro', 'month', 100, '2026-05-01Z', NULL)"),
        ("leads", "lead_id",
         "INSERT INTO leads VALUES (NULL, 'web', '2026-11-02Z', NULL, NULL), (NULL, 'ads', '2026-11-03Z', NULL, NULL)"),
        ("nps_responses", "response_id",
         "INSERT INTO nps_responses VALUES (NULL, 1, 8, '2026-11-01Z'), (NULL, 2, 7, '2026-11-02Z')"),
        ("usage_events", "event_id",
         "INSERT INTO usage_events VALUES (NULL, 1, 1, 'login', '2026-11-16Z'), (NULL, 2, 2, 'login', '2026-11-17Z')"),
        ("ai_requests", "request_id",
         "INSERT INTO ai_requests VALUES (NULL, 1, 'openai', 'chat', '2026-11-16Z', 5, false, 'ok', NULL),"
         " (NULL, 1, 'openai', 'chat', '2026-11-17Z', 5, false, 'ok', NULL)"),
    ]
]

# Bad rows that no window of the period includes: they must not fail it.
OUTSIDE_THE_WINDOWS = """
-- started exactly at the period end: not yet visible
INSERT INTO subscriptions VALUES (900001, 424242, 'pro', 'week', -5, '2026-11-22T09:00:00Z', '2026-01-01Z');
-- created before end - 28 days, and exactly at the end
INSERT INTO leads VALUES (900001, 'web', '2026-10-25T08:59:59Z', '2026-01-01Z', NULL),
                         (900002, 'web', '2026-11-22T09:00:00Z', '2026-01-01Z', NULL);
INSERT INTO nps_responses VALUES (900001, 1, 42, '2026-08-24T08:59:59Z'), (900002, 1, 42, '2026-11-22T09:00:00Z');
INSERT INTO usage_events VALUES (900001, NULL, 1, 'login', '2026-11-08T08:59:59Z'),
                                (900002, NULL, 1, 'login', '2026-11-22T09:00:00Z');
INSERT INTO ai_requests VALUES (900001, 1, 'x', 'batch', '2026-11-15T08:59:59Z', -1, false, 'bogus', 'meh'),
                               (900002, 1, 'x', 'batch', '2026-11-22T09:00:00Z', -1, false, 'bogus', 'meh');
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


def test_clean_data_passes(shared_clean_db):
    from sqlalchemy.engine import make_url

    # A URL object naming psycopg 3, as PostgresHook.sqlalchemy_url gives, works as well as a string.
    url = make_url(shared_clean_db.sqlalchemy_url()).set(drivername="postgresql+psycopg")
    result = validate_period(url, PERIOD, services=["api", "web"], report_dir=None)

    assert result.success, result.failures
    assert result.failures == []
    assert result.warnings == []
    assert result.report_path is None
    result.raise_for_failures()  # nothing to raise
    assert result.as_snapshot_dict() == {"success": True, "warnings": []}


@pytest.mark.parametrize(("table", "column", "rule", "bad_sql", "bad_rows"), RULE_CASES)
def test_each_rule_counts_its_bad_rows(with_bad_rows, table, column, rule, bad_sql, bad_rows):
    result = _validate(with_bad_rows(bad_sql))

    assert not result.success
    assert [(f["table"], f["column"], f["rule"], f["bad_rows"]) for f in result.failures] == [
        (table, column, rule, bad_rows)
    ]
    expected_message = f"{table}.{column}: {bad_rows} rows violate rule '{rule}'"
    assert result.failures[0]["message"] == expected_message
    with pytest.raises(DataValidationError) as raised:
        result.raise_for_failures()
    assert expected_message in str(raised.value)
    assert "2026-11-22T09:00:00Z" in str(raised.value)
    assert raised.value.failures == result.failures


def test_a_passing_period_fetches_no_samples_and_no_duplicate_counts(shared_clean_db):
    # The screening pass (one SQL expectation per table: every rule as a predicate, uniqueness as
    # count(DISTINCT id) < count(id)) settles a clean period: no per-rule expectation, no sample of
    # unexpected values, no window function counting duplicated rows.
    with _statements() as sent:
        result = _validate(shared_clean_db, services=["api", "web"])

    assert result.success and result.warnings == []
    assert [s for s in sent if SAMPLE_QUERY in s or WINDOW_COUNT in s] == []
    per_rule = [s for s in sent if "unexpected_count" in s and any(f"FROM {t}" in s for t in SOURCE_TABLES)]
    assert per_rule == []
    ids = {"customers": "customer_id", "subscriptions": "subscription_id", "leads": "lead_id",
           "nps_responses": "response_id", "usage_events": "event_id", "ai_requests": "request_id"}
    for table, column in ids.items():
        screening = [s for s in sent if f"count(DISTINCT {column}) < count({column})" in s]
        # GX's UnexpectedRowsExpectation: the rows (at most 200), then their count
        assert len(screening) == 2, (table, screening)
        assert all(f"FROM {table}" in s for s in screening)
    # the windows are in the SQL: e.g. ai_requests' period, usage_events' 14 days
    assert any("requested_at >= '2026-11-15 09:00:00+00:00' AND requested_at < '2026-11-22 09:00:00+00:00'" in s
               for s in sent)
    assert any("occurred_at >= '2026-11-08 09:00:00+00:00'" in s for s in sent)


def test_screening_sql_has_a_predicate_for_every_kind_of_check():
    from include.investor_metrics.validation.runner import Check, _screening_query

    checks = [
        Check("t", "id", "id unique", "ExpectColumnValuesToBeUnique", {"column": "id"}),
        Check("t", "a", "a not null", "ExpectColumnValuesToNotBeNull", {"column": "a"}),
        Check("t", "b", "b in set", "ExpectColumnValuesToBeInSet", {"column": "b", "value_set": ["x", "it's"]}),
        Check("t", "c", "c range", "ExpectColumnValuesToBeBetween", {"column": "c", "min_value": 0, "max_value": 10}),
        Check("t", "d", "d > e", "ExpectColumnPairValuesAToBeGreaterThanB",
              {"column_A": "d", "column_B": "e", "or_equal": False}),
        Check("t", "f", "f >= g", "ExpectColumnPairValuesAToBeGreaterThanB",
              {"column_A": "f", "column_B": "g", "or_equal": True}),
    ]
    sql = _screening_query(checks, "ts < '2026-11-22 09:00:00+00:00'")
    assert sql == (
        "SELECT s.* FROM (SELECT count(*) FILTER (WHERE a IS NULL OR b NOT IN ('x', 'it''s') OR c < 0 OR c > 10"
        " OR NOT (d > e) OR NOT (f >= g)) AS bad_rows, count(DISTINCT id) < count(id) AS duplicate_ids_0"
        " FROM {batch} WHERE ts < '2026-11-22 09:00:00+00:00') AS s WHERE s.bad_rows > 0 OR s.duplicate_ids_0"
    )
    with pytest.raises(ValueError, match="no screening SQL for ExpectColumnValuesToMatchRegex"):
        _screening_query([Check("t", "a", "r", "ExpectColumnValuesToMatchRegex", {"column": "a"})], None)


def test_a_duplicated_id_is_counted_exactly_and_only_its_table_is_checked_again(with_bad_rows):
    # Three rows share an id (all three count), and two null ids are no duplicates (as GX's
    # ExpectColumnValuesToBeUnique has it; they break "id not null"): the screening pass must
    # agree on the nulls.
    settings = with_bad_rows(
        "INSERT INTO usage_events VALUES (900001, 1, 1, 'login', '2026-11-16Z'), (900001, 2, 2, 'login', '2026-11-17Z'),"
        " (900001, 3, 3, 'login', '2026-11-18Z'), (NULL, 1, 1, 'login', '2026-11-19Z'), (NULL, 2, 2, 'login', '2026-11-20Z')"
    )

    with _statements() as sent:
        result = _validate(settings)

    assert [(f["table"], f["column"], f["rule"], f["bad_rows"]) for f in result.failures] == [
        ("usage_events", "event_id", "id unique", 3), ("usage_events", "event_id", "id not null", 2)
    ]
    assert result.failures[0]["message"] == "usage_events.event_id: 3 rows violate rule 'id unique'"
    # The exact pass ran for usage_events alone: GX's own duplicate count and its samples.
    exact = [s for s in sent if SAMPLE_QUERY in s or WINDOW_COUNT in s]
    assert exact and all("FROM usage_events" in s for s in exact)
    assert any(WINDOW_COUNT in s and "unexpected_count" in s for s in exact)


def test_null_ids_are_no_duplicates_but_break_id_not_null(with_bad_rows):
    settings = with_bad_rows(
        "INSERT INTO usage_events VALUES (NULL, 1, 1, 'login', '2026-11-19Z'), (NULL, 2, 2, 'login', '2026-11-20Z')"
    )

    result = _validate(settings)

    assert [(f["table"], f["column"], f["rule"], f["bad_rows"]) for f in result.failures] == [
        ("usage_events", "event_id", "id not null", 2)
    ]


def test_an_amount_at_the_ceiling_passes(with_bad_rows):
    settings = with_bad_rows(
        "INSERT INTO subscriptions VALUES (900001, 1, 'pro', 'month', 1000000000000, '2026-05-01Z', NULL)"
    )

    assert _validate(settings).success


def test_bad_rows_outside_the_period_windows_do_not_fail_it(with_bad_rows):
    result = _validate(with_bad_rows(OUTSIDE_THE_WINDOWS))

    assert result.success, [f["message"] for f in result.failures]
    assert result.warnings == []


def test_several_broken_rules_are_all_listed(with_bad_rows):
    settings = with_bad_rows(
        "INSERT INTO subscriptions VALUES (900001, 1, 'pro', 'week', 100, '2026-05-01Z', NULL),"
        " (900002, 1, 'pro', NULL, 100, '2026-05-01Z', NULL), (900003, 1, 'pro', 'Month', 100, '2026-05-01Z', NULL);"
        "INSERT INTO ai_requests VALUES (900001, 1, 'openai', 'chat', '2026-11-16Z', -5, false, 'ok', NULL),"
        " (900002, 1, 'openai', 'chat', '2026-11-17Z', NULL, false, 'ok', NULL)"
    )

    result = _validate(settings)

    assert {(f["table"], f["column"], f["bad_rows"]) for f in result.failures} == {
        ("subscriptions", "billing_interval", 3),
        ("ai_requests", "latency_ms", 2),
    }
    with pytest.raises(DataValidationError, match="2 rule") as raised:
        result.raise_for_failures()
    assert "subscriptions.billing_interval: 3 rows" in str(raised.value)
    assert "ai_requests.latency_ms: 2 rows" in str(raised.value)


def test_an_empty_source_table_fails_naming_it(clean_db):
    _execute(clean_db, "DELETE FROM nps_responses")

    result = _validate(clean_db)

    assert not result.success
    assert [(f["table"], f["rule"]) for f in result.failures] == [("nps_responses", "table has rows")]
    with pytest.raises(DataValidationError, match="nps_responses: table has no rows"):
        result.raise_for_failures()


def test_a_missing_source_table_fails_naming_it_and_the_rest_is_still_checked(clean_db):
    _execute(clean_db, "DROP TABLE leads; UPDATE ai_requests SET status = 'lost' WHERE request_id = 400")

    result = _validate(clean_db)

    assert not result.success
    assert [(f["table"], f["rule"], f["bad_rows"]) for f in result.failures] == [
        ("leads", "table exists", None),
        ("ai_requests", "status in (ok, error)", 1),
    ]
    with pytest.raises(DataValidationError, match="leads: table does not exist"):
        result.raise_for_failures()


def test_a_missing_column_fails_naming_table_column_and_expected_type(clean_db):
    _execute(clean_db, "ALTER TABLE ai_requests DROP COLUMN feedback")

    result = _validate(clean_db)

    assert [(f["table"], f["column"], f["rule"], f["message"]) for f in result.failures] == [
        ("ai_requests", "feedback", "column exists", "ai_requests.feedback: column does not exist (expected text)")
    ]


# (table, column, SQL type given to the column, USING expression, what the message says was expected)
COLUMN_TYPE_CASES = [
    # a timestamp without time zone would be read in the session's zone: every window shifted
    ("ai_requests", "requested_at", "timestamp without time zone", "requested_at AT TIME ZONE 'UTC'",
     "timestamp with time zone (timestamptz)"),
    ("customers", "created_at", "date", "created_at::date", "timestamp with time zone (timestamptz)"),
    ("subscriptions", "amount_cents", "numeric", "amount_cents", "an integer type (bigint, cents)"),
    ("subscriptions", "amount_cents", "double precision", "amount_cents", "an integer type (bigint, cents)"),
    ("leads", "lead_id", "text", "lead_id::text", "an integer type (bigint)"),
    ("subscriptions", "billing_interval", "integer", "length(billing_interval)", "text"),
    ("nps_responses", "score", "bigint", "score", "smallint or integer"),
    ("ai_requests", "latency_ms", "real", "latency_ms", "smallint or integer"),
    ("ai_requests", "cache_hit", "text", "cache_hit::text", "boolean"),
]


@pytest.mark.parametrize(("table", "column", "sql_type", "using", "expected"), COLUMN_TYPE_CASES,
                         ids=[f"{case[0]}.{case[1]}:{case[2]}" for case in COLUMN_TYPE_CASES])
def test_a_column_of_an_incompatible_type_fails_naming_expected_and_found(
    clean_db, table, column, sql_type, using, expected
):
    _execute(clean_db, f"ALTER TABLE {table} ALTER COLUMN {column} TYPE {sql_type} USING {using}")
    # a bad row in another table, which must still be found
    _execute(clean_db, "UPDATE nps_responses SET score = 11 WHERE response_id = 200" if table != "nps_responses"
             else "UPDATE ai_requests SET status = 'lost' WHERE request_id = 400")

    result = _validate(clean_db)

    message = f"{table}.{column}: column type is {sql_type}, expected {expected}"
    assert [(f["table"], f["column"], f["rule"], f["message"]) for f in result.failures][0] == (
        table, column, "column type", message)
    # the other tables are still checked (the table with the bad type is not: its rules prove nothing)
    others = [(f["table"], f["rule"]) for f in result.failures[1:]]
    assert others == ([("nps_responses", "score between 0 and 10")] if table != "nps_responses"
                      else [("ai_requests", "status in (ok, error)")])
    with pytest.raises(DataValidationError, match=re.escape(message)):
        result.raise_for_failures()


def test_the_column_types_are_checked_before_any_row(clean_db):
    _execute(clean_db, "ALTER TABLE usage_events ALTER COLUMN occurred_at TYPE timestamp USING occurred_at AT TIME ZONE 'UTC'")

    with _statements() as sent:
        result = _validate(clean_db)

    assert [(f["table"], f["column"], f["rule"]) for f in result.failures] == [
        ("usage_events", "occurred_at", "column type")]
    first_gx = next(i for i, statement in enumerate(sent) if "FROM customers" in statement)
    assert any("information_schema.columns" in statement for statement in sent[:first_gx])
    assert not any("FROM usage_events" in statement for statement in sent)


def test_a_table_without_rows_in_the_period_is_a_warning(clean_db):
    # AI requests exist, but none in the period: a thin-history week still gets its snapshot.
    _execute(clean_db, "UPDATE ai_requests SET requested_at = requested_at - interval '30 days'")

    result = _validate(clean_db)

    assert result.success
    assert [(w["table"], w["rule"]) for w in result.warnings] == [("ai_requests", "rows in the period's window")]
    assert result.as_snapshot_dict() == {"success": True, "warnings": [result.warnings[0]["message"]]}
    assert "ai_requests" in result.warnings[0]["message"]
    result.raise_for_failures()


def test_health_check_coverage_below_90_percent_is_a_warning_naming_the_service(clean_db):
    # web misses its first 18 hours: 1800 of 2016 rounds = 89.29 %; api is complete.
    _execute(
        clean_db,
        "DELETE FROM investor_metrics.service_health_checks "
        "WHERE service = 'web' AND checked_at < '2026-11-16T03:00:00Z'",
    )

    result = _validate(clean_db)

    assert result.success
    assert [(w["table"], w.get("service"), w.get("coverage_pct")) for w in result.warnings] == [
        (HEALTH_TABLE, "web", 89.29)
    ]
    assert "'web'" in result.warnings[0]["message"] and "89.29%" in result.warnings[0]["message"]

    # A configured service without any check in the period: 0 % coverage.
    configured = _validate(clean_db, services=["api", "web", "mail"])
    assert sorted((w["service"], w["coverage_pct"]) for w in configured.warnings) == [("mail", 0.0), ("web", 89.29)]


def test_no_health_checks_at_all_is_a_warning(clean_db):
    _execute(clean_db, "DELETE FROM investor_metrics.service_health_checks")

    result = _validate(clean_db)

    assert result.success
    assert [(w["table"], w["rule"]) for w in result.warnings] == [(HEALTH_TABLE, "rows in the period's window")]


def test_a_missing_health_check_table_is_only_a_warning(clean_db):
    _execute(clean_db, "DROP SCHEMA investor_metrics CASCADE")

    result = _validate(clean_db, services=["api"])

    assert result.success
    assert [(w["table"], w["rule"]) for w in result.warnings] == [(HEALTH_TABLE, "table exists")]


def test_report_dir_gets_the_data_docs_of_the_period(shared_clean_db, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # GX must leave nothing in the working directory
    reports = tmp_path / "reports"

    first = _validate(shared_clean_db, report_dir=reports)
    again = _validate(shared_clean_db, report_dir=str(reports))

    index = reports / "2026-11-22_09-00-00" / "index.html"
    assert first.report_path == again.report_path == str(index)
    assert index.is_file()
    html = index.read_text()
    for table in SOURCE_TABLES:
        assert table in html
    assert "postgresql" not in html  # no connection string in the report
    # Only the period's folder: no build leftovers, no GX project files.
    assert [p.name for p in reports.iterdir()] == ["2026-11-22_09-00-00"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["reports"]
    # A rerun replaces the period's report: one validation run in it.
    runs = {p.parent.name for p in Path(index.parent, "validations").rglob("*.html")}
    assert len(runs) == 1


def test_report_of_a_failing_period_has_one_result_per_asset_with_the_counts(with_bad_rows, tmp_path):
    settings = with_bad_rows(
        "INSERT INTO usage_events VALUES (900001, 1, 1, 'login', '2026-11-16Z'), (900001, 2, 2, 'login', '2026-11-17Z')"
    )

    result = _validate(settings, report_dir=tmp_path)

    assert not result.success
    validations = Path(result.report_path).parent / "validations"
    pages = {p.relative_to(validations).parts[0]: p for p in validations.rglob("*.html")}
    # The exact pass of usage_events replaced its screening result: one result per asset.
    assert sorted(pages) == sorted([*SOURCE_TABLES, "source_tables", "service_health_checks",
                                    "service_health_coverage"])
    assert len(list(validations.rglob("*.html"))) == len(pages)
    assert "2 unexpected values found" in pages["usage_events"].read_text()


def test_data_docs_templates_are_compiled_once_into_the_bytecode_cache(shared_clean_db, tmp_path, monkeypatch):
    from include.investor_metrics.validation import data_docs as gx_docs

    cache = tmp_path / "jinja"
    monkeypatch.setenv(gx_docs.CACHE_DIR_ENV, str(cache))
    monkeypatch.setattr(gx_docs, "_cache", None)
    monkeypatch.setattr(gx_docs, "_cache_failed", False)

    first = _validate(shared_clean_db, report_dir=tmp_path / "reports")

    compiled = sorted(p.name for p in cache.iterdir())
    assert len(compiled) > 10  # the page, index and component templates GX renders
    assert all(name.endswith(".cache") for name in compiled)  # no half-written temporary file left
    stamps = {p.name: p.stat().st_mtime_ns for p in cache.iterdir()}
    second = _validate(shared_clean_db, report_dir=tmp_path / "reports")
    # the second report loaded every template from the cache: nothing compiled or written again
    assert {p.name: p.stat().st_mtime_ns for p in cache.iterdir()} == stamps
    assert first.report_path == second.report_path
    html = Path(second.report_path).read_text()
    for table in SOURCE_TABLES:
        assert table in html


def test_data_docs_without_a_usable_cache_directory_are_still_written(shared_clean_db, tmp_path, monkeypatch, caplog):
    from include.investor_metrics.validation import data_docs as gx_docs

    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("")
    monkeypatch.setenv(gx_docs.CACHE_DIR_ENV, str(not_a_dir / "jinja"))
    monkeypatch.setattr(gx_docs, "_cache", None)
    monkeypatch.setattr(gx_docs, "_cache_failed", False)

    result = _validate(shared_clean_db, report_dir=tmp_path / "reports")

    assert Path(result.report_path).is_file()
    assert "no Jinja bytecode cache" in caplog.text


def test_the_data_docs_are_not_world_readable(shared_clean_db, tmp_path):
    import os
    import stat

    reports = tmp_path / "reports"
    old_umask = os.umask(0o022)  # the usual umask: GX alone would write 0755 folders, 0644 files
    try:
        result = _validate(shared_clean_db, report_dir=reports)
    finally:
        os.umask(old_umask)

    modes = {Path(folder): stat.S_IMODE(os.stat(folder).st_mode) for folder, _d, _f in os.walk(reports)}
    files = {Path(folder, name): stat.S_IMODE(os.stat(Path(folder, name)).st_mode)
             for folder, _d, names in os.walk(reports) for name in names}
    assert Path(result.report_path) in files and len(files) > 10
    assert set(modes.values()) == {0o750}, modes
    assert set(files.values()) == {0o640}, {p: oct(m) for p, m in files.items() if m != 0o640}


def test_require_source_schema_for_a_step_that_reads_before_the_validation(clean_db):
    from include.investor_metrics.validation.runner import require_source_schema

    url = clean_db.sqlalchemy_url()
    require_source_schema(url)  # the contract's schema: nothing raised
    _execute(clean_db, "DROP TABLE leads; ALTER TABLE ai_requests ALTER COLUMN requested_at TYPE timestamp")

    with pytest.raises(DataValidationError) as raised:
        require_source_schema(url, period=PERIOD)
    assert [(f["table"], f["column"], f["rule"]) for f in raised.value.failures] == [
        ("leads", None, "table exists"), ("ai_requests", "requested_at", "column type")]
    assert "leads: table does not exist" in str(raised.value)
    assert ("ai_requests.requested_at: column type is timestamp without time zone, expected timestamp with time "
            "zone (timestamptz)") in str(raised.value)
    require_source_schema(url, ("customers", "subscriptions"))  # only the tables a step reads
