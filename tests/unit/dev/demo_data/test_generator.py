"""The dataset's command line (``python -m dev.demo_data.generator``)."""

from __future__ import annotations

from datetime import datetime

from dev.demo_data import generator
from tests.unit.dev.demo_data.helpers import UTC


def test_command_line_loads_then_says_already_loaded(fresh_database, capsys):
    argv = [
        "--dsn",
        fresh_database.dsn(),
        "--end",
        "2026-11-22T09:00:00Z",
        "--span-days",
        "30",
        "--no-progress",
    ]
    assert generator.main(argv) == 0
    out = capsys.readouterr().out
    assert "end: 2026-11-22T09:00:00Z" in out and "Loaded ChatterFix demo dataset" in out
    assert generator.main(argv) == 0
    assert "already loaded" in capsys.readouterr().out
    assert generator.main([*argv, "--outage-week", "2020-01-06"]) == 2
    assert "outage_week" in capsys.readouterr().err


def test_default_end_is_now_floored_to_the_hour():
    now = datetime(2026, 11, 22, 9, 41, 12, 345, tzinfo=UTC)
    assert generator.default_end(now) == datetime(2026, 11, 22, 9, tzinfo=UTC)
