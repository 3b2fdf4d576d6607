"""Which failures Airflow retries (SPEC 13: bad data fails without retries, lost connections and
SMTP errors retry).

``BAD_INPUT_FAILS_AT_ONCE`` is the ``retry_policy`` of every task of the weekly DAG: an exception
that says the input is wrong fails the task at once, naming it; waiting out 3 retries (2 + 4 + 8
min) would only hide it. Bad input is ``BAD_INPUT_EXCEPTIONS`` and their subclasses:

- a malformed setting (``ConfigError``; also ``weekly.staging.StagedDataMissing``, staged data gone
  or on another worker's local folder: a setting or a clear fixes it, not a retry);
- a malformed or future ``period_end`` (``period.InstantError``);
- data that breaks a rule (``DataValidationError``), a money figure too large to report exactly
  (``MoneyRangeError``);
- whatever a task refuses with ``AirflowFailException`` (Airflow never retries it either).

Also when one of them is the ``__cause__`` of the raised exception. Everything else keeps the
task's ordinary retries: a PostgreSQL connection lost or refused (``psycopg2.OperationalError``), an
SMTP error (``smtplib.SMTPException``, ``OSError``, ``mail.send_log.EmailDeliveryError``), an object
store that does not answer (botocore / aiobotocore connection errors, ``OSError``).

The classes are matched by qualified name along the exception's MRO, so parsing the DAG file
imports none of their modules (``include.investor_metrics.weekly.metrics`` imports pandas).
"""

from __future__ import annotations

from typing import Any

from airflow.sdk.definitions.retry_policy import RetryDecision, RetryPolicy

BAD_INPUT_EXCEPTIONS = frozenset({
    "include.investor_metrics.settings.ConfigError",
    "include.investor_metrics.period.InstantError",
    "airflow.sdk.exceptions.AirflowFailException",
    "include.investor_metrics.validation.runner.DataValidationError",
    "include.investor_metrics.weekly.metrics.rounding.MoneyRangeError",
})


def is_bad_input(exception: BaseException) -> bool:
    return any(f"{cls.__module__}.{cls.__qualname__}" in BAD_INPUT_EXCEPTIONS
               for cls in type(exception).__mro__)


class BadInputFailsAtOnce(RetryPolicy):
    """Fail at once on bad input (including when it is the cause of the raised exception)."""

    def evaluate(
        self, exception: BaseException, try_number: int, max_tries: int, context=None
    ) -> RetryDecision:
        seen = set()
        current: BaseException | None = exception
        while current is not None and id(current) not in seen:
            seen.add(id(current))
            if is_bad_input(current):
                return RetryDecision.fail(
                    reason=f"bad input ({type(current).__name__}): retrying cannot fix it")
            current = current.__cause__
        return RetryDecision.default()

    def serialize(self) -> dict[str, Any]:
        return {"__type": type(self).__name__, "exceptions": sorted(BAD_INPUT_EXCEPTIONS)}


BAD_INPUT_FAILS_AT_ONCE = BadInputFailsAtOnce()
