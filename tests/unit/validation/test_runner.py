"""The validation step (include/investor_metrics/validation/runner.py) against a real PostgreSQL:
a clean period passes, an empty source table fails, and the warnings (no row in a window,
health-check coverage) leave the period passing.
"""

from __future__ import annotations

import pytest

from include.investor_metrics.contract import HEALTH_TABLE
from include.investor_metrics.validation.runner import DataValidationError, validate_period
from tests.unit.validation import clean_dataset
from tests.unit.validation.clean_dataset import PERIOD, _execute, _validate

# the clean dataset's fixtures (assigned, not imported: a test's argument names them)
clean_db = clean_dataset.clean_db
shared_clean_db = clean_dataset.shared_clean_db


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


def test_an_empty_source_table_fails_naming_it(clean_db):
    _execute(clean_db, "DELETE FROM nps_responses")

    result = _validate(clean_db)

    assert not result.success
    assert [(f["table"], f["rule"]) for f in result.failures] == [("nps_responses", "table has rows")]
    with pytest.raises(DataValidationError, match="nps_responses: table has no rows"):
        result.raise_for_failures()


def test_a_table_without_rows_in_the_period_is_a_warning(clean_db):
    # AI requests exist, but none in the period: a thin-history week still gets its snapshot.
    _execute(clean_db, "UPDATE ai_requests SET requested_at = requested_at - interval '30 days'")

    result = _validate(clean_db)

    assert result.success
    assert [(w["table"], w["rule"]) for w in result.warnings] == [
        ("ai_requests", "rows in the period's window")]
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
    assert sorted((w["service"], w["coverage_pct"]) for w in configured.warnings) == [
        ("mail", 0.0), ("web", 89.29)]


def test_no_health_checks_at_all_is_a_warning(clean_db):
    _execute(clean_db, "DELETE FROM investor_metrics.service_health_checks")

    result = _validate(clean_db)

    assert result.success
    assert [(w["table"], w["rule"]) for w in result.warnings] == [
        (HEALTH_TABLE, "rows in the period's window")]


def test_a_missing_health_check_table_is_only_a_warning(clean_db):
    _execute(clean_db, "DROP SCHEMA investor_metrics CASCADE")

    result = _validate(clean_db, services=["api"])

    assert result.success
    assert [(w["table"], w["rule"]) for w in result.warnings] == [(HEALTH_TABLE, "table exists")]
