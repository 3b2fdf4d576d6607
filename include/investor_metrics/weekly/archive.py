"""The snapshot archive (SPEC section 7): JSON files in ``INVESTOR_ARCHIVE_DIR``.

- ``metrics_YYYY-MM-DD_HH-MM-SS.json``: one per weekly period (scheduled or backfill), named by its
  end in UTC; a rerun rewrites it. ``on_demand/metrics_YYYY-MM-DD_HH-MM-SS.json``: one per on-demand
  report, apart from the weekly series (SPEC 2).
- ``metrics_snapshot.json``: the snapshot with the latest period end of either series, whatever order
  runs finish in (its ``period.type`` says which kind it is).

Files go through Airflow's ``ObjectStoragePath``, so ``s3://bucket/prefix`` (or any fsspec URL)
works by configuration. Writes are atomic: on a local disk a temporary file in the same folder is
renamed over the target (``os.replace``); on an object store a single PUT is already all-or-nothing.
Which snapshot is the latest is decided by the metrics store (``snapshots.publish_committed``),
which hands these writers its committed rows (docs/adr/publish-from-the-store.md).

Not world-readable: on a local disk files are created 0640 and the folders this module creates (and
the archive folder itself) are set to 0750.
"""

from __future__ import annotations

import json
import os
import secrets
from datetime import datetime

from include.investor_metrics.period import to_utc
from include.investor_metrics.weekly.series import checked_series, series_of

LATEST_NAME = "metrics_snapshot.json"
ALERT_HISTORY_NAME = "alert_history.json"
ON_DEMAND_DIR = "on_demand"
LOCAL_PROTOCOLS = {"file", "local", ""}
FILE_MODE = 0o640
DIR_MODE = 0o750


def archive_path(location: str):
    """An ``ObjectStoragePath`` for a local folder or an fsspec URL."""
    from airflow.sdk import ObjectStoragePath

    if "://" not in location:
        location = "file://" + os.path.abspath(location)
    return ObjectStoragePath(location)


def period_file_name(period_end: datetime) -> str:
    return f"metrics_{to_utc(period_end):%Y-%m-%d_%H-%M-%S}.json"


def period_file_relpath(period_end: datetime, series: str = "weekly") -> str:
    """Where a period's file lives in the archive: at the top for a week, under ``on_demand/`` for
    an on-demand report."""
    if checked_series(series) == "weekly":
        return period_file_name(period_end)
    return f"{ON_DEMAND_DIR}/{period_file_name(period_end)}"


def dumps(document) -> bytes:
    return (json.dumps(document, indent=2, sort_keys=False, ensure_ascii=False) + "\n").encode()


def write_atomic(target, payload: bytes) -> None:
    """Write ``payload`` to ``target`` (an ObjectStoragePath) so no reader sees a torn file."""
    if target.protocol in LOCAL_PROTOCOLS:
        folder = target.parent.path
        _make_private_dirs(folder)
        tmp = os.path.join(folder, f".{target.name}.{secrets.token_hex(6)}.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
            os.fchmod(fd, FILE_MODE)  # whatever the umask: group-readable, never world-readable
            with os.fdopen(fd, "wb") as fh:
                fh.write(payload)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, target.path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    else:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(payload)


def _make_private_dirs(folder: str) -> None:
    """Create ``folder`` (and missing parents) 0750; an existing archive folder is set 0750 too
    when this process owns it."""
    missing = []
    path = os.path.abspath(folder)
    while not os.path.isdir(path):
        missing.append(path)
        path = os.path.dirname(path)
    os.makedirs(folder, mode=DIR_MODE, exist_ok=True)
    for created in [*missing, os.path.abspath(folder)]:
        try:
            if os.stat(created).st_mode & 0o7777 != DIR_MODE:
                os.chmod(created, DIR_MODE)
        except PermissionError:  # not ours (e.g. a shared mount): leave it as its owner set it
            pass


def write_period_file(location: str, snapshot: dict, period_end: datetime, *,
                      series: str | None = None) -> str:
    """Write a period's file (``series`` default: from the snapshot's period type)."""
    if series is None:
        series = series_of(snapshot["period"]["type"])
    target = archive_path(location) / period_file_relpath(period_end, series)
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
