"""Exact money and rounding: the one place numbers become reported values.

Money is computed as integers of *twelfths of a cent* (``revenue.py``) and becomes dollars only
here, rounded to cents half away from zero (``ROUND_HALF_UP``). A dollar figure that a JSON number
(a float) cannot carry to the cent (beyond ~$10^13) is refused with ``MoneyRangeError``, never
rounded silently; the validation step's ceiling on ``amount_cents`` keeps real data far below that.
Percentages and ratios are computed exactly (fractions) and rounded once, the same way, to 2
decimals; a rate whose denominator is 0 is ``None``.
"""

from __future__ import annotations

import math
from decimal import Decimal
from fractions import Fraction

TWELFTHS_PER_DOLLAR = 12 * 100


class MoneyRangeError(ValueError):
    """A money figure too large to be reported exactly to the cent (SPEC section 5)."""


def round_half_up(value: Fraction | int, places: int = 2) -> float:
    """Exact ``value`` rounded to ``places`` decimals, halves away from zero, as a float."""
    return float(_half_up(value, places))


def _half_up(value: Fraction | int, places: int) -> Decimal:
    scaled = Fraction(value) * 10**places
    units = math.floor(abs(scaled) + Fraction(1, 2))
    return Decimal(units if scaled >= 0 else -units).scaleb(-places)


def dollars(twelfths: int) -> float:
    """Twelfths of a cent → dollars rounded to cents; ``MoneyRangeError`` when the float that
    carries it into the snapshot (JSON) would not say the exact cents (beyond ~$10^13)."""
    exact = _half_up(Fraction(int(twelfths), TWELFTHS_PER_DOLLAR), 2)
    value = float(exact)
    if Decimal(repr(value)) != exact:
        raise MoneyRangeError(
            f"a money figure of {exact} dollars cannot be reported exactly to the cent (a JSON number "
            f"would say {value!r}): check subscriptions.amount_cents"
        )
    return value


def percentage(numerator, denominator) -> float | None:
    """``numerator / denominator × 100`` to 2 decimals; None when the denominator is 0."""
    if denominator == 0:
        return None
    return round_half_up(Fraction(numerator) * 100 / Fraction(denominator))
