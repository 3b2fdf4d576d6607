"""The screening pass (include/investor_metrics/validation/screening.py): a passing period is
settled by one SQL expectation per table, and only a table that fails gets the exact pass.
"""

from __future__ import annotations

import pytest

from include.investor_metrics.validation.rules import SOURCE_TABLES
from tests.unit.validation import clean_dataset
from tests.unit.validation.clean_dataset import SAMPLE_QUERY, WINDOW_COUNT, _statements, _validate

# the clean dataset's fixtures (assigned, not imported: a test's argument names them)
shared_clean_db = clean_dataset.shared_clean_db
with_bad_rows = clean_dataset.with_bad_rows


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
    ai_window = "requested_at >= '2026-11-15 09:00:00+00:00' AND requested_at < '2026-11-22 09:00:00+00:00'"
    assert any(ai_window in s for s in sent)
    assert any("occurred_at >= '2026-11-08 09:00:00+00:00'" in s for s in sent)


def test_screening_sql_has_a_predicate_for_every_kind_of_check():
    from include.investor_metrics.validation.rules import Check
    from include.investor_metrics.validation.screening import screening_query

    checks = [
        Check("t", "id", "id unique", "ExpectColumnValuesToBeUnique", {"column": "id"}),
        Check("t", "a", "a not null", "ExpectColumnValuesToNotBeNull", {"column": "a"}),
        Check("t", "b", "b in set", "ExpectColumnValuesToBeInSet",
              {"column": "b", "value_set": ["x", "it's"]}),
        Check("t", "c", "c range", "ExpectColumnValuesToBeBetween",
              {"column": "c", "min_value": 0, "max_value": 10}),
        Check("t", "d", "d > e", "ExpectColumnPairValuesAToBeGreaterThanB",
              {"column_A": "d", "column_B": "e", "or_equal": False}),
        Check("t", "f", "f >= g", "ExpectColumnPairValuesAToBeGreaterThanB",
              {"column_A": "f", "column_B": "g", "or_equal": True}),
    ]
    sql = screening_query(checks, "ts < '2026-11-22 09:00:00+00:00'")
    assert sql == (
        "SELECT s.* FROM (SELECT count(*) FILTER (WHERE a IS NULL OR b NOT IN ('x', 'it''s') OR c < 0"
        " OR c > 10 OR NOT (d > e) OR NOT (f >= g)) AS bad_rows,"
        " count(DISTINCT id) < count(id) AS duplicate_ids_0"
        " FROM {batch} WHERE ts < '2026-11-22 09:00:00+00:00') AS s WHERE s.bad_rows > 0 OR s.duplicate_ids_0"
    )
    with pytest.raises(ValueError, match="no screening SQL for ExpectColumnValuesToMatchRegex"):
        screening_query([Check("t", "a", "r", "ExpectColumnValuesToMatchRegex", {"column": "a"})], None)


def test_a_duplicated_id_is_counted_exactly_and_only_its_table_is_checked_again(with_bad_rows):
    # Three rows share an id (all three count), and two null ids are no duplicates (as GX's
    # ExpectColumnValuesToBeUnique has it; they break "id not null"): the screening pass must
    # agree on the nulls.
    settings = with_bad_rows(
        "INSERT INTO usage_events VALUES (900001, 1, 1, 'login', '2026-11-16Z'),"
        " (900001, 2, 2, 'login', '2026-11-17Z'),"
        " (900001, 3, 3, 'login', '2026-11-18Z'), (NULL, 1, 1, 'login', '2026-11-19Z'),"
        " (NULL, 2, 2, 'login', '2026-11-20Z')"
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
