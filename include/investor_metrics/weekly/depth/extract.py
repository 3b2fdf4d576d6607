"""The depth extract (SPEC 4b): aggregate queries pushed down to PostgreSQL.

``extract_depth(conn, period)`` runs the three queries of ``include/investor_metrics/sql/depth/``
with named bind parameters (the calendar instants of ``instants.depth_instants``, computed in
Python, bound as timezone-aware UTC datetimes and as one ``timestamptz[]``) and returns frames
whose columns and dtypes are fixed even when there are no rows. What leaves the database is one
row per (customer, instant), per customer or per (customer, plan); never a subscription row.

- ``depth_customer_mrr``: customer_id, as_of (UTC), mrr_twelfths (int64): the customer's MRR in
  twelfths of a cent as of each instant of ``DepthInstants.all``, customers with MRR > 0 only.
- ``depth_customers``: customer_id, name, first_paid_at (UTC), ended_before_start (bool): the
  customers first paid in [oldest cohort month start, end) and those with MRR > 0 as of start or end.
- ``depth_plan_mrr``: customer_id, plan (str; null kept), mrr_start_twelfths, mrr_end_twelfths
  (int64), ended_before_start (bool, per pair): pairs with a subscription active as of start or end.

Money is summed exactly (numeric) in PostgreSQL and sent as bigint; an MRR beyond it is refused
(``MoneyRangeError``), as is a billing interval other than month / year (``ValueError``; validation
rejects both first). The instants travel as their position in the bound array, mapped back here.
"""

from __future__ import annotations

import pandas as pd

from include.investor_metrics.period import Period
from include.investor_metrics.weekly.depth.instants import depth_instants
from include.investor_metrics.weekly.extract import run_query
from include.investor_metrics.weekly.metrics import MoneyRangeError

CUSTOMER_MRR = "depth_customer_mrr"
CUSTOMERS = "depth_customers"
PLAN_MRR = "depth_plan_mrr"
DEPTH_FRAMES = (CUSTOMER_MRR, CUSTOMERS, PLAN_MRR)

CUSTOMER_MRR_COLUMNS = {"customer_id": "int", "instant": "int", "mrr_twelfths": "int",
                        "unknown_interval": "bool"}
CUSTOMERS_COLUMNS = {"customer_id": "int", "name": "str", "first_paid_at": "time",
                     "ended_before_start": "bool"}
PLAN_MRR_COLUMNS = {"customer_id": "int", "plan": "str", "mrr_start_twelfths": "int",
                    "mrr_end_twelfths": "int", "ended_before_start": "bool", "unknown_interval": "bool"}


def extract_depth(conn, period: Period) -> dict[str, pd.DataFrame]:
    """The three depth frames of ``period`` (see the module docstring)."""
    instants = depth_instants(period)
    bounds = {"start": instants.start, "end": instants.end, "cohorts_from": instants.cohorts_from}
    bound = instants.all()
    customer_mrr = run_query(conn, "depth/customer_mrr.sql", {"instants": bound}, CUSTOMER_MRR_COLUMNS)
    customers = run_query(conn, "depth/customers.sql", bounds, CUSTOMERS_COLUMNS)
    plan_mrr = run_query(conn, "depth/plan_mrr.sql", bounds, PLAN_MRR_COLUMNS)
    for name, frame in ((CUSTOMER_MRR, customer_mrr), (PLAN_MRR, plan_mrr)):
        if frame["unknown_interval"].any():
            raise ValueError(f"{name}: a subscription's billing_interval is not month or year")
    positions = customer_mrr["instant"].to_numpy(dtype="int64") - 1  # SQL's 1-based ordinality
    as_of = pd.DatetimeIndex(bound).as_unit("us")[positions]
    customer_mrr = pd.DataFrame({"customer_id": customer_mrr["customer_id"], "as_of": as_of,
                                 "mrr_twelfths": customer_mrr["mrr_twelfths"]})
    return {
        CUSTOMER_MRR: _exact(customer_mrr, "mrr_twelfths"),
        CUSTOMERS: customers,
        PLAN_MRR: _exact(plan_mrr.drop(columns="unknown_interval"),
                         "mrr_start_twelfths", "mrr_end_twelfths"),
    }


def _exact(frame: pd.DataFrame, *columns: str) -> pd.DataFrame:
    """``columns`` as int64; a null (an MRR the query found beyond bigint) is refused."""
    frame = frame.copy()
    for column in columns:
        if frame[column].isna().any():
            raise MoneyRangeError(f"a customer's MRR ({column}) is beyond int64 twelfths of a cent: "
                                  "check subscriptions.amount_cents")
        frame[column] = frame[column].astype("int64")
    return frame
