"""The alert thresholds: defaults < ``INVESTOR_ALERT_*`` environment < the Airflow Variable
``investor_alert_thresholds``; read by the alert task at run time, never at import.

=======================================  =======  =======================================================
setting                                  default  environment variable
=======================================  =======  =======================================================
``uptime_below_target``                  99.5     ``INVESTOR_ALERT_UPTIME_BELOW_TARGET``
``mrr_growth_below_target``              5        ``INVESTOR_ALERT_MRR_GROWTH_BELOW_TARGET``
``net_revenue_retention_below_target``   100      ``INVESTOR_ALERT_NET_REVENUE_RETENTION_BELOW_TARGET``
``churn_spike`` (the multiplier)         2        ``INVESTOR_ALERT_CHURN_SPIKE``
``churn_spike_minimum``                  2        ``INVESTOR_ALERT_CHURN_SPIKE_MINIMUM``
``api_response_time_above_target``       1000     ``INVESTOR_ALERT_API_RESPONSE_TIME_ABOVE_TARGET``
``ai_accuracy_below_target``             90       ``INVESTOR_ALERT_AI_ACCURACY_BELOW_TARGET``
=======================================  =======  =======================================================

The Variable is a JSON object ``{"setting": number}``, e.g. ``{"uptime_below_target": 99.0}``.
``critical_system_failure`` and ``services_degraded`` have no number to configure. An unknown
setting, a non-number, or a Variable that is not a JSON object is a ``ConfigError`` naming the
variable and the setting. Outside a task (no Airflow, or no Variable backend) only the environment
is read.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Mapping

from include.investor_metrics.settings import ConfigError, airflow_variable
from include.investor_metrics.weekly.alerts.rules import RULES, RULES_BY_NAME

THRESHOLDS_VARIABLE = "investor_alert_thresholds"
ENV_PREFIX = "INVESTOR_ALERT_"

# Every configurable setting: each rule's own number (for churn_spike, the multiplier of the
# previous weeks' mean) plus the churn-spike floor.
DEFAULT_THRESHOLDS: dict[str, float] = {
    **{rule.name: float(rule.default_threshold) for rule in RULES if rule.default_threshold is not None},
    "churn_spike_minimum": 2.0,
}


def env_variable(setting: str) -> str:
    """``uptime_below_target`` → ``INVESTOR_ALERT_UPTIME_BELOW_TARGET``."""
    return ENV_PREFIX + setting.upper()


def _number(raw, where: str) -> float:
    if isinstance(raw, bool):
        raise ConfigError(f"{where} must be a number, got {raw!r}")
    try:
        value = float(raw.strip() if isinstance(raw, str) else raw)
    except (TypeError, ValueError):
        raise ConfigError(f"{where} must be a number, got {raw!r}") from None
    if not math.isfinite(value):
        raise ConfigError(f"{where} must be a finite number, got {raw!r}")
    return value


def _airflow_variable(key: str):
    return airflow_variable(key, fallback="alert thresholds from the environment only")


def load_thresholds(
    *, env: Mapping[str, str] | None = None, get_variable: Callable[[str], object] | None = None
) -> dict[str, float]:
    """Every threshold setting: defaults < ``INVESTOR_ALERT_*`` environment < the Airflow Variable
    ``investor_alert_thresholds``. Call it in a task (it may read the Variable), not at import."""
    env = os.environ if env is None else env
    get_variable = _airflow_variable if get_variable is None else get_variable
    thresholds = dict(DEFAULT_THRESHOLDS)
    for setting in DEFAULT_THRESHOLDS:
        name = env_variable(setting)
        raw = env.get(name, "")
        if raw.strip():
            thresholds[setting] = _number(raw, name)

    raw = get_variable(THRESHOLDS_VARIABLE)
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return _checked(thresholds)
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError as exc:
            raise ConfigError(
                f"Airflow Variable {THRESHOLDS_VARIABLE} is not valid JSON ({exc}); expected an object "
                'such as {"uptime_below_target": 99.0}'
            ) from None
    if not isinstance(raw, Mapping):
        raise ConfigError(
            f"Airflow Variable {THRESHOLDS_VARIABLE} must be a JSON object such as "
            f'{{"uptime_below_target": 99.0}}, got {type(raw).__name__}'
        )
    for setting, value in raw.items():
        if setting not in DEFAULT_THRESHOLDS:
            hint = " (it has no threshold to configure)" if setting in RULES_BY_NAME else ""
            raise ConfigError(
                f"Airflow Variable {THRESHOLDS_VARIABLE} names unknown setting {setting!r}{hint}; "
                f"known: {', '.join(DEFAULT_THRESHOLDS)}"
            )
        thresholds[setting] = _number(value, f"Airflow Variable {THRESHOLDS_VARIABLE}: {setting}")
    return _checked(thresholds)


def _checked(thresholds: dict[str, float]) -> dict[str, float]:
    for setting in ("churn_spike", "churn_spike_minimum"):
        if thresholds[setting] < 0:
            raise ConfigError(f"alert setting {setting} ({env_variable(setting)}) must not be negative")
    return thresholds
