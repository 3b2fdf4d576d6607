"""What every investor e-mail shares: its kind, its identity, its headers and its templates.

An e-mail is identified by its exactly-once key (kind, key). ``message_id`` derives the Message-ID
from it, so every build of the same e-mail carries the same id (a resend is a duplicate a mail
client drops); ``address_to`` gives each recipient a copy of their own. ``new_message`` starts a
message with the project's headers; the HTML parts are Jinja2 templates with autoescaping on (every
value from the data is escaped). Nothing here touches the network, a database or the clock.
"""

from __future__ import annotations

import email.policy
import hashlib
import re
from collections.abc import Iterable
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import parseaddr
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlsplit

from include.investor_metrics.settings import parse_address_list

TEMPLATES_DIR = Path(__file__).resolve().parents[1] / "templates"

KIND_WEEKLY_SUMMARY = "weekly_summary"
KIND_ALERT = "alert"
KIND_DATA_QUALITY_FAILURE = "data_quality_failure"
KIND_DELIVERY_REPORT = "delivery_report"  # to DATA_TEAM_EMAILS: refused addresses, unknown outcomes

SENDER_NAME = "ChatterFix"


def one_line(text, limit: int = 200) -> str:
    """Header-safe text: no line breaks (a header injection), bounded length."""
    flat = re.sub(r"\s+", " ", str(text)).strip()
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def recipient_list(recipients: str | Iterable[str], name: str = "recipients") -> list[str]:
    """The addresses of a comma-separated list (or of an iterable of them); a ``ConfigError`` naming
    ``name`` for a malformed one."""
    if isinstance(recipients, str):
        return parse_address_list(recipients, name)
    return parse_address_list(",".join(recipients), name)


def checked_sender(sender: str) -> str:
    """The address of ``sender`` (``Name <a@b>`` or ``a@b``); a ``ConfigError`` when malformed."""
    address = parseaddr(sender)[1]
    parse_address_list(address, "sender (INVESTOR_EMAIL)")
    return address


def safe_url(url: str | None) -> str | None:
    """Only http(s) links go into a message (never ``javascript:`` or a relative path)."""
    if not url:
        return None
    parts = urlsplit(url)
    return url if parts.scheme in {"http", "https"} and parts.netloc else None


def message_id(kind: str, key: str, sender: str, recipient: str | None = None) -> str:
    """The deterministic Message-ID of the message with exactly-once key (kind, key), in the
    sender's domain: ``<cfx.<kind>.<digest of kind and key>@domain>``; a recipient's own copy
    appends a digest of the address (``...<digest>.<recipient digest>@domain``). A resend after an
    unknown outcome carries the same id, so a receiver can drop it."""
    domain = checked_sender(sender).rpartition("@")[2]
    digest = hashlib.sha256(f"{kind}\x1f{key}".encode()).hexdigest()[:24]
    local = f"cfx.{re.sub(r'[^A-Za-z0-9_-]', '-', kind)}.{digest}"
    if recipient:
        local += "." + _recipient_digest(recipient)
    return f"<{local}@{domain}>"


def _recipient_digest(recipient: str) -> str:
    return hashlib.sha256(recipient.strip().lower().encode()).hexdigest()[:12]


# One of our Message-IDs, message-level or of some recipient's copy (re-addressing is repeatable).
_OUR_MESSAGE_ID = re.compile(r"<(cfx\.[A-Za-z0-9_-]+\.[0-9a-f]{24})(?:\.[0-9a-f]{12})?@([^>\s]+)>")


def address_to(message: EmailMessage, *, kind: str, key: str, recipient: str) -> str:
    """Address ``message`` to ``recipient`` alone (its own ``To:`` and Message-ID, no other
    recipient in any header); a reply's ``In-Reply-To``/``References`` to one of our messages point
    at that recipient's copy of it. Returns the Message-ID."""
    mine = _recipient_digest(recipient)
    for header in ("In-Reply-To", "References"):
        value = message.get(header)
        if value is not None:
            del message[header]
            message[header] = _OUR_MESSAGE_ID.sub(lambda m: f"<{m.group(1)}.{mine}@{m.group(2)}>", str(value))
    for header in ("To", "Cc", "Bcc", "Message-ID", "X-ChatterFix-Send-Key"):
        del message[header]
    message["To"] = recipient
    message["X-ChatterFix-Send-Key"] = one_line(f"{kind}:{key}", 250)
    mid = message_id(kind, key, parseaddr(str(message["From"]))[1], recipient)
    message["Message-ID"] = mid
    return mid


# Headers up to RFC 5322's 998 characters: Python's default 78-column folding puts a subject that
# starts with "[HIGH]" on a continuation line, which some clients show with a leading space.
MESSAGE_POLICY = email.policy.default.clone(max_line_length=998)


def new_message(*, kind: str, key: str, subject: str, sender: str, recipients: list[str]) -> EmailMessage:
    """An empty message of the e-mail (kind, key) with the project's headers: its Message-ID, no
    auto-replies (RFC 3834), ``X-ChatterFix-Send-Key``."""
    msg = EmailMessage(policy=MESSAGE_POLICY)
    msg["Subject"] = one_line(subject, 250)
    msg["From"] = Address(SENDER_NAME, addr_spec=checked_sender(sender))
    msg["To"] = ", ".join(recipients)
    msg["Message-ID"] = message_id(kind, key, sender)
    msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies to a report
    msg["X-Auto-Response-Suppress"] = "All"
    msg["X-ChatterFix-Send-Key"] = one_line(f"{kind}:{key}", 250)
    return msg


@lru_cache(maxsize=1)
def _templates():
    import jinja2

    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES_DIR)),
        autoescape=True,  # every value is escaped unless a template says otherwise (none does)
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render_template(name: str, **context) -> str:
    return _templates().get_template(name).render(**context)


def text_part_options() -> dict:
    """The options of a text or HTML part: quoted-printable, 7-bit safe through any relay and still
    readable in the raw source."""
    return {"cte": "quoted-printable"}

