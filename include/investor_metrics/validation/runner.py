"""Validation of a period's source data with Great Expectations (SPEC sections 3 and 5).

The step that runs before anything is computed. Every rule of SPEC section 3 is a GX Core
expectation on a PostgreSQL datasource, restricted to the rows the period uses (the extract step's
windows, ``WINDOWS`` below) by a GX row condition, so each check runs as SQL inside PostgreSQL
and no table is ever loaded into memory. The expectations of one table form one suite and one
validation definition with one window, so GX bundles their counts into a few queries per table.
A passing period is settled by a cheaper screening suite first (see "Two passes" below).

Why table assets with a row condition rather than query assets: GX 1.x learns the columns of a
query asset by running the query as it is (``column_reflection_fallback``), and psycopg2 then
pulls the whole result to the client: for ``usage_events`` that is millions of rows. A table
asset's columns come from the catalog instead. Query assets remain for the small aggregate
queries (does each table have a row, health-check coverage per service).

Outcomes:

- a *failure* (the run must stop): a source table missing; a column of section 3 missing or of an
  incompatible type (``SOURCE_COLUMNS``, read from ``information_schema`` before any row is
  checked; such a table's rows are then not checked); a rule of section 3 broken by some rows,
  with the exact number of bad rows (GX's ``unexpected_count``) — ids not null and unique,
  ``amount_cents`` between 0 and ``MAX_AMOUNT_CENTS`` included; a source table without any row;
- a *warning* (carried into the snapshot's ``data_quality``): a source table with no row in the
  period's window (a thin-history week still gets its snapshot); a service whose health checks
  cover less than 90 % of the period's 5-minute probe rounds; no health check in the period; the
  health-check table missing.

A rule on a column that must not be null (section 3 marks the nullable ones) counts a null as a
bad row too: GX's set and range expectations skip nulls, so such a rule is one set/range
expectation plus one not-null expectation, and their counts add up (the two sets are disjoint).

Two passes, because nearly every period passes and a pass needs no counts. Each asset is first
validated in a *screening* pass, result format ``BOOLEAN_ONLY``, whose suite for a source table is
one GX ``UnexpectedRowsExpectation`` (plus one for "rows in the window"): a query, generated from
the table's exact checks by ``_screening_query``, that scans the window once and returns a row
exactly when some check would find a bad row. Each check becomes a predicate with GX's own null
handling (set, range and pair expectations skip nulls; only not-null counts them), uniqueness is
``count(DISTINCT id) < count(id)`` (GX's duplicate count is a window function over every row, the
costliest statement by far on ``usage_events``), and the customer-exists query is asked whether it
returns a row. GX's cost is per expectation (each is turned into a configuration many times over),
so one SQL expectation per table instead of ~6 per-rule ones cut a passing week's validation from
~1.1 to ~0.3 CPU-s. Only an asset whose screening fails (or cannot run) gets the *exact* pass:
every rule as its own GX expectation with its counts (``BASIC``; ``COMPLETE`` for the coverage,
to name the services), which the findings and messages are built from; the screening's verdict
is never reported by itself. The two small health-check assets have one check each: their
screening is that check in ``BOOLEAN_ONLY``, final for "checks in the period" (no count to
report). The exact pass replaces the screening's suite and result, so the Data Docs show one
result per asset: the screening's summary for the assets that passed, every rule with its count
for those that did not.

``validate_period`` returns a :class:`ValidationResult`; ``raise_for_failures`` turns the failures
into a :class:`DataValidationError` whose message names table, column, rule and bad-row count.
With ``report_dir`` the GX Data Docs (HTML) of the validation are written to
``<report_dir>/<period end, UTC, YYYY-MM-DD_HH-MM-SS>/index.html``; a rerun of the period replaces
that folder. The report is not world-readable: folders 0750 (``report_dir`` too), files 0640. GX runs with an in-memory (ephemeral) context: no ``gx/`` folder, no usage statistics,
no progress bars. Great Expectations is imported inside the functions (it takes seconds).
"""

from __future__ import annotations

import functools
import itertools
import logging
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from include.investor_metrics.contract import HEALTH_TABLE, PROBE_INTERVAL_SECONDS
from include.investor_metrics.db import read_sql
from include.investor_metrics.period import Period, iso_utc, to_utc

log = logging.getLogger(__name__)

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
RULE_SCREENING = "no row breaks a rule"  # the screening pass's summary of an asset's rules
_UNCOUNTED_RULES = (RULE_TABLE_HAS_ROWS, RULE_ROWS_IN_WINDOW)  # their findings carry no count

DATA_DOCS_SITE = "data_quality"
# An error GX caught that means the database went away, not that the data is bad.
_TRANSIENT_ERRORS = ("OperationalError", "InterfaceError")
_STAMP_FORMAT = "%Y-%m-%d_%H-%M-%S"  # as the archive names a period (SPEC section 7)


class DataValidationError(Exception):
    """The period's source data breaks rules of SPEC section 3; the message lists every one."""

    def __init__(self, message: str, failures: Sequence[Mapping[str, Any]], report_path: str | None = None):
        super().__init__(message)
        self.failures = [dict(f) for f in failures]
        self.report_path = report_path


@dataclass
class ValidationResult:
    """What a period's validation found. ``failures``/``warnings``: dicts with ``table``,
    ``column`` (None for a table-level check), ``rule``, ``bad_rows`` (None where rows are not
    the unit: a missing or empty table, a coverage gap) and ``message``."""

    success: bool
    failures: list[dict] = field(default_factory=list)
    warnings: list[dict] = field(default_factory=list)
    report_path: str | None = None
    period: Period | None = None
    seconds: float | None = None

    def raise_for_failures(self) -> None:
        if not self.failures:
            return
        where = ""
        if self.period is not None:
            where = f" for period [{iso_utc(self.period.start)}, {iso_utc(self.period.end)})"
        lines = [f"Data validation failed{where}: {len(self.failures)} rule(s) broken"]
        lines += [f"- {failure['message']}" for failure in self.failures]
        if self.report_path:
            lines.append(f"Data-quality report: {self.report_path}")
        raise DataValidationError("\n".join(lines), self.failures, self.report_path)

    def as_snapshot_dict(self) -> dict:
        """The snapshot's ``data_quality`` (SPEC section 7)."""
        return {"success": self.success, "warnings": [w["message"] for w in self.warnings]}


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
        "requested_at": "timestamptz", "latency_ms": "small integer", "cache_hit": "boolean", "status": "text",
        "feedback": "text",
    },
}


def column_findings(found: Mapping[str, Mapping[str, str]]) -> list[dict]:
    """Failures for the columns of SPEC section 3 that are missing or of an incompatible type;
    ``found``: per existing source table, its columns' information_schema ``data_type``."""
    findings = []
    for table, columns in SOURCE_COLUMNS.items():
        if table not in found:
            continue  # reported as a missing table
        for column, kind in columns.items():
            allowed, expected = COLUMN_KINDS[kind]
            actual = found[table].get(column)
            if actual is None:
                findings.append(_finding(FAILURE, table, column, RULE_COLUMN_EXISTS, None,
                                         f"{table}.{column}: column does not exist (expected {expected})"))
            elif actual not in allowed:
                findings.append(_finding(FAILURE, table, column, RULE_COLUMN_TYPE, None,
                                         f"{table}.{column}: column type is {actual}, expected {expected}"))
    return findings


# --- the rules ---------------------------------------------------------------------------------

# The largest amount_cents accepted: $10 billion a month for one subscription, beyond any real
# plan. Below it every sum stays exact in int64 at any realistic count of subscriptions, and
# include/investor_metrics/weekly/metrics.py stays exact beyond (Python integers) or refuses a figure a JSON number cannot
# carry to the cent (MoneyRangeError).
MAX_AMOUNT_CENTS = 10**12

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


def _in_set(table: str, column: str, values: Iterable[str], rule: str, *, nullable: bool = False) -> list[Check]:
    checks = [Check(table, column, rule, "ExpectColumnValuesToBeInSet", {"column": column, "value_set": list(values)})]
    return checks if nullable else checks + _not_null(table, column, rule)


def _between(table: str, column: str, rule: str, *, min_value=None, max_value=None) -> list[Check]:
    kwargs = {"column": column, "min_value": min_value, "max_value": max_value}
    return [Check(table, column, rule, "ExpectColumnValuesToBeBetween", kwargs)] + _not_null(table, column, rule)


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
    query = _asset_query("validate_subscription_customers.sql", windows)
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
            Check("subscriptions", "amount_cents", f"amount <= {MAX_AMOUNT_CENTS}", "ExpectColumnValuesToBeBetween",
                  {"column": "amount_cents", "max_value": MAX_AMOUNT_CENTS}),
            *_after("subscriptions", "ended_at", "started_at", "ended_at null or > started_at", or_equal=False),
        ],
        "leads": [
            *_unique("leads", "lead_id"),
            *_after("leads", "converted_at", "created_at", "converted_at null or >= created_at", or_equal=True),
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
                "ai_requests", "feedback", ("correct", "incorrect"), "feedback null or in (correct, incorrect)",
                nullable=True,
            ),
            *_between("ai_requests", "latency_ms", "latency >= 0", min_value=0),
        ],
    }


def _rows_in_window(table: str) -> Check:
    return Check(table, None, RULE_ROWS_IN_WINDOW, "ExpectTableRowCountToBeBetween", {"min_value": 1}, WARNING)


# --- the screening pass's SQL ---------------------------------------------------------------------


def _screening_checks(table: str, checks: Sequence[Check], where: str | None) -> list[Check]:
    """The screening suite of an asset whose exact suite is ``checks``: one GX
    ``UnexpectedRowsExpectation`` whose query returns a row exactly when some check of
    ``checks`` would find a bad row (``where``: the SQL condition of the period's window)."""
    rules = ", ".join(dict.fromkeys(check.rule for check in checks))
    kwargs = {"unexpected_rows_query": _screening_query(checks, where),
              "description": f"{table}: no row breaks a rule ({rules}); else the exact pass counts them"}
    return [Check(table, None, RULE_SCREENING, "UnexpectedRowsExpectation", kwargs)]


def _rows_in_window_screen(table: str, where: str) -> Check:
    """``_rows_in_window`` as SQL: a row when the window has none (no row condition to build)."""
    kwargs = {"unexpected_rows_query": f"SELECT 1 AS no_rows WHERE NOT EXISTS (SELECT 1 FROM {{batch}} WHERE {where})",
              "description": f"{table} has rows in the period's window"}
    return Check(table, None, RULE_ROWS_IN_WINDOW, "UnexpectedRowsExpectation", kwargs, WARNING)


def _screening_query(checks: Sequence[Check], where: str | None) -> str:
    """One query, one scan of the window: a row (of counts) when any of ``checks`` fails.

    Each GX expectation's bad rows as a SQL predicate, with GX's null handling: the set, range
    and pair expectations skip nulls (a predicate on null is null, which ``FILTER`` leaves out),
    only the not-null one counts them; an id is unique when ``count(DISTINCT id) = count(id)``
    (nulls left out alike); a SQL expectation's query is asked whether it returns a row.
    tests/unit/validation/test_validation.py breaks every rule and checks that the screening sends it to the exact
    pass; an unknown expectation class is an error here, never a silent pass.
    """
    bad_row, duplicates, exists = [], [], []
    for check in checks:
        kwargs = check.kwargs
        if check.expectation == "ExpectColumnValuesToNotBeNull":
            bad_row.append(f"{_quote(kwargs['column'])} IS NULL")
        elif check.expectation == "ExpectColumnValuesToBeInSet":
            values = ", ".join(_sql_literal(value) for value in kwargs["value_set"])
            bad_row.append(f"{_quote(kwargs['column'])} NOT IN ({values})")
        elif check.expectation == "ExpectColumnValuesToBeBetween":
            column = _quote(kwargs["column"])
            if kwargs.get("min_value") is not None:
                bad_row.append(f"{column} < {_sql_literal(kwargs['min_value'])}")
            if kwargs.get("max_value") is not None:
                bad_row.append(f"{column} > {_sql_literal(kwargs['max_value'])}")
        elif check.expectation == "ExpectColumnPairValuesAToBeGreaterThanB":
            operator = ">=" if kwargs["or_equal"] else ">"
            bad_row.append(f"NOT ({_quote(kwargs['column_A'])} {operator} {_quote(kwargs['column_B'])})")
        elif check.expectation == "ExpectColumnValuesToBeUnique":
            column = _quote(kwargs["column"])
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


def _window_bounds(table: str, windows: Mapping[str, Any]):
    """``table``'s window in the period: (column, from or None, to), or None for all rows."""
    window = WINDOWS[table]
    if window is None:
        return None
    column, lower, upper = window
    return column, (windows[lower] if lower is not None else None), windows[upper]


def _window_sql(table: str, windows: Mapping[str, Any]) -> str | None:
    """``_window_condition`` as SQL text (None: all rows)."""
    bounds = _window_bounds(table, windows)
    if bounds is None:
        return None
    column, lower, upper = bounds
    condition = f"{_quote(column)} < {_sql_literal(to_utc(upper))}"
    if lower is not None:
        condition = f"{_quote(column)} >= {_sql_literal(to_utc(lower))} AND {condition}"
    return condition


@functools.cache
def _pg_dialect():
    """SQLAlchemy's PostgreSQL dialect, for rendering the SQL text GX is given."""
    from sqlalchemy.dialects import postgresql

    return postgresql.dialect()


def _render(clause) -> str:
    """A SQLAlchemy clause as PostgreSQL text, its values inlined as literals."""
    return str(clause.compile(dialect=_pg_dialect(), compile_kwargs={"literal_binds": True}))


def _quote(identifier: str) -> str:
    return _pg_dialect().identifier_preparer.quote(identifier)


def _sql_literal(value: Any) -> str:
    """``value`` as a PostgreSQL literal (SQLAlchemy's rendering: quoted and escaped)."""
    import sqlalchemy as sa

    return _render(sa.literal(value, sa.DateTime(timezone=True) if hasattr(value, "tzinfo") else None))


# --- running GX --------------------------------------------------------------------------------


@dataclass
class _Asset:
    """One GX data asset and the suite validated on it: a source table (``table``, optionally
    restricted by ``row_condition``) or a small aggregate ``query``."""

    name: str
    checks: list[Check]
    table: str | None = None
    query: str | None = None
    row_condition: Any = None
    on_metrics_db: bool = False
    # The exact pass's result format; None: the screening pass says all a finding needs.
    result_format: dict | None = field(default_factory=lambda: {"result_format": "BASIC"})
    # The screening pass's suite when it is not ``checks`` in screening form: one summary SQL
    # expectation for all the asset's rules (see _screening_checks).
    screening: list[Check] | None = None


def validate_period(
    sqlalchemy_url,
    period: Period,
    *,
    services: list[str] | None = None,
    report_dir: str | Path | None = None,
    health_sqlalchemy_url=None,
) -> ValidationResult:
    """Check the source rows ``period`` uses (SPEC section 5).

    ``sqlalchemy_url``: the ChatterFix database (a string or a SQLAlchemy ``URL``).
    ``services``: the configured health-check services (None/empty: those with checks in the
    period). ``report_dir``: where the Data Docs go (None: no report).
    ``health_sqlalchemy_url``: the metrics database holding the health checks, when it is not the
    source database (SPEC section 3: by default it is).
    """
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    gx_log = logging.getLogger("great_expectations")
    if gx_log.level == logging.NOTSET:  # GX's INFO chatter drowns the task log; keep its warnings
        gx_log.setLevel(logging.WARNING)
    started = time.monotonic()
    source_url = _gx_url(sqlalchemy_url)
    health_url = _gx_url(health_sqlalchemy_url) if health_sqlalchemy_url is not None else source_url

    # Tables, columns and types first: the rows of a table whose columns are not the contract's
    # are not checked (a rule on them would prove nothing, or fail on the SQL).
    present_sources, findings = _schema_findings(source_url, SOURCE_TABLES)
    health_present = bool(_existing_tables(health_url, (HEALTH_TABLE,)))
    if not health_present:
        findings.append(
            _finding(WARNING, HEALTH_TABLE, None, RULE_TABLE_EXISTS, None,
                     f"{HEALTH_TABLE}: table does not exist, health-check coverage not checked")
        )
    assets = plan_assets(period, [t for t in SOURCE_TABLES if t in present_sources], health_present, services)

    report_path = None
    site_dir = build_dir = None
    if report_dir is not None:
        site_dir = Path(report_dir).expanduser().resolve() / to_utc(period.end).strftime(_STAMP_FORMAT)
        site_dir.parent.mkdir(parents=True, exist_ok=True)
        _restrict(site_dir.parent)
        # mkdtemp makes it private (0700) while GX writes into it; opened to the group when done
        build_dir = Path(tempfile.mkdtemp(prefix=f".{site_dir.name}.", dir=site_dir.parent))
    try:
        context = _ephemeral_context(build_dir)
        run_id = _run_id(period)
        order = itertools.count()
        source = context.data_sources.add_postgres(name="chatterfix", connection_string=source_url)
        metrics = source
        if health_url != source_url:
            metrics = context.data_sources.add_postgres(name="investor_metrics", connection_string=health_url)

        for spec in assets:
            datasource = metrics if spec.on_metrics_db else source
            if spec.table is not None:
                asset = datasource.add_table_asset(name=spec.name, table_name=spec.table)
            else:
                asset = datasource.add_query_asset(name=spec.name, query=spec.query)
            batch = asset.add_batch_definition_whole_table(name=f"{spec.name}_period")
            # "order" keeps the findings in the plan's order (GX sorts a suite's results its own way)
            orders = [next(order) for _check in spec.checks]
            findings.extend(_validate_asset(context, spec, batch, orders, run_id))

        if build_dir is not None:
            context.build_data_docs(site_names=[DATA_DOCS_SITE])
            _restrict_tree(build_dir)
            _replace_dir(build_dir, site_dir)
            build_dir = None
            report_path = str(site_dir / "index.html")
    finally:
        if build_dir is not None:
            shutil.rmtree(build_dir, ignore_errors=True)

    failures = _merge([f for f in findings if f["severity"] == FAILURE])
    warnings = _merge([f for f in findings if f["severity"] == WARNING])
    result = ValidationResult(
        success=not failures,
        failures=failures,
        warnings=warnings,
        report_path=report_path,
        period=period,
        seconds=round(time.monotonic() - started, 3),
    )
    log.info(
        "validated period [%s, %s) in %.1f s: %d failure(s), %d warning(s)",
        iso_utc(period.start), iso_utc(period.end), result.seconds, len(failures), len(warnings),
    )
    return result


def _schema_findings(url: str, tables: Sequence[str]) -> tuple[set[str], list[dict]]:
    """(the tables whose rows can be checked, the failures: tables missing, columns missing or
    of an incompatible type)."""
    present = _existing_tables(url, tables)
    findings = [_finding(FAILURE, table, None, RULE_TABLE_EXISTS, None, f"{table}: table does not exist")
                for table in tables if table not in present]
    findings += column_findings(_source_columns(url, sorted(present)))
    return present - {finding["table"] for finding in findings}, findings


def require_source_schema(sqlalchemy_url, tables: Sequence[str] = SOURCE_TABLES, period: Period | None = None) -> None:
    """Raise :class:`DataValidationError` (the validation's message) when a source table of
    ``tables`` is missing or a column of SPEC section 3 is missing or of an incompatible type.
    Cheap (two catalog queries): for a step that reads the source before the validation does."""
    _present, findings = _schema_findings(_gx_url(sqlalchemy_url), tables)
    ValidationResult(success=not findings, failures=_merge(findings), period=period).raise_for_failures()


def plan_assets(
    period: Period, source_tables: Sequence[str], health_present: bool, services: Sequence[str] | None
) -> list[_Asset]:
    """What to validate: the existing source tables, each in its window, and the health checks."""
    windows = period_windows(period)
    assets: list[_Asset] = []
    if source_tables:
        # a table without rows is reported as such, with no count: the screening pass says it all
        # the exact pass names the empty tables; none of its checks counts rows
        has_rows = [_has_rows(t) for t in source_tables]
        assets.append(_Asset("source_tables", has_rows, query=_source_tables_query(source_tables),
                             result_format={"result_format": "BOOLEAN_ONLY"},
                             screening=_screening_checks("source_tables", has_rows, None)))
    checks = row_checks(windows)
    for table in source_tables:
        table_checks = list(checks[table])
        where = _window_sql(table, windows)
        screening = _screening_checks(table, table_checks, where)
        if WINDOWS[table] is not None:  # customers: all rows, so "table has rows" says it all
            table_checks.append(_rows_in_window(table))
            screening.append(_rows_in_window_screen(table, where))
        assets.append(_Asset(table, table_checks, table=table, row_condition=_window_condition(table, windows),
                             screening=screening))
    if health_present:
        assets.append(_Asset("service_health_checks", [_health_checks_in_period()],
                             query=_asset_query("validate_health_checks.sql", windows), on_metrics_db=True,
                             result_format=None))
        coverage_params = {
            **windows,
            "services": list(services) if services else None,
            "probe_seconds": PROBE_INTERVAL_SECONDS,
            "expected_rounds": expected_probe_rounds(period),
        }
        assets.append(_Asset(
            "service_health_coverage", [_coverage_check()],
            query=_asset_query("validate_health_coverage.sql", coverage_params),
            on_metrics_db=True,
            # one row per service: COMPLETE lists the services that fall short, by name
            result_format={"result_format": "COMPLETE", "unexpected_index_column_names": ["service"]},
        ))
    return assets


def _window_condition(table: str, windows: Mapping[str, Any]):
    """The GX row condition selecting ``table``'s rows of the period (None: all rows)."""
    bounds = _window_bounds(table, windows)
    if bounds is None:
        return None
    from great_expectations.expectations.row_conditions import Column

    column, lower, upper = bounds
    # GX keeps the bounds as ISO strings; PostgreSQL reads them as timestamptz (see _gx_url).
    condition = Column(column) < upper.isoformat()
    if lower is not None:
        condition = (Column(column) >= lower.isoformat()) & condition
    return condition


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


def expected_probe_rounds(period: Period) -> float:
    """Probe rounds a fully covered service has in the period: its length / 5 minutes."""
    return (to_utc(period.end) - to_utc(period.start)).total_seconds() / PROBE_INTERVAL_SECONDS


def _has_rows(table: str) -> Check:
    return Check(table, None, RULE_TABLE_HAS_ROWS, "ExpectColumnValuesToBeInSet", {"column": table, "value_set": [True]})


def _health_checks_in_period() -> Check:
    kwargs = {"column": "checks", "min_value": 1}
    return Check(HEALTH_TABLE, None, RULE_ROWS_IN_WINDOW, "ExpectColumnValuesToBeBetween", kwargs, WARNING)


def _coverage_check() -> Check:
    kwargs = {"column": "coverage_pct", "min_value": MIN_PROBE_COVERAGE_PCT}
    return Check(HEALTH_TABLE, "service", RULE_PROBE_COVERAGE, "ExpectColumnValuesToBeBetween", kwargs, WARNING)


def _expectation(check: Check, row_condition=None, order: int = 0):
    """``check`` as a GX expectation."""
    import great_expectations.expectations as gxe

    expectation_class = getattr(gxe, check.expectation)
    kwargs = dict(check.kwargs)
    if row_condition is not None and "row_condition" in expectation_class.__fields__:
        kwargs["row_condition"] = row_condition
    meta = {"table": check.table, "column": check.column, "rule": check.rule, "severity": check.severity,
            "order": order}
    # GX's own severity shows in Data Docs; ours decides failure vs warning.
    kwargs["severity"] = "critical" if check.severity == FAILURE else "warning"
    return expectation_class(meta=meta, **kwargs)


def _validate_asset(context, spec: _Asset, batch, orders: Sequence[int], run_id) -> list[dict]:
    """The findings of one asset: its screening pass, then, only when that finds a check that
    counts rows broken (or not checkable), its exact pass (see the module docstring)."""
    exact = list(zip(spec.checks, orders, strict=True))
    if spec.screening is None:
        screen = exact
    else:  # a screening check reports in the place of the exact check of its rule
        order_of = {check.rule: order for check, order in exact}
        screen = [(check, order_of.get(check.rule, orders[0])) for check in spec.screening]
    screening = _run_suite(context, spec, batch, screen, run_id, result_format=None)
    findings = _findings_from(screening)  # raises on a transient database error
    if spec.result_format is not None and _needs_exact_pass(screening):
        findings = _findings_from(_run_suite(context, spec, batch, exact, run_id, result_format=spec.result_format))
    return findings


def _run_suite(context, spec: _Asset, batch, checks: Sequence[tuple[Check, int]], run_id, *, result_format):
    """Validate ``batch`` with a suite named after ``spec`` made of ``checks`` (check, order):
    the screening pass (``result_format`` None: ``BOOLEAN_ONLY``, no row condition, the window
    being in the screening SQL) or the exact pass. The exact pass replaces the screening's suite
    of the same name and, as GX keys a validation result by suite name, batch and run, its
    result too: the Data Docs show one result per asset."""
    import great_expectations as gx

    screening = result_format is None
    row_condition = None if screening else spec.row_condition
    expectations = [_expectation(check, row_condition, order) for check, order in checks]
    if not screening:
        context.validation_definitions.delete(spec.name)
        context.suites.delete(spec.name)
    suite = context.suites.add(gx.ExpectationSuite(name=spec.name, expectations=expectations))
    definition = context.validation_definitions.add(gx.ValidationDefinition(name=spec.name, data=batch, suite=suite))
    return definition.run(result_format=result_format or {"result_format": "BOOLEAN_ONLY"}, run_id=run_id)


def _needs_exact_pass(screening_result) -> bool:
    """Whether a screening result lacks what a finding must say: a check that counts bad rows
    (or lists services) failed or could not run. A table-level check (table has rows, rows in
    the window) reports no count, so its failure alone needs no exact pass."""
    return any(
        not evr.success and evr.expectation_config.meta["rule"] not in _UNCOUNTED_RULES
        for evr in screening_result.results
    )


def _findings_from(suite_result) -> list[dict]:
    findings = []
    for evr in suite_result.results:
        meta = evr.expectation_config.meta or {}
        table, column, rule, severity = meta["table"], meta["column"], meta["rule"], meta["severity"]
        order = meta.get("order", 0)
        what = f"{table}.{column}" if column else table
        error = _exception_message(evr.exception_info)
        if error is not None:
            if any(marker in error for marker in _TRANSIENT_ERRORS):
                # The database went away: not a data problem; let the task retry.
                raise RuntimeError(f"{what}: rule '{rule}' could not be checked: {error}")
            # A check that could not run (e.g. a column missing) proves nothing: report it.
            findings.append(_finding(severity, table, column, rule, None,
                                     f"{what}: rule '{rule}' could not be checked: {error}", order))
            continue
        if evr.success:
            continue
        result = evr.result or {}
        if rule == RULE_PROBE_COVERAGE:
            findings.extend(_coverage_findings(result, order))
        elif rule == RULE_TABLE_HAS_ROWS:
            findings.append(_finding(severity, table, None, rule, None, f"{table}: table has no rows at all", order))
        elif rule == RULE_ROWS_IN_WINDOW:
            findings.append(_finding(severity, table, None, rule, None, f"{table}: no rows in the period's window",
                                     order))
        else:
            bad_rows = result.get("unexpected_count")
            if bad_rows is None:  # UnexpectedRowsExpectation
                bad_rows = result.get("observed_value")
            findings.append(_finding(severity, table, column, rule, int(bad_rows or 0), None, order))
    return findings


def _coverage_findings(result: Mapping, order: int) -> list[dict]:
    findings = []
    rows = result.get("unexpected_index_list") or []
    for row in rows:
        service, pct = row.get("service"), row.get("coverage_pct")
        finding = _finding(
            WARNING, HEALTH_TABLE, "service", RULE_PROBE_COVERAGE, None,
            f"health checks of service '{service}' cover {float(pct):.2f}% of the period's expected "
            f"5-minute probe rounds (minimum {MIN_PROBE_COVERAGE_PCT:g}%)",
            order,
        )
        finding.update(service=service, coverage_pct=float(pct))
        findings.append(finding)
    if not rows:  # GX said "short" but listed no service: still say so
        findings.append(_finding(WARNING, HEALTH_TABLE, "service", RULE_PROBE_COVERAGE, None,
                                 f"health-check coverage below {MIN_PROBE_COVERAGE_PCT:g}% for some service", order))
    return findings


def _exception_message(info) -> str | None:
    """GX puts an exception either directly in ``exception_info`` or per metric under it."""
    if not info:
        return None
    candidates = [info] if "raised_exception" in info else list(info.values())
    for candidate in candidates:
        if isinstance(candidate, Mapping) and candidate.get("raised_exception"):
            return str(candidate.get("exception_message") or "unknown error").strip().splitlines()[0]
    return None


def _finding(
    severity: str, table: str, column: str | None, rule: str, bad_rows: int | None, message: str | None,
    order: int = -1,
) -> dict:
    return {"severity": severity, "table": table, "column": column, "rule": rule, "bad_rows": bad_rows,
            "message": message, "_order": order}


def _merge(findings: list[dict]) -> list[dict]:
    """One entry per rule: a rule checked by two expectations (value + not null) reports the sum
    of their disjoint bad-row counts. Row-rule messages are written here; entries that came with
    a message of their own (table-level, coverage, a check that could not run) stay as they are."""
    merged: dict[tuple, dict] = {}
    for finding in sorted(findings, key=lambda f: f["_order"]):
        key = (finding["table"], finding["column"], finding["rule"], finding["message"])
        if key in merged:
            if finding["bad_rows"] is not None:
                merged[key]["bad_rows"] += finding["bad_rows"]
        else:
            merged[key] = dict(finding)
    out = []
    for finding in merged.values():
        if finding["message"] is None:
            n = finding["bad_rows"]
            verb = "row violates" if n == 1 else "rows violate"
            finding["message"] = f"{finding['table']}.{finding['column']}: {n} {verb} rule '{finding['rule']}'"
        del finding["severity"], finding["_order"]
        out.append(finding)
    return out


# --- plumbing ------------------------------------------------------------------------------------


def _gx_url(url) -> str:
    """The database URL for GX, always with the psycopg2 driver.

    ``url``: a string or a SQLAlchemy ``URL`` (``PostgresHook.sqlalchemy_url``, which names
    psycopg 3 when it is installed). GX keeps a row condition's bounds as strings (its suites are
    serialised); psycopg2 sends them as untyped literals that PostgreSQL reads as timestamptz,
    where psycopg 3 binds them as varchar and the comparison fails. ``str(URL)`` would mask the
    password, hence ``render_as_string``.
    """
    from sqlalchemy.engine import make_url

    parsed = make_url(url) if isinstance(url, str) else url
    return parsed.set(drivername="postgresql+psycopg2").render_as_string(hide_password=False)


def _existing_tables(url: str, names: Sequence[str]) -> set[str]:
    import sqlalchemy as sa

    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.text(read_sql("validate_existing_tables.sql")), {"names": list(names)})
            return {row[0] for row in rows}
    finally:
        engine.dispose()


def _source_columns(url: str, tables: Sequence[str]) -> dict[str, dict[str, str]]:
    """Per table, ``{column: information_schema data_type}``."""
    import sqlalchemy as sa

    found: dict[str, dict[str, str]] = {table: {} for table in tables}
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            for table, column, data_type in conn.execute(sa.text(read_sql("validate_source_columns.sql")),
                                                         {"names": list(tables)}):
                found[table][column] = data_type
    finally:
        engine.dispose()
    return found


def _strip_comments(sql: str) -> str:
    """GX wants a query asset to start with SELECT: drop the file's leading comment lines."""
    return "\n".join(line for line in sql.splitlines() if not line.lstrip().startswith("--")).strip()


def _asset_query(sql_file: str, params: Mapping[str, Any]) -> str:
    """``include/investor_metrics/sql/<sql_file>`` with its bind parameters rendered as SQL literals by
    SQLAlchemy's PostgreSQL dialect (GX takes a query asset as text, without parameters)."""
    import sqlalchemy as sa
    from sqlalchemy.dialects import postgresql

    text = sa.text(_strip_comments(read_sql(sql_file)))
    names = set(text.compile().params)
    binds = []
    for name in names:
        value = params[name]
        if isinstance(value, list) or (name == "services" and value is None):
            binds.append(sa.bindparam(name, value, type_=postgresql.ARRAY(sa.Text)))
        elif hasattr(value, "tzinfo"):
            binds.append(sa.bindparam(name, to_utc(value), type_=sa.DateTime(timezone=True)))
        else:
            binds.append(sa.bindparam(name, value))
    return _render(text.bindparams(*binds))


def _source_tables_query(tables: Iterable[str]) -> str:
    """One row: for each existing source table, a boolean column named after it, true when the
    table has at least one row (an EXISTS probe: no full count of a large table)."""
    import sqlalchemy as sa

    probes = [sa.exists(sa.select(sa.literal_column("1")).select_from(sa.table(t))).label(t) for t in tables]
    return _render(sa.select(*probes))


def _ephemeral_context(site_dir: Path | None):
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    from include.investor_metrics.validation.data_docs import view_config as gx_docs_view

    sites = {}
    if site_dir is not None:
        sites[DATA_DOCS_SITE] = {
            "class_name": "SiteBuilder",
            "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(site_dir)},
            # GX's own views with a Jinja bytecode cache (include/investor_metrics/validation/data_docs.py): templates compile
            # once per machine, not in every task. No profiling section: nothing is profiled.
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder", "view": gx_docs_view(index=True)},
            "site_section_builders": {
                "expectations": {"view": gx_docs_view()},
                "validations": {"view": gx_docs_view()},
                "profiling": "None",
            },
        }
    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
        data_docs_sites=sites,
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False),  # no tqdm bars in the task log
    )
    context = gx.get_context(mode="ephemeral", project_config=config)
    # GX serialises the whole project config to YAML after every datasource, asset and batch
    # definition added (19 times a validation, a third of GX's CPU in it) and, in an ephemeral
    # context, puts the text into an in-memory store that nothing reads: the context works from
    # its config object. Skip that on this context only.
    context._save_project_config = lambda: None
    return context


def _run_id(period: Period):
    from great_expectations.core.run_identifier import RunIdentifier

    return RunIdentifier(run_name=f"period_end_{to_utc(period.end).strftime(_STAMP_FORMAT)}")


REPORT_DIR_MODE = 0o750  # the data team (owner and group) read the report; nobody else
REPORT_FILE_MODE = 0o640


def _restrict(directory: Path) -> None:
    try:
        directory.chmod(REPORT_DIR_MODE)
    except OSError as exc:  # a folder of another owner: its own mode stands, say so
        log.warning("could not make %s private to its group: %s", directory, exc)


def _restrict_tree(root: Path) -> None:
    """Folders 0750, files 0640 under ``root`` (a Data Docs report is not world-readable)."""
    for folder, _dirs, files in os.walk(root):
        os.chmod(folder, REPORT_DIR_MODE)
        for name in files:
            os.chmod(os.path.join(folder, name), REPORT_FILE_MODE)


def _replace_dir(built: Path, final: Path) -> None:
    """Swap the freshly built report in for the period's previous one (each a whole folder, so
    a reader sees one report or the other, never a mix)."""
    for _attempt in range(3):
        old = None
        if final.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{final.name}.old-", dir=final.parent))
            os.replace(final, old / final.name)
        try:
            os.replace(built, final)
        except OSError:  # another run of the same period put its report there meanwhile
            continue
        finally:
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
        return
    raise RuntimeError(f"could not put the data-quality report in place at {final}")
