"""The depth sections of a snapshot (SPEC 4b): ``retention``, ``segments`` and ``movements``.

``depth_sections(period, frames, mrr_twelfths=..., net_new_mrr_twelfths=...)`` takes the frames of
``depth/extract.py`` and the snapshot's exact totals (twelfths of a cent: mrr as of ``end`` and
net new MRR, as ``weekly/metrics.py`` computed them from the weekly extract) and returns plain
JSON-ready dicts to merge into the snapshot. It refuses (``AssertionError``) figures that do not
add up: Σ over plans of ``mrr`` and ``net_new_mrr``, and Σ over customers of the MRR as of
``end`` and of its change since ``start``, must equal the totals exactly.
"""

from __future__ import annotations

import pandas as pd

from include.investor_metrics.period import Period
from include.investor_metrics.weekly.depth.cohorts import cohorts
from include.investor_metrics.weekly.depth.extract import COHORTS, CUSTOMERS, PLAN_MRR
from include.investor_metrics.weekly.depth.instants import depth_instants, exact_sum
from include.investor_metrics.weekly.depth.movers import largest_movements
from include.investor_metrics.weekly.depth.retention import retention_rates
from include.investor_metrics.weekly.depth.segments import assert_plan_sums, by_plan, plan_figures


def assert_customer_sums(customers: pd.DataFrame, mrr_twelfths: int, net_new_mrr_twelfths: int) -> None:
    mrr = exact_sum(customers["mrr_end_twelfths"])
    net_new = mrr - exact_sum(customers["mrr_start_twelfths"])
    if mrr != mrr_twelfths or net_new != net_new_mrr_twelfths:
        raise AssertionError(
            f"per-customer MRR sums to {mrr} (net new {net_new}), the totals are {mrr_twelfths} "
            f"(net new {net_new_mrr_twelfths}) twelfths of a cent"
        )


def depth_sections(
    period: Period, frames: dict[str, pd.DataFrame], *, mrr_twelfths: int, net_new_mrr_twelfths: int
) -> dict:
    """``{"retention": ..., "segments": {"by_plan": ...}, "movements": {"largest": ...}}``."""
    customers = frames[CUSTOMERS]
    assert_customer_sums(customers, mrr_twelfths, net_new_mrr_twelfths)
    figures = plan_figures(frames[PLAN_MRR])
    assert_plan_sums(figures, mrr_twelfths, net_new_mrr_twelfths)
    return {
        "retention": {**retention_rates(customers),
                      "cohorts": cohorts(frames[COHORTS], depth_instants(period))},
        "segments": {"by_plan": by_plan(figures)},
        "movements": {"largest": largest_movements(customers)},
    }
