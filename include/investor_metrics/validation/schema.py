"""The source schema, checked from the catalog before any row: each source table exists, with
the columns of SPEC section 3 (``rules.SOURCE_COLUMNS``) of a compatible type. Two catalog
queries; the rows of a table that fails here are not checked (its rules would prove nothing, or
fail on the SQL).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from include.investor_metrics.db import read_sql
from include.investor_metrics.validation.findings import finding
from include.investor_metrics.validation.rules import (
    COLUMN_KINDS,
    FAILURE,
    RULE_COLUMN_EXISTS,
    RULE_COLUMN_TYPE,
    RULE_TABLE_EXISTS,
    SOURCE_COLUMNS,
)


def schema_findings(url: str, tables: Sequence[str]) -> tuple[set[str], list[dict]]:
    """(the tables whose rows can be checked, the failures: tables missing, columns missing or
    of an incompatible type)."""
    present = existing_tables(url, tables)
    findings = [finding(FAILURE, table, None, RULE_TABLE_EXISTS, None, f"{table}: table does not exist")
                for table in tables if table not in present]
    findings += column_findings(_source_columns(url, sorted(present)))
    return present - {entry["table"] for entry in findings}, findings


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
                findings.append(finding(FAILURE, table, column, RULE_COLUMN_EXISTS, None,
                                        f"{table}.{column}: column does not exist (expected {expected})"))
            elif actual not in allowed:
                findings.append(finding(FAILURE, table, column, RULE_COLUMN_TYPE, None,
                                        f"{table}.{column}: column type is {actual}, expected {expected}"))
    return findings


def existing_tables(url: str, names: Sequence[str]) -> set[str]:
    import sqlalchemy as sa

    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.text(read_sql("validation/existing_tables.sql")), {"names": list(names)})
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
            for table, column, data_type in conn.execute(sa.text(read_sql("validation/source_columns.sql")),
                                                         {"names": list(tables)}):
                found[table][column] = data_type
    finally:
        engine.dispose()
    return found
