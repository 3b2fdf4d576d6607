"""The screening suite of an asset: one GX ``UnexpectedRowsExpectation`` whose query, generated
from the table's exact checks, scans the period's window once and returns a row exactly when
some check would find a bad row (docs/adr/two-pass-validation.md).

Each check becomes a predicate with GX's own null handling, so the screening's verdict agrees
with the exact pass's; an unknown expectation class is an error here, never a silent pass.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from include.investor_metrics.period import to_utc
from include.investor_metrics.validation.rules import RULE_ROWS_IN_WINDOW, WARNING, Check, window_bounds
from include.investor_metrics.validation.sql_text import quote, sql_literal

RULE_SCREENING = "no row breaks a rule"  # the screening pass's summary of an asset's rules


def screening_checks(table: str, checks: Sequence[Check], where: str | None) -> list[Check]:
    """The screening suite of an asset whose exact suite is ``checks``: one GX
    ``UnexpectedRowsExpectation`` whose query returns a row exactly when some check of
    ``checks`` would find a bad row (``where``: the SQL condition of the period's window)."""
    rules = ", ".join(dict.fromkeys(check.rule for check in checks))
    kwargs = {"unexpected_rows_query": screening_query(checks, where),
              "description": f"{table}: no row breaks a rule ({rules}); else the exact pass counts them"}
    return [Check(table, None, RULE_SCREENING, "UnexpectedRowsExpectation", kwargs)]


def rows_in_window_screen(table: str, where: str) -> Check:
    """``rules.rows_in_window`` as SQL: a row when the window has none (no row condition to build)."""
    query = f"SELECT 1 AS no_rows WHERE NOT EXISTS (SELECT 1 FROM {{batch}} WHERE {where})"
    kwargs = {"unexpected_rows_query": query, "description": f"{table} has rows in the period's window"}
    return Check(table, None, RULE_ROWS_IN_WINDOW, "UnexpectedRowsExpectation", kwargs, WARNING)


def screening_query(checks: Sequence[Check], where: str | None) -> str:
    """One query, one scan of the window: a row (of counts) when any of ``checks`` fails.

    Each GX expectation's bad rows as a SQL predicate, with GX's null handling: the set, range
    and pair expectations skip nulls (a predicate on null is null, which ``FILTER`` leaves out),
    only the not-null one counts them; an id is unique when ``count(DISTINCT id) = count(id)``
    (nulls left out alike); a SQL expectation's query is asked whether it returns a row.
    tests/unit/validation/test_rules.py breaks every rule and checks that the screening sends it
    to the exact pass.
    """
    bad_row, duplicates, exists = [], [], []
    for check in checks:
        kwargs = check.kwargs
        if check.expectation == "ExpectColumnValuesToNotBeNull":
            bad_row.append(f"{quote(kwargs['column'])} IS NULL")
        elif check.expectation == "ExpectColumnValuesToBeInSet":
            values = ", ".join(sql_literal(value) for value in kwargs["value_set"])
            bad_row.append(f"{quote(kwargs['column'])} NOT IN ({values})")
        elif check.expectation == "ExpectColumnValuesToBeBetween":
            column = quote(kwargs["column"])
            if kwargs.get("min_value") is not None:
                bad_row.append(f"{column} < {sql_literal(kwargs['min_value'])}")
            if kwargs.get("max_value") is not None:
                bad_row.append(f"{column} > {sql_literal(kwargs['max_value'])}")
        elif check.expectation == "ExpectColumnPairValuesAToBeGreaterThanB":
            operator = ">=" if kwargs["or_equal"] else ">"
            bad_row.append(f"NOT ({quote(kwargs['column_A'])} {operator} {quote(kwargs['column_B'])})")
        elif check.expectation == "ExpectColumnValuesToBeUnique":
            column = quote(kwargs["column"])
            duplicates.append(f"count(DISTINCT {column}) < count({column})")
        elif check.expectation == "UnexpectedRowsExpectation":
            exists.append(f"EXISTS ({kwargs['unexpected_rows_query']})")
        else:
            raise ValueError(f"no screening SQL for {check.expectation} ({check.table}: {check.rule})")
    columns = [f"count(*) FILTER (WHERE {' OR '.join(bad_row)}) AS bad_rows"] if bad_row else []
    columns += [f"{condition} AS duplicate_ids_{n}" for n, condition in enumerate(duplicates)]
    columns += [f"{condition} AS unexpected_rows_{n}" for n, condition in enumerate(exists)]
    failing = ["s.bad_rows > 0"] if bad_row else []
    failing += [f"s.duplicate_ids_{n}" for n in range(len(duplicates))]
    failing += [f"s.unexpected_rows_{n}" for n in range(len(exists))]
    # GX puts the batch in as "(SELECT ...) AS subselect", but as a bare "(SELECT ...)" when the
    # query has a JOIN (the customer-exists query): it then needs an alias of ours.
    alias = " AS t" if any(re.search(r"\bJOIN\b", condition, re.IGNORECASE) for condition in exists) else ""
    inner = f"SELECT {', '.join(columns)} FROM {{batch}}{alias}" + (f" WHERE {where}" if where else "")
    return f"SELECT s.* FROM ({inner}) AS s WHERE {' OR '.join(failing)}"


def window_sql(table: str, windows: Mapping[str, Any]) -> str | None:
    """``table``'s window in the period as SQL text, as the runner's GX row condition selects
    it (None: all rows)."""
    bounds = window_bounds(table, windows)
    if bounds is None:
        return None
    column, lower, upper = bounds
    condition = f"{quote(column)} < {sql_literal(to_utc(upper))}"
    if lower is not None:
        condition = f"{quote(column)} >= {sql_literal(to_utc(lower))} AND {condition}"
    return condition
