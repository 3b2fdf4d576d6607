"""Settings of the investor-metrics project, read from the environment (SPEC section 10).

One place for every setting: names, defaults and the clear error when one is missing or malformed.
Airflow connections (``chatterfix_db``, ``investor_metrics_db``, ``smtp_default``) set the Airflow
way win over the seed's ``DB_*`` / ``SMTP_*`` variables; the fallback to those variables is built
here. Nothing in this module touches the network or a database, so DAG files may import it.
Secrets (passwords) are never put into an error message or a ``repr``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

PROJECT_ROOT = Path(__file__).resolve().parents[2]  # include/investor_metrics/settings.py

CHATTERFIX_CONN_ID = os.getenv("CHATTERFIX_CONN_ID", "chatterfix_db")
METRICS_CONN_ID = os.getenv("INVESTOR_METRICS_CONN_ID", "investor_metrics_db")
SMTP_CONN_ID = os.getenv("INVESTOR_SMTP_CONN_ID", "smtp_default")

DEFAULT_SCHEDULE = "0 9 * * 0"  # Sunday 09:00 in INVESTOR_TIMEZONE
DEFAULT_DB_NAME = "chatterfix_cmms"


class ConfigError(ValueError):
    """A setting is missing or malformed; the message names the variable."""


@contextmanager
def settings_fail_the_task() -> Iterator[None]:
    """Around a task body: a ``ConfigError`` fails the task at once, without retries (Airflow's
    ``AirflowFailException``), its message naming the variable — a wrong setting does not fix
    itself between retries, and waiting out 3 retries only hides it."""
    try:
        yield
    except ConfigError as exc:
        from airflow.sdk.exceptions import AirflowFailException

        raise AirflowFailException(f"configuration error: {exc}") from exc


def _env(env: Mapping[str, str] | None) -> Mapping[str, str]:
    return os.environ if env is None else env


def _int_setting(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer port number, got {raw!r}") from None
    if not 0 < value < 65536:
        raise ConfigError(f"{name} must be between 1 and 65535, got {value}")
    return value


def number_setting(name: str, default: float, *, integer: bool = False, minimum: float = 0.0,
                   env: Mapping[str, str] | None = None) -> float:
    """The number of the variable ``name`` (``default`` when unset or empty), at least ``minimum``;
    a ``ConfigError`` naming the variable otherwise."""
    raw = _env(env).get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw) if integer else float(raw)
    except ValueError:
        value = None
    if value is None or value < minimum or value != value:  # NaN
        kind = "an integer" if integer else "a number"
        raise ConfigError(f"{name} must be {kind} >= {minimum:g}, got {raw!r}")
    return value


def _bool_setting(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in {"1", "true", "yes", "on"}:
        return True
    if raw in {"0", "false", "no", "off"}:
        return False
    raise ConfigError(f"{name} must be true or false, got {raw!r}")


@dataclass(frozen=True)
class PostgresSettings:
    """Where a PostgreSQL database is. ``repr`` hides the password."""

    host: str
    port: int = 5432
    dbname: str = DEFAULT_DB_NAME
    user: str | None = None
    password: str | None = field(default=None, repr=False)

    def dsn(self) -> str:
        """A libpq keyword DSN (password included: never log it)."""
        parts = {"host": self.host, "port": self.port, "dbname": self.dbname}
        if self.user:
            parts["user"] = self.user
        if self.password:
            parts["password"] = self.password
        return " ".join(f"{k}={_quote_dsn(str(v))}" for k, v in parts.items())

    def sqlalchemy_url(self) -> str:
        from urllib.parse import quote

        auth = quote(self.user or "", safe="")
        if self.password:
            auth += ":" + quote(self.password, safe="")
        if auth:
            auth += "@"
        return f"postgresql+psycopg2://{auth}{self.host}:{self.port}/{quote(self.dbname, safe='')}"

    def public_description(self) -> str:
        """What may appear in a log line: no password."""
        return f"postgresql://{self.user or ''}@{self.host}:{self.port}/{self.dbname}"


def _quote_dsn(value: str) -> str:
    if value and re.fullmatch(r"[^\s'\\]+", value):
        return value
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def postgres_settings_from_env(env: Mapping[str, str] | None = None) -> PostgresSettings:
    """The seed's ``DB_*`` variables: ``DB_HOST`` (required), ``DB_PORT`` (5432), ``DB_NAME``
    (``chatterfix_cmms``), ``DB_USER``, ``DB_PASSWORD``."""
    env = _env(env)
    host = env.get("DB_HOST", "").strip()
    if not host:
        raise ConfigError(
            "DB_HOST is not set: set DB_HOST (and DB_PORT, DB_NAME, DB_USER, DB_PASSWORD) or define "
            f"the Airflow connection {CHATTERFIX_CONN_ID!r}"
        )
    return PostgresSettings(
        host=host,
        port=_int_setting(env, "DB_PORT", 5432),
        dbname=env.get("DB_NAME", "").strip() or DEFAULT_DB_NAME,
        user=env.get("DB_USER", "").strip() or None,
        password=env.get("DB_PASSWORD") or None,
    )


_EMAIL_RE = re.compile(r"^[^@\s,;<>\"]+@[^@\s,;<>\"]+\.[^@\s,;<>\"]+$")


def parse_address_list(raw: str | None, name: str, *, required: bool = True) -> list[str]:
    """A comma-separated list of e-mail addresses; a malformed one is an error naming ``name``."""
    items = [item.strip() for item in (raw or "").split(",") if item.strip()]
    if not items:
        if required:
            raise ConfigError(f"{name} is not set: give one or more comma-separated e-mail addresses")
        return []
    bad = [item for item in items if not _EMAIL_RE.match(item)]
    if bad:
        raise ConfigError(f"{name} has malformed address(es): {', '.join(bad)}")
    return items


SERVICE_URL_SCHEMES = ("http", "https", "tcp")  # tcp://host:port: the probe DAG's TCP check


def check_service_url(url: str, where: str) -> str:
    """``url`` when the probe DAG can probe it (http(s)://host..., tcp://host:port), else a
    ``ConfigError`` naming ``where`` (the variable and the service)."""
    # a URL with a user or a query may hold a secret: not repeated in the message
    shown = "the URL" if re.search(r"[@?]", url) else repr(url)
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ConfigError(f"{where}: {shown} is not a URL ({exc})") from None
    if parts.scheme.lower() not in SERVICE_URL_SCHEMES or not parts.hostname:
        raise ConfigError(f"{where}: {shown} is not a URL such as https://host/health or tcp://host:port")
    if parts.scheme.lower() == "tcp" and port is None:
        raise ConfigError(f"{where}: {shown} needs a port (tcp://host:port)")
    return url


def parse_service_list(raw: str | None, name: str = "HEALTH_CHECK_SERVICES") -> dict[str, str]:
    """``name=url,name=url`` → ``{name: url}`` (order kept); each URL must be probeable."""
    services: dict[str, str] = {}
    for item in (raw or "").split(","):
        item = item.strip()
        if not item:
            continue
        service, sep, url = item.partition("=")
        service, url = service.strip(), url.strip()
        if not sep or not service or not url:
            raise ConfigError(f"{name} entry {item!r} is not of the form name=url")
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", service):
            raise ConfigError(f"{name} service name {service!r} may only hold letters, digits, _ . -")
        if service in services:
            raise ConfigError(f"{name} names service {service!r} twice")
        services[service] = check_service_url(url, f"{name} service {service!r}")
    return services


def health_check_services(env: Mapping[str, str] | None = None) -> dict[str, str]:
    return parse_service_list(_env(env).get("HEALTH_CHECK_SERVICES"))


def resolve_timezone(tz):
    """``tz`` as a tzinfo: None → ``INVESTOR_TIMEZONE``, a name → that IANA zone, a tzinfo as is."""
    if tz is None:
        return investor_timezone()
    if isinstance(tz, str):
        import pendulum

        return pendulum.timezone(tz)
    return tz


def investor_timezone(env: Mapping[str, str] | None = None):
    """``INVESTOR_TIMEZONE`` (default UTC) as a pendulum timezone."""
    import pendulum

    raw = _env(env).get("INVESTOR_TIMEZONE", "").strip() or "UTC"
    try:
        return pendulum.timezone(raw)
    except Exception:
        raise ConfigError(
            f"INVESTOR_TIMEZONE {raw!r} is not an IANA time zone name (e.g. Europe/Paris)"
        ) from None


def metrics_schedule(env: Mapping[str, str] | None = None) -> str:
    """``INVESTOR_METRICS_SCHEDULE`` (default Sunday 09:00), validated as a cron expression."""
    from croniter import croniter

    raw = _env(env).get("INVESTOR_METRICS_SCHEDULE", "").strip() or DEFAULT_SCHEDULE
    if not croniter.is_valid(raw):
        raise ConfigError(f"INVESTOR_METRICS_SCHEDULE {raw!r} is not a valid cron expression")
    return raw


# Where files can live (SPEC 7, 13). A local folder: written to a temporary file renamed over the
# target. An object store: one PUT (or a completed multipart upload) makes the whole object visible
# at once. Nothing else qualifies: sftp, ftp, smb, webdav, hdfs, http... write in place (a reader or a
# crash sees half a file), and memory:// is private to one process.
LOCAL_PROTOCOLS = frozenset({"", "file", "local"})
OBJECT_STORES = {  # protocol -> (what provides its file system, the module that must be importable)
    "s3": ("the Amazon provider with s3fs (installed)", "s3fs"),
    "s3a": ("the Amazon provider with s3fs (installed)", "s3fs"),
    "s3n": ("the Amazon provider with s3fs (installed)", "s3fs"),
    "gs": ("the Google provider with gcsfs", "gcsfs"),
    "gcs": ("the Google provider with gcsfs", "gcsfs"),
    "abfs": ("the Microsoft Azure provider with adlfs", "adlfs"),
    "abfss": ("the Microsoft Azure provider with adlfs", "adlfs"),
    "az": ("the Microsoft Azure provider with adlfs", "adlfs"),
}


def storage_location(name: str, raw: str, default: Path) -> str:
    """The folder or object-store URL of the variable ``name`` (``default`` when empty), checked: a
    ``ConfigError`` naming the variable and the URL when its file system cannot replace a file
    atomically, is not installed, has no bucket, or the URL carries a password (that belongs in an
    Airflow connection: this URL is logged)."""
    raw = raw.strip()
    if not raw:
        return str(default)
    if "://" not in raw:
        return str(Path(raw).expanduser().resolve())
    parts = urlsplit(raw)
    protocol = parts.scheme.lower()
    if parts.password is not None:
        raise ConfigError(
            f"{name} carries a password in its URL ({protocol}://…): put the credentials in an Airflow "
            "connection (e.g. aws_default) and name it in the URL (s3://<conn id>@bucket/prefix) or in "
            "INVESTOR_STORAGE_CONN_ID")
    if protocol in LOCAL_PROTOCOLS:
        return str(Path(parts.path).expanduser().resolve())
    if protocol not in OBJECT_STORES:
        raise ConfigError(
            f"{name}={raw!r} is refused: the {protocol}:// file system cannot replace a file "
            "atomically (a reader could see a torn file, a crash could leave half of one). Use a local "
            "folder or an object store: s3://bucket/prefix (AWS S3 or any S3-compatible server), "
            "gs://, abfs://")
    if not parts.hostname:
        raise ConfigError(f"{name}={raw!r} names no bucket: use {protocol}://bucket/prefix")
    import importlib.util

    provider, module = OBJECT_STORES[protocol]
    if importlib.util.find_spec(module) is None:
        raise ConfigError(f"{name}={raw!r} needs {provider}, which is not installed")
    return raw.rstrip("/")


def dag_owner(env: Mapping[str, str] | None = None) -> tuple[str, str]:
    """The DAGs' owner and the link its name carries in the UI: ``INVESTOR_METRICS_OWNER``
    (``data-engineering``), ``INVESTOR_METRICS_OWNER_LINK`` (a mailto: or https:// address)."""
    owner = _env(env).get("INVESTOR_METRICS_OWNER", "").strip() or "data-engineering"
    link = (_env(env).get("INVESTOR_METRICS_OWNER_LINK", "").strip()
            or "mailto:data-engineering@chatterfix.example")
    if not link.startswith(("mailto:", "https://", "http://")):
        raise ConfigError(f"INVESTOR_METRICS_OWNER_LINK must be a mailto: or https:// address, got {link!r}")
    return owner, link


def archive_dir(env: Mapping[str, str] | None = None) -> str:
    """``INVESTOR_ARCHIVE_DIR``: a local folder or an object-store URL (``s3://bucket/prefix``)."""
    return storage_location("INVESTOR_ARCHIVE_DIR", _env(env).get("INVESTOR_ARCHIVE_DIR", ""),
                            PROJECT_ROOT / "docs" / "investors")


def staging_dir(env: Mapping[str, str] | None = None) -> str:
    """``INVESTOR_STAGING_DIR``: where the weekly DAG's tasks hand each other their data (default
    ``.local/staging``). Several machines (Celery workers on hosts that share no disk): an
    object-store URL that every worker reaches."""
    return storage_location("INVESTOR_STAGING_DIR", _env(env).get("INVESTOR_STAGING_DIR", ""),
                            PROJECT_ROOT / ".local" / "staging")


def storage_conn_id(protocol: str, env: Mapping[str, str] | None = None) -> str | None:
    """The Airflow connection of an object store whose URL names none: ``INVESTOR_STORAGE_CONN_ID``,
    else the provider's default (``aws_default`` for s3://). ``None``: a local folder."""
    defaults = {"s3": "aws_default", "gs": "google_cloud_default", "abfs": "wasb_default"}
    family = {"s3a": "s3", "s3n": "s3", "gcs": "gs", "abfss": "abfs", "az": "abfs"}.get(protocol, protocol)
    if family not in defaults:
        return None
    return _env(env).get("INVESTOR_STORAGE_CONN_ID", "").strip() or defaults[family]


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int = 587
    sender: str | None = None
    password: str | None = field(default=None, repr=False)
    starttls: bool = True
    ssl: bool = False


def smtp_settings_from_env(env: Mapping[str, str] | None = None) -> SmtpSettings:
    """The seed's ``SMTP_*`` variables (used when no ``smtp_default`` connection is set)."""
    env = _env(env)
    host = env.get("SMTP_SERVER", "").strip()
    if not host:
        raise ConfigError(f"SMTP_SERVER is not set and there is no Airflow connection {SMTP_CONN_ID!r}")
    sender = env.get("INVESTOR_EMAIL", "").strip() or None
    if sender:
        parse_address_list(sender, "INVESTOR_EMAIL")
    return SmtpSettings(
        host=host,
        port=_int_setting(env, "SMTP_PORT", 587),
        sender=sender,
        password=env.get("EMAIL_PASSWORD") or None,
        starttls=_bool_setting(env, "SMTP_STARTTLS", True),
        ssl=_bool_setting(env, "SMTP_SSL", False),
    )


def investor_recipients(env: Mapping[str, str] | None = None) -> list[str]:
    return parse_address_list(_env(env).get("INVESTOR_EMAILS"), "INVESTOR_EMAILS")


def data_team_recipients(env: Mapping[str, str] | None = None) -> list[str]:
    return parse_address_list(_env(env).get("DATA_TEAM_EMAILS"), "DATA_TEAM_EMAILS", required=False)


def airflow_variable(key: str, *, fallback: str):
    """The Airflow Variable ``key`` (None when unset). Call it from a task, never at parse time.
    Outside Airflow, or without a task context, it is None and a warning says what is used instead
    (``fallback``)."""
    import logging

    try:
        from airflow.sdk import Variable
    except ImportError:
        return None
    try:
        return Variable.get(key, default=None)
    except Exception as exc:  # noqa: BLE001 - no task context / no backend: say what is used instead
        logging.getLogger(__name__).warning("Airflow Variable %s unavailable (%s): %s", key, exc, fallback)
        return None
