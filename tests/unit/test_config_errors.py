"""Malformed settings (SPEC section 10): each a ConfigError whose message names the variable, and
in a task body a failure at once, without retries (AirflowFailException)."""

from __future__ import annotations

from datetime import datetime, timezone
from types import SimpleNamespace

import pytest

from include.investor_metrics import settings as config

# (setting, value, how it is read, words the message must hold)
MALFORMED = [
    ("INVESTOR_EMAILS", "a@b.com,,not-an-address", config.investor_recipients,
     "INVESTOR_EMAILS has malformed address(es): not-an-address"),
    ("INVESTOR_EMAILS", " , ", config.investor_recipients, "INVESTOR_EMAILS is not set"),
    ("DATA_TEAM_EMAILS", "data team", config.data_team_recipients,
     "DATA_TEAM_EMAILS has malformed address(es)"),
    ("SMTP_PORT", "abc", config.smtp_settings_from_env,
     "SMTP_PORT must be an integer port number, got 'abc'"),
    ("SMTP_PORT", "0", config.smtp_settings_from_env, "SMTP_PORT must be between 1 and 65535, got 0"),
    ("SMTP_PORT", "70000", config.smtp_settings_from_env, "SMTP_PORT must be between 1 and 65535, got 70000"),
    ("INVESTOR_TIMEZONE", "Mars/Base", config.investor_timezone,
     "INVESTOR_TIMEZONE 'Mars/Base' is not an IANA time zone name"),
    ("HEALTH_CHECK_SERVICES", "api", config.health_check_services,
     "HEALTH_CHECK_SERVICES entry 'api' is not of the form name=url"),
    ("HEALTH_CHECK_SERVICES", "api=notaurl", config.health_check_services,
     "HEALTH_CHECK_SERVICES service 'api': 'notaurl' is not a URL"),
    ("HEALTH_CHECK_SERVICES", "api=ftp://files.example/", config.health_check_services,
     "HEALTH_CHECK_SERVICES service 'api': 'ftp://files.example/' is not a URL"),
    ("HEALTH_CHECK_SERVICES", "db=tcp://db.internal", config.health_check_services,
     "HEALTH_CHECK_SERVICES service 'db': 'tcp://db.internal' needs a port"),
    ("HEALTH_CHECK_SERVICES", "api=https://a.example/h,api=https://b.example/h", config.health_check_services,
     "HEALTH_CHECK_SERVICES names service 'api' twice"),
    ("INVESTOR_METRICS_SCHEDULE", "every sunday", config.metrics_schedule,
     "INVESTOR_METRICS_SCHEDULE 'every sunday' is not a valid cron expression"),
]


@pytest.mark.parametrize(("name", "value", "read", "words"), MALFORMED,
                         ids=[f"{name}={value!r}" for name, value, _r, _w in MALFORMED])
def test_a_malformed_setting_is_a_config_error_naming_the_variable(name, value, read, words):
    env = {"SMTP_SERVER": "smtp.example", name: value}

    with pytest.raises(config.ConfigError) as raised:
        read(env)

    assert words in str(raised.value)


def test_well_formed_settings_pass():
    env = {"INVESTOR_EMAILS": "a@b.com, c@d.org,", "SMTP_SERVER": "smtp.example", "SMTP_PORT": "2525",
           "INVESTOR_TIMEZONE": "Europe/Paris",
           "HEALTH_CHECK_SERVICES": "api=https://api.example/health,db=tcp://db.internal:5432"}
    assert config.investor_recipients(env) == ["a@b.com", "c@d.org"]  # an empty entry is no address
    assert config.smtp_settings_from_env(env).port == 2525
    assert config.investor_timezone(env).name == "Europe/Paris"
    assert config.health_check_services(env) == {"api": "https://api.example/health", "db": "tcp://db.internal:5432"}


def test_a_service_url_that_may_hold_a_secret_is_not_repeated():
    for url in ("ftp://user:s3cret@host/", "notaurl?token=s3cret"):
        with pytest.raises(config.ConfigError, match="HEALTH_CHECK_SERVICES service 'api'") as raised:
            config.parse_service_list(f"api={url}")
        assert "s3cret" not in str(raised.value)


def test_in_a_task_body_a_config_error_fails_at_once_naming_the_variable():
    from airflow.sdk.exceptions import AirflowFailException

    with pytest.raises(AirflowFailException,
                       match="configuration error: SMTP_PORT must be between") as raised:
        with config.settings_fail_the_task():
            config.smtp_settings_from_env({"SMTP_SERVER": "smtp.example", "SMTP_PORT": "0"})
    assert isinstance(raised.value.__cause__, config.ConfigError)
    with config.settings_fail_the_task():  # anything else passes through untouched
        with pytest.raises(KeyError):
            raise KeyError("x")


def _context():
    end = datetime(2026, 11, 22, 9, tzinfo=timezone.utc)
    dag_run = SimpleNamespace(run_type="scheduled", data_interval_end=end, run_after=end,
                              run_id="scheduled__2026-11-22T09:00:00+00:00", dag_id="investor_metrics")
    return {"dag_run": dag_run, "params": {}}


@pytest.mark.parametrize(("name", "value"), [("INVESTOR_TIMEZONE", "Mars/Base"),
                                             ("HEALTH_CHECK_SERVICES", "api=notaurl"), ("DB_HOST", "")])
def test_validate_data_fails_without_retries_on_a_malformed_setting(monkeypatch, name, value):
    from airflow.sdk.exceptions import AirflowFailException

    from include.investor_metrics.weekly import tasks as pipeline

    monkeypatch.setenv("INVESTOR_TIMEZONE", "UTC")
    monkeypatch.setenv("DB_HOST", "127.0.0.1")
    monkeypatch.delenv("HEALTH_CHECK_SERVICES", raising=False)
    monkeypatch.setenv(name, value)

    with pytest.raises(AirflowFailException, match=f"configuration error: {name}"):
        pipeline.validate_data(_context())
