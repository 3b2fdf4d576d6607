"""The alert rules (SPEC section 6) applied to snapshots (``weekly/alerts/evaluate.py``): each rule
on both sides of its threshold, a null or missing value, the alert's fields and identity."""

from __future__ import annotations

import copy
import hashlib

import pytest

from include.investor_metrics.contract import SEVERITY_RANK
from include.investor_metrics.weekly.alerts import evaluate, rules
from tests.unit.weekly.alerts.sample_weeks import (
    END_ISO,
    QUIET_HISTORY,
    SPEC_TABLE,
    fired,
    healthy_snapshot,
    with_values,
)


# --------------------------------------------------------------------------- the rules
def test_a_healthy_week_raises_nothing():
    assert fired(healthy_snapshot()) == {}


@pytest.mark.parametrize(
    ("rule", "path", "quiet", "firing", "threshold"),
    [
        ("uptime_below_target", "system_health__uptime_percentage", 99.5, 99.49, 99.5),
        ("mrr_growth_below_target", "financial__mrr_growth_rate", 5.0, 4.99, 5.0),
        ("net_revenue_retention_below_target", "retention__nrr_12m", 100.0, 99.99, 100.0),
        ("api_response_time_above_target", "system_health__avg_response_time_ms", 1000.0, 1000.01, 1000.0),
        ("ai_accuracy_below_target", "ai_platform__accuracy_rate", 90.0, 89.99, 90.0),
    ],
)
def test_each_threshold_rule_fires_strictly_past_its_threshold(rule, path, quiet, firing, threshold):
    assert rule not in fired(with_values(healthy_snapshot(), **{path: quiet}))
    alert = fired(with_values(healthy_snapshot(), **{path: firing}))[rule]
    assert (alert["value"], alert["threshold"]) == (firing, threshold)
    assert alert["metric"] == path.replace("__", ".")
    assert f"{threshold:g}".rstrip("0").rstrip(".") in alert["message"].replace(",", "")
    assert str(firing) in alert["title"].replace(",", "")


def test_services_degraded_fires_when_a_service_is_not_healthy():
    all_healthy = with_values(healthy_snapshot(), system_health__services_healthy=3)
    assert "services_degraded" not in fired(all_healthy)
    snap = with_values(healthy_snapshot(), system_health__services_healthy=2)
    snap["system_health"]["services"]["web"]["healthy"] = False
    alert = fired(snap)["services_degraded"]
    assert (alert["value"], alert["threshold"]) == (2, 3)
    assert "Not healthy: web" in alert["message"]


def test_critical_status_raises_critical_system_failure():
    degraded = with_values(healthy_snapshot(), system_health__status="degraded")
    assert "critical_system_failure" not in fired(degraded)
    snap = with_values(healthy_snapshot(), system_health__status="critical",
                       system_health__uptime_percentage=96.0)
    snap["system_health"]["services"]["api"]["uptime_percentage"] = 88.1
    found = fired(snap)
    alert = found["critical_system_failure"]
    assert alert["severity"] == "critical"
    assert alert["metric"] == "system_health.status"
    assert alert["value"] is None and alert["threshold"] is None
    assert "api was up only 88.1%" in alert["message"]
    assert list(found)[0] == "critical_system_failure"  # the most severe first


def test_churn_spike_fires_only_above_twice_the_mean_of_the_previous_weeks():
    history = [2, 3, 1, 2, 4, 2, 1, 1]  # mean 2, bound max(2, 4) = 4
    assert "churn_spike" not in fired(with_values(healthy_snapshot(), business_health__churned_customers=4),
                                      previous=history)
    five = with_values(healthy_snapshot(), business_health__churned_customers=5)
    alert = fired(five, previous=history)["churn_spike"]
    assert (alert["value"], alert["threshold"]) == (5, 4)
    assert "5 paying customers" in alert["message"]


def test_churn_spike_floor_and_short_history():
    # A quiet history: the bound is the floor of 2.
    assert "churn_spike" not in fired(with_values(healthy_snapshot(), business_health__churned_customers=2))
    three = with_values(healthy_snapshot(), business_health__churned_customers=3)
    assert fired(three)["churn_spike"]["threshold"] == 2
    # History start: no previous week, the bound is the floor; fewer than 8, their mean.
    assert rules.churn_spike_bound([]) == 2
    assert rules.churn_spike_bound([3, 4]) == 7
    assert "churn_spike" in fired(three, previous=[])
    assert "churn_spike" not in fired(with_values(healthy_snapshot(), business_health__churned_customers=7),
                                      previous=[3, 4])
    spike = fired(with_values(healthy_snapshot(), business_health__churned_customers=3), previous=[1, 0, 1])
    assert spike["churn_spike"]["threshold"] == 2  # max(2, 2 × 2/3)
    odd = fired(with_values(healthy_snapshot(), business_health__churned_customers=6), previous=[2, 3, 3])
    assert odd["churn_spike"]["threshold"] == 5.33  # 2 × 8/3, reported to 2 decimals


def test_severities_and_categories_are_those_of_the_spec():
    assert {r.name: (r.severity, r.category) for r in rules.RULES} == SPEC_TABLE
    snap = with_values(
        healthy_snapshot(),
        system_health__uptime_percentage=80.0, system_health__status="critical",
        system_health__services_healthy=0, system_health__avg_response_time_ms=1500.0,
        financial__mrr_growth_rate=-3.0, business_health__churned_customers=30,
        ai_platform__accuracy_rate=50.0, retention__nrr_12m=80.0,
    )
    found = evaluate.evaluate(snap, thresholds={}, previous_churned=QUIET_HISTORY)
    assert {a["rule"]: (a["severity"], a["category"]) for a in found} == SPEC_TABLE
    assert [a["severity"] for a in found] == sorted(
        (a["severity"] for a in found), key=SEVERITY_RANK.__getitem__
    )


@pytest.mark.parametrize(
    "path",
    ["system_health__uptime_percentage", "financial__mrr_growth_rate", "system_health__avg_response_time_ms",
     "ai_platform__accuracy_rate", "business_health__churned_customers", "system_health__services_healthy",
     "system_health__status", "retention__nrr_12m"],
)
def test_a_null_metric_never_fires(path):
    assert fired(with_values(healthy_snapshot(), **{path: None}), previous=[]) == {}


def test_net_revenue_retention_fires_below_100_and_never_without_a_base_set():
    # 99.99 < 100 fires; exactly 100 (the customers of a year ago pay what they paid) does not; a null
    # nrr_12m (nobody paid 12 months before: no base set) never does, nor a snapshot without the section
    rule = "net_revenue_retention_below_target"
    assert rule not in fired(with_values(healthy_snapshot(), retention__nrr_12m=100.0))
    alert = fired(with_values(healthy_snapshot(), retention__nrr_12m=99.99))[rule]
    assert (alert["severity"], alert["category"]) == ("medium", "financial")
    assert alert["metric"] == "retention.nrr_12m"
    assert (alert["value"], alert["threshold"]) == (99.99, 100.0)
    assert alert["title"] == "Net revenue retention 99.99% is below the 100% target"
    assert "pay 99.99% of what they paid then" in alert["message"] and "22 Nov 2026" in alert["message"]
    assert fired(with_values(healthy_snapshot(), retention__nrr_12m=None)) == {}
    snap = healthy_snapshot()
    del snap["retention"]
    assert fired(snap) == {}
    # configurable like the others
    low = with_values(healthy_snapshot(), retention__nrr_12m=97.5)
    assert rule not in fired(low, thresholds={rule: 95})
    assert rule in fired(low)


def test_missing_sections_do_not_fire():
    snap = healthy_snapshot()
    del snap["ai_platform"], snap["system_health"]
    assert fired(snap) == {}


def test_an_alert_has_the_spec_fields_and_a_stable_identity():
    snap = with_values(healthy_snapshot(), system_health__uptime_percentage=98.0)
    first = evaluate.evaluate(snap, thresholds={}, previous_churned=QUIET_HISTORY)
    again = evaluate.evaluate(copy.deepcopy(snap), thresholds={}, previous_churned=QUIET_HISTORY)
    assert first == again
    (alert,) = first
    assert list(alert) == ["id", "rule", "severity", "category", "title", "message", "metric", "value",
                           "threshold", "period_start", "period_end", "triggered_at"]
    assert alert["id"] == hashlib.sha256(f"uptime_below_target|{END_ISO}".encode()).hexdigest()[:16]
    assert alert["period_start"] == "2026-11-15T09:00:00Z"
    assert alert["period_end"] == alert["triggered_at"] == END_ISO
    assert "98%" in alert["title"] and "99.5%" in alert["title"]
    assert "22 Nov 2026" in alert["message"]


def test_the_period_end_is_normalised_to_utc():
    snap = healthy_snapshot()
    snap["period"] = {"start": "2026-11-15T10:00:00+01:00", "end": "2026-11-22T10:00:00+01:00",
                      "type": "weekly"}
    snap["system_health"]["uptime_percentage"] = 90.0
    (alert,) = evaluate.evaluate(snap, thresholds={}, previous_churned=[])
    assert alert["period_end"] == END_ISO
    assert alert["id"] == evaluate.alert_id(f"uptime_below_target|{END_ISO}")


def test_thresholds_passed_in_override_the_defaults():
    snap = with_values(healthy_snapshot(), system_health__uptime_percentage=99.2,
                       financial__mrr_growth_rate=4.0)
    assert set(fired(snap)) == {"uptime_below_target", "mrr_growth_below_target"}
    assert set(fired(snap, thresholds={"uptime_below_target": 99.0, "mrr_growth_below_target": 3})) == set()
    spike = with_values(healthy_snapshot(), business_health__churned_customers=4)
    assert "churn_spike" in fired(spike)
    assert "churn_spike" not in fired(spike, thresholds={"churn_spike_minimum": 4})
    assert "churn_spike" not in fired(spike, previous=[1] * 8, thresholds={"churn_spike": 4})


def test_snapshot_alerts_keep_only_the_deterministic_fields():
    (alert,) = evaluate.evaluate(with_values(healthy_snapshot(), ai_platform__accuracy_rate=10.0),
                                 thresholds={}, previous_churned=[])
    stored = {**alert, "run_id": "scheduled__x", "notified": True, "service": None}
    assert evaluate.snapshot_alerts([stored]) == [alert]

