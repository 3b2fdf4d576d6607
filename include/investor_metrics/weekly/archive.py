"""The snapshot archive (SPEC section 7): JSON files in ``INVESTOR_ARCHIVE_DIR``.

- ``metrics_YYYY-MM-DD_HH-MM-SS.json``: one per weekly period (scheduled or backfill), named by its
  end in UTC; a rerun rewrites it. ``on_demand/metrics_YYYY-MM-DD_HH-MM-SS.json``: one per on-demand
  report, apart from the weekly series (SPEC 2).
- ``metrics_snapshot.json``: the snapshot with the latest period end of either series, whatever order
  runs finish in (its ``period.type`` says which kind it is).

Files go through ``include.investor_metrics.storage`` (Airflow's ``ObjectStoragePath``), so
``s3://bucket/prefix`` works by configuration, its connection the Airflow way (``aws_default``).
Writes are atomic: on a local disk a temporary file in the same folder is renamed over the target
(``os.replace``); on an object store a single PUT is already all-or-nothing. A URL whose file system
cannot do either was refused by ``settings.archive_dir()``.
Which snapshot is the latest is decided by the metrics store (``snapshots.publish_committed``),
which hands these writers its committed rows (docs/adr/publish-from-the-store.md).

Not world-readable: on a local disk files are created 0640 and the folders this module creates (and
the archive folder itself) are set to 0750.
"""

from __future__ import annotations

import json
import os
from datetime import datetime

from include.investor_metrics import storage
from include.investor_metrics.period import to_utc
from include.investor_metrics.weekly.series import checked_series, series_of

LATEST_NAME = "metrics_snapshot.json"
ALERT_HISTORY_NAME = "alert_history.json"
ON_DEMAND_DIR = "on_demand"
LOCAL_PROTOCOLS = storage.LOCAL_PROTOCOLS
FILE_MODE = storage.FILE_MODE
DIR_MODE = 0o750


def archive_path(location: str):
    """An ``ObjectStoragePath`` for a local folder or an object-store URL (with its connection)."""
    return storage.storage_path(location)


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
        _make_private_dirs(target.parent.path)
        storage.write_bytes_atomic(target.path, payload, mode=FILE_MODE)
        return
    try:
        target.fs.pipe_file(target.path, payload)  # one PUT: the object appears whole
    except FileNotFoundError as exc:  # s3fs: NoSuchBucket
        from include.investor_metrics.settings import ConfigError

        raise ConfigError(f"INVESTOR_ARCHIVE_DIR: cannot write {target} ({exc}): does the bucket "
                          "exist, and may the connection's credentials write to it?") from exc


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
    """The archive file ``name`` parsed, or None when there is none (read from the store itself,
    never from a cached listing)."""
    payload = storage.read_bytes(storage.join(location, name))
    return None if payload is None else json.loads(payload)
