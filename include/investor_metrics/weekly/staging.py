"""The run-scoped staging folder of the weekly DAG: where the tasks hand each other their frames
(Parquet) and snapshots (JSON), one folder per DAG run, and its cleanup once older runs are done."""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import shutil
import time

from include.investor_metrics import settings as config

log = logging.getLogger(__name__)

STAGING_RETENTION_DAYS = 7


def staging_root() -> str:
    """``INVESTOR_STAGING_DIR`` (local folder or fsspec URL), default ``.local/staging``. On a
    multi-machine deployment (Celery workers) it must be storage that every worker sees."""
    raw = os.getenv("INVESTOR_STAGING_DIR", "").strip()
    return raw or str(config.PROJECT_ROOT / ".local" / "staging")


def run_staging_dir(context) -> str:
    """The running DAG run's own folder: ``<staging root>/<dag id>/<run id, made path-safe>``."""
    safe_run_id = re.sub(r"[^A-Za-z0-9_.-]+", "_", context["dag_run"].run_id)
    return os.path.join(staging_root(), context["dag_run"].dag_id, safe_run_id)


def local_dir(path: str) -> str:
    """``path`` (a local folder or ``file://`` URL) created if missing, as a local path."""
    if "://" in path and not path.startswith("file://"):
        raise NotImplementedError(f"staging on {path.split('://')[0]}:// storage is not supported yet")
    path = path.removeprefix("file://")
    os.makedirs(path, exist_ok=True)
    return path


def write_json_atomic(path: str, document) -> str:
    """Write ``document`` to ``path`` via a temporary file renamed over it: a reader (or a retry)
    sees the whole old file or the whole new one, never a torn one."""
    tmp = f"{path}.{secrets.token_hex(6)}.tmp"
    try:
        with open(tmp, "w") as fh:
            json.dump(document, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def read_staged_json(path: str) -> dict | None:
    """The staged JSON document at ``path``, or None when it is gone."""
    try:
        with open(path.removeprefix("file://")) as fh:
            return json.load(fh)
    except FileNotFoundError:
        return None


def clean_old_staging(context, *, retention_days: float = STAGING_RETENTION_DAYS,
                      now: float | None = None) -> list[str]:
    """Delete the staging folders of this DAG's other runs left untouched for ``retention_days``
    (never the running one's: its tasks may still be retried or cleared). Local staging only."""
    own = run_staging_dir(context)
    if "://" in own and not own.startswith("file://"):
        return []
    own = own.removeprefix("file://")
    parent = os.path.dirname(own)
    cutoff = (time.time() if now is None else now) - retention_days * 86400
    removed = []
    try:
        entries = list(os.scandir(parent))
    except FileNotFoundError:
        return []
    for entry in entries:
        if entry.path == own or not entry.is_dir(follow_symlinks=False):
            continue
        try:
            if entry.stat(follow_symlinks=False).st_mtime < cutoff:
                shutil.rmtree(entry.path)
                removed.append(entry.path)
        except FileNotFoundError:  # another run's archive removed it first
            pass
    if removed:
        log.info("removed %d staging folder(s) older than %s days", len(removed), retention_days)
    return removed
