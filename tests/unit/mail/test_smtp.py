"""The SMTP connection (``mail/smtp.py``): the seed's variables, an Airflow connection that wins,
a lookup that fails; the password never in a message, an error or a log line."""

from __future__ import annotations

import json

import pytest

from include.investor_metrics.mail import send as notify
from include.investor_metrics.mail import send_log
from include.investor_metrics.mail.message import KIND_WEEKLY_SUMMARY
from include.investor_metrics.mail.smtp import describe_connection, sender_address, smtp_connection, smtp_hook
from include.investor_metrics.mail.weekly_summary import weekly_summary_key
from include.investor_metrics.settings import ConfigError
from tests.conftest import free_port
from tests.unit.mail import helpers
from tests.unit.mail.helpers import PASSWORD, RECIPIENTS, SENDER, Sink, sink_env, summary

# The shared fixtures (pytest finds a fixture by its name in the test module).
no_airflow_smtp_connection = helpers.no_airflow_smtp_connection
sink = helpers.sink
snapshot = helpers.snapshot
history = helpers.history


def test_connection_from_the_seed_variables():
    from airflow.sdk import Connection

    conn = smtp_connection(env=sink_env(2525))
    assert (conn.conn_type, conn.host, conn.port, conn.login) == ("smtp", "127.0.0.1", 2525, SENDER)
    assert conn.extra_dejson["disable_tls"] is True and conn.extra_dejson["disable_ssl"] is True
    assert sender_address(conn) == SENDER
    hook = smtp_hook(conn)
    hook.smtp_connection = hook.get_connection("ignored")
    assert (hook.host, hook.port, hook.use_ssl, hook.smtp_starttls, hook.from_email) == (
        "127.0.0.1", 2525, False, False, SENDER)

    defaults = smtp_connection(env={"SMTP_SERVER": "smtp.example.com", "INVESTOR_EMAIL": SENDER})
    assert defaults.port == 587
    assert defaults.extra_dejson["disable_tls"] is False  # STARTTLS on by default (SPEC section 10)
    assert defaults.extra_dejson["disable_ssl"] is True
    ssl = smtp_connection(env={"SMTP_SERVER": "smtp.example.com", "SMTP_PORT": "465", "SMTP_SSL": "true"})
    assert ssl.extra_dejson["disable_ssl"] is False and ssl.extra_dejson["disable_tls"] is True

    with pytest.raises(ConfigError, match="SMTP_SERVER"):
        smtp_connection(env={"INVESTOR_EMAIL": SENDER})
    with pytest.raises(ConfigError, match="SMTP_STARTTLS"):
        smtp_connection(env=sink_env(25, SMTP_STARTTLS="maybe"))
    with pytest.raises(ConfigError, match="INVESTOR_EMAIL"):
        sender_address(Connection(conn_id="smtp_default", conn_type="smtp", host="h"), env={})


def test_an_airflow_connection_wins_over_the_variables(monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_SMTP_DEFAULT", json.dumps({
        "conn_type": "smtp", "host": "smtp.airflow.example", "port": 2526, "login": "relay-user",
        "password": PASSWORD, "extra": {"from_email": "reports@chatterfix.example", "disable_ssl": True},
    }))
    conn = smtp_connection(env=sink_env(2525))
    assert (conn.host, conn.port, conn.login) == ("smtp.airflow.example", 2526, "relay-user")
    assert sender_address(conn, env=sink_env(2525)) == "reports@chatterfix.example"
    assert PASSWORD not in describe_connection(conn)


def test_a_failing_connection_lookup_falls_back_to_the_variables(monkeypatch, caplog):
    from airflow.sdk import Connection
    from airflow.sdk.exceptions import AirflowSecretsBackendAccessDenied

    def broken(cls, conn_id):
        raise RuntimeError("no API server to ask")

    monkeypatch.setattr(Connection, "get", classmethod(broken))
    assert smtp_connection(env=sink_env(2525)).host == "127.0.0.1"
    assert "RuntimeError" in caplog.text

    def denied(cls, conn_id):
        raise AirflowSecretsBackendAccessDenied("denied")

    monkeypatch.setattr(Connection, "get", classmethod(denied))
    with pytest.raises(AirflowSecretsBackendAccessDenied):
        smtp_connection(env=sink_env(2525))


def _authenticator(server, session, envelope, mechanism, auth_data):
    from aiosmtpd.smtp import AuthResult, LoginPassword

    ok = isinstance(auth_data, LoginPassword) and auth_data == (SENDER.encode(), PASSWORD.encode())
    return AuthResult(success=ok, handled=False)


def _all_text(exc: BaseException) -> str:
    import traceback

    return "".join(traceback.format_exception(exc)) + repr(exc.args)


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")
def test_the_password_never_appears_in_messages_errors_or_logs(tmp_path, metrics_conn, snapshot, history,
                                                               caplog):
    caplog.set_level("DEBUG")
    auth = Sink(tmp_path / "outbox", free_port(), authenticator=_authenticator, auth_require_tls=False,
                auth_required=True).start()
    try:
        wrong = smtp_connection(env=sink_env(auth.port, EMAIL_PASSWORD="not-" + PASSWORD))
        with pytest.raises(send_log.EmailDeliveryError, match="SMTPAuthenticationError") as failed:
            notify.send_once(metrics_conn, kind=KIND_WEEKLY_SUMMARY, key=weekly_summary_key(snapshot),
                             message=summary(snapshot, history), run_id="r", smtp_conn=wrong)
        assert PASSWORD not in _all_text(failed.value)
        assert auth.files() == []

        right = smtp_connection(env=sink_env(auth.port, EMAIL_PASSWORD=PASSWORD))
        assert PASSWORD not in describe_connection(right)
        assert notify.send_once(metrics_conn, kind=KIND_WEEKLY_SUMMARY, key=weekly_summary_key(snapshot),
                                message=summary(snapshot, history), run_id="r", smtp_conn=right) is True
        assert len(auth.files()) == len(RECIPIENTS)
        assert all(PASSWORD.encode() not in path.read_bytes() for path in auth.files())
    finally:
        auth.stop()
    assert PASSWORD not in caplog.text


def test_a_server_that_echoes_the_password_does_not_leak_it(sink, metrics_conn, snapshot, history,
                                                            monkeypatch):
    import smtplib

    def echoing_login(self, user, password, **kwargs):
        raise smtplib.SMTPAuthenticationError(535, f"bad credentials {user}:{password}".encode())

    monkeypatch.setattr(smtplib.SMTP, "login", echoing_login)
    conn = smtp_connection(env=sink_env(sink.port, EMAIL_PASSWORD=PASSWORD))
    with pytest.raises(send_log.EmailDeliveryError) as failed:
        notify.send_once(metrics_conn, kind=KIND_WEEKLY_SUMMARY, key=weekly_summary_key(snapshot),
                         message=summary(snapshot, history), run_id="r", smtp_conn=conn)
    assert "***" in str(failed.value)
    assert PASSWORD not in _all_text(failed.value)
    assert failed.value.__cause__ is None and failed.value.__suppress_context__
