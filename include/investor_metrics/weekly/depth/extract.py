"""The depth extract (SPEC 4b): aggregate queries pushed down to PostgreSQL.

``extract_depth(conn, period)`` runs the three queries of ``include/investor_metrics/sql/depth/``
with named bind parameters (the calendar instants of ``instants.depth_instants``, computed in
Python, bound as timezone-aware UTC datetimes and ``timestamptz[]`` arrays) and returns frames
whose columns and dtypes are fixed even when there are no rows. What leaves the database is one
row per customer, per (customer, plan) or per (cohort, checkpoint); never a subscription row.

- ``depth_customers``: customer_id, name, ended_before_start (bool), mrr_start_twelfths,
  mrr_end_twelfths, mrr_month_ago_twelfths, mrr_year_ago_twelfths (int64: MRR in twelfths of a
  cent as of start, end, end − 1 month, end − 12 months); customers with MRR > 0 as of one of them.
- ``depth_cohorts``: cohort_start (UTC: the cohort month's start), as_of (UTC: the checkpoint),
  customers, active, mrr_twelfths (int64); one row per checkpoint of every cohort, oldest first.
- ``depth_plan_mrr``: customer_id, plan (str; null kept), mrr_start_twelfths, mrr_end_twelfths
  (int64), ended_before_start (bool, per pair): pairs with a subscription active as of start or end.

Money is summed exactly (numeric) in PostgreSQL and sent as bigint; an MRR beyond it is refused
(``MoneyRangeError``), as is a billing interval other than month / year (``ValueError``; validation
rejects both first). A cohort travels as its position in the bound array, mapped back here.
"""

from __future__ import annotations

import pandas as pd

from include.investor_metrics.period import Period
from include.investor_metrics.weekly.depth.instants import DepthInstants, depth_instants
from include.investor_metrics.weekly.extract import run_query
from include.investor_metrics.weekly.metrics.rounding import MoneyRangeError

CUSTOMERS = "depth_customers"
COHORTS = "depth_cohorts"
PLAN_MRR = "depth_plan_mrr"
DEPTH_FRAMES = (CUSTOMERS, COHORTS, PLAN_MRR)

CUSTOMER_MRR = ("mrr_start_twelfths", "mrr_end_twelfths", "mrr_month_ago_twelfths", "mrr_year_ago_twelfths")
CUSTOMERS_COLUMNS = {"customer_id": "int", "name": "str", "ended_before_start": "bool",
                     **dict.fromkeys(CUSTOMER_MRR, "int"), "unknown_interval": "bool"}
COHORTS_COLUMNS = {"cohort": "int", "as_of": "time", "customers": "int", "active": "int",
                   "mrr_twelfths": "int", "unknown_interval": "bool"}
PLAN_MRR_COLUMNS = {"customer_id": "int", "plan": "str", "mrr_start_twelfths": "int",
                    "mrr_end_twelfths": "int", "ended_before_start": "bool", "unknown_interval": "bool"}


def cohort_params(instants: DepthInstants) -> dict:
    """The cohorts and their checkpoints as bind parameters (positions are 1-based, as SQL's)."""
    cohorts = instants.cohorts
    pairs = [(position, point) for position, month in enumerate(cohorts, start=1)
             for point in month.checkpoints]
    return {
        "cohort_starts": [m.start for m in cohorts],
        "cohort_ends": [min(m.next_start, instants.end) for m in cohorts],
        "checkpoint_cohorts": [position for position, _ in pairs],
        "checkpoint_instants": [point for _, point in pairs],
    }


def customer_params(instants: DepthInstants) -> dict:
    """The binds of ``customers.sql`` and ``plan_mrr.sql``: start, end and the two base instants."""
    return {"start": instants.start, "end": instants.end, "month_ago": instants.base_1m,
            "year_ago": instants.base_12m}


def extract_depth(conn, period: Period) -> dict[str, pd.DataFrame]:
    """The three depth frames of ``period`` (see the module docstring)."""
    instants = depth_instants(period)
    bounds = customer_params(instants)
    customers = run_query(conn, "depth/customers.sql", bounds, CUSTOMERS_COLUMNS)
    cohorts = run_query(conn, "depth/cohorts.sql", cohort_params(instants), COHORTS_COLUMNS)
    plan_mrr = run_query(conn, "depth/plan_mrr.sql", bounds, PLAN_MRR_COLUMNS)
    for name, frame in ((CUSTOMERS, customers), (COHORTS, cohorts), (PLAN_MRR, plan_mrr)):
        if frame["unknown_interval"].any():
            raise ValueError(f"{name}: a subscription's billing_interval is not month or year")
    starts = pd.DatetimeIndex([m.start for m in instants.cohorts]).as_unit("us")
    cohorts.insert(0, "cohort_start", starts[cohorts["cohort"].to_numpy(dtype="int64") - 1])
    return {
        CUSTOMERS: _exact(customers.drop(columns="unknown_interval"), *CUSTOMER_MRR),
        COHORTS: _exact(cohorts.drop(columns=["cohort", "unknown_interval"]), "mrr_twelfths"),
        PLAN_MRR: _exact(plan_mrr.drop(columns="unknown_interval"),
                         "mrr_start_twelfths", "mrr_end_twelfths"),
    }


def _exact(frame: pd.DataFrame, *columns: str) -> pd.DataFrame:
    """``columns`` as int64; a null (an MRR the query found beyond bigint) is refused."""
    frame = frame.copy()
    for column in columns:
        if frame[column].isna().any():
            raise MoneyRangeError(f"an MRR ({column}) is beyond int64 twelfths of a cent: "
                                  "check subscriptions.amount_cents")
        frame[column] = frame[column].astype("int64")
    return frame
