"""Findings: what a validation reports, one dict per broken rule, read from GX's results.

A finding has ``severity`` (``rules.FAILURE`` or ``rules.WARNING``), ``table``, ``column`` (None
for a table-level check), ``rule``, ``bad_rows`` (None where rows are not the unit: a missing or
empty table, a coverage gap) and ``message``; :func:`merge` sums the two halves of a rule (value
and not null) and writes the row rules' messages. A check GX could not run is reported as such;
one that failed because the database went away raises instead (the task retries).
"""

from __future__ import annotations

from collections.abc import Mapping

from include.investor_metrics.contract import HEALTH_TABLE
from include.investor_metrics.validation.rules import (
    MIN_PROBE_COVERAGE_PCT,
    RULE_PROBE_COVERAGE,
    RULE_ROWS_IN_WINDOW,
    RULE_TABLE_HAS_ROWS,
    WARNING,
)

# An error GX caught that means the database went away, not that the data is bad.
_TRANSIENT_ERRORS = ("OperationalError", "InterfaceError")


def finding(
    severity: str, table: str, column: str | None, rule: str, bad_rows: int | None, message: str | None,
    order: int = -1,
) -> dict:
    return {"severity": severity, "table": table, "column": column, "rule": rule, "bad_rows": bad_rows,
            "message": message, "_order": order}


def findings_from(suite_result) -> list[dict]:
    """The findings of one GX suite result (each expectation's ``meta`` names its rule)."""
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
            findings.append(finding(severity, table, column, rule, None,
                                    f"{what}: rule '{rule}' could not be checked: {error}", order))
            continue
        if evr.success:
            continue
        result = evr.result or {}
        if rule == RULE_PROBE_COVERAGE:
            findings.extend(_coverage_findings(result, order))
        elif rule == RULE_TABLE_HAS_ROWS:
            message = f"{table}: table has no rows at all"
            findings.append(finding(severity, table, None, rule, None, message, order))
        elif rule == RULE_ROWS_IN_WINDOW:
            message = f"{table}: no rows in the period's window"
            findings.append(finding(severity, table, None, rule, None, message, order))
        else:
            bad_rows = result.get("unexpected_count")
            if bad_rows is None:  # UnexpectedRowsExpectation
                bad_rows = result.get("observed_value")
            findings.append(finding(severity, table, column, rule, int(bad_rows or 0), None, order))
    return findings


def _coverage_findings(result: Mapping, order: int) -> list[dict]:
    findings = []
    rows = result.get("unexpected_index_list") or []
    for row in rows:
        service, pct = row.get("service"), row.get("coverage_pct")
        entry = finding(
            WARNING, HEALTH_TABLE, "service", RULE_PROBE_COVERAGE, None,
            f"health checks of service '{service}' cover {float(pct):.2f}% of the period's expected "
            f"5-minute probe rounds (minimum {MIN_PROBE_COVERAGE_PCT:g}%)",
            order,
        )
        entry.update(service=service, coverage_pct=float(pct))
        findings.append(entry)
    if not rows:  # GX said "short" but listed no service: still say so
        findings.append(finding(WARNING, HEALTH_TABLE, "service", RULE_PROBE_COVERAGE, None,
                                f"health-check coverage below {MIN_PROBE_COVERAGE_PCT:g}% for some service",
                                order))
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


def merge(findings: list[dict]) -> list[dict]:
    """One entry per rule: a rule checked by two expectations (value + not null) reports the sum
    of their disjoint bad-row counts. Row-rule messages are written here; entries that came with
    a message of their own (table-level, coverage, a check that could not run) stay as they are."""
    merged: dict[tuple, dict] = {}
    for entry in sorted(findings, key=lambda f: f["_order"]):
        key = (entry["table"], entry["column"], entry["rule"], entry["message"])
        if key in merged:
            if entry["bad_rows"] is not None:
                merged[key]["bad_rows"] += entry["bad_rows"]
        else:
            merged[key] = dict(entry)
    out = []
    for entry in merged.values():
        if entry["message"] is None:
            n = entry["bad_rows"]
            verb = "row violates" if n == 1 else "rows violate"
            entry["message"] = f"{entry['table']}.{entry['column']}: {n} {verb} rule '{entry['rule']}'"
        del entry["severity"], entry["_order"]
        out.append(entry)
    return out
