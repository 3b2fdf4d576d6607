"""The run-scoped staging folder (``weekly/staging.py``): cleaned up after its retention, never the
running run's."""

from __future__ import annotations

import os
import time
from pathlib import Path

from include.investor_metrics.weekly import staging


def test_old_staging_folders_are_cleaned_never_the_running_ones(tmp_path, monkeypatch):
    monkeypatch.setenv("INVESTOR_STAGING_DIR", str(tmp_path))
    context = {"dag_run": type("R", (), {"run_id": "scheduled__now", "dag_id": "investor_metrics"})()}
    own = Path(staging.run_staging_dir(context))
    old_run, recent_run = own.parent / "scheduled__old", own.parent / "manual__recent"
    for folder in (own, old_run, recent_run):
        (folder / "business").mkdir(parents=True)
    now = time.time()
    ancient = now - 8 * 86400
    for folder in (own, old_run):
        os.utime(folder, (ancient, ancient))
    os.utime(recent_run, (now - 86400, now - 86400))
    assert staging.clean_old_staging(context, now=now) == [str(old_run)]
    assert own.is_dir() and recent_run.is_dir() and not old_run.exists()
