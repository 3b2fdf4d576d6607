"""The Data Docs views (include/investor_metrics/validation/data_docs.py): templates compiled
once into the Jinja bytecode cache, and a report still written without a usable cache directory.
"""

from __future__ import annotations

from pathlib import Path

from include.investor_metrics.validation.rules import SOURCE_TABLES
from tests.unit.validation import clean_dataset
from tests.unit.validation.clean_dataset import _validate

# the clean dataset's fixtures (assigned, not imported: a test's argument names them)
shared_clean_db = clean_dataset.shared_clean_db


def test_data_docs_templates_are_compiled_once_into_the_bytecode_cache(
    shared_clean_db, tmp_path, monkeypatch
):
    from include.investor_metrics.validation import data_docs as gx_docs

    cache = tmp_path / "jinja"
    monkeypatch.setenv(gx_docs.CACHE_DIR_ENV, str(cache))
    monkeypatch.setattr(gx_docs, "_cache", None)
    monkeypatch.setattr(gx_docs, "_cache_failed", False)

    first = _validate(shared_clean_db, report_dir=tmp_path / "reports")

    compiled = sorted(p.name for p in cache.iterdir())
    assert len(compiled) > 10  # the page, index and component templates GX renders
    assert all(name.endswith(".cache") for name in compiled)  # no half-written temporary file left
    stamps = {p.name: p.stat().st_mtime_ns for p in cache.iterdir()}
    second = _validate(shared_clean_db, report_dir=tmp_path / "reports")
    # the second report loaded every template from the cache: nothing compiled or written again
    assert {p.name: p.stat().st_mtime_ns for p in cache.iterdir()} == stamps
    assert first.report_path == second.report_path
    html = Path(second.report_path).read_text()
    for table in SOURCE_TABLES:
        assert table in html


def test_data_docs_without_a_usable_cache_directory_are_still_written(
    shared_clean_db, tmp_path, monkeypatch, caplog
):
    from include.investor_metrics.validation import data_docs as gx_docs

    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("")
    monkeypatch.setenv(gx_docs.CACHE_DIR_ENV, str(not_a_dir / "jinja"))
    monkeypatch.setattr(gx_docs, "_cache", None)
    monkeypatch.setattr(gx_docs, "_cache_failed", False)

    result = _validate(shared_clean_db, report_dir=tmp_path / "reports")

    assert Path(result.report_path).is_file()
    assert "no Jinja bytecode cache" in caplog.text
