"""MRR by plan (SPEC 4b ``segments.by_plan``), pure functions.

Section 4's figures computed per (customer, plan) pair, a subscription counting for its own plan:
from the ``depth_plan_mrr`` frame (one row per pair with a subscription active as of ``start`` or
``end``: s, e in twelfths of a cent, and whether the pair had a subscription of that plan ended
before ``start``). Per plan: ``mrr`` (Σ e), ``active_customers`` (pairs with e > 0), ``new_mrr``,
``reactivation_mrr``, ``expansion_mrr``, ``contraction_mrr``, ``churned_mrr``, ``net_new_mrr``
(= Σ e − Σ s exactly) and ``arpa``. A customer who switches plans at one instant is churned on the
old plan and new on the other, so Σ over plans of ``mrr`` and ``net_new_mrr`` equal the totals
exactly (``assert_plan_sums``). A subscription without a plan counts under ``NO_PLAN``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from include.investor_metrics.weekly.depth.movers import movement_kind
from include.investor_metrics.weekly.metrics.revenue import arpa
from include.investor_metrics.weekly.metrics.rounding import dollars

NO_PLAN = "unknown"
KINDS = ("new", "reactivation", "expansion", "contraction", "churned")


@dataclass
class PlanFigures:
    """One plan's exact figures, twelfths of a cent."""

    mrr_start: int = 0
    mrr: int = 0
    active_customers: int = 0
    kinds: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))

    @property
    def net_new(self) -> int:
        k = self.kinds
        return k["new"] + k["reactivation"] + k["expansion"] - k["contraction"] - k["churned"]

    def as_dict(self) -> dict:
        return {
            "mrr": dollars(self.mrr),
            "active_customers": self.active_customers,
            **{f"{kind}_mrr": dollars(self.kinds[kind]) for kind in KINDS},
            "net_new_mrr": dollars(self.net_new),
            "arpa": arpa(self.mrr, self.active_customers),
        }


def plan_figures(plan_mrr: pd.DataFrame) -> dict[str, PlanFigures]:
    """Per plan (sorted by name), the exact figures of its (customer, plan) pairs."""
    figures: dict[str, PlanFigures] = {}
    columns = [plan_mrr[c].tolist() for c in ("plan", "mrr_start_twelfths", "mrr_end_twelfths",
                                              "ended_before_start")]
    for plan, s, e, returning in zip(*columns, strict=True):
        name = NO_PLAN if plan is None or pd.isna(plan) else str(plan)
        s, e = int(s), int(e)
        one = figures.setdefault(name, PlanFigures())
        one.mrr_start += s
        one.mrr += e
        one.active_customers += int(e > 0)
        kind = movement_kind(s, e, bool(returning))
        if kind is not None:
            one.kinds[kind] += {"new": e, "reactivation": e, "expansion": e - s}.get(kind, s - e)
    return dict(sorted(figures.items()))


def assert_plan_sums(figures: dict[str, PlanFigures], mrr_twelfths: int, net_new_mrr_twelfths: int) -> None:
    """Σ over plans of mrr and net_new_mrr equal the totals (exact integers), else AssertionError."""
    mrr = sum(f.mrr for f in figures.values())
    net_new = sum(f.net_new for f in figures.values())
    if mrr != mrr_twelfths or net_new != net_new_mrr_twelfths:
        raise AssertionError(
            f"MRR by plan sums to {mrr} (net new {net_new}), the totals are {mrr_twelfths} "
            f"(net new {net_new_mrr_twelfths}) twelfths of a cent"
        )


def by_plan(figures: dict[str, PlanFigures]) -> dict[str, dict]:
    return {plan: one.as_dict() for plan, one in figures.items()}
