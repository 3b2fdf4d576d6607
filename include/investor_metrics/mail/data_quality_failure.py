"""The message the validation failure callback sends to ``DATA_TEAM_EMAILS`` (never investors):
which period failed validation, what failed, and where the data-quality report is."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import tzinfo
from email.message import EmailMessage

from include.investor_metrics.mail.formats import period_bounds, period_label, week_ending_label
from include.investor_metrics.mail.message import (
    KIND_DATA_QUALITY_FAILURE,
    new_message,
    recipient_list,
    render_template,
    safe_url,
    text_part_options,
)
from include.investor_metrics.period import iso_utc
from include.investor_metrics.settings import resolve_timezone

MAX_FAILURE_TEXT = 20_000


def build_data_quality_failure(
    message_text: str,
    *,
    report_path: str | None,
    period,
    recipients: str | Iterable[str],
    sender: str,
    tz: str | tzinfo | None = None,
    airflow_url: str | None = None,
) -> EmailMessage:
    """The message the validation failure callback sends to ``DATA_TEAM_EMAILS`` (never investors).
    Its exactly-once key is (``data_quality_failure``, period end)."""
    tz = resolve_timezone(tz)
    recipients = recipient_list(recipients, "DATA_TEAM_EMAILS")
    start, end = period_bounds(period)
    subject = (f"[DATA QUALITY] ChatterFix investor metrics: validation failed, "
               f"week ending {week_ending_label(end, tz)}")
    msg = new_message(kind=KIND_DATA_QUALITY_FAILURE, key=iso_utc(end), subject=subject, sender=sender,
                      recipients=recipients)
    details = str(message_text or "").strip() or "(no details)"
    if len(details) > MAX_FAILURE_TEXT:
        more = len(details) - MAX_FAILURE_TEXT
        details = details[:MAX_FAILURE_TEXT] + f"\n… ({more} more characters in the task log)"
    report = str(report_path) if report_path else None
    ctx = {
        "subject": subject,
        "period_label": period_label(start, end, tz),
        "details": details,
        "report": report,
        "report_url": safe_url(report),  # a local path is shown as text: clients block file:// links
        "airflow_url": safe_url(airflow_url),
    }
    text = [
        subject, "",
        f"Period: {ctx['period_label']}",
        "Validation of the source data failed, so this period's metrics were not computed and no",
        "investor e-mail was sent for it. Fix the data (or the rule), then clear the failed task.",
        "", "What failed:", details, "",
        f"Data-quality report: {report or 'n/a'}",
    ]
    if ctx["airflow_url"]:
        text.append(f"Airflow: {ctx['airflow_url']}")
    msg.set_content("\n".join(text) + "\n", **text_part_options())
    msg.add_alternative(render_template("data_quality_failure.html.j2", **ctx), subtype="html",
                        **text_part_options())
    return msg
