"""The delivery report to ``DATA_TEAM_EMAILS``: the refused recipients and unknown outcomes of one
e-mail, read from its send-log rows (plain text, read by data engineers next to the task log)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from email.message import EmailMessage

from include.investor_metrics.mail.message import (
    KIND_DELIVERY_REPORT,
    new_message,
    one_line,
    recipient_list,
    text_part_options,
)

_PROBLEM_TEXT = {
    "refused": "permanently refused by the SMTP server: not delivered, and not retried",
    "unknown": "outcome unknown (the connection dropped or timed out after the message data was sent)",
}


def build_delivery_report(
    *,
    kind: str,
    key: str,
    report_key: str,
    subject: str | None,
    problems: Sequence[Mapping],
    recipients: str | Iterable[str],
    sender: str,
) -> EmailMessage:
    """The message that tells ``DATA_TEAM_EMAILS`` of delivery problems of the e-mail (kind, key):
    ``problems`` are send-log rows (recipient, status, smtp_code, last_error, message_id,
    unknown_outcomes). Plain text: it is read by data engineers, next to the task log."""
    recipients = recipient_list(recipients, "DATA_TEAM_EMAILS")
    refused = [p for p in problems if p.get("status") == "refused"]
    what = "refused recipient(s)" if refused and len(refused) == len(problems) else "delivery problem(s)"
    title = f"[DELIVERY] ChatterFix investor e-mail {kind} {key}: {len(problems)} {what}"
    msg = new_message(kind=KIND_DELIVERY_REPORT, key=report_key, subject=title, sender=sender,
                      recipients=recipients)
    lines = [title, "", f"E-mail:      {kind} {key}", f"Subject:     {one_line(subject or 'n/a')}", ""]
    for problem in problems:
        status = str(problem.get("status"))
        unknown = int(problem.get("unknown_outcomes") or 0)
        if status == "refused":
            text = _PROBLEM_TEXT["refused"]
        elif status == "sent":
            text = (f"{_PROBLEM_TEXT['unknown']} {unknown} time(s); since resent with the same Message-ID "
                    f"and accepted: the recipient may hold two copies that mail clients merge")
        else:
            text = (f"{_PROBLEM_TEXT['unknown']} {unknown} time(s); the retry resends it once with the same "
                    f"Message-ID, so mail clients drop a copy")
        code = problem.get("smtp_code")
        reply = one_line(problem.get("last_error") or "")
        lines += [f"- {one_line(problem.get('recipient'))}: {text}",
                  f"    SMTP reply: {code if code is not None else 'n/a'} {reply}",
                  f"    Message-ID: {problem.get('message_id') or 'n/a'}"]
    lines += ["", "The send log (investor_metrics.send_log) has one row per recipient of this e-mail."]
    if refused:
        lines.append("Fix or remove a refused address in INVESTOR_EMAILS; the others were not held up.")
    msg.set_content("\n".join(lines) + "\n", **text_part_options())
    return msg
