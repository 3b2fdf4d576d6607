"""SQL as the text GX is given: GX takes a query (a query asset, a SQL expectation) as text,
without bind parameters, so the values are rendered as PostgreSQL literals by SQLAlchemy's
dialect (quoted and escaped), never pasted in by hand. Shared by the rules (the customer-exists
query), the screening SQL and the runner's query assets.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from typing import Any

from include.investor_metrics.db import read_sql
from include.investor_metrics.period import to_utc


@functools.cache
def pg_dialect():
    """SQLAlchemy's PostgreSQL dialect, for rendering the SQL text GX is given."""
    from sqlalchemy.dialects import postgresql

    return postgresql.dialect()


def render(clause) -> str:
    """A SQLAlchemy clause as PostgreSQL text, its values inlined as literals."""
    return str(clause.compile(dialect=pg_dialect(), compile_kwargs={"literal_binds": True}))


def quote(identifier: str) -> str:
    return pg_dialect().identifier_preparer.quote(identifier)


def sql_literal(value: Any) -> str:
    """``value`` as a PostgreSQL literal (SQLAlchemy's rendering: quoted and escaped)."""
    import sqlalchemy as sa

    return render(sa.literal(value, sa.DateTime(timezone=True) if hasattr(value, "tzinfo") else None))


def _strip_comments(sql: str) -> str:
    """GX wants a query asset to start with SELECT: drop the file's leading comment lines."""
    return "\n".join(line for line in sql.splitlines() if not line.lstrip().startswith("--")).strip()


def asset_query(sql_file: str, params: Mapping[str, Any]) -> str:
    """``include/investor_metrics/sql/<sql_file>`` with its bind parameters rendered as SQL
    literals by SQLAlchemy's PostgreSQL dialect (GX takes a query asset as text, without
    parameters)."""
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
    return render(text.bindparams(*binds))


def source_tables_query(tables: Iterable[str]) -> str:
    """One row: for each existing source table, a boolean column named after it, true when the
    table has at least one row (an EXISTS probe: no full count of a large table)."""
    import sqlalchemy as sa

    probes = [sa.exists(sa.select(sa.literal_column("1")).select_from(sa.table(t))).label(t) for t in tables]
    return render(sa.select(*probes))
