"""The investor API's request parameters: their bounds, their OpenAPI schemas, their parsing.

What the OpenAPI document says of each parameter is exactly what the API accepts (a schema-driven
fuzzer finds no value the schema allows that the API refuses, nor the reverse). A refused instant
is ``include.investor_metrics.period``'s ``InstantError``; any other refused parameter is a
``ParameterError``. Both carry ``parameter`` and a message that names it and the expected format
(422).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StrictBool, WithJsonSchema

from include.investor_metrics import period
from include.investor_metrics.contract import SEVERITIES

HISTORY_MAX = 520  # ten years of weeks
ALERTS_LIMIT_DEFAULT = 100
ALERTS_LIMIT_MAX = 1000

INSTANT_SCHEMA = {
    "type": "string", "format": "date-time", "pattern": period.INSTANT_PATTERN,
    "description": "ISO 8601 / RFC 3339 with seconds and a UTC offset (`Z` or `±hh:mm`), fractions of "
                   "a second up to 6 digits, years 1970–9999 in UTC (on 1970-01-01 and 9999-12-31: `Z`)",
    "examples": ["2026-11-22T09:00:00Z", "2026-11-22T10:00:00+01:00"],
}
Instant = Annotated[str, WithJsonSchema(INSTANT_SCHEMA)]
SEVERITY_PATTERN = "^(?:{0})(?:,(?:{0}))*$".format("|".join(SEVERITIES))
SeverityList = Annotated[str, WithJsonSchema({
    "type": "string", "pattern": SEVERITY_PATTERN,
    "description": "One severity or several separated by commas (no spaces): " + ", ".join(SEVERITIES),
    "examples": ["critical", "critical,high"],
})]


class ParameterError(ValueError):
    """A request parameter other than an instant is malformed; ``str()`` names it and the
    expected format."""

    def __init__(self, parameter: str, message: str):
        super().__init__(message)
        self.parameter = parameter


class CollectRequest(BaseModel):
    # The optional JSON body of ``POST /metrics/collect`` (a docstring would enter the OpenAPI document).
    model_config = ConfigDict(extra="forbid")

    period_end: Instant | None = Field(
        default=None,
        description="The report covers the 7 days before this instant (at most 5 minutes from now: "
                    "a later one is refused with 422, a rule JSON Schema cannot state). Default: now, "
                    "to the second.",
    )
    send_email: StrictBool = Field(default=False, description="Also e-mail the report to the investors")


def optional_instant(raw: str | None, parameter: str) -> datetime | None:
    """``period.parse_instant`` (an aware UTC datetime, or an ``InstantError`` naming
    ``parameter``) of a parameter that may be absent: None when it is."""
    return None if raw is None else period.parse_instant(raw, parameter)


def parse_severities(values: Iterable[str] | None) -> tuple[str, ...] | None:
    """``severity`` given once or more, each one severity or several separated by commas
    (``high,critical``; lower case, no spaces: what the OpenAPI document's pattern says), as a
    tuple of distinct severities in the given order; None when not given."""
    if values is None:
        return None
    found: list[str] = []
    for value in values:
        for item in value.split(","):
            if item not in SEVERITIES:
                shown = repr(item) if len(item) <= 40 else repr(item[:30]) + f"… ({len(item)} characters)"
                raise ParameterError(
                    "severity", f"severity must be one of {', '.join(SEVERITIES)} (repeat the parameter "
                    f"or separate values with commas, no spaces), got {shown}"
                )
            if item not in found:
                found.append(item)
    return tuple(found) or None
