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

from include.investor_metrics.weekly.metrics import dollars

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


def largest_movements(
    at_start: pd.Series, at_end: pd.Series, customers: pd.DataFrame, limit: int = LARGEST_MOVEMENTS
) -> list[dict]:
    """``at_start`` / ``at_end``: per-customer MRR (twelfths, index customer_id, > 0 only);
    ``customers``: the ``customers`` frame (customer_id, name, ended_before_start)."""
    ids = at_start.index.union(at_end.index)
    s = at_start.reindex(ids, fill_value=0).astype("int64")
    e = at_end.reindex(ids, fill_value=0).astype("int64")
    change = e - s
    moved = pd.DataFrame({"customer_id": ids.astype("int64"), "s": s.to_numpy(), "e": e.to_numpy(),
                          "size": change.abs().to_numpy()})
    moved = moved[moved["size"] != 0]
    top = moved.sort_values(["size", "customer_id"], ascending=[False, True], kind="mergesort").head(limit)
    info = customers.drop_duplicates("customer_id").set_index("customer_id")
    rows = []
    for customer_id, s_, e_ in zip(top["customer_id"].tolist(), top["s"].tolist(), top["e"].tolist(),
                                   strict=True):
        known = customer_id in info.index
        name = info.at[customer_id, "name"] if known else None
        returning = bool(info.at[customer_id, "ended_before_start"]) if known else False
        rows.append({
            "customer_id": int(customer_id),
            "name": None if name is None or pd.isna(name) else str(name),
            "kind": movement_kind(int(s_), int(e_), returning),
            "mrr_start": dollars(int(s_)),
            "mrr_end": dollars(int(e_)),
            "change": dollars(int(e_) - int(s_)),
        })
    return rows
