"""Alert thresholds by configuration (``weekly/alerts/thresholds.py``): defaults, the environment,
the Airflow Variable, and a malformed override named in the error."""

from __future__ import annotations

import importlib.util
import json
import sys

import pytest

from include.investor_metrics.settings import ConfigError
from include.investor_metrics.weekly.alerts import thresholds


def no_variable(_key):
    return None


def test_load_thresholds_defaults():
    assert thresholds.load_thresholds(env={}, get_variable=no_variable) == {
        "uptime_below_target": 99.5, "churn_spike": 2.0, "mrr_growth_below_target": 5.0,
        "api_response_time_above_target": 1000.0, "ai_accuracy_below_target": 90.0,
        "net_revenue_retention_below_target": 100.0, "churn_spike_minimum": 2.0,
    }


def test_load_thresholds_from_the_environment_then_the_variable():
    env = {"INVESTOR_ALERT_UPTIME_BELOW_TARGET": "99.0", "INVESTOR_ALERT_CHURN_SPIKE_MINIMUM": " 3 ",
           "INVESTOR_ALERT_AI_ACCURACY_BELOW_TARGET": ""}
    loaded = thresholds.load_thresholds(env=env, get_variable=no_variable)
    assert (loaded["uptime_below_target"], loaded["churn_spike_minimum"]) == (99.0, 3.0)
    assert loaded["ai_accuracy_below_target"] == 90.0  # empty = unset

    seen = []

    def variable(key):
        seen.append(key)
        return json.dumps({"uptime_below_target": 98.5, "mrr_growth_below_target": 3})

    loaded = thresholds.load_thresholds(env=env, get_variable=variable)
    assert seen == ["investor_alert_thresholds"]
    assert loaded["uptime_below_target"] == 98.5  # the Variable wins over the environment
    assert loaded["mrr_growth_below_target"] == 3.0
    assert loaded["churn_spike_minimum"] == 3.0  # the environment still applies to the rest
    # A Variable read with deserialize_json (a dict already) works too.
    as_dict = thresholds.load_thresholds(env={}, get_variable=lambda _k: {"churn_spike": 3})
    assert as_dict["churn_spike"] == 3.0


def test_the_net_revenue_retention_target_is_configurable_like_the_others():
    env = {"INVESTOR_ALERT_NET_REVENUE_RETENTION_BELOW_TARGET": "95"}
    assert thresholds.load_thresholds(env=env, get_variable=no_variable)[
        "net_revenue_retention_below_target"] == 95.0
    from_variable = thresholds.load_thresholds(
        env=env, get_variable=lambda _k: {"net_revenue_retention_below_target": 90})
    assert from_variable["net_revenue_retention_below_target"] == 90.0


@pytest.mark.parametrize(
    ("env", "variable", "names"),
    [
        ({"INVESTOR_ALERT_UPTIME_BELOW_TARGET": "ninety-nine"}, None, "INVESTOR_ALERT_UPTIME_BELOW_TARGET"),
        ({"INVESTOR_ALERT_MRR_GROWTH_BELOW_TARGET": "nan"}, None, "INVESTOR_ALERT_MRR_GROWTH_BELOW_TARGET"),
        ({}, "{uptime_below_target: 99}", "investor_alert_thresholds"),
        ({}, "[99]", "investor_alert_thresholds"),
        ({}, '{"uptime_below_target": "high"}', "uptime_below_target"),
        ({}, '{"uptime_below_target": true}', "uptime_below_target"),
        ({}, '{"uptime_target": 99}', "uptime_target"),
        ({}, '{"services_degraded": 1}', "services_degraded"),
        ({"INVESTOR_ALERT_CHURN_SPIKE": "-1"}, None, "INVESTOR_ALERT_CHURN_SPIKE"),
    ],
)
def test_a_malformed_override_is_a_clear_error(env, variable, names):
    with pytest.raises(ConfigError, match=names):
        thresholds.load_thresholds(env=env, get_variable=lambda _k: variable)


def test_load_thresholds_outside_a_task_reads_the_environment(monkeypatch):
    monkeypatch.setenv("INVESTOR_ALERT_AI_ACCURACY_BELOW_TARGET", "85")
    monkeypatch.delenv("AIRFLOW_VAR_INVESTOR_ALERT_THRESHOLDS", raising=False)
    assert thresholds.load_thresholds()["ai_accuracy_below_target"] == 85.0


def test_load_thresholds_reads_the_airflow_variable(monkeypatch):
    # The real Airflow path: the Variable from its environment secrets backend, winning over INVESTOR_ALERT_*.
    monkeypatch.setenv("AIRFLOW_VAR_INVESTOR_ALERT_THRESHOLDS", '{"uptime_below_target": 97.5}')
    monkeypatch.setenv("INVESTOR_ALERT_UPTIME_BELOW_TARGET", "99.0")
    assert thresholds.load_thresholds()["uptime_below_target"] == 97.5


def test_importing_the_module_reads_no_variable(monkeypatch):
    from airflow.sdk import Variable

    def refuse(*_args, **_kwargs):
        raise AssertionError("Variable.get called at import time")

    monkeypatch.setattr(Variable, "get", refuse)
    # A separate copy of the module (include.investor_metrics.weekly.alerts.thresholds itself stays
    # as other tests imported it).
    spec = importlib.util.spec_from_file_location("alerts_import_check", thresholds.__file__)
    fresh = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, fresh)  # dataclasses look their module up
    spec.loader.exec_module(fresh)
    assert fresh.DEFAULT_THRESHOLDS == thresholds.DEFAULT_THRESHOLDS

