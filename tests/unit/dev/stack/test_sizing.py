"""The demo stack's process counts (``dev/stack/sizing.py``): the formula on small and large machines,
the user's settings winning, a bad setting named, and the counts reaching Airflow's environment."""

from __future__ import annotations

import os

import pytest

from dev.stack import sizing
from dev.stack.env import Stack
from include.investor_metrics.settings import ConfigError


@pytest.mark.parametrize(
    ("cpus", "parallelism", "api_workers", "parsing", "backfill"),
    [
        (1, 4, 1, 1, 2),  # the floor: one weekly run's three extracts and the health probe
        (2, 4, 2, 2, 2),  # this project's machine
        (3, 6, 2, 2, 3),
        (8, 16, 2, 2, 3),
        (16, 32, 2, 2, 3),
        (64, 32, 2, 2, 3),  # Airflow's default is the ceiling
    ],
)
def test_the_formula(cpus, parallelism, api_workers, parsing, backfill):
    sizes = sizing.stack_sizes(cpus, {})
    assert (sizes.parallelism, sizes.api_workers, sizes.parsing_processes, sizes.backfill_runs) == (
        parallelism, api_workers, parsing, backfill,
    )
    assert sizes.from_env == frozenset()
    assert sizes.airflow_env() == {
        "AIRFLOW__CORE__PARALLELISM": str(parallelism),
        "AIRFLOW__API__WORKERS": str(api_workers),
        "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": str(parsing),
    }


def test_the_users_settings_win():
    env = {
        "AIRFLOW__CORE__PARALLELISM": "32",
        "AIRFLOW__API__WORKERS": " 3 ",
        "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "1",
        "DEMO_BACKFILL_PARALLELISM": "5",
    }
    sizes = sizing.stack_sizes(2, env)
    counts = (sizes.parallelism, sizes.api_workers, sizes.parsing_processes, sizes.backfill_runs)
    assert counts == (32, 3, 1, 5)
    assert sizes.from_env == set(env)
    assert "parallelism 32 (set)" in sizes.describe()


def test_the_backfill_follows_a_parallelism_the_user_set():
    assert sizing.stack_sizes(2, {"AIRFLOW__CORE__PARALLELISM": "2"}).backfill_runs == 1
    assert sizing.stack_sizes(2, {"AIRFLOW__CORE__PARALLELISM": "32"}).backfill_runs == 3
    sizes = sizing.stack_sizes(2, {"AIRFLOW__CORE__PARALLELISM": "2"})
    assert "parallelism 2 (set)" in sizes.describe() and "backfill runs 1," not in sizes.describe()
    assert sizes.describe().endswith("backfill runs 1")


def test_an_empty_setting_is_unset():
    assert sizing.stack_sizes(2, {"AIRFLOW__CORE__PARALLELISM": " "}).parallelism == 4


@pytest.mark.parametrize("name", ["AIRFLOW__CORE__PARALLELISM", "AIRFLOW__API__WORKERS",
                                  "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES", "DEMO_BACKFILL_PARALLELISM"])
@pytest.mark.parametrize("value", ["0", "-1", "two", "1.5"])
def test_a_bad_setting_names_itself(name, value):
    with pytest.raises(ConfigError, match=f"{name} must be a whole number ≥ 1, got '{value}'"):
        sizing.stack_sizes(2, {name: value})


def test_machine_cpus_is_this_process_affinity():
    assert sizing.machine_cpus() == len(os.sched_getaffinity(0))


def test_the_stack_hands_the_sizes_to_airflow(tmp_path):
    env = {"CFX_STATE_DIR": str(tmp_path), "AIRFLOW__API__WORKERS": "1"}
    airflow = Stack(env).airflow_env()
    expected = sizing.stack_sizes(sizing.machine_cpus(), env)
    assert airflow["AIRFLOW__CORE__PARALLELISM"] == str(expected.parallelism)
    assert airflow["AIRFLOW__API__WORKERS"] == "1"
    assert airflow["AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES"] == str(expected.parsing_processes)
    assert Stack(env).sizes().backfill_runs == expected.backfill_runs
