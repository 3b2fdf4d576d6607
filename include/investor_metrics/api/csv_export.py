"""Snapshots as CSV (SPEC section 11: ``GET /metrics?format=csv``), pure functions.

One row per snapshot, in the order given (the API gives them newest first); one column per scalar
of the snapshot, named by its dotted path (``financial.mrr``, ``retention.nrr_12m``). Objects are
walked into, whatever their keys: fixed sections and sections keyed by a name alike
(``segments.by_plan.<plan>.mrr``, ``system_health.services.<service>.uptime_percentage``,
``ai_platform.providers.<provider>.…``), so each plan, service and provider gets its columns.
Lists are left out: ``retention.cohorts``, ``movements.largest``, ``alerts``,
``data_quality.warnings`` (a cell cannot hold a table; the JSON answer has them).

Columns: ``period.start``, ``period.end``, ``period.type`` first, then the union over the rows
in the order of the keys in the snapshots (a key found only in an older row comes after its
siblings of the newer rows), so every row has the same columns and the order depends on the data
only; a value a row does not have is an empty cell. Cells: ``null`` empty, booleans ``true`` /
``false``, numbers as JSON writes them, text as it is, except that text beginning with ``=``,
``+``, ``-``, ``@``, a tab or a carriage return gets a leading ``'`` (OWASP's defence against CSV
injection: a spreadsheet never runs it as a formula); header cells too. Quoting is the ``csv``
module's (RFC 4180: a cell with a comma, a quote or a line break is quoted, quotes doubled), lines
end with CRLF, the text is UTF-8.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator, Sequence

FIRST_COLUMNS = ("period.start", "period.end", "period.type")
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_SCALAR = None  # the tree key marking "this path holds a scalar" (JSON keys are strings)


def scalars(snapshot: dict, prefix: str = "") -> Iterator[tuple[str, object]]:
    """``(dotted path, value)`` of every scalar of ``snapshot`` (lists left out), in key order."""
    for key, value in snapshot.items():
        if isinstance(value, dict):
            yield from scalars(value, f"{prefix}{key}.")
        elif not isinstance(value, list):
            yield f"{prefix}{key}", value


def _insert(tree: dict, snapshot: dict) -> None:
    for key, value in snapshot.items():
        if isinstance(value, list):
            continue
        node = tree.setdefault(key, {})
        if isinstance(value, dict):
            _insert(node, value)
        else:
            node[_SCALAR] = True


def _walk(tree: dict, prefix: str = "") -> Iterator[str]:
    for key, node in tree.items():
        if key is _SCALAR:
            continue
        if _SCALAR in node:
            yield prefix + key
        yield from _walk(node, f"{prefix}{key}.")


def columns(snapshots: Sequence[dict]) -> list[str]:
    """The header: ``FIRST_COLUMNS``, then every other scalar path of the rows, grouped by their
    prefixes in first-seen order."""
    tree: dict = {}
    for snapshot in snapshots:
        _insert(tree, snapshot)
    return [*FIRST_COLUMNS, *(name for name in _walk(tree) if name not in FIRST_COLUMNS)]


def cell(value: object) -> str:
    """One cell's text (see the module docstring)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return json.dumps(value)
    text = str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def csv_text(snapshots: Sequence[dict]) -> str:
    """The CSV document of ``snapshots``: a header and one row each, in the given order."""
    header = columns(snapshots)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([cell(name) for name in header])
    for snapshot in snapshots:
        values = dict(scalars(snapshot))
        writer.writerow([cell(values.get(name)) for name in header])
    return out.getvalue()


def _day(snapshot: dict) -> str:
    period = snapshot.get("period")
    end = period.get("end") if isinstance(period, dict) else None
    return re.sub(r"[^0-9-]", "", str(end or "")[:10]) or "unknown"


def filename(snapshots: Sequence[dict], series: str) -> str:
    """``investor-metrics-<series>-<day>.csv`` of one snapshot, ``…-<oldest>-to-<newest>.csv`` of
    several (UTC days of their period ends; the rows are newest first)."""
    series = re.sub(r"[^a-z_]", "", series) or "snapshots"
    newest, oldest = _day(snapshots[0]), _day(snapshots[-1])
    days = newest if len(snapshots) == 1 else f"{oldest}-to-{newest}"
    return f"investor-metrics-{series.replace('_', '-')}-{days}.csv"
