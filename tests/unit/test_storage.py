"""Files in a local folder or an object store (``include/investor_metrics/storage.py``, SPEC 7 and
13), against a real S3-protocol server on loopback (moto, ``tests/object_store.py``) reached through
an ``aws_default`` connection: what is refused at start, writes that are whole or absent while a
reader polls, concurrent publishers, staging and its cleanup, and the error an operator gets when a
worker does not see what another staged."""

from __future__ import annotations

import json
import threading
import time
from datetime import datetime, timezone
from types import SimpleNamespace

import pytest

from include.investor_metrics import settings as config
from include.investor_metrics import storage
from include.investor_metrics.weekly import archive, staging
from tests.object_store import Files

END = datetime(2026, 11, 22, 9, tzinfo=timezone.utc)


# --------------------------------------------------------------------------- refused at start
@pytest.mark.parametrize("url", ["sftp://files.example/investors", "ftp://files.example/x",
                                 "smb://share/investors", "webdav://dav.example/x", "hdfs://nn:8020/x",
                                 "http://files.example/x", "memory://investors"])
@pytest.mark.parametrize("setting", ["INVESTOR_ARCHIVE_DIR", "INVESTOR_STAGING_DIR"])
def test_a_file_system_without_atomic_replace_is_refused_naming_setting_url_and_why(setting, url):
    read = config.archive_dir if setting == "INVESTOR_ARCHIVE_DIR" else config.staging_dir
    with pytest.raises(config.ConfigError) as raised:
        read({setting: url})
    message = str(raised.value)
    assert f"{setting}={url!r} is refused" in message
    assert "cannot replace a file atomically" in message and "s3://bucket/prefix" in message


def test_a_password_in_the_url_is_refused_and_not_repeated():
    with pytest.raises(config.ConfigError, match="INVESTOR_ARCHIVE_DIR carries a password") as raised:
        config.archive_dir({"INVESTOR_ARCHIVE_DIR": "s3://AKIA:topsecret@bucket/investors"})
    assert "topsecret" not in str(raised.value) and "AKIA" not in str(raised.value)


def test_an_object_store_url_needs_a_bucket_and_its_file_system():
    with pytest.raises(config.ConfigError, match="names no bucket"):
        config.staging_dir({"INVESTOR_STAGING_DIR": "s3:///staging"})
    with pytest.raises(config.ConfigError, match="needs the Google provider with gcsfs"):
        config.archive_dir({"INVESTOR_ARCHIVE_DIR": "gs://bucket/investors"})


def test_accepted_locations(tmp_path):
    assert config.archive_dir({"INVESTOR_ARCHIVE_DIR": "s3://bucket/investors/"}) == "s3://bucket/investors"
    assert config.staging_dir({"INVESTOR_STAGING_DIR": f"file://{tmp_path}/s"}) == str(tmp_path / "s")
    assert config.staging_dir({}) == str(config.PROJECT_ROOT / ".local" / "staging")
    assert config.storage_conn_id("s3", {}) == "aws_default"
    assert config.storage_conn_id("s3a", {"INVESTOR_STORAGE_CONN_ID": "minio"}) == "minio"
    assert config.storage_conn_id("file", {}) is None


def test_the_connection_is_the_urls_own_or_the_setting(s3_server, s3_bucket, monkeypatch):
    assert storage.storage_path(f"s3://{s3_bucket}/x").conn_id == "aws_default"
    assert storage.storage_path(f"s3://other_conn@{s3_bucket}/x").conn_id == "other_conn"
    monkeypatch.setenv("INVESTOR_STORAGE_CONN_ID", "archive_store")
    assert storage.storage_path(f"s3://{s3_bucket}/x").conn_id == "archive_store"


# --------------------------------------------------------------------------- the archive on S3
def test_archive_files_on_s3(s3_server, s3_bucket):
    location = f"s3://{s3_bucket}/investors"
    snapshot = {"timestamp": "2026-11-22T09:00:00Z", "period": {"type": "weekly"}, "financial": {"mrr": 1.0}}
    written = archive.write_period_file(location, snapshot, END)
    archive.write_latest(location, snapshot)
    files = Files(location, s3_server)
    assert written == f"s3://aws_default@{s3_bucket}/investors/metrics_2026-11-22_09-00-00.json"
    assert files.read("metrics_2026-11-22_09-00-00.json") == snapshot
    assert files.read_bytes("metrics_snapshot.json") == archive.dumps(snapshot)
    assert archive.read_json(location, "metrics_snapshot.json") == snapshot
    assert archive.read_json(location, "nothing.json") is None
    # private: no ACL grant beyond the bucket owner
    grants = s3_server.client().get_object_acl(Bucket=s3_bucket, Key="investors/metrics_snapshot.json")
    assert [g["Permission"] for g in grants["Grants"]] == ["FULL_CONTROL"]


def test_a_missing_bucket_is_a_config_error_naming_the_setting(s3_server, s3_bucket):
    with pytest.raises(config.ConfigError, match="INVESTOR_ARCHIVE_DIR: cannot write .*bucket"):
        archive.write_latest(f"s3://{s3_bucket}-gone/investors", {"x": 1})


def test_a_reader_never_sees_a_torn_latest_file_while_it_is_replaced(s3_server, s3_bucket):
    """A writer replaces metrics_snapshot.json 30 times with 1.5 MB documents while a reader reads
    it without pause (boto3, not the project's code): every read is one whole version."""
    location = f"s3://{s3_bucket}/investors"
    versions = [{"version": k, "padding": f"{k:03d}" * 500_000} for k in range(30)]
    archive.write_latest(location, versions[0])
    files, seen, errors = Files(location, s3_server), set(), []
    done = threading.Event()

    def read_loop():
        while not done.is_set():
            body = files.read_bytes("metrics_snapshot.json")
            try:
                document = json.loads(body)
                assert document == versions[document["version"]]
                seen.add(document["version"])
            except (ValueError, AssertionError, KeyError) as exc:  # a torn or mixed object
                errors.append(f"{type(exc).__name__}: {len(body)} bytes")

    reader = threading.Thread(target=read_loop)
    reader.start()
    try:
        for document in versions[1:]:
            archive.write_latest(location, document)
    finally:
        done.set()
        reader.join(30)
    assert errors == []
    assert len(seen) > 1, "the reader must have overlapped the writes"
    assert files.read("metrics_snapshot.json") == versions[-1]


# --------------------------------------------------------------------------- staging on S3
def _context(run_id: str, ti=None) -> dict:
    return {"dag_run": SimpleNamespace(run_id=run_id, dag_id="investor_metrics"), "ti": ti}


def test_frames_staged_on_s3_come_back_equal(s3_server, s3_bucket, monkeypatch):
    import pandas as pd

    from include.investor_metrics.weekly import extract

    monkeypatch.setenv("INVESTOR_STAGING_DIR", f"s3://{s3_bucket}/staging")
    folder = staging.stage_dir(_context("scheduled__2026-11-22T09:00:00+00:00"), "business")
    run_folder = "investor_metrics/scheduled__2026-11-22T09_00_00_00_00"
    assert folder == f"s3://{s3_bucket}/staging/{run_folder}/business"
    when = pd.to_datetime(["2026-11-15", "2026-11-16"], utc=True)
    frames = {"a": pd.DataFrame({"x": [1, 2], "when": when}), "b": pd.DataFrame({"y": ["é", None]})}
    extract.write_frames(frames, folder)
    back = extract.read_frames(folder)
    assert set(back) == {"a", "b"}
    for name, frame in frames.items():
        pd.testing.assert_frame_equal(back[name], frame)
    assert extract.read_frames(folder + "-none") == {}


def test_old_runs_staging_on_s3_is_cleaned_never_the_running_ones(s3_server, s3_bucket, monkeypatch):
    monkeypatch.setenv("INVESTOR_STAGING_DIR", f"s3://{s3_bucket}/staging")
    own, old = _context("scheduled__now"), _context("scheduled__old")
    for ctx in (own, old):
        staging.write_json_atomic(storage.join(staging.stage_dir(ctx, "ai"), "x.json"), {"k": 1})
    assert staging.clean_old_staging(own) == []  # both fresh
    later = time.time() + 8 * 86400  # a week and a day on: the other run is stale
    removed = staging.clean_old_staging(own, now=later)
    assert removed == [f"{s3_bucket}/staging/investor_metrics/scheduled__old"]
    left = Files(f"s3://{s3_bucket}/staging", s3_server).files(suffix="")
    assert list(left) == ["investor_metrics/scheduled__now/ai/x.json"]


def test_data_staged_on_another_workers_local_disk_names_both_hosts_and_the_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("INVESTOR_STAGING_DIR", str(tmp_path / "staging"))
    pulled = []
    ti = SimpleNamespace(xcom_pull=lambda task_ids, key: pulled.append((task_ids, key)) or "worker-a.example")
    ctx = _context("manual__x", ti)
    folder = str(tmp_path / "staging" / "investor_metrics" / "manual__x" / "ai")
    with pytest.raises(staging.StagedDataMissing) as raised:
        staging.staged_frames(ctx, folder, "extract_ai_metrics", ["ai"])
    message = str(raised.value)
    assert pulled == [("extract_ai_metrics", "staged_on")]
    assert f"not at {folder} on this worker ({staging.this_host()})" in message
    assert "extract_ai_metrics ran on worker-a.example" in message
    assert "set INVESTOR_STAGING_DIR to an object store every worker reaches (s3://bucket/prefix" in message
    # a config error: the retry policy fails the task at once (a retry here would not find it either)
    from include.investor_metrics.retry_rules import BAD_INPUT_FAILS_AT_ONCE

    decision = BAD_INPUT_FAILS_AT_ONCE.evaluate(raised.value, try_number=1, max_tries=4)
    assert "bad input" in str(decision.reason)


def test_staging_gone_on_the_same_host_says_it_was_cleaned(tmp_path, monkeypatch):
    monkeypatch.setenv("INVESTOR_STAGING_DIR", str(tmp_path / "staging"))
    ti = SimpleNamespace(xcom_pull=lambda task_ids, key: staging.this_host())
    error = staging.missing(_context("manual__x", ti), "the computed snapshot", str(tmp_path / "s.json"),
                            "compute_metrics")
    assert "deleted (staging of runs untouched for 7 days is cleaned) or never written" in str(error)
    assert "clear this run from compute_metrics" in str(error)
