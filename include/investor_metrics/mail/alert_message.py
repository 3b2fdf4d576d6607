"""The message of one critical or high alert (text + HTML), sent at once, before the summary.
Its exactly-once key is the alert's id: one message per alert, whichever run sends it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import tzinfo
from email.message import EmailMessage

from include.investor_metrics.contract import URGENT_SEVERITIES
from include.investor_metrics.mail.alert_view import alert_headline, severity_of, urgent_alerts, view_of
from include.investor_metrics.mail.formats import (
    SEVERITY_STYLE,
    local_date,
    period_bounds,
    period_label,
    week_ending_label,
)
from include.investor_metrics.mail.message import (
    KIND_ALERT,
    new_message,
    one_line,
    recipient_list,
    render_template,
    safe_url,
    text_part_options,
)
from include.investor_metrics.period import as_instant, tz_label
from include.investor_metrics.settings import resolve_timezone


def alert_key(alert: Mapping) -> str:
    """The exactly-once key of an alert message: the alert's id (one message per alert)."""
    key = str(alert.get("id") or "").strip()
    if not key:
        raise ValueError(f"alert {alert.get('rule')!r} has no id: it cannot be sent exactly once")
    return key


def alert_subject(alert: Mapping, tz) -> str:
    """``[HIGH] ChatterFix: <headline> (week ending 22 Nov 2026)``, on one line."""
    tz = resolve_timezone(tz)
    headline = alert_headline(alert)
    subject = f"[{severity_of(alert).upper()}] ChatterFix: {headline}"
    if alert.get("period_end") and "week ending" not in headline.lower():
        subject += f" (week ending {week_ending_label(as_instant(alert['period_end']), tz)})"
    return one_line(subject, 250)


def build_alert_message(
    alert: Mapping,
    *,
    recipients: str | Iterable[str],
    sender: str,
    period=None,
    airflow_url: str | None = None,
    tz: str | tzinfo | None = None,
) -> EmailMessage:
    """One message for one alert (text + HTML); its exactly-once key is (``alert``, alert id).

    ``period`` (a ``Period`` or a ``{"start", "end"}`` dict) defaults to the alert's own period."""
    tz = resolve_timezone(tz)
    recipients = recipient_list(recipients)
    view = view_of(alert)
    if period is None and alert.get("period_start") and alert.get("period_end"):
        period = {"start": alert["period_start"], "end": alert["period_end"]}
    start_end = period_bounds(period) if period is not None else None
    subject = alert_subject(alert if alert.get("period_end") or start_end is None
                            else {**alert, "period_end": start_end[1]}, tz)
    msg = new_message(kind=KIND_ALERT, key=alert_key(alert), subject=subject, sender=sender,
                      recipients=recipients)
    if view["severity"] in URGENT_SEVERITIES:
        msg["Importance"] = "high"
    badge, tint = SEVERITY_STYLE[view["severity"]]
    triggered = alert.get("triggered_at")
    ctx = {
        "subject": subject,
        "alert": view,
        "badge": badge,
        "tint": tint,
        "period_label": period_label(*start_end, tz) if start_end else "n/a",
        "triggered_at": (local_date(as_instant(triggered), tz)
                         + as_instant(triggered).astimezone(tz).strftime(" %H:%M")
                         + f" ({tz_label(tz)})") if triggered else "n/a",
        "airflow_url": safe_url(airflow_url),
    }
    text = [
        subject, "",
        view["title"],
        view["message"], "",
        f"Severity:   {view['severity']}",
        f"Category:   {view['category']}",
        f"Rule:       {view['rule']}",
        f"Metric:     {view['metric'] or 'n/a'}",
        f"Value:      {view['value']}",
        f"Threshold:  {view['threshold']}",
        f"Period:     {ctx['period_label']}",
        f"Triggered:  {ctx['triggered_at']}",
        f"Alert id:   {view['id']}",
    ]
    if ctx["airflow_url"]:
        text += ["", f"Airflow: {ctx['airflow_url']}"]
    text += ["", "The weekly summary has the full numbers."]
    msg.set_content("\n".join(text) + "\n", **text_part_options())
    msg.add_alternative(render_template("alert.html.j2", **ctx), subtype="html", **text_part_options())
    return msg


def build_alert_messages(
    alerts: Iterable[Mapping],
    *,
    recipients: str | Iterable[str],
    sender: str,
    period=None,
    airflow_url: str | None = None,
    tz: str | tzinfo | None = None,
) -> list[tuple[str, EmailMessage]]:
    """``(alert id, message)`` for each critical or high alert of a run, most severe first."""
    tz = resolve_timezone(tz)
    return [
        (alert_key(alert), build_alert_message(alert, recipients=recipients, sender=sender, period=period,
                                               airflow_url=airflow_url, tz=tz))
        for alert in urgent_alerts(alerts)
    ]
