"""The data-quality report (include/investor_metrics/validation/reports.py): the Data Docs of a
period in its own folder, replaced by a rerun, one result per asset, not world-readable.
"""

from __future__ import annotations

from pathlib import Path

from include.investor_metrics.validation.rules import SOURCE_TABLES
from tests.unit.validation import clean_dataset
from tests.unit.validation.clean_dataset import _validate

# the clean dataset's fixtures (assigned, not imported: a test's argument names them)
shared_clean_db = clean_dataset.shared_clean_db
with_bad_rows = clean_dataset.with_bad_rows


def test_report_dir_gets_the_data_docs_of_the_period(shared_clean_db, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # GX must leave nothing in the working directory
    reports = tmp_path / "reports"

    first = _validate(shared_clean_db, report_dir=reports)
    again = _validate(shared_clean_db, report_dir=str(reports))

    index = reports / "2026-11-22_09-00-00" / "index.html"
    assert first.report_path == again.report_path == str(index)
    assert index.is_file()
    html = index.read_text()
    for table in SOURCE_TABLES:
        assert table in html
    assert "postgresql" not in html  # no connection string in the report
    # Only the period's folder: no build leftovers, no GX project files.
    assert [p.name for p in reports.iterdir()] == ["2026-11-22_09-00-00"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["reports"]
    # A rerun replaces the period's report: one validation run in it.
    runs = {p.parent.name for p in Path(index.parent, "validations").rglob("*.html")}
    assert len(runs) == 1


def test_report_of_a_failing_period_has_one_result_per_asset_with_the_counts(with_bad_rows, tmp_path):
    settings = with_bad_rows(
        "INSERT INTO usage_events VALUES (900001, 1, 1, 'login', '2026-11-16Z'),"
        " (900001, 2, 2, 'login', '2026-11-17Z')"
    )

    result = _validate(settings, report_dir=tmp_path)

    assert not result.success
    validations = Path(result.report_path).parent / "validations"
    pages = {p.relative_to(validations).parts[0]: p for p in validations.rglob("*.html")}
    # The exact pass of usage_events replaced its screening result: one result per asset.
    assert sorted(pages) == sorted([*SOURCE_TABLES, "source_tables", "service_health_checks",
                                    "service_health_coverage"])
    assert len(list(validations.rglob("*.html"))) == len(pages)
    assert "2 unexpected values found" in pages["usage_events"].read_text()


def test_the_data_docs_are_not_world_readable(shared_clean_db, tmp_path):
    import os
    import stat

    reports = tmp_path / "reports"
    old_umask = os.umask(0o022)  # the usual umask: GX alone would write 0755 folders, 0644 files
    try:
        result = _validate(shared_clean_db, report_dir=reports)
    finally:
        os.umask(old_umask)

    modes = {Path(folder): stat.S_IMODE(os.stat(folder).st_mode) for folder, _d, _f in os.walk(reports)}
    files = {Path(folder, name): stat.S_IMODE(os.stat(Path(folder, name)).st_mode)
             for folder, _d, names in os.walk(reports) for name in names}
    assert Path(result.report_path) in files and len(files) > 10
    assert set(modes.values()) == {0o750}, modes
    assert set(files.values()) == {0o640}, {p: oct(m) for p, m in files.items() if m != 0o640}
