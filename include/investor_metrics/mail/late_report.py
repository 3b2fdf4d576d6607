"""The late-report e-mail to ``DATA_TEAM_EMAILS`` (SPEC section 13, docs/adr/late-report.md): a
scheduled week was not archived within ``INVESTOR_REPORT_DEADLINE`` of its scheduled time. It says
which week, when it was due, the deadline, what the store holds, and where to look in Airflow.
Its exactly-once key is (``late_report``, period end). Plain data in, a message out: nothing here
touches the network, a database or the clock."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, tzinfo
from email.message import EmailMessage
from html import escape
from urllib.parse import quote

from include.investor_metrics.mail.formats import period_label, week_ending_label
from include.investor_metrics.mail.message import (
    new_message,
    recipient_list,
    safe_url,
    text_part_options,
)
from include.investor_metrics.period import iso_utc, to_utc, tz_label
from include.investor_metrics.settings import resolve_timezone

KIND_LATE_REPORT = "late_report"  # send-log kind; key: the week's period end (late_report_key)
WEEKLY_DAG_ID = "investor_metrics"


@dataclass(frozen=True)
class LateWeek:
    """A scheduled week past its deadline: [start, end) is its data interval (``end`` its cron tick,
    the scheduled time), ``deadline_at`` = end + ``deadline_minutes``, ``checked_at`` the round that
    found it missing; ``latest_archived`` the period end of the newest weekly snapshot stored."""

    start: datetime
    end: datetime
    deadline_minutes: float
    deadline_at: datetime
    checked_at: datetime
    latest_archived: datetime | None = None

    @property
    def scheduled_run_id(self) -> str:
        """The run id the scheduler gives this week's run (Airflow 3: ``scheduled__<run after>``,
        run after = the interval's end)."""
        return f"scheduled__{to_utc(self.end).isoformat()}"


def late_report_key(period_end: datetime) -> str:
    """The send key: the week's period end (``2026-11-22T09:00:00Z``)."""
    return iso_utc(period_end)


def airflow_links(base_url: str | None, dag_id: str = WEEKLY_DAG_ID) -> dict[str, str] | None:
    """The weekly DAG's page and its run list in the Airflow UI (``AIRFLOW__API__BASE_URL``), or None
    without a base URL (or with one that is not http(s))."""
    base = safe_url((base_url or "").rstrip("/") or None)
    if not base:
        return None
    dag = f"{base}/dags/{quote(dag_id, safe='')}"
    return {"dag": dag, "runs": f"{dag}/runs"}


def _minutes(value: float) -> str:
    """``120 minutes (2 h)``, ``45 minutes``, ``7.5 minutes``."""
    text = f"{value:g} minutes"
    return text + f" ({value / 60:g} h)" if value >= 60 and value % 60 == 0 else text


def _local(instant: datetime, tz) -> str:
    local = to_utc(instant).astimezone(tz)
    return f"{local:%a} {local.day} {local:%b %Y %H:%M} ({tz_label(tz)})"


def build_late_report(week: LateWeek, *, recipients: str | Iterable[str], sender: str,
                      tz: str | tzinfo | None = None, airflow_base_url: str | None = None) -> EmailMessage:
    """The message telling ``DATA_TEAM_EMAILS`` that ``week`` has not been archived."""
    tz = resolve_timezone(tz)
    recipients = recipient_list(recipients, "DATA_TEAM_EMAILS")
    label = week_ending_label(week.end, tz)
    subject = (f"[LATE] ChatterFix investor metrics: the week ending {label} is not archived "
               f"{_minutes(week.deadline_minutes)} after its scheduled time")
    msg = new_message(kind=KIND_LATE_REPORT, key=late_report_key(week.end), subject=subject,
                      sender=sender, recipients=recipients)
    links = airflow_links(airflow_base_url)
    latest = (f"the week ending {week_ending_label(week.latest_archived, tz)} "
              f"({iso_utc(week.latest_archived)})" if week.latest_archived else "none")
    rows = [
        ("Week", period_label(week.start, week.end, tz)),
        ("Scheduled at", f"{_local(week.end, tz)}, {iso_utc(week.end)}"),
        ("Deadline", f"{_local(week.deadline_at, tz)}: INVESTOR_REPORT_DEADLINE = "
                     f"{_minutes(week.deadline_minutes)}"),
        ("Checked at", f"{_local(week.checked_at, tz)} (probe round)"),
        ("In the store", f"no weekly snapshot for this period end; the latest archived: {latest}"),
        ("Expected run", f"DAG {WEEKLY_DAG_ID}, run id {week.scheduled_run_id}, "
                         f"logical date {iso_utc(week.start)}"),
    ]
    summary = (f"The weekly report for the week ending {label} should have been archived by "
               f"{_local(week.deadline_at, tz)}, and the metrics store does not hold it: its run failed, "
               "hangs, or never started (a paused DAG, a broken DAG file, the scheduler down). The "
               "investors get no weekly e-mail until it lands.")
    steps = [
        f"Open the run list of the DAG {WEEKLY_DAG_ID} in the Airflow UI and look for the run above:",
        "- no run: is the DAG paused, does the DAG file import (Dag import errors), is the scheduler up?",
        "- running: which task is stuck (a locked source table, a hung query, an SMTP server)?",
        "- failed: read the failed task's log, fix the cause, then clear the task.",
        "This e-mail is sent once per week; nothing follows when the report lands.",
    ]
    text = [subject, "", summary, ""] + [f"{name + ':':<14}{value}" for name, value in rows]
    text += ["", *steps, ""]
    if links:
        text += [f"Airflow DAG:   {links['dag']}", f"Run list:      {links['runs']}"]
    else:
        text.append("Airflow: the DAG page (set AIRFLOW__API__BASE_URL to get links here)")
    msg["Importance"] = "high"
    msg.set_content("\n".join(text) + "\n", **text_part_options())
    msg.add_alternative(_html(subject, summary, rows, steps, links), subtype="html", **text_part_options())
    return msg


def _html(subject: str, summary: str, rows: list[tuple[str, str]], steps: list[str],
          links: dict[str, str] | None) -> str:
    cells = "".join(f'<tr><td style="padding:4px 12px;color:#6b7280;vertical-align:top;">{escape(name)}</td>'
                    f'<td style="padding:4px 12px;">{escape(value)}</td></tr>' for name, value in rows)
    items = "".join(f"<li>{escape(step[2:])}</li>" for step in steps if step.startswith("- "))
    others = [escape(step) for step in steps if not step.startswith("- ")]
    buttons = ""
    if links:
        link = '<a href="{}" style="color:#1d4ed8;">{}</a>'
        buttons = (f'<p>{link.format(escape(links["runs"]), "Open the run list in Airflow")} · '
                   f'{link.format(escape(links["dag"]), "the DAG page")}</p>')
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{escape(subject)}</title>'
            f'</head><body style="font-family:Arial,Helvetica,sans-serif;color:#1f2937;">'
            f'<div style="border-top:6px solid #b45309;max-width:680px;padding:12px 16px;">'
            f'<h2 style="color:#b45309;margin:0 0 8px 0;">The weekly report is late</h2>'
            f'<p>{escape(summary)}</p><table role="presentation" style="font-size:13px;">{cells}</table>'
            f'<p>{others[0]}</p><ul>{items}</ul><p>{others[1]}</p>{buttons}</div></body></html>')
