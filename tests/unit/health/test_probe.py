"""health/probe.py: the services list (Variable, environment), the timeout setting, the round grid,
a round of probes against real peers and its rows, and the weekly uptime those rows give."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import pytest

from include.investor_metrics.contract import PROBE_INTERVAL
from include.investor_metrics.health.probe import (
    load_services,
    probe_all,
    probe_round,
    probe_timeout,
    public_url,
    record_checks,
)
from include.investor_metrics.period import weekly_period
from include.investor_metrics.settings import ConfigError
from tests.unit.health.peers import R0, TIMEOUT, at, checks, env, metrics_conn, service  # noqa: F401 - fixtures


# --------------------------------------------------------------------------- settings, rounds
def test_services_come_from_the_variable_first_then_the_environment():
    env = {"HEALTH_CHECK_SERVICES": "api=http://api.example/health, web=https://web.example/"}  # noqa: F811
    assert load_services(env=env, get_variable=lambda _k: None) == {
        "api": "http://api.example/health", "web": "https://web.example/"}
    # the Variable wins, as a JSON string or already decoded; an empty object means "probe nothing"
    assert load_services(env=env, get_variable=lambda _k: '{"db": "tcp://db:5432"}') == {"db": "tcp://db:5432"}
    assert load_services(env=env, get_variable=lambda _k: {"db": "tcp://db:5432"}) == {"db": "tcp://db:5432"}
    assert load_services(env=env, get_variable=lambda _k: "{}") == {}
    assert load_services(env={}, get_variable=lambda _k: "  ") == {}
    # outside a task no Variable can be read: the environment alone counts
    assert load_services(env=env) == {"api": "http://api.example/health", "web": "https://web.example/"}


@pytest.mark.parametrize(("variable", "words"), [
    ("[1, 2]", "must be a JSON object"),
    ("{not json", "is not valid JSON"),
    ('{"bad name": "http://x/"}', "service name 'bad name'"),
    ('{"api": ""}', "needs a URL"),
    ('{"api": 5}', "needs a URL"),
    ('{"api": "notaurl"}', "'notaurl' is not a URL such as https://host/health"),
    ('{"db": "tcp://db.example"}', "needs a port (tcp://host:port)"),
    ('{"api": "ftp://user:s3cret@api.example/"}', "the URL is not a URL"),
])
def test_a_malformed_variable_is_a_clear_error(variable, words):
    with pytest.raises(ConfigError, match="health_check_services") as err:
        load_services(env={}, get_variable=lambda _k: variable)
    assert words in str(err.value)
    assert "s3cret" not in str(err.value)


def test_a_malformed_environment_is_a_clear_error():
    with pytest.raises(ConfigError, match="HEALTH_CHECK_SERVICES"):
        load_services(env={"HEALTH_CHECK_SERVICES": "api http://x/"}, get_variable=lambda _k: None)


def test_timeout_setting():
    assert probe_timeout({}) == 10.0
    assert probe_timeout({"HEALTH_CHECK_TIMEOUT_SECONDS": "2.5"}) == 2.5
    for bad in ("0", "-1", "61", "soon"):
        with pytest.raises(ConfigError, match="HEALTH_CHECK_TIMEOUT_SECONDS"):
            probe_timeout({"HEALTH_CHECK_TIMEOUT_SECONDS": bad})


def test_probe_round_is_the_five_minute_grid_in_utc():
    paris = timezone(timedelta(hours=1))
    assert probe_round(datetime(2026, 11, 20, 11, 7, 59, 999, tzinfo=paris)) == datetime(
        2026, 11, 20, 10, 5, tzinfo=timezone.utc)
    assert probe_round(R0) == R0
    with pytest.raises(ValueError, match="naive"):
        probe_round(datetime(2026, 11, 20, 10, 0))


def test_public_url_drops_credentials_and_query():
    assert public_url("https://user:pw@api.example:8443/health?token=abc") == "https://api.example:8443/health"
    assert public_url("not a url") == "<malformed URL>"


# --------------------------------------------------------------------------- rows of a round
def test_a_round_writes_one_row_per_service_with_its_reason(env, service, metrics_conn):  # noqa: F811 - the fixtures
    ok, moved, broken, gone = (service() for _ in range(4))
    hanging = [service() for _ in range(3)]
    moved.status = 302
    broken.status = 503
    for s in hanging:
        s.hang = True
    gone.down()
    services = {
        "ok": ok.url, "moved": moved.url, "broken": broken.url,
        **{f"slow{i}": s.url for i, s in enumerate(hanging)},
        "gone": gone.url, "ftp": "ftp://127.0.0.1/health", "nowhere": "http://no-such-host.invalid/health",
        "junk": "not a url", "tcp_ok": f"tcp://127.0.0.1:{ok.port}", "tcp_gone": f"tcp://127.0.0.1:{gone.port}",
    }
    started = time.monotonic()
    results = probe_all(services, timeout=TIMEOUT)
    elapsed = time.monotonic() - started
    assert [r.service for r in results] == list(services)
    # concurrently: three services hang past the 1 s timeout, the round still takes about 1 s, not 3
    assert elapsed < 2.5, elapsed
    assert record_checks(metrics_conn, at(0), results) == len(services)

    got = {row[0]: row[1:] for row in checks(env.db)}
    assert set(got) == set(services)
    assert all(checked_at == at(0) for checked_at, *_ in got.values())
    by = {name: dict(zip(("ok", "response_ms", "status_code", "error"), row[1:], strict=True))
          for name, row in got.items()}
    assert by["ok"]["ok"] and by["ok"]["status_code"] == 200 and by["ok"]["error"] is None
    assert 0 <= by["ok"]["response_ms"] < 1000
    # a redirect is ok as it is: not followed (its target answers 503)
    assert by["moved"]["ok"] and by["moved"]["status_code"] == 302
    assert by["broken"] == {"ok": False, "response_ms": by["broken"]["response_ms"], "status_code": 503,
                            "error": "HTTP 503 Service Unavailable"}
    assert by["broken"]["response_ms"] is not None
    for name in ("slow0", "slow1", "slow2"):
        assert by[name] == {"ok": False, "response_ms": None, "status_code": None,
                            "error": "timeout: no response within 1000 ms"}
    assert by["gone"] == {"ok": False, "response_ms": None, "status_code": None,
                          "error": "connection refused"}
    assert by["ftp"]["error"].startswith("bad URL: scheme 'ftp'") and not by["ftp"]["ok"]
    assert by["nowhere"]["error"] == "cannot resolve host 'no-such-host.invalid'"
    assert by["junk"]["error"].startswith("bad URL: no scheme")
    assert by["tcp_ok"]["ok"] and by["tcp_ok"]["status_code"] is None
    assert by["tcp_ok"]["response_ms"] is not None
    assert by["tcp_gone"]["error"] == "connection refused"

    # a retry of the round: the same keys, rows replaced by what the retry saw, never a second row
    broken.status = 200
    record_checks(metrics_conn, at(0), probe_all(services, timeout=TIMEOUT))
    again = checks(env.db)
    assert len(again) == len(services)
    assert {row[0]: row[2] for row in again}["broken"] is True


# --------------------------------------------------------------------------- the weekly uptime
def test_weekly_uptime_of_a_probed_week_matches_the_definition(env, service, metrics_conn):  # noqa: F811 - the fixtures
    """A week of probe rounds with a known pattern; the weekly extract + metric give the uptime
    computed by hand: ok checks / all checks in [start, end), per service and overall."""
    from include.investor_metrics.weekly import extract
    from include.investor_metrics.weekly.metrics.system_health import system_health

    end = datetime(2026, 11, 22, 9, tzinfo=timezone.utc)
    period = weekly_period(end, "UTC")
    api, web = service(), service()
    services = {"api": api.url, "web": web.url}
    rounds = [period.start + timedelta(hours=16 * k) for k in range(10)]  # the first at the start exactly
    failing = {3: 503, 9: "down"}  # api fails in round 3 (HTTP 503) and in the last round (refused)

    def probe(when):
        record_checks(metrics_conn, when, probe_all(services, timeout=TIMEOUT))

    api.status = 503
    probe(period.start - PROBE_INTERVAL)  # before the week: not counted
    for k, when in enumerate(rounds):
        api.status = 503 if failing.get(k) == 503 else 200
        if failing.get(k) == "down":
            api.down()
        probe(when)
    probe(end)  # at the end exactly: the next week's (api is still down)

    frame = extract.extract_health_checks(metrics_conn, period, list(services))
    health = system_health(frame, list(services))
    # by hand: api 8 ok of 10, web 10 of 10; overall 18 of 20
    assert health["uptime_percentage"] == 90.0
    assert health["error_rate"] == 10.0
    assert health["services"]["api"]["uptime_percentage"] == 80.0
    assert health["services"]["web"]["uptime_percentage"] == 100.0
    assert (health["services_total"], health["services_healthy"]) == (2, 1)  # api's last check failed
    assert health["services"]["api"]["healthy"] is False and health["services"]["web"]["healthy"] is True
    assert health["status"] == "critical"  # api below 90 % uptime
    # response times: the mean of the stored ok checks' times in the week
    in_week = [r for r in checks(env.db) if period.start <= r[1] < end]
    assert len(in_week) == 20
    ok_times = [r[3] for r in in_week if r[2]]
    assert health["avg_response_time_ms"] == pytest.approx(sum(ok_times) / len(ok_times), abs=0.005)
