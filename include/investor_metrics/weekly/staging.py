"""The run-scoped staging area of the weekly DAG: where the tasks hand each other their frames
(Parquet) and snapshots (JSON), one folder per DAG run, and its cleanup once older runs are done.

``INVESTOR_STAGING_DIR`` is a local folder (the default, ``.local/staging``: one machine) or an
object-store URL (``s3://bucket/prefix``: Celery workers on hosts that share no disk, SPEC 13); both
go through ``include.investor_metrics.storage``. Only paths travel through XCom. A run's folder is
``<root>/<dag id>/<run id>``: a retry or a clear of any task finds its inputs again, two runs never
share a file. Folders of other runs untouched for ``STAGING_RETENTION_DAYS`` are deleted after each
archive, never the running run's.

When a task does not find what an upstream task staged, it says where it looked, on which worker,
and where the upstream task ran (``staged_on``, an XCom the writers push): on local staging that is
the symptom of workers on two hosts, and the message says what to configure instead.
"""

from __future__ import annotations

import json
import logging
import re
import time

from include.investor_metrics import settings as config
from include.investor_metrics import storage

log = logging.getLogger(__name__)

STAGING_RETENTION_DAYS = 7
STAGED_ON_KEY = "staged_on"


class StagedDataMissing(config.ConfigError):
    """What an upstream task staged is not where it should be (fails at once: a retry on the same
    worker would not find it either)."""


def check_storage_settings() -> None:
    """At the start of a run (each extract): ``INVESTOR_ARCHIVE_DIR`` and ``INVESTOR_STAGING_DIR``
    are places whose files can be replaced atomically; a ``ConfigError`` naming the setting fails
    the task at once otherwise (``retry_rules``), before anything is read."""
    config.archive_dir()
    config.staging_dir()


def staging_root() -> str:
    """``INVESTOR_STAGING_DIR`` checked (``settings.staging_dir``)."""
    return config.staging_dir()


def run_staging_dir(context) -> str:
    """The running DAG run's own folder: ``<staging root>/<dag id>/<run id, made path-safe>``."""
    safe_run_id = re.sub(r"[^A-Za-z0-9_.-]+", "_", context["dag_run"].run_id)
    return storage.join(staging_root(), context["dag_run"].dag_id, safe_run_id)


def stage_dir(context, name: str) -> str:
    """The run's folder ``name`` (created on a local disk; object stores need no folders)."""
    folder = storage.join(run_staging_dir(context), name)
    if storage.is_local(folder):
        import os

        os.makedirs(folder, exist_ok=True)
    return folder


def this_host() -> str:
    """The name Airflow records for this worker (``[core] hostname_callable``)."""
    from airflow.sdk.api.client import get_hostname  # what the task runner records as ti.hostname

    return get_hostname()


def record_host(context) -> None:
    """Push where this task staged its data (read back only to explain a missing file)."""
    ti = context.get("ti")
    if ti is not None:
        ti.xcom_push(STAGED_ON_KEY, this_host())


def missing(context, what: str, location: str, producer: str) -> StagedDataMissing:
    """The error for ``what`` (staged by the task ``producer``) not found at ``location``."""
    writer = None
    ti = context.get("ti")
    if ti is not None:
        try:
            writer = ti.xcom_pull(task_ids=producer, key=STAGED_ON_KEY)
        except Exception:  # noqa: BLE001 - only an explanation: never hide the real error
            writer = None
    here = this_host()
    if storage.is_local(location) and writer and writer != here:
        return StagedDataMissing(
            f"{what} staged by {producer} is not at {location} on this worker ({here}): {producer} ran "
            f"on {writer}, and INVESTOR_STAGING_DIR is a local folder, which only that machine sees. "
            "With workers on several hosts, set INVESTOR_STAGING_DIR to an object store every worker "
            "reaches (s3://bucket/prefix, with the connection aws_default; docs/recipes.md, Adding "
            "workers), then clear this run from its extract tasks")
    return StagedDataMissing(
        f"{what} staged by {producer} is not at {location} (this worker: {here}"
        + (f"; {producer} ran on {writer}" if writer else "") + "): it was deleted (staging of runs "
        f"untouched for {STAGING_RETENTION_DAYS} days is cleaned) or never written; clear this run "
        f"from {producer} with its downstream tasks to stage it again")


def staged_frames(context, folder: str, producer: str, required) -> dict:
    """The frames ``producer`` staged in ``folder``; a ``StagedDataMissing`` (fails at once, says
    where ``producer`` ran) when one of ``required`` is not there."""
    from include.investor_metrics.weekly import extract

    frames = extract.read_frames(folder)
    absent = [name for name in required if name not in frames]
    if absent:
        raise missing(context, f"the frame(s) {', '.join(absent)}", folder, producer)
    return frames


def write_json_atomic(path: str, document) -> str:
    """Write ``document`` to ``path`` whole (a reader or a retry sees the whole old file or the
    whole new one, never a torn one)."""
    storage.write_bytes_atomic(path, json.dumps(document).encode())
    return path


def read_staged_json(path: str) -> dict | None:
    """The staged JSON document at ``path``, or None when it is gone."""
    payload = storage.read_bytes(path)
    return None if payload is None else json.loads(payload)


def clean_old_staging(context, *, retention_days: float = STAGING_RETENTION_DAYS,
                      now: float | None = None) -> list[str]:
    """Delete the staging folders of this DAG's other runs left untouched for ``retention_days``
    (never the running one's: its tasks may still be retried or cleared). On an object store a
    folder's age is its newest object's."""
    own = run_staging_dir(context)
    fs, own_path = storage.filesystem(own)
    parent = own_path.rsplit("/", 1)[0]
    cutoff = (time.time() if now is None else now) - retention_days * 86400
    removed = []
    fs.invalidate_cache(parent)  # other runs (other workers) staged since any cached listing
    try:
        entries = fs.ls(parent, detail=True)
    except FileNotFoundError:
        return []
    for entry in entries:
        path = entry["name"].rstrip("/")
        if path == own_path or entry.get("type") != "directory":
            continue
        try:
            if _newest_change(fs, path, entry) < cutoff:
                fs.rm(path, recursive=True)
                removed.append(path)
        except FileNotFoundError:  # another run's archive removed it first
            pass
    if removed:
        log.info("removed %d staging folder(s) older than %s days", len(removed), retention_days)
    return removed


def _newest_change(fs, path: str, entry: dict) -> float:
    """A local folder's mtime; on an object store, the newest ``LastModified`` below it."""
    if "mtime" in entry:  # local: the folder itself (the run's tasks touch it when they stage)
        return float(entry["mtime"])
    newest = 0.0
    for info in fs.find(path, detail=True).values():
        modified = info.get("LastModified") or info.get("last_modified") or info.get("mtime")
        if modified is not None:
            newest = max(newest, modified.timestamp() if hasattr(modified, "timestamp") else float(modified))
    return newest
