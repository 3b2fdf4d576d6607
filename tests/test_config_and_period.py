"""Settings (SPEC section 10) and the run's period (SPEC section 2)."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from include import config
from include.period import calendar_offset, parse_period_end, period_for_run, weekly_period

UTC = timezone.utc


def test_db_settings_from_the_seed_variables():
    s = config.postgres_settings_from_env({"DB_HOST": "db.internal", "DB_USER": "app", "DB_PASSWORD": "s3cret"})
    assert (s.host, s.port, s.dbname, s.user) == ("db.internal", 5432, "chatterfix_cmms", "app")
    assert "s3cret" not in repr(s) and "s3cret" not in s.public_description()


@pytest.mark.parametrize(
    ("env", "names"),
    [
        ({}, "DB_HOST"),
        ({"DB_HOST": "h", "DB_PORT": "54x"}, "DB_PORT"),
        ({"DB_HOST": "h", "DB_PORT": "70000"}, "DB_PORT"),
    ],
)
def test_missing_or_malformed_db_settings_name_the_variable(env, names):
    with pytest.raises(config.ConfigError, match=names):
        config.postgres_settings_from_env(env)


def test_address_lists():
    assert config.parse_address_list(" a@x.com, b@y.org ", "INVESTOR_EMAILS") == ["a@x.com", "b@y.org"]
    with pytest.raises(config.ConfigError, match="INVESTOR_EMAILS.*not-an-address"):
        config.parse_address_list("a@x.com,not-an-address", "INVESTOR_EMAILS")
    with pytest.raises(config.ConfigError, match="INVESTOR_EMAILS is not set"):
        config.investor_recipients({})
    assert config.data_team_recipients({}) == []


def test_smtp_settings():
    s = config.smtp_settings_from_env(
        {"SMTP_SERVER": "smtp.x", "INVESTOR_EMAIL": "m@x.com", "EMAIL_PASSWORD": "pw", "SMTP_STARTTLS": "false"}
    )
    assert (s.port, s.starttls, s.ssl, s.sender) == (587, False, False, "m@x.com")
    assert "pw" not in repr(s)
    with pytest.raises(config.ConfigError, match="SMTP_SSL"):
        config.smtp_settings_from_env({"SMTP_SERVER": "smtp.x", "SMTP_SSL": "maybe"})


def test_service_list():
    assert config.parse_service_list("api=http://a/health, web=http://w/") == {
        "api": "http://a/health", "web": "http://w/"}
    for bad in ("api", "api=", "=http://x", "api=http://a,api=http://b"):
        with pytest.raises(config.ConfigError, match="HEALTH_CHECK_SERVICES"):
            config.parse_service_list(bad)


def test_timezone_and_schedule():
    assert config.investor_timezone({"INVESTOR_TIMEZONE": "America/New_York"}).name == "America/New_York"
    with pytest.raises(config.ConfigError, match="INVESTOR_TIMEZONE"):
        config.investor_timezone({"INVESTOR_TIMEZONE": "Mars/Olympus"})
    assert config.metrics_schedule({}) == "0 9 * * 0"
    assert config.metrics_schedule({"INVESTOR_METRICS_SCHEDULE": "0 * * * *"}) == "0 * * * *"
    with pytest.raises(config.ConfigError, match="INVESTOR_METRICS_SCHEDULE"):
        config.metrics_schedule({"INVESTOR_METRICS_SCHEDULE": "every sunday"})


def test_week_across_fall_back_is_169_hours():
    # 2026-11-01 09:00 EST (14:00Z); a week earlier: 2026-10-25 09:00 EDT (13:00Z)
    p = weekly_period(datetime(2026, 11, 1, 14, tzinfo=UTC), "America/New_York")
    assert p.start == datetime(2026, 10, 25, 13, tzinfo=UTC)
    assert p.hours == 169


def test_week_across_spring_forward_is_167_hours():
    # 2026-03-08 09:00 EDT (13:00Z); a week earlier: 2026-03-01 09:00 EST (14:00Z)
    p = weekly_period(datetime(2026, 3, 8, 13, tzinfo=UTC), "America/New_York")
    assert p.start == datetime(2026, 3, 1, 14, tzinfo=UTC)
    assert p.hours == 167


def test_month_offset_clamps_to_month_end():
    assert calendar_offset(datetime(2026, 3, 31, 9, tzinfo=UTC), "UTC", months=1) == datetime(2026, 2, 28, 9, tzinfo=UTC)


def test_run_types():
    end = datetime(2026, 11, 22, 9, tzinfo=UTC)
    scheduled = period_for_run(run_type="scheduled", tz="UTC", data_interval_end=end)
    assert (scheduled.type, scheduled.end, scheduled.hours) == ("weekly", end, 168)
    assert period_for_run(run_type="backfill", tz="UTC", data_interval_end=end).type == "backfill"
    manual = period_for_run(run_type="manual", tz="UTC", run_after=datetime(2026, 11, 25, 12, 30, tzinfo=UTC))
    assert (manual.type, manual.end) == ("on_demand", datetime(2026, 11, 25, 12, 30, tzinfo=UTC))
    param = period_for_run(run_type="manual", tz="UTC", run_after=end, period_end_param="2026-10-04T10:00:00+01:00")
    assert param.end == datetime(2026, 10, 4, 9, tzinfo=UTC)
    with pytest.raises(ValueError, match="no data interval"):
        period_for_run(run_type="scheduled", tz="UTC")


@pytest.mark.parametrize("raw", ["yesterday", "2026-13-01T00:00:00Z", "2026-11-22T09:00:00", ""])
def test_bad_period_end_says_what_format_is_expected(raw):
    with pytest.raises(ValueError, match="2026-11-22T09:00:00Z"):
        parse_period_end(raw)
