"""The retry policy's verdict per class of failure (the real task runs: tests/dags/test_retry_rules.py):
bad input, also as the cause of another exception, fails at once; outages keep the retries."""

from __future__ import annotations

import smtplib

import pytest
from airflow.sdk.definitions.retry_policy import RetryAction

from include.investor_metrics.retry_rules import BAD_INPUT_FAILS_AT_ONCE, is_bad_input


def action(exc: BaseException) -> RetryAction:
    return BAD_INPUT_FAILS_AT_ONCE.evaluate(exc, try_number=1, max_tries=4).action


def _bad_inputs():
    from airflow.sdk.exceptions import AirflowFailException

    from include.investor_metrics.period import InstantInFuture, InstantOutOfRange
    from include.investor_metrics.settings import ConfigError
    from include.investor_metrics.validation.runner import DataValidationError
    from include.investor_metrics.weekly.metrics.rounding import MoneyRangeError
    from include.investor_metrics.weekly.staging import StagedDataMissing

    return [ConfigError("SMTP_PORT must be an integer"), StagedDataMissing("the frame ai is gone"),
            InstantInFuture("period_end", "in the future"), InstantOutOfRange("period_end", "year 10000"),
            DataValidationError("rule broken", []), MoneyRangeError("too large"),
            AirflowFailException("refused")]


def _outages():
    import botocore.exceptions
    import psycopg2
    import sqlalchemy.exc

    from include.investor_metrics.mail.send_log import EmailDeliveryError

    lost = psycopg2.OperationalError("server closed the connection unexpectedly")
    return [lost, sqlalchemy.exc.OperationalError("SELECT 1", {}, lost),
            psycopg2.InterfaceError("connection already closed"),
            smtplib.SMTPServerDisconnected("Connection unexpectedly closed"),
            smtplib.SMTPResponseException(451, b"try again later"), ConnectionRefusedError(111, "refused"),
            EmailDeliveryError("450 try later"), TimeoutError("timed out"), OSError("network is unreachable"),
            botocore.exceptions.EndpointConnectionError(endpoint_url="http://127.0.0.1:9/"),
            botocore.exceptions.ConnectTimeoutError(endpoint_url="http://127.0.0.1:9/"),
            RuntimeError("anything else")]


@pytest.mark.parametrize("exc", _bad_inputs(), ids=lambda e: type(e).__name__)
def test_bad_input_fails_at_once(exc):
    assert is_bad_input(exc)
    assert action(exc) is RetryAction.FAIL
    wrapped = RuntimeError("while staging")
    wrapped.__cause__ = exc
    assert action(wrapped) is RetryAction.FAIL


@pytest.mark.parametrize("exc", _outages(), ids=lambda e: type(e).__name__)
def test_outages_keep_the_retries(exc):
    assert not is_bad_input(exc)
    assert action(exc) is RetryAction.DEFAULT


def test_a_cause_cycle_ends():
    a, b = RuntimeError("a"), RuntimeError("b")
    a.__cause__, b.__cause__ = b, a
    assert action(a) is RetryAction.DEFAULT
