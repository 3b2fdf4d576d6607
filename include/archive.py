"""The snapshot archive (SPEC section 7): JSON files in ``INVESTOR_ARCHIVE_DIR``.

- ``metrics_YYYY-MM-DD_HH-MM-SS.json``: one per period, named by its end in UTC; a rerun rewrites it.
- ``metrics_snapshot.json``: the snapshot with the latest period end, whatever order runs finish in.

Files go through Airflow's ``ObjectStoragePath``, so ``s3://bucket/prefix`` (or any fsspec URL)
works by configuration. Writes are atomic: on a local disk a temporary file in the same folder is
renamed over the target (``os.replace``); on an object store a single PUT is already all-or-nothing.
The latest pointer is decided by the metrics store, under a PostgreSQL advisory lock (``store.py``),
so parallel backfill runs can neither tear it nor move it backwards.
"""

from __future__ import annotations

import json
import os
import secrets
from datetime import datetime

from include.period import to_utc

LATEST_NAME = "metrics_snapshot.json"
ALERT_HISTORY_NAME = "alert_history.json"
LOCAL_PROTOCOLS = {"file", "local", ""}


def archive_path(location: str):
    """An ``ObjectStoragePath`` for a local folder or an fsspec URL."""
    from airflow.sdk import ObjectStoragePath

    if "://" not in location:
        location = "file://" + os.path.abspath(location)
    return ObjectStoragePath(location)


def period_file_name(period_end: datetime) -> str:
    return f"metrics_{to_utc(period_end):%Y-%m-%d_%H-%M-%S}.json"


def dumps(document) -> bytes:
    return (json.dumps(document, indent=2, sort_keys=False, ensure_ascii=False) + "\n").encode()


def write_atomic(target, payload: bytes) -> None:
    """Write ``payload`` to ``target`` (an ObjectStoragePath) so no reader sees a torn file."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.protocol in LOCAL_PROTOCOLS:
        folder = target.parent.path
        tmp = os.path.join(folder, f".{target.name}.{secrets.token_hex(6)}.tmp")
        try:
            with open(tmp, "wb") as fh:
                fh.write(payload)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, target.path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    else:
        target.write_bytes(payload)


def write_period_file(location: str, snapshot: dict, period_end: datetime) -> str:
    target = archive_path(location) / period_file_name(period_end)
    write_atomic(target, dumps(snapshot))
    return str(target)


def write_latest(location: str, snapshot: dict) -> str:
    target = archive_path(location) / LATEST_NAME
    write_atomic(target, dumps(snapshot))
    return str(target)


def read_json(location: str, name: str):
    target = archive_path(location) / name
    if not target.exists():
        return None
    return json.loads(target.read_text())
