"""The source schema checked before any row (include/investor_metrics/validation/schema.py, and
``runner.require_source_schema``): missing tables and columns, incompatible types.
"""

from __future__ import annotations

import re

import pytest

from include.investor_metrics.validation.runner import DataValidationError
from tests.unit.validation import clean_dataset
from tests.unit.validation.clean_dataset import PERIOD, _execute, _statements, _validate

# the clean dataset's fixtures (assigned, not imported: a test's argument names them)
clean_db = clean_dataset.clean_db


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
        ("ai_requests", "feedback", "column exists",
         "ai_requests.feedback: column does not exist (expected text)")
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
    _execute(clean_db,
             "UPDATE nps_responses SET score = 11 WHERE response_id = 200" if table != "nps_responses"
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
    _execute(clean_db, "ALTER TABLE usage_events ALTER COLUMN occurred_at TYPE timestamp"
                       " USING occurred_at AT TIME ZONE 'UTC'")

    with _statements() as sent:
        result = _validate(clean_db)

    assert [(f["table"], f["column"], f["rule"]) for f in result.failures] == [
        ("usage_events", "occurred_at", "column type")]
    first_gx = next(i for i, statement in enumerate(sent) if "FROM customers" in statement)
    assert any("information_schema.columns" in statement for statement in sent[:first_gx])
    assert not any("FROM usage_events" in statement for statement in sent)


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
    assert ("ai_requests.requested_at: column type is timestamp without time zone, expected timestamp"
            " with time zone (timestamptz)") in str(raised.value)
    require_source_schema(url, ("customers", "subscriptions"))  # only the tables a step reads
