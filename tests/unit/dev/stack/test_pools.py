"""The run command's pool: ``airflow pools set`` for real, on the test session's Airflow metadata
database (SQLite in its AIRFLOW_HOME)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from dev.stack import pools
from include.investor_metrics.contract import SOURCE_POOL
from include.investor_metrics.settings import ConfigError


def test_the_slots_setting():
    assert pools.source_pool_slots({}) == pools.DEFAULT_SLOTS == 4
    assert pools.source_pool_slots({"INVESTOR_SOURCE_POOL_SLOTS": " 2 "}) == 2
    for bad in ("0", "two", "1.5"):
        with pytest.raises(ConfigError, match="INVESTOR_SOURCE_POOL_SLOTS must be an integer >= 1"):
            pools.source_pool_slots({"INVESTOR_SOURCE_POOL_SLOTS": bad})


def test_the_run_command_creates_and_resizes_the_pool(tmp_path):
    from airflow.models.pool import Pool

    subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], check=True, capture_output=True)
    env = {**os.environ, "INVESTOR_SOURCE_POOL_SLOTS": "3"}
    with open(tmp_path / "pools.log", "ab") as log:
        assert pools.create_source_pool(env, log, timeout=120) == 3
        assert Pool.get_pool(SOURCE_POOL).slots == 3
        assert pools.create_source_pool({**env, "INVESTOR_SOURCE_POOL_SLOTS": "5"}, log, timeout=120) == 5
    pool = Pool.get_pool(SOURCE_POOL)
    assert (pool.slots, pool.description) == (5, pools.DESCRIPTION)


def test_a_pool_it_cannot_create_stops_the_run_command_naming_it(tmp_path):
    env = {**os.environ, "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{tmp_path}/no/such/dir/airflow.db"}
    with open(tmp_path / "pools.log", "ab") as log, pytest.raises(ConfigError) as raised:
        pools.create_source_pool(env, log, timeout=120)
    assert f"could not create the Airflow pool {SOURCE_POOL!r} (4 slots)" in str(raised.value)
    assert str(tmp_path / "pools.log") in str(raised.value)
