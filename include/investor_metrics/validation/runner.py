"""Validation of a period's source data with Great Expectations (SPEC sections 3 and 5): the step
that runs before anything is computed.

``validate_period`` checks the schema from the catalog (``schema``), then validates each asset
(a source table restricted to the period's window by a GX row condition, or a small aggregate
query) in two passes (docs/adr/two-pass-validation.md): a cheap screening suite (``screening``),
then, only for an asset it finds broken, the exact suite of ``rules`` with GX's counts. Every
check runs as SQL inside PostgreSQL; no table is loaded into memory. It returns a
:class:`ValidationResult`: *failures* (a table or column missing or of a wrong type, an empty
table, a rule broken by some rows, with the exact count) stop the run; *warnings* (no row in the
window, probe coverage under 90 %, no or no table of health checks) go into the snapshot.
``raise_for_failures`` turns the failures into a :class:`DataValidationError` naming table,
column, rule and bad-row count. With ``report_dir`` the GX Data Docs are written (``reports``).
"""

from __future__ import annotations

import itertools
import logging
import shutil
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from include.investor_metrics.contract import HEALTH_TABLE, PROBE_INTERVAL_SECONDS
from include.investor_metrics.period import Period, iso_utc
from include.investor_metrics.validation import reports
from include.investor_metrics.validation.findings import finding, findings_from, merge
from include.investor_metrics.validation.gx_context import (
    build_data_docs,
    ephemeral_context,
    gx_url,
    quiet_gx,
    run_id,
)
from include.investor_metrics.validation.rules import (
    FAILURE,
    RULE_TABLE_EXISTS,
    SOURCE_TABLES,
    UNCOUNTED_RULES,
    WARNING,
    WINDOWS,
    Check,
    coverage_check,
    expected_probe_rounds,
    has_rows,
    health_checks_in_period,
    period_windows,
    row_checks,
    rows_in_window,
    window_bounds,
)
from include.investor_metrics.validation.schema import existing_tables, schema_findings
from include.investor_metrics.validation.screening import rows_in_window_screen, screening_checks, window_sql
from include.investor_metrics.validation.sql_text import asset_query, source_tables_query

log = logging.getLogger(__name__)


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
    # expectation for all the asset's rules (see screening.screening_checks).
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
    quiet_gx()
    started = time.monotonic()
    source_url = gx_url(sqlalchemy_url)
    health_url = gx_url(health_sqlalchemy_url) if health_sqlalchemy_url is not None else source_url

    # Tables, columns and types first: the rows of a table whose columns are not the contract's
    # are not checked (a rule on them would prove nothing, or fail on the SQL).
    present_sources, findings = schema_findings(source_url, SOURCE_TABLES)
    health_present = bool(existing_tables(health_url, (HEALTH_TABLE,)))
    if not health_present:
        findings.append(
            finding(WARNING, HEALTH_TABLE, None, RULE_TABLE_EXISTS, None,
                    f"{HEALTH_TABLE}: table does not exist, health-check coverage not checked")
        )
    assets = plan_assets(period, [t for t in SOURCE_TABLES if t in present_sources], health_present, services)

    report_path = None
    site_dir = build_dir = None
    if report_dir is not None:
        site_dir = reports.site_dir(report_dir, period)
        build_dir = reports.build_dir(site_dir)
    try:
        context = ephemeral_context(build_dir)
        run = run_id(f"period_end_{reports.period_stamp(period)}")
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
            findings.extend(_validate_asset(context, spec, batch, orders, run))

        if build_dir is not None:
            build_data_docs(context)
            reports.publish(build_dir, site_dir)
            build_dir = None
            report_path = str(site_dir / "index.html")
    finally:
        if build_dir is not None:
            shutil.rmtree(build_dir, ignore_errors=True)

    failures = merge([f for f in findings if f["severity"] == FAILURE])
    warnings = merge([f for f in findings if f["severity"] == WARNING])
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


def require_source_schema(
    sqlalchemy_url, tables: Sequence[str] = SOURCE_TABLES, period: Period | None = None
) -> None:
    """Raise :class:`DataValidationError` (the validation's message) when a source table of
    ``tables`` is missing or a column of SPEC section 3 is missing or of an incompatible type.
    Cheap (two catalog queries): for a step that reads the source before the validation does."""
    _present, findings = schema_findings(gx_url(sqlalchemy_url), tables)
    ValidationResult(success=not findings, failures=merge(findings), period=period).raise_for_failures()


def plan_assets(
    period: Period, source_tables: Sequence[str], health_present: bool, services: Sequence[str] | None
) -> list[_Asset]:
    """What to validate: the existing source tables, each in its window, and the health checks."""
    windows = period_windows(period)
    assets: list[_Asset] = []
    if source_tables:
        # a table without rows is reported as such, with no count: the screening pass says it all
        # the exact pass names the empty tables; none of its checks counts rows
        table_has_rows = [has_rows(t) for t in source_tables]
        assets.append(_Asset("source_tables", table_has_rows, query=source_tables_query(source_tables),
                             result_format={"result_format": "BOOLEAN_ONLY"},
                             screening=screening_checks("source_tables", table_has_rows, None)))
    checks = row_checks(windows)
    for table in source_tables:
        table_checks = list(checks[table])
        where = window_sql(table, windows)
        screening = screening_checks(table, table_checks, where)
        if WINDOWS[table] is not None:  # customers: all rows, so "table has rows" says it all
            table_checks.append(rows_in_window(table))
            screening.append(rows_in_window_screen(table, where))
        assets.append(_Asset(table, table_checks, table=table,
                             row_condition=_window_condition(table, windows), screening=screening))
    if health_present:
        assets.append(_Asset("service_health_checks", [health_checks_in_period()],
                             query=asset_query("validation/health_checks.sql", windows), on_metrics_db=True,
                             result_format=None))
        coverage_params = {
            **windows,
            "services": list(services) if services else None,
            "probe_seconds": PROBE_INTERVAL_SECONDS,
            "expected_rounds": expected_probe_rounds(period),
        }
        assets.append(_Asset(
            "service_health_coverage", [coverage_check()],
            query=asset_query("validation/health_coverage.sql", coverage_params),
            on_metrics_db=True,
            # one row per service: COMPLETE lists the services that fall short, by name
            result_format={"result_format": "COMPLETE", "unexpected_index_column_names": ["service"]},
        ))
    return assets


def _window_condition(table: str, windows: Mapping[str, Any]):
    """The GX row condition selecting ``table``'s rows of the period (None: all rows)."""
    bounds = window_bounds(table, windows)
    if bounds is None:
        return None
    from great_expectations.expectations.row_conditions import Column

    column, lower, upper = bounds
    # GX keeps the bounds as ISO strings; PostgreSQL reads them as timestamptz (see gx_context.gx_url).
    condition = Column(column) < upper.isoformat()
    if lower is not None:
        condition = (Column(column) >= lower.isoformat()) & condition
    return condition


# --- the two passes --------------------------------------------------------------------------------


def _validate_asset(context, spec: _Asset, batch, orders: Sequence[int], run) -> list[dict]:
    """The findings of one asset: its screening pass, then, only when that finds a check that
    counts rows broken (or not checkable), its exact pass."""
    exact = list(zip(spec.checks, orders, strict=True))
    if spec.screening is None:
        screen = exact
    else:  # a screening check reports in the place of the exact check of its rule
        order_of = {check.rule: order for check, order in exact}
        screen = [(check, order_of.get(check.rule, orders[0])) for check in spec.screening]
    screening = _run_suite(context, spec, batch, screen, run, result_format=None)
    findings = findings_from(screening)  # raises on a transient database error
    if spec.result_format is not None and _needs_exact_pass(screening):
        exact_result = _run_suite(context, spec, batch, exact, run, result_format=spec.result_format)
        findings = findings_from(exact_result)
    return findings


def _run_suite(context, spec: _Asset, batch, checks: Sequence[tuple[Check, int]], run, *, result_format):
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
    definition = context.validation_definitions.add(
        gx.ValidationDefinition(name=spec.name, data=batch, suite=suite))
    return definition.run(result_format=result_format or {"result_format": "BOOLEAN_ONLY"}, run_id=run)


def _needs_exact_pass(screening_result) -> bool:
    """Whether a screening result lacks what a finding must say: a check that counts bad rows
    (or lists services) failed or could not run. A table-level check (table has rows, rows in
    the window) reports no count, so its failure alone needs no exact pass."""
    return any(
        not evr.success and evr.expectation_config.meta["rule"] not in UNCOUNTED_RULES
        for evr in screening_result.results
    )


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
