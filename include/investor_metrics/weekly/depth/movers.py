"""The largest MRR movements of the period (SPEC 4b ``movements.largest``), pure functions.

Per customer, MRR as of ``start`` (s) vs as of ``end`` (e), in twelfths of a cent; the kind of a
movement is section 4's: ``new`` (s = 0 < e, no subscription of the customer ended before
``start``), ``reactivation`` (s = 0 < e otherwise), ``expansion`` (0 < s < e), ``contraction``
(0 < e < s), ``churned`` (e = 0 < s). ``largest_movements`` lists up to 10 customers with
|e − s| ≠ 0, the largest |e − s| first, ties by ascending ``customer_id``: ``customer_id``,
``name``, ``kind``, ``mrr_start``, ``mrr_end``, ``change`` (e − s, rounded once; dollars).
"""

from __future__ import annotations

import pandas as pd

from include.investor_metrics.weekly.metrics.rounding import dollars

LARGEST_MOVEMENTS = 10


def movement_kind(s: int, e: int, returning: bool) -> str | None:
    """The kind of a movement from ``s`` to ``e`` (None when there is none);
    ``returning``: some subscription ended before start (new vs reactivation)."""
    if s == 0 and e > 0:
        return "reactivation" if returning else "new"
    if 0 < s < e:
        return "expansion"
    if 0 < e < s:
        return "contraction"
    if e == 0 and s > 0:
        return "churned"
    return None


def largest_movements(customers: pd.DataFrame, limit: int = LARGEST_MOVEMENTS) -> list[dict]:
    """From the ``depth_customers`` frame (customer_id, name, ended_before_start,
    mrr_start_twelfths, mrr_end_twelfths)."""
    s = customers["mrr_start_twelfths"].to_numpy(dtype="int64")
    e = customers["mrr_end_twelfths"].to_numpy(dtype="int64")
    moved = pd.DataFrame({"position": range(len(customers)),
                          "customer_id": customers["customer_id"].to_numpy(dtype="int64"),
                          "size": abs(e - s)})
    moved = moved[moved["size"] != 0]
    top = moved.sort_values(["size", "customer_id"], ascending=[False, True], kind="mergesort").head(limit)
    rows = []
    for position in top["position"].tolist():
        row = customers.iloc[position]
        s_, e_ = int(row["mrr_start_twelfths"]), int(row["mrr_end_twelfths"])
        name = row["name"]
        rows.append({
            "customer_id": int(row["customer_id"]),
            "name": None if name is None or pd.isna(name) else str(name),
            "kind": movement_kind(s_, e_, bool(row["ended_before_start"])),
            "mrr_start": dollars(s_),
            "mrr_end": dollars(e_),
            "change": dollars(e_ - s_),
        })
    return rows
