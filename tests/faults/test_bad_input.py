"""Bad input, class by class (issue 13; docs/reliability.md, "Bad input"): each refused with a
named error before anything is computed. Real PostgreSQL, the validation step as the DAG runs it
(``validate_period``); that the DAG then publishes nothing and e-mails only the data team is
tests/dags/test_weekly_dag.py::test_bad_data_stops_the_run_at_validation. Every message excerpt below
is quoted in the docs' table, which a test here keeps honest.
"""

from __future__ import annotations

import re

import pytest

from include.investor_metrics.validation.runner import DataValidationError, validate_period
from tests.conftest import PROJECT_ROOT
from tests.unit.validation.clean_dataset import PERIOD, REMOVE_BAD_ROWS, _execute, _load_clean_dataset

BIGINT_MAX = 2**63 - 1

# (class, SQL breaking the clean dataset with one bad row inside the period's windows, excerpt)
ROW_CLASSES = [
    ("negative amount_cents",
     "INSERT INTO subscriptions VALUES (900001, 1, 'pro', 'month', -100, '2026-05-01Z', NULL)",
     "subscriptions.amount_cents: 1 row violates rule 'amount >= 0'"),
    ("huge amount_cents (bigint maximum)",
     f"INSERT INTO subscriptions VALUES (900001, 1, 'pro', 'month', {BIGINT_MAX}, '2026-05-01Z', NULL)",
     "subscriptions.amount_cents: 1 row violates rule 'amount <= 1000000000000'"),
    ("unknown billing_interval",
     "INSERT INTO subscriptions VALUES (900001, 1, 'pro', 'week', 100, '2026-05-01Z', NULL)",
     "subscriptions.billing_interval: 1 row violates rule 'interval in (month, year)'"),
    ("NPS score 11",
     "INSERT INTO nps_responses VALUES (900001, 1, 11, '2026-11-01Z')",
     "nps_responses.score: 1 row violates rule 'score between 0 and 10'"),
    ("bad AI request status",
     "INSERT INTO ai_requests VALUES (900001, 1, 'openai', 'chat', '2026-11-16Z', 5, false, 'timeout', NULL)",
     "ai_requests.status: 1 row violates rule 'status in (ok, error)'"),
    ("duplicate id in the period",
     "INSERT INTO ai_requests VALUES (900001, 1, 'openai', 'chat', '2026-11-18Z', 5, false, 'ok', NULL),"
     " (900001, 2, 'openai', 'chat', '2026-11-19Z', 5, false, 'ok', NULL)",
     "ai_requests.request_id: 2 rows violate rule 'id unique'"),
    ("NULL id",
     "INSERT INTO usage_events VALUES (NULL, 1, 1, 'login', '2026-11-16Z')",
     "usage_events.event_id: 1 row violates rule 'id not null'"),
    ("converted_at < created_at",
     "INSERT INTO leads VALUES (900001, 'web', '2026-11-05Z', '2026-11-01Z', 2)",
     "leads.converted_at: 1 row violates rule 'converted_at null or >= created_at'"),
    ("ended_at <= started_at",
     "INSERT INTO subscriptions VALUES (900001, 1, 'pro', 'month', 100, '2026-05-01Z', '2026-05-01Z')",
     "subscriptions.ended_at: 1 row violates rule 'ended_at null or > started_at'"),
    ("negative latency",
     "INSERT INTO ai_requests VALUES (900001, 1, 'openai', 'chat', '2026-11-16Z', -5, false, 'ok', NULL)",
     "ai_requests.latency_ms: 1 row violates rule 'latency >= 0'"),
    ("subscription of an unknown customer",
     "INSERT INTO subscriptions VALUES (900001, 424242, 'pro', 'month', 100, '2026-05-01Z', NULL)",
     "subscriptions.customer_id: 1 row violates rule 'customer exists'"),
]

# (class, SQL changing the schema, excerpt)
SCHEMA_CLASSES = [
    ("timestamp instead of timestamptz",
     "ALTER TABLE ai_requests ALTER COLUMN requested_at TYPE timestamp USING requested_at AT TIME ZONE 'UTC'",
     "ai_requests.requested_at: column type is timestamp without time zone, "
     "expected timestamp with time zone"),
    ("money not an integer",
     "ALTER TABLE subscriptions ALTER COLUMN amount_cents TYPE numeric",
     "subscriptions.amount_cents: column type is numeric, expected an integer type"),
    ("a missing column",
     "ALTER TABLE ai_requests DROP COLUMN feedback",
     "ai_requests.feedback: column does not exist (expected text)"),
    ("a missing table",
     "DROP TABLE leads",
     "leads: table does not exist"),
    ("an empty table",
     "DELETE FROM nps_responses",
     "nps_responses: table has no rows at all"),
]


@pytest.fixture(scope="module")
def clean_source(pg_server):
    from tests.conftest import temporary_database

    with temporary_database(pg_server, "cfx_bad_input") as settings:
        _load_clean_dataset(settings)
        yield settings


def _refusal(settings) -> DataValidationError:
    result = validate_period(settings.sqlalchemy_url(), PERIOD, services=None, report_dir=None)
    with pytest.raises(DataValidationError) as raised:
        result.raise_for_failures()
    return raised.value


@pytest.mark.parametrize(("what", "sql", "excerpt"), ROW_CLASSES, ids=[c[0] for c in ROW_CLASSES])
def test_bad_rows_are_refused_by_a_named_rule(clean_source, what, sql, excerpt):
    _execute(clean_source, sql)
    try:
        error = _refusal(clean_source)
    finally:
        _execute(clean_source, REMOVE_BAD_ROWS)
    # the one broken rule, named with table, column and the count, and the period
    assert [f["message"] for f in error.failures] == [excerpt]
    assert str(error).startswith(
        "Data validation failed for period [2026-11-15T09:00:00Z, 2026-11-22T09:00:00Z): 1 rule(s) broken")


@pytest.mark.parametrize(("what", "sql", "excerpt"), SCHEMA_CLASSES, ids=[c[0] for c in SCHEMA_CLASSES])
def test_a_source_schema_off_the_contract_is_refused_naming_it(fresh_database, what, sql, excerpt):
    _load_clean_dataset(fresh_database)
    _execute(fresh_database, sql)

    error = _refusal(fresh_database)

    assert excerpt in str(error)
    assert len(error.failures) == 1


def test_a_malformed_timezone_keeps_the_dag_from_loading_naming_the_variable(monkeypatch):
    from airflow.dag_processing.dagbag import DagBag

    monkeypatch.setenv("INVESTOR_TIMEZONE", "Mars/Base")
    bag = DagBag(dag_folder=str(PROJECT_ROOT / "dags" / "investor_metrics.py"))

    assert "investor_metrics" not in bag.dags  # no run is created, nothing computed or published
    [error] = bag.import_errors.values()
    assert "INVESTOR_TIMEZONE 'Mars/Base' is not an IANA time zone name" in error


def test_the_docs_table_quotes_every_class():
    text = (PROJECT_ROOT / "docs" / "reliability.md").read_text()
    section = re.search(r"^## Bad input\n(.*?)(?=^## |\Z)", text, re.S | re.M).group(1)
    for _what, _sql, excerpt in ROW_CLASSES + SCHEMA_CLASSES:
        assert excerpt in section, excerpt


@pytest.mark.parametrize(("task", "sql", "excerpt"), [
    ("extract_business_data", "DROP TABLE leads", "leads: table does not exist"),
    ("extract_ai_metrics", "ALTER TABLE ai_requests DROP COLUMN feedback",
     "ai_requests.feedback: column does not exist (expected text)"),
])
def test_an_extract_refuses_a_source_off_the_contract_at_once(fresh_database, tmp_path, monkeypatch,
                                                               task, sql, excerpt):
    """The extracts read the source before validate_data does: a missing table or column fails
    them at once (AirflowFailException: no retry) with the validation's message, not PostgreSQL's
    own error after 3 retries; nothing is staged."""
    import os

    from airflow.sdk.exceptions import AirflowFailException

    from include.investor_metrics.weekly import tasks as pipeline
    from tests.faults.test_publish_faults import END, make_context

    _load_clean_dataset(fresh_database)
    _execute(fresh_database, sql)
    for key, value in {"DB_HOST": fresh_database.host, "DB_PORT": str(fresh_database.port),
                       "DB_NAME": fresh_database.dbname, "DB_USER": fresh_database.user or "",
                       "INVESTOR_STAGING_DIR": str(tmp_path / "staging"), "INVESTOR_TIMEZONE": "UTC"}.items():
        monkeypatch.setenv(key, value)
    for key in [k for k in os.environ if k.startswith("AIRFLOW_CONN_")]:
        monkeypatch.delenv(key)
    assert END == PERIOD.end

    with pytest.raises(AirflowFailException) as raised:
        getattr(pipeline, task)(make_context("scheduled__bad_schema"))

    assert excerpt in str(raised.value)
    assert not list((tmp_path / "staging").rglob("*.parquet"))
