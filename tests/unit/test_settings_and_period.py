"""Settings (SPEC section 10) and the run's period (SPEC section 2)."""

from __future__ import annotations

import random
import re
from datetime import datetime, timezone
from types import SimpleNamespace

import pytest

from include.investor_metrics import period
from include.investor_metrics import settings as config
from include.investor_metrics.period import calendar_offset, parse_period_end, period_for_run, weekly_period

UTC = timezone.utc


def test_db_settings_from_the_seed_variables():
    s = config.postgres_settings_from_env(
        {"DB_HOST": "db.internal", "DB_USER": "app", "DB_PASSWORD": "s3cret"})
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
        {"SMTP_SERVER": "smtp.x", "INVESTOR_EMAIL": "m@x.com", "EMAIL_PASSWORD": "pw",
         "SMTP_STARTTLS": "false"}
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
    assert calendar_offset(datetime(2026, 3, 31, 9, tzinfo=UTC), "UTC", months=1) == datetime(
        2026, 2, 28, 9, tzinfo=UTC)


def test_run_types():
    end = datetime(2026, 11, 22, 9, tzinfo=UTC)
    scheduled = period_for_run(run_type="scheduled", tz="UTC", data_interval_end=end)
    assert (scheduled.type, scheduled.end, scheduled.hours) == ("weekly", end, 168)
    assert period_for_run(run_type="backfill", tz="UTC", data_interval_end=end).type == "backfill"
    manual = period_for_run(run_type="manual", tz="UTC", run_after=datetime(2026, 11, 25, 12, 30, tzinfo=UTC))
    assert (manual.type, manual.end) == ("on_demand", datetime(2026, 11, 25, 12, 30, tzinfo=UTC))
    param = period_for_run(run_type="manual", tz="UTC", run_after=end,
                           period_end_param="2026-10-04T10:00:00+01:00")
    assert param.end == datetime(2026, 10, 4, 9, tzinfo=UTC)
    with pytest.raises(ValueError, match="no data interval"):
        period_for_run(run_type="scheduled", tz="UTC")


@pytest.mark.parametrize("raw", ["yesterday", "2026-13-01T00:00:00Z", "2026-11-22T09:00:00", ""])
def test_bad_period_end_says_what_format_is_expected(raw):
    with pytest.raises(ValueError, match="2026-11-22T09:00:00Z"):
        parse_period_end(raw)


# --------------------------------------------------------------------------- instants (issue 13: 3, 6, 10)
def test_an_on_demand_run_without_period_end_ends_on_the_whole_second():
    """The default end is the trigger time to the second, the precision of every stored instant
    (alerts, archive names, snapshot JSON), so the report is found again by its own period.end."""
    run_after = datetime(2026, 11, 25, 12, 30, 7, 654321, tzinfo=UTC)
    manual = period_for_run(run_type="manual", tz="UTC", run_after=run_after)
    assert manual.end == datetime(2026, 11, 25, 12, 30, 7, tzinfo=UTC)
    assert manual.start == datetime(2026, 11, 18, 12, 30, 7, tzinfo=UTC)
    assert period.parse_instant(manual.as_dict()["end"]) == manual.end
    # A given period_end keeps what it says (fractions included): it is the caller's instant.
    given = period_for_run(run_type="manual", tz="UTC", run_after=run_after,
                           period_end_param="2026-11-25T12:30:00.5Z")
    assert given.end == datetime(2026, 11, 25, 12, 30, 0, 500000, tzinfo=UTC)


def _context(run_after: datetime, period_end: str | None = None, run_type: str = "manual"):
    return {"dag_run": SimpleNamespace(run_type=run_type, data_interval_end=run_after, run_after=run_after),
            "params": {"period_end": period_end, "send_email": False}}


def test_run_period_of_a_manual_run_is_to_the_second():
    from include.investor_metrics.weekly import tasks as pipeline

    run_after = datetime(2026, 11, 25, 12, 30, 7, 999999, tzinfo=UTC)
    assert pipeline.run_period(_context(run_after)).end == datetime(2026, 11, 25, 12, 30, 7, tzinfo=UTC)


@pytest.mark.parametrize(("period_end", "refused"), [
    ("2026-11-25T12:35:00Z", False),   # 5 minutes of clock skew are tolerated
    ("2026-11-25T12:35:01Z", True),
    ("2099-01-01T00:00:00Z", True),
    ("2026-11-25T13:35:01+01:00", True),
])
def test_a_future_period_end_fails_the_run_at_once_naming_the_parameter(period_end, refused):
    """Compared with the run's own trigger time (deterministic on a retry); AirflowFailException:
    no retries, before anything is computed (every task asks run_period first)."""
    from airflow.sdk.exceptions import AirflowFailException

    from include.investor_metrics.weekly import tasks as pipeline

    context = _context(datetime(2026, 11, 25, 12, 30, tzinfo=UTC), period_end)
    if not refused:
        assert pipeline.run_period(context).end == period.parse_instant(period_end)
        return
    with pytest.raises(AirflowFailException, match="period_end .* is in the future"):
        pipeline.run_period(context)
    with pytest.raises(period.InstantInFuture) as caught:
        period_for_run(run_type="manual", tz="UTC", run_after=datetime(2026, 11, 25, 12, 30, tzinfo=UTC),
                       period_end_param=period_end)
    assert caught.value.parameter == "period_end"


@pytest.mark.parametrize("period_end",
                         ["2026-11-22", "0001-01-01T00:00:00+23:59", "9999-12-31T23:59:59-23:59"])
def test_a_malformed_or_out_of_range_period_end_fails_the_run_at_once(period_end):
    from airflow.sdk.exceptions import AirflowFailException

    from include.investor_metrics.weekly import tasks as pipeline

    with pytest.raises(AirflowFailException, match="period_end"):
        pipeline.run_period(_context(datetime(2026, 11, 25, 12, 30, tzinfo=UTC), period_end))


@pytest.mark.parametrize("raw", [
    "9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+23:59", "0000-01-01T00:00:00Z",
    "1969-12-31T23:59:59Z", "1970-01-01T00:30:00+01:00", "9999-12-31T23:30:00-01:00",
])
def test_out_of_range_instants_are_a_value_error_naming_the_parameter(raw):
    with pytest.raises(period.InstantOutOfRange, match=r"^since .*1970–9999") as caught:
        period.parse_instant(raw, "since")
    assert isinstance(caught.value, ValueError) and caught.value.parameter == "since"


@pytest.mark.parametrize(("raw", "expected"), [
    ("2026-11-22T09:00:00Z", datetime(2026, 11, 22, 9, tzinfo=UTC)),
    ("2026-11-22T10:00:00+01:00", datetime(2026, 11, 22, 9, tzinfo=UTC)),
    ("2026-11-22T09:00:00-00:00", datetime(2026, 11, 22, 9, tzinfo=UTC)),
    ("1970-01-01T00:00:00Z", datetime(1970, 1, 1, tzinfo=UTC)),
    ("1970-01-01T00:00:00-23:59", datetime(1970, 1, 1, 23, 59, tzinfo=UTC)),
    ("9999-12-31T23:59:59.999999Z", datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)),
    ("9999-12-31T23:59:59+23:59", datetime(9999, 12, 31, 0, 0, 59, tzinfo=UTC)),
    ("2028-02-29T00:00:00Z", datetime(2028, 2, 29, tzinfo=UTC)),
])
def test_instants_that_are_accepted(raw, expected):
    assert period.parse_instant(raw, "since") == expected
    assert re.fullmatch(period.INSTANT_PATTERN, raw)
    assert period.parse_instant(period.format_instant(expected)) == expected


@pytest.mark.parametrize("raw", [
    "2026-11-22T09:00Z", "2026-11-22T09:00:00", "2026-11-22 09:00:00Z", "2026-11-22T09:00:00z",
    " 2026-11-22T09:00:00Z", "2026-11-22T09:00:00Z\n", "2026-02-29T00:00:00Z", "2026-11-22T24:00:00Z",
    "2026-11-22T09:00:60Z", "2026-11-22T09:00:00+24:00", "2026-11-22T09:00:00.1234567Z",
    "２０２６-11-22T09:00:00Z", "2026-11-22T09:00:00+01:00:00", "", "\x00", "🙂" * 1000,
])
def test_instants_that_are_refused_name_the_parameter_and_never_overflow(raw):
    with pytest.raises(period.InstantError, match=r"^since ") as caught:
        period.parse_instant(raw, "since")
    assert caught.value.parameter == "since" and len(str(caught.value)) < 400


def test_the_pattern_is_exactly_what_the_parser_accepts():
    """INSTANT_PATTERN (declared by the DAG param and the OpenAPI document) and parse_instant agree
    on every string of the shape, edge days and out-of-range offsets included: a pattern match that
    is a real date is accepted and inside 1970–9999 in UTC, anything else is refused."""
    rng = random.Random(13)
    years = [0, 1, 1969, 1970, 1971, 2026, 9998, 9999]
    for _ in range(20000):
        sign = rng.choice("+-")
        offset = rng.choice(["Z", "+00:00", "-00:00",
                             f"{sign}{rng.randrange(0, 25):02d}:{rng.randrange(0, 61):02d}"])
        day = rng.choice([1, 28, 29, 30, 31, 32, rng.randrange(32)])
        text = (f"{rng.choice([*years, rng.randrange(10000)]):04d}-{rng.randrange(0, 14):02d}-{day:02d}"
                f"T{rng.randrange(0, 25):02d}:{rng.randrange(0, 61):02d}:{rng.randrange(0, 61):02d}"
                f"{rng.choice(['', '.5', '.123456'])}{offset}")
        try:
            real = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            real = None
        try:
            parsed = period.parse_instant(text, "since")
        except period.InstantError:
            parsed = None
        matches = re.fullmatch(period.INSTANT_PATTERN, text) is not None
        assert (parsed is not None) == (matches and real is not None), text
        if parsed is not None:
            assert 1970 <= parsed.year <= 9999 and parsed == real


@pytest.mark.parametrize(("value", "accepted"), [
    (None, True), ("2026-11-22T09:00:00Z", True), ("2026-11-22T10:00:00+01:00", True),
    ("0001-01-01T00:00:00+23:59", False), ("9999-12-31T23:59:59-23:59", False), ("2026-11-22T09:00Z", False),
    ("last sunday", False),
])
def test_the_dag_param_refuses_what_the_parser_refuses_by_format(value, accepted):
    """The trigger form, ``airflow dags trigger -c`` and the REST API validate conf against the
    DAG's params: its pattern is INSTANT_PATTERN (the future can only be refused by the run)."""
    from airflow.dag_processing.dagbag import DagBag
    from airflow.sdk.exceptions import ParamValidationError

    from tests.conftest import PROJECT_ROOT

    bag = DagBag(dag_folder=str(PROJECT_ROOT / "dags" / "investor_metrics.py"))
    param = bag.dags["investor_metrics"].params.get_param("period_end")
    assert param.schema["pattern"] == period.INSTANT_PATTERN
    if accepted:
        assert param.resolve(value) == value
    else:
        with pytest.raises(ParamValidationError):
            param.resolve(value)
