"""The alert rules of SPEC section 6, as data (pure; ``evaluate.py`` applies them).

=======================================  ==========================================  ========  =========
rule                                     fires when                                  severity  category
=======================================  ==========================================  ========  =========
``critical_system_failure``              system_health.status = "critical"           critical  system
``uptime_below_target``                  system_health.uptime_percentage < 99.5      high      system
``churn_spike``                          business_health.churned_customers > bound   high      business
``mrr_growth_below_target``              financial.mrr_growth_rate < 5               medium    financial
``net_revenue_retention_below_target``   retention.nrr_12m < 100                     medium    financial
``api_response_time_above_target``       system_health.avg_response_time_ms > 1000   medium    system
``ai_accuracy_below_target``             ai_platform.accuracy_rate < 90              medium    ai
``services_degraded``                    services_healthy < services_total           low       system
=======================================  ==========================================  ========  =========

- The comparison is on the reported (rounded) value of the snapshot, strictly: uptime 99.5 does not
  fire, 99.49 does. A null value (e.g. no rated AI answer, hence no accuracy_rate; no customer paying
  12 months before, hence no nrr_12m) never fires.
- ``churn_spike``: bound = max(minimum, multiplier × mean churned_customers of the previous weeks),
  defaults max(2, 2 × mean of the 8 previous weeks). At the start of the history, fewer than 8
  previous weeks may be given: the mean is over those given; with none the bound is the minimum.
  The alert's ``threshold`` is that bound (2 decimals).
- ``services_degraded``: the alert's value is services_healthy, its threshold services_total.
- ``critical_system_failure`` (weekly form): value and threshold are null; the message says why
  (no healthy service, or which services were up less than 90 % of the week). The probe DAG raises
  the same rule per incident with its own dedup key; the alert store only stores it.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

CHURN_SPIKE_WEEKS = 8


@dataclass(frozen=True)
class Rule:
    """One alert rule. ``metric`` is the dotted path of the value in the snapshot; ``comparison``
    how it is tested: ``<`` / ``>`` against the threshold, ``status_critical``, ``churn_spike``
    (against the computed bound), ``below_total`` (services_healthy < services_total)."""

    name: str
    severity: str
    category: str
    metric: str
    comparison: str
    default_threshold: float | None
    title: str
    message: str


RULES: tuple[Rule, ...] = (
    Rule(
        "critical_system_failure", "critical", "system", "system_health.status", "status_critical", None,
        title="Critical: the platform was in a critical state in the week ending {week}",
        message="{reason}. Over the week the platform was up {uptime}% of the time, with {healthy} of "
                "{total} services healthy at the end of the week.",
    ),
    Rule(
        "uptime_below_target", "high", "system", "system_health.uptime_percentage", "<", 99.5,
        title="Uptime {value}% is below the {threshold}% target",
        message="In the week ending {week} the ChatterFix platform was up {value}% of the time, below "
                "our {threshold}% target.{worst_service}",
    ),
    Rule(
        "churn_spike", "high", "business", "business_health.churned_customers", "churn_spike", 2,
        title="Churn spike: {value} {customers} churned in the week ending {week}",
        message="{value} paying {customers} cancelled in the week ending {week}, above the alert level "
                "of {threshold} ({multiplier} × the average of {average} a week over the previous "
                "{weeks}, and at least {minimum}).",
    ),
    Rule(
        "mrr_growth_below_target", "medium", "financial", "financial.mrr_growth_rate", "<", 5,
        title="MRR growth {value}% is below the {threshold}% monthly target",
        message="Monthly recurring revenue {moved} {abs_value}% over the last month, to ${mrr} in the "
                "week ending {week}; the target is {threshold}% month-over-month growth.",
    ),
    Rule(
        "net_revenue_retention_below_target", "medium", "financial", "retention.nrr_12m", "<", 100,
        title="Net revenue retention {value}% is below the {threshold}% target",
        message="The customers who paid a year before the week ending {week} now pay {value}% of what "
                "they paid then (net revenue retention over 12 months, expansion included), below the "
                "{threshold}% target.",
    ),
    Rule(
        "api_response_time_above_target", "medium", "system", "system_health.avg_response_time_ms", ">",
        1000,
        title="Average response time {value} ms is above the {threshold} ms target",
        message="In the week ending {week} our services answered in {value} ms on average, slower than "
                "the {threshold} ms target.",
    ),
    Rule(
        "ai_accuracy_below_target", "medium", "ai", "ai_platform.accuracy_rate", "<", 90,
        title="AI assistant accuracy {value}% is below the {threshold}% target",
        message="In the week ending {week} users rated {value}% of the AI assistant's answers correct, "
                "below the {threshold}% target.",
    ),
    Rule(
        "services_degraded", "low", "system", "system_health.services_healthy", "below_total", None,
        title="{unhealthy} of {total} services not healthy at the end of the week ending {week}",
        message="At the end of the week ending {week}, {healthy} of {total} services were healthy. "
                "Not healthy: {names}.",
    ),
)
RULES_BY_NAME = {rule.name: rule for rule in RULES}
WEEKLY_RULES = tuple(rule.name for rule in RULES)


def churn_spike_bound(previous_churned: list[int], *, multiplier: float = 2, minimum: float = 2) -> Fraction:
    """max(minimum, multiplier × mean of ``previous_churned``) (just the minimum with no history)."""
    bound = Fraction(minimum)
    if previous_churned:
        mean = Fraction(sum(int(c) for c in previous_churned), len(previous_churned))
        bound = max(bound, Fraction(multiplier) * mean)
    return bound
