"""The rules of SPEC section 3 as data: the source tables, their columns and types, the rows a
period uses (``WINDOWS``) and every per-row rule as one or two :class:`Check` (a GX expectation
class and its arguments), plus the table-level checks (rows in the window, probe coverage).

Nothing here runs GX. A rule on a column that must not be null counts a null as a bad row too:
GX's set and range expectations skip nulls, so such a rule is one set/range check plus one
not-null check, whose (disjoint) counts the findings add up.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from include.investor_metrics.contract import HEALTH_TABLE, PROBE_INTERVAL_SECONDS
from include.investor_metrics.period import Period, to_utc
from include.investor_metrics.validation.sql_text import asset_query

SOURCE_TABLES = ("customers", "subscriptions", "leads", "nps_responses", "usage_events", "ai_requests")
MIN_PROBE_COVERAGE_PCT = 90.0

FAILURE = "failure"
WARNING = "warning"

# Rule names that are not per-row rules of section 3.
RULE_TABLE_EXISTS = "table exists"
RULE_COLUMN_EXISTS = "column exists"
RULE_COLUMN_TYPE = "column type"
RULE_TABLE_HAS_ROWS = "table has rows"
RULE_ROWS_IN_WINDOW = "rows in the period's window"
RULE_PROBE_COVERAGE = f"probe coverage >= {MIN_PROBE_COVERAGE_PCT:g}%"
UNCOUNTED_RULES = (RULE_TABLE_HAS_ROWS, RULE_ROWS_IN_WINDOW)  # their findings carry no count


# --- the columns and their types (checked before any row) -------------------------------------

# A column's kind → the information_schema data types that are compatible with it, and how the
# message names what was expected. Timestamps must carry their zone: a ``timestamp without time
# zone`` is read in the session's zone and would shift every window.
COLUMN_KINDS: dict[str, tuple[frozenset[str], str]] = {
    "id": (frozenset({"smallint", "integer", "bigint"}), "an integer type (bigint)"),
    "money": (frozenset({"smallint", "integer", "bigint"}), "an integer type (bigint, cents)"),
    "small integer": (frozenset({"smallint", "integer"}), "smallint or integer"),
    "text": (frozenset({"text", "character varying"}), "text"),
    "timestamptz": (frozenset({"timestamp with time zone"}), "timestamp with time zone (timestamptz)"),
    "boolean": (frozenset({"boolean"}), "boolean"),
}

# SPEC section 3, column by column.
SOURCE_COLUMNS: dict[str, dict[str, str]] = {
    "customers": {"customer_id": "id", "name": "text", "plan": "text", "created_at": "timestamptz"},
    "subscriptions": {
        "subscription_id": "id", "customer_id": "id", "plan": "text", "billing_interval": "text",
        "amount_cents": "money", "started_at": "timestamptz", "ended_at": "timestamptz",
    },
    "leads": {"lead_id": "id", "source": "text", "created_at": "timestamptz", "converted_at": "timestamptz",
              "customer_id": "id"},
    "nps_responses": {"response_id": "id", "customer_id": "id", "score": "small integer",
                      "responded_at": "timestamptz"},
    "usage_events": {"event_id": "id", "customer_id": "id", "user_id": "id", "event_type": "text",
                     "occurred_at": "timestamptz"},
    "ai_requests": {
        "request_id": "id", "customer_id": "id", "provider": "text", "request_type": "text",
        "requested_at": "timestamptz", "latency_ms": "small integer", "cache_hit": "boolean",
        "status": "text", "feedback": "text",
    },
}


# --- the rows a period uses ----------------------------------------------------------------------

# Which rows of each source table a period uses: (timestamp column, from, to), the bounds being
# keys of period_windows(), None = unbounded; half-open [from, to). The extract step's windows.
WINDOWS: dict[str, tuple[str, str | None, str] | None] = {
    "customers": None,  # all rows: the table is small, and any customer may be referenced
    "subscriptions": ("started_at", None, "end"),  # every subscription started before the end
    "leads": ("created_at", "since_28d", "end"),  # lead_conversion_rate
    "nps_responses": ("responded_at", "since_90d", "end"),  # customer_satisfaction
    "usage_events": ("occurred_at", "since", "end"),  # [end - 14 days, end) and the period
    "ai_requests": ("requested_at", "start", "end"),  # the period
}


def period_windows(period: Period) -> dict:
    """The instants the validation assets are bound to (the extract step's windows)."""
    start, end = to_utc(period.start), to_utc(period.end)
    since_14d = period.offset(days=14)
    return {
        "start": start,
        "end": end,
        "since": min(start, since_14d),  # usage: [end - 14 days, end) and [start, end)
        "since_28d": period.offset(days=28),
        "since_90d": period.offset(days=90),
    }


def window_bounds(table: str, windows: Mapping[str, Any]):
    """``table``'s window in the period: (column, from or None, to), or None for all rows."""
    window = WINDOWS[table]
    if window is None:
        return None
    column, lower, upper = window
    return column, (windows[lower] if lower is not None else None), windows[upper]


def expected_probe_rounds(period: Period) -> float:
    """Probe rounds a fully covered service has in the period: its length / 5 minutes."""
    return (to_utc(period.end) - to_utc(period.start)).total_seconds() / PROBE_INTERVAL_SECONDS


# --- the rules ---------------------------------------------------------------------------------

# The largest amount_cents accepted: $10 billion a month for one subscription, beyond any real
# plan. Below it every sum stays exact in int64 at any realistic count of subscriptions, and
# include/investor_metrics/weekly/metrics.py stays exact beyond (Python integers) or refuses a
# figure a JSON number cannot carry to the cent (MoneyRangeError).
MAX_AMOUNT_CENTS = 10**12


@dataclass(frozen=True)
class Check:
    """One rule (or half of one) as one GX expectation on one asset."""

    table: str
    column: str | None
    rule: str
    expectation: str  # a class of great_expectations.expectations
    kwargs: Mapping[str, Any]
    severity: str = FAILURE


def _unique(table: str, column: str) -> list[Check]:
    # GX counts every row whose id occurs more than once (both rows of a duplicated pair); a null
    # id is no duplicate, it breaks "id not null". The screening pass asks count(DISTINCT id) <
    # count(id) instead (nulls left out alike), one aggregate rather than GX's window function.
    return [Check(table, column, "id unique", "ExpectColumnValuesToBeUnique", {"column": column}),
            *_not_null(table, column, "id not null")]


def _not_null(table: str, column: str, rule: str = "not null") -> list[Check]:
    return [Check(table, column, rule, "ExpectColumnValuesToNotBeNull", {"column": column})]


def _in_set(
    table: str, column: str, values: Iterable[str], rule: str, *, nullable: bool = False
) -> list[Check]:
    kwargs = {"column": column, "value_set": list(values)}
    checks = [Check(table, column, rule, "ExpectColumnValuesToBeInSet", kwargs)]
    return checks if nullable else checks + _not_null(table, column, rule)


def _between(table: str, column: str, rule: str, *, min_value=None, max_value=None) -> list[Check]:
    kwargs = {"column": column, "min_value": min_value, "max_value": max_value}
    checks = [Check(table, column, rule, "ExpectColumnValuesToBeBetween", kwargs)]
    return checks + _not_null(table, column, rule)


def _after(table: str, later: str, earlier: str, rule: str, *, or_equal: bool) -> list[Check]:
    kwargs = {
        "column_A": later,
        "column_B": earlier,
        "or_equal": or_equal,
        "ignore_row_if": "either_value_is_missing",  # "null or ..." : a null passes
    }
    return [Check(table, later, rule, "ExpectColumnPairValuesAToBeGreaterThanB", kwargs)]


def _customer_exists(windows: Mapping[str, Any]) -> list[Check]:
    # A SQL expectation takes no row condition: the window is in its query.
    query = asset_query("validation/subscription_customers.sql", windows)
    return [
        Check(
            "subscriptions",
            "customer_id",
            "customer exists",
            "UnexpectedRowsExpectation",
            {"unexpected_rows_query": query, "description": "customer exists in customers"},
        )
    ]


def row_checks(windows: Mapping[str, Any]) -> dict[str, list[Check]]:
    """SPEC section 3, table by table (``windows``: ``period_windows()`` of the period)."""
    return {
        "customers": [
            *_unique("customers", "customer_id"),
            *_not_null("customers", "name"),
            *_not_null("customers", "plan"),
            *_not_null("customers", "created_at"),
        ],
        "subscriptions": [
            *_unique("subscriptions", "subscription_id"),
            *_customer_exists(windows),
            *_in_set("subscriptions", "billing_interval", ("month", "year"), "interval in (month, year)"),
            *_between("subscriptions", "amount_cents", "amount >= 0", min_value=0),
            # nulls are counted by "amount >= 0" already
            Check("subscriptions", "amount_cents", f"amount <= {MAX_AMOUNT_CENTS}",
                  "ExpectColumnValuesToBeBetween", {"column": "amount_cents", "max_value": MAX_AMOUNT_CENTS}),
            *_after("subscriptions", "ended_at", "started_at", "ended_at null or > started_at",
                    or_equal=False),
        ],
        "leads": [
            *_unique("leads", "lead_id"),
            *_after("leads", "converted_at", "created_at", "converted_at null or >= created_at",
                    or_equal=True),
        ],
        "nps_responses": [
            *_unique("nps_responses", "response_id"),
            *_between("nps_responses", "score", "score between 0 and 10", min_value=0, max_value=10),
        ],
        "usage_events": [
            *_unique("usage_events", "event_id"),
            *_not_null("usage_events", "customer_id"),
        ],
        "ai_requests": [
            *_unique("ai_requests", "request_id"),
            *_in_set("ai_requests", "request_type", ("chat", "api"), "request_type in (chat, api)"),
            *_in_set("ai_requests", "status", ("ok", "error"), "status in (ok, error)"),
            *_in_set(
                "ai_requests", "feedback", ("correct", "incorrect"),
                "feedback null or in (correct, incorrect)", nullable=True,
            ),
            *_between("ai_requests", "latency_ms", "latency >= 0", min_value=0),
        ],
    }


# --- the table-level checks ------------------------------------------------------------------------


def rows_in_window(table: str) -> Check:
    kwargs = {"min_value": 1}
    return Check(table, None, RULE_ROWS_IN_WINDOW, "ExpectTableRowCountToBeBetween", kwargs, WARNING)


def has_rows(table: str) -> Check:
    """On the ``source_tables`` query asset: ``table``'s column is true when it has a row."""
    return Check(table, None, RULE_TABLE_HAS_ROWS, "ExpectColumnValuesToBeInSet",
                 {"column": table, "value_set": [True]})


def health_checks_in_period() -> Check:
    kwargs = {"column": "checks", "min_value": 1}
    return Check(HEALTH_TABLE, None, RULE_ROWS_IN_WINDOW, "ExpectColumnValuesToBeBetween", kwargs, WARNING)


def coverage_check() -> Check:
    kwargs = {"column": "coverage_pct", "min_value": MIN_PROBE_COVERAGE_PCT}
    return Check(HEALTH_TABLE, "service", RULE_PROBE_COVERAGE, "ExpectColumnValuesToBeBetween", kwargs,
                 WARNING)
