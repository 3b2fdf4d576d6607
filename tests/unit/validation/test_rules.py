"""The rules of SPEC section 3 (include/investor_metrics/validation/rules.py) end to end, against a
real PostgreSQL: each rule case adds exactly N bad rows to the clean dataset
(tests/unit/validation/clean_dataset.py) and checks that the validation fails on that rule with
bad_rows == N; bad rows outside the period's windows do not count.
"""

from __future__ import annotations

import pytest

from include.investor_metrics.validation.runner import DataValidationError
from tests.unit.validation import clean_dataset
from tests.unit.validation.clean_dataset import _validate

# the clean dataset's fixtures (assigned, not imported: a test's argument names them)
shared_clean_db = clean_dataset.shared_clean_db
with_bad_rows = clean_dataset.with_bad_rows


# Each case: table, column, rule, SQL adding the bad rows, number of bad rows.
RULE_CASES = [
    pytest.param(
        "customers", "customer_id", "id unique",
        "INSERT INTO customers VALUES (900001, 'Dup A', 'pro', '2026-05-01Z'),"
        " (900001, 'Dup B', 'pro', '2026-05-01Z')",
        2, id="customers.id_unique",
    ),
    pytest.param(
        "customers", "name", "not null",
        "INSERT INTO customers VALUES (900001, NULL, 'pro', '2026-05-01Z'),"
        " (900002, NULL, 'pro', '2026-05-01Z')",
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
        " (900002, 1, 'pro', NULL, 100, '2026-05-01Z', NULL),"
        " (900003, 1, 'pro', 'Month', 100, '2026-05-01Z', NULL)",
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
        "INSERT INTO subscriptions VALUES"
        " (900001, 1, 'pro', 'month', 9223372036854775807, '2026-05-01Z', NULL),"
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
        "INSERT INTO leads VALUES (900001, 'web', '2026-11-02Z', NULL, NULL),"
        " (900001, 'ads', '2026-11-03Z', NULL, NULL)",
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
        "INSERT INTO usage_events VALUES (900001, 1, 1, 'login', '2026-11-16Z'),"
        " (900001, 2, 2, 'login', '2026-11-17Z')",
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
        "INSERT INTO ai_requests VALUES"
        " (900001, 1, 'openai', 'chat', '2026-11-15T09:00:00Z', 5, false, 'timeout', NULL),"
        " (900002, 1, 'openai', 'chat', '2026-11-17Z', 5, false, NULL, NULL)",
        2, id="ai_requests.status_in_set",
    ),
    pytest.param(
        "ai_requests", "feedback", "feedback null or in (correct, incorrect)",
        "INSERT INTO ai_requests VALUES"
        " (900001, 1, 'openai', 'chat', '2026-11-16Z', 5, false, 'ok', 'maybe'),"
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
         "INSERT INTO leads VALUES (NULL, 'web', '2026-11-02Z', NULL, NULL),"
         " (NULL, 'ads', '2026-11-03Z', NULL, NULL)"),
        ("nps_responses", "response_id",
         "INSERT INTO nps_responses VALUES (NULL, 1, 8, '2026-11-01Z'), (NULL, 2, 7, '2026-11-02Z')"),
        ("usage_events", "event_id",
         "INSERT INTO usage_events VALUES (NULL, 1, 1, 'login', '2026-11-16Z'),"
         " (NULL, 2, 2, 'login', '2026-11-17Z')"),
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
INSERT INTO nps_responses VALUES (900001, 1, 42, '2026-08-24T08:59:59Z'),
                                 (900002, 1, 42, '2026-11-22T09:00:00Z');
INSERT INTO usage_events VALUES (900001, NULL, 1, 'login', '2026-11-08T08:59:59Z'),
                                (900002, NULL, 1, 'login', '2026-11-22T09:00:00Z');
INSERT INTO ai_requests VALUES (900001, 1, 'x', 'batch', '2026-11-15T08:59:59Z', -1, false, 'bogus', 'meh'),
                               (900002, 1, 'x', 'batch', '2026-11-22T09:00:00Z', -1, false, 'bogus', 'meh');
"""


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


def test_null_ids_are_no_duplicates_but_break_id_not_null(with_bad_rows):
    settings = with_bad_rows(
        "INSERT INTO usage_events VALUES (NULL, 1, 1, 'login', '2026-11-19Z'),"
        " (NULL, 2, 2, 'login', '2026-11-20Z')"
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
        " (900002, 1, 'pro', NULL, 100, '2026-05-01Z', NULL),"
        " (900003, 1, 'pro', 'Month', 100, '2026-05-01Z', NULL);"
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


def test_what_the_depth_figures_read_is_checked_before_they_are_computed():
    """The depth SQL of SPEC 4b (``sql/depth/``) reads subscriptions.plan and customers.name besides
    what section 4 reads: both are in the schema check (a text column), customers.name is also
    not null on every row; subscriptions.plan may be null (SPEC 3 has no rule: its MRR is listed
    under the plan ``unknown``). The depth queries read no subscription the period's window leaves
    out: every instant they look at (start, end, end − 1 month, end − 12 months, the cohorts'
    checkpoints, the first paid instant of a cohort member) is before ``end``, the window's bound."""
    from pathlib import Path

    from include.investor_metrics.validation.rules import SOURCE_COLUMNS, WINDOWS, row_checks

    depth_sql = " ".join(p.read_text() for p in sorted(
        (Path(__file__).parents[3] / "include/investor_metrics/sql/depth").glob("*.sql")))
    for table, column in [("subscriptions", "plan"), ("customers", "name"), ("subscriptions", "amount_cents"),
                          ("subscriptions", "billing_interval"), ("subscriptions", "started_at"),
                          ("subscriptions", "ended_at")]:
        assert column in depth_sql
        assert SOURCE_COLUMNS[table][column] in ("text", "money", "timestamptz")
    assert WINDOWS["subscriptions"] == ("started_at", None, "end") and WINDOWS["customers"] is None
    rules = {(c.table, c.column, c.rule) for checks in row_checks({"start": None, "end": None}).values()
             for c in checks}
    assert ("customers", "name", "not null") in rules
    assert not any(t == "subscriptions" and c == "plan" for t, c, _r in rules)
