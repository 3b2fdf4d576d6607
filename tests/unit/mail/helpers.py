"""What the e-mail tests share: a sample snapshot (SPEC section 7 shape), its 11 weeks of history,
alerts, the project's SMTP sink on a port of its own, and readers of a received message.

Plain module (no conftest): a test module takes the fixtures by naming them, e.g.
``snapshot = helpers.snapshot``; ``tests/faults`` imports the constants.
"""

from __future__ import annotations

import copy
import email
import email.policy
import json
from datetime import datetime, timedelta, timezone

import pytest

from dev.stack import smtp_sink
from include.investor_metrics.mail.weekly_summary import build_weekly_summary
from tests.conftest import free_port

SENDER = "investors@chatterfix.example"
RECIPIENTS = ["ann@fund-a.example", "bob@fund-b.example", "cy@angels.example"]
DATA_TEAM = ["data@chatterfix.example"]
PASSWORD = "s3cr3t-Pa55word-7f1e"
SCRIPT = "<script>alert(1)</script>"
ESCAPED_SCRIPT = "&lt;script&gt;alert(1)&lt;/script&gt;"

# A real snapshot of the demo stack (SPEC section 7 shape), period ending 22 Nov 2026 09:00 UTC.
SAMPLE_SNAPSHOT = json.loads("""
{
  "timestamp": "2026-11-22T09:00:00Z",
  "generated_at": "2026-11-26T10:00:25Z",
  "period": {"start": "2026-11-15T09:00:00Z", "end": "2026-11-22T09:00:00Z", "type": "weekly"},
  "system_health": {"uptime_percentage": 99.94, "status": "healthy", "services_total": 5,
    "services_healthy": 5, "avg_response_time_ms": 214.88, "p95_response_time_ms": 671.0, "error_rate": 0.06,
    "services": {
      "api": {"healthy": true, "uptime_percentage": 99.9, "avg_response_time_ms": 149.89},
      "web": {"healthy": true, "uptime_percentage": 99.8, "avg_response_time_ms": 227.08},
      "database": {"healthy": true, "uptime_percentage": 100.0, "avg_response_time_ms": 18.55},
      "ai_gateway": {"healthy": true, "uptime_percentage": 100.0, "avg_response_time_ms": 565.06},
      "notifications": {"healthy": true, "uptime_percentage": 100.0, "avg_response_time_ms": 113.77}}},
  "ai_platform": {"total_requests": 1811, "chat_requests": 1488, "api_requests": 323, "cache_hit_rate": 29.21,
    "error_rate": 0.94, "active_providers": 4, "accuracy_rate": 95.31, "avg_latency_ms": 631.53,
    "p95_latency_ms": 1760.0,
    "providers": {
      "local": {"error_rate": 1.52, "api_requests": 35, "accuracy_rate": 95.24, "chat_requests": 163,
        "avg_latency_ms": 342.66, "cache_hit_rate": 28.28, "p95_latency_ms": 784.15, "total_requests": 198},
      "google": {"error_rate": 0.4, "api_requests": 49, "accuracy_rate": 87.69, "chat_requests": 204,
        "avg_latency_ms": 494.98, "cache_hit_rate": 34.39, "p95_latency_ms": 1351.4, "total_requests": 253},
      "openai": {"error_rate": 0.95, "api_requests": 147, "accuracy_rate": 96.94, "chat_requests": 691,
        "avg_latency_ms": 668.62, "cache_hit_rate": 28.88, "p95_latency_ms": 1674.65, "total_requests": 838},
      "anthropic": {"error_rate": 0.96, "api_requests": 92, "accuracy_rate": 96.75, "chat_requests": 430,
        "avg_latency_ms": 747.75, "cache_hit_rate": 27.59, "p95_latency_ms": 2125.05,
        "total_requests": 522}}},
  "financial": {"mrr": 32109.67, "arr": 385316.0, "active_customers": 127, "mrr_growth_rate": 16.1,
    "customer_growth_rate": 9.48, "new_mrr": 1740.0, "reactivation_mrr": 0.0, "expansion_mrr": 349.0,
    "contraction_mrr": 650.0, "churned_mrr": 0.0, "net_new_mrr": 1439.0, "quick_ratio": 3.21, "arpa": 252.83,
    "lead_conversion_rate": 15.38},
  "business_health": {"churn_risk": "low", "growth_trajectory": "strong", "churned_customers": 0,
    "logo_churn_rate": 0.0, "revenue_churn_rate": 2.12, "churn_rate_28d": 0.86,
    "customer_satisfaction": {"nps": 41.86, "responses": 86}, "platform_utilization": 95.28,
    "at_risk_customers": 11, "mrr_at_risk": 1943.33},
  "data_quality": {"success": true, "warnings": []},
  "alerts": []
}
""")
PERIOD_END = datetime(2026, 11, 22, 9, tzinfo=timezone.utc)


def _iso(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def make_alert(rule="uptime_below_target", severity="high", *, value=98.1, threshold=99.5,
               metric="system_health.uptime_percentage", message="Uptime was 98.1% against a 99.5% target",
               **extra) -> dict:
    alert = {
        "id": f"{rule}-2026-11-22", "rule": rule, "severity": severity, "category": "system",
        "title": rule.replace("_", " ").capitalize(), "message": message, "metric": metric,
        "value": value, "threshold": threshold, "period_start": "2026-11-15T09:00:00Z",
        "period_end": "2026-11-22T09:00:00Z", "triggered_at": "2026-11-22T09:00:00Z",
        "run_id": "scheduled__2026-11-22T09:00:00+00:00", "notified": False,
    }
    alert.update(extra)
    return alert



def make_history(snapshot: dict) -> list[dict]:
    """The 11 weeks before ``snapshot`` (fabricated: steady growth, one bad uptime week),
    newest first as ``store.history`` returns them."""
    weeks = []
    for k in range(1, 12):
        week = copy.deepcopy(snapshot)
        end = PERIOD_END - timedelta(days=7 * k)
        week["period"] = {"start": _iso(end - timedelta(days=7)), "end": _iso(end), "type": "backfill"}
        week["financial"]["mrr"] = round(snapshot["financial"]["mrr"] * 0.97 ** k, 2)
        week["financial"]["active_customers"] = snapshot["financial"]["active_customers"] - 3 * k
        week["system_health"]["uptime_percentage"] = 99.2 if k == 5 else 99.9
        week["ai_platform"]["total_requests"] = int(snapshot["ai_platform"]["total_requests"] * 0.95 ** k)
        week["business_health"]["logo_churn_rate"] = 0.8
        weeks.append(week)
    return weeks


@pytest.fixture()
def snapshot() -> dict:
    return copy.deepcopy(SAMPLE_SNAPSHOT)


@pytest.fixture()
def history(snapshot) -> list[dict]:
    """The 11 weeks before the sample one (``make_history``)."""
    return make_history(snapshot)


class Sink:
    """The project's SMTP sink on a port of its own; ``stop``/``start`` simulate an outage."""

    def __init__(self, outbox, port, handler=None, **smtp_kwargs):
        self.outbox, self.port, self.handler, self.smtp_kwargs = outbox, port, handler, smtp_kwargs
        self.controller = None

    def start(self):
        if self.handler is None and not self.smtp_kwargs:
            self.controller = smtp_sink.start(self.outbox, port=self.port)
        else:
            from aiosmtpd.controller import Controller

            handler = self.handler or smtp_sink.OutboxHandler(self.outbox)
            self.controller = Controller(handler, hostname="127.0.0.1", port=self.port, **self.smtp_kwargs)
            self.controller.start()
        return self

    def stop(self):
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    def files(self):
        return smtp_sink.messages(self.outbox)

    def parsed(self):
        return [email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
                for path in self.files()]


@pytest.fixture()
def sink(tmp_path):
    box = Sink(tmp_path / "outbox", free_port()).start()
    yield box
    box.stop()


def sink_env(port: int, **extra) -> dict:
    return {"SMTP_SERVER": "127.0.0.1", "SMTP_PORT": str(port), "INVESTOR_EMAIL": SENDER,
            "SMTP_STARTTLS": "false", "SMTP_SSL": "false", "INVESTOR_EMAILS": ", ".join(RECIPIENTS), **extra}


@pytest.fixture(autouse=True)
def no_airflow_smtp_connection(monkeypatch):
    """Tests choose their SMTP settings; a developer's AIRFLOW_CONN_SMTP_DEFAULT must not leak in."""
    monkeypatch.delenv("AIRFLOW_CONN_SMTP_DEFAULT", raising=False)


def psycopg3_connect(settings, **kwargs):
    import psycopg

    return psycopg.connect(host=settings.host, port=settings.port, dbname=settings.dbname,
                           user=settings.user, password=settings.password, **kwargs)


def summary(snapshot, history, **kwargs):
    options = {"previous": history[0] if history else None, "history": history, "recipients": RECIPIENTS,
               "sender": SENDER, "airflow_url": "http://localhost:8080/dags/investor_metrics/runs/scheduled__2026-11-22",
               "tz": "UTC"}
    options.update(kwargs)
    return build_weekly_summary(snapshot, **options)


def html_of(message) -> str:
    return message.get_body(("html",)).get_content()


def text_of(message) -> str:
    return message.get_body(("plain",)).get_content()


def envelope_to(message) -> list[str]:
    return sorted(address.strip() for address in str(message["X-Envelope-To"]).split(","))


# The investor-depth sections (SPEC 4b), hand-made for the sample week (end 22 Nov 2026 09:00 UTC,
# zone UTC): 12 cohorts Dec 2025 … Nov 2026, checkpoints at each month start, then end.
COHORT_ACTIVE = {  # month: (size, active at each month start after it …, active at end)
    "2025-12": (5, [5, 5, 4, 4, 4, 3, 3, 3, 3, 2, 2], 1),  # 100 % … 20 % at end
    "2026-01": (4, [4, 4, 3, 3, 3, 3, 3, 3, 3, 3], 3),
    "2026-02": (6, [6, 5, 5, 5, 5, 5, 4, 4, 4], 4),
    "2026-03": (3, [3, 3, 3, 3, 2, 2, 2, 2], 2),
    "2026-04": (8, [8, 7, 7, 7, 6, 6, 6], 6),
    "2026-05": (2, [2, 2, 2, 2, 2, 2], 2),
    "2026-06": (7, [7, 6, 6, 6, 6], 5),
    "2026-07": (0, [0, 0, 0, 0], 0),  # no new customer: null rates
    "2026-08": (9, [9, 9, 8], 8),
    "2026-09": (4, [4, 4], 4),
    "2026-10": (6, [6], 5),
    "2026-11": (3, [], 3),  # only the end checkpoint
}


def _cohort(month: str) -> dict:
    size, actives, at_end = COHORT_ACTIVE[month]
    year, number = (int(p) for p in month.split("-"))
    points = []
    for k, active in enumerate([*actives, at_end], start=1):
        if k <= len(actives):
            y, m = divmod(number - 1 + k, 12)
            as_of = f"{year + y}-{m + 1:02d}-01T00:00:00Z"
        else:
            as_of = "2026-11-22T09:00:00Z"
        points.append({"as_of": as_of, "active": active, "mrr": 100.0 * active,
                       "logo_retention": round(active / size * 100, 2) if size else None,
                       "mrr_retention": round(active / actives[0] * 100, 2) if size and actives else (
                           100.0 if size else None)})
    return {"month": month, "customers": size, "checkpoints": points}


MOVERS = [  # (id, name, kind, start, end), largest |change| first
    (17, "Globex <Holdings> & Co", "new", 0.0, 1200.0),
    (4, "Initech", "churned", 950.0, 0.0),
    (23, "Umbrella", "expansion", 300.0, 900.0),
    (8, None, "contraction", 700.0, 250.0),
    (31, "Hooli", "reactivation", 0.0, 399.0),
    (12, "Stark Industries", "expansion", 500.0, 820.5),
    (40, "Wayne Enterprises", "new", 0.0, 299.0),
    (41, "Acme", "new", 0.0, 149.0),
    (2, "Soylent", "contraction", 249.0, 149.0),
    (9, "Vandelay Imports", "expansion", 99.0, 149.0),
]


def with_depth(snapshot: dict) -> dict:
    """``snapshot`` with ``retention``, ``segments`` and ``movements`` (SPEC 4b)."""
    out = copy.deepcopy(snapshot)
    out["retention"] = {"nrr_12m": 104.17, "grr_12m": 91.08, "nrr_1m": 101.26, "grr_1m": 98.49,
                        "logo_retention_12m": 86.67,
                        "cohorts": [_cohort(month) for month in COHORT_ACTIVE]}
    out["segments"] = {"by_plan": {
        "business": {"mrr": 18900.0, "active_customers": 42, "new_mrr": 1200.0, "reactivation_mrr": 0.0,
                     "expansion_mrr": 349.0, "contraction_mrr": 450.0, "churned_mrr": 0.0,
                     "net_new_mrr": 1099.0, "arpa": 450.0},
        "starter": {"mrr": 13209.67, "active_customers": 85, "new_mrr": 540.0, "reactivation_mrr": 0.0,
                    "expansion_mrr": 0.0, "contraction_mrr": 200.0, "churned_mrr": 0.0,
                    "net_new_mrr": 340.0, "arpa": 155.41},
    }}
    out["movements"] = {"largest": [
        {"customer_id": cid, "name": name, "kind": kind, "mrr_start": s, "mrr_end": e,
         "change": round(e - s, 2)} for cid, name, kind, s, e in MOVERS]}
    return out
