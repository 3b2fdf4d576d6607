"""One demo stack's layout and environment: where its state lives (``CFX_STATE_DIR``, default
``.local``), its ports, its secrets, and the environment every Airflow process of it runs with;
``isolated_env`` gives a second, throw-away stack (benchmarks, tests)."""

from __future__ import annotations

import json
import os
import secrets
import shlex
from pathlib import Path

from dev.stack import embedded_pg
from dev.stack.processes import Processes
from dev.stack.sizing import StackSizes, machine_cpus, stack_sizes
from include.investor_metrics.contract import SLACK_CONN_ID
from include.investor_metrics.settings import (
    PROJECT_ROOT,
    PostgresSettings,
    postgres_settings_from_env,
)

AIRFLOW_SERVICES = ("api-server", "scheduler", "dag-processor", "triggerer")
ADMIN_USER = "admin"
DEMO_RECIPIENTS = "founders@chatterfix.example,investors@chatterfix.example"
DEMO_SENDER = "metrics@chatterfix.example"
SLACK_CONN_ENV = "AIRFLOW_CONN_" + SLACK_CONN_ID.upper()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def isolated_env(settings: PostgresSettings, root: Path, airflow_db: str) -> dict[str, str]:
    """The environment of a second, throw-away stack (benchmarks, tests): source data and metrics
    store in ``settings``' database, Airflow's metadata in ``airflow_db`` on the same server,
    state, archive and staging under ``root``, free ports, the pipeline's own run skipped.
    Inherited ``DB_*``/``AIRFLOW*``/``SMTP_*``/``INVESTOR_*`` settings are dropped."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DB_", "AIRFLOW", "SMTP_", "INVESTOR_"))}
    env.update(
        {
            "CFX_STATE_DIR": str(root / "state"),
            "DB_HOST": settings.host,
            "DB_PORT": str(settings.port),
            "DB_NAME": settings.dbname,
            "DB_USER": settings.user or "",
            "AIRFLOW_DB_NAME": airflow_db,
            "AIRFLOW_PORT": str(free_port()),
            "DEMO_SMTP_PORT": str(free_port()),
            "INVESTOR_ARCHIVE_DIR": str(root / "archive"),
            "INVESTOR_STAGING_DIR": str(root / "staging"),
            "DEMO_SKIP_PIPELINE": "1",
        }
    )
    if settings.password:
        env["DB_PASSWORD"] = settings.password
    return env


def say(message: str) -> None:
    """A progress line of the run command."""
    print(f"[demo] {message}", flush=True)


class Stack:
    """Paths, ports and environment of one demo stack; ``processes`` are the ones it runs."""

    def __init__(self, env: dict[str, str] | None = None):
        self.env_in = dict(os.environ if env is None else env)
        self.state = Path(self.env_in.get("CFX_STATE_DIR") or PROJECT_ROOT / ".local").resolve()
        self.run_dir = self.state / "run"
        self.log_dir = self.state / "logs"
        self.outbox = self.state / "outbox"
        self.slack_dir = self.state / "slack"
        self.pgdata = self.state / "pgdata"
        self.airflow_home = self.state / "airflow"
        self.archive = Path(self.env_in.get("INVESTOR_ARCHIVE_DIR") or PROJECT_ROOT / "docs" / "investors")
        self.airflow_port = int(self.env_in.get("AIRFLOW_PORT", "8080"))
        self.smtp_port = int(self.env_in.get("DEMO_SMTP_PORT", "8025"))
        self.slack_port = int(self.env_in.get("DEMO_SLACK_PORT", "8026"))
        self.pg_port = int(self.env_in.get("EMBEDDED_PG_PORT", str(embedded_pg.DEFAULT_PORT)))
        self.external_db = bool(self.env_in.get("DB_HOST", "").strip())
        self.processes = Processes(self.run_dir, self.log_dir)

    # ---------------------------------------------------------------- database
    def source_settings(self) -> PostgresSettings:
        if self.external_db:
            return postgres_settings_from_env(self.env_in)
        return PostgresSettings(
            host="127.0.0.1",
            port=self.pg_port,
            dbname=self.env_in.get("DB_NAME") or "chatterfix_cmms",
            user="postgres",
        )

    def airflow_db_settings(self) -> PostgresSettings:
        src = self.source_settings()
        name = self.env_in.get("AIRFLOW_DB_NAME", "airflow")
        return PostgresSettings(
            host=src.host, port=src.port, dbname=name, user=src.user, password=src.password
        )

    # ---------------------------------------------------------------- secrets
    def secrets(self) -> dict[str, str]:
        """Fernet key, JWT secret, admin password: made once per stack, kept in .local (0600)."""
        path = self.state / "secrets.json"
        if path.exists():
            return json.loads(path.read_text())
        from cryptography.fernet import Fernet

        values = {
            "fernet_key": Fernet.generate_key().decode(),
            "jwt_secret": secrets.token_urlsafe(32),
            "api_secret_key": secrets.token_urlsafe(32),
            "admin_password": secrets.token_urlsafe(12),
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(values, fh)
        return values

    # ---------------------------------------------------------------- environment
    def sizes(self) -> StackSizes:
        """How many processes the stack runs, for this machine (``dev/stack/sizing.py``)."""
        return stack_sizes(machine_cpus(), self.env_in)

    def airflow_env(self) -> dict[str, str]:
        """The environment every Airflow process (and every task) of the stack runs with."""
        sec = self.secrets()
        src = self.source_settings()
        base_url = f"http://127.0.0.1:{self.airflow_port}"
        env = dict(self.env_in)
        env.update(
            {
                "AIRFLOW_HOME": str(self.airflow_home),
                "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT_ROOT / "dags"),
                "AIRFLOW__CORE__PLUGINS_FOLDER": str(PROJECT_ROOT / "plugins"),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                # LocalExecutor whose task processes inherit pandas, GX, ...
                # (include/investor_metrics/runtime/executor.py)
                "AIRFLOW__CORE__EXECUTOR": (
                    "include.investor_metrics.runtime.executor.PreloadingLocalExecutor"
                ),
                "AIRFLOW__CORE__FERNET_KEY": sec["fernet_key"],
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{ADMIN_USER}:admin",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(
                    self.airflow_home / "passwords.json"
                ),
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{base_url}/execution/",
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self.airflow_db_settings().sqlalchemy_url(),
                "AIRFLOW__API__BASE_URL": base_url,
                "AIRFLOW__API__PORT": str(self.airflow_port),
                "AIRFLOW__API__HOST": "127.0.0.1",
                "AIRFLOW__API__SECRET_KEY": sec["api_secret_key"],
                "AIRFLOW__API_AUTH__JWT_SECRET": sec["jwt_secret"],
                "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(self.airflow_home / "logs"),
                # Find new DAG files and run queued runs quickly in a demo.
                "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "30",
                "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
                "PYTHONPATH": os.pathsep.join(
                    p for p in [str(PROJECT_ROOT), self.env_in.get("PYTHONPATH", "")] if p
                ),
                "NO_PROXY": "*",
                "no_proxy": "*",
                "GX_ANALYTICS_ENABLED": "false",
                # parallelism, API workers, parsing processes: sized to the machine (dev/stack/sizing.py)
                **self.sizes().airflow_env(),
                # The pipeline's own settings: the seed's variables, pointed at the local parts.
                "INVESTOR_ARCHIVE_DIR": str(self.archive),
                "SMTP_SERVER": self.env_in.get("SMTP_SERVER") or "127.0.0.1",
                "SMTP_PORT": self.env_in.get("SMTP_PORT") or str(self.smtp_port),
                "SMTP_STARTTLS": self.env_in.get("SMTP_STARTTLS") or "false",
                "SMTP_SSL": self.env_in.get("SMTP_SSL") or "false",
                "INVESTOR_EMAIL": self.env_in.get("INVESTOR_EMAIL") or DEMO_SENDER,
                "INVESTOR_EMAILS": self.env_in.get("INVESTOR_EMAILS") or DEMO_RECIPIENTS,
                "HEALTH_CHECK_SERVICES": self.env_in.get("HEALTH_CHECK_SERVICES")
                or self.demo_health_check_services(),
            }
        )
        env.setdefault(SLACK_CONN_ENV, self.demo_slack_connection())
        if not self.external_db:
            env.update(
                {"DB_HOST": src.host, "DB_PORT": str(src.port), "DB_NAME": src.dbname, "DB_USER": "postgres"}
            )
        return env

    def demo_slack_connection(self) -> str:
        """The Slack-webhook connection of the demo (``AIRFLOW_CONN_SLACK_INVESTOR_UPDATES``, unless
        set already): the local sink's webhook URL as its password, as a real one would be."""
        from dev.stack.slack_sink import WEBHOOK_PATH

        url = f"http://127.0.0.1:{self.slack_port}{WEBHOOK_PATH}"
        return json.dumps({"conn_type": "slackwebhook", "password": url})

    def demo_health_check_services(self) -> str:
        """The demo probes its own endpoints, named like the generator's services so the live rows
        continue the synthetic history: HTTP where there is HTTP, a TCP connect elsewhere."""
        src = self.source_settings()
        base = f"http://127.0.0.1:{self.airflow_port}"
        smtp_host = self.env_in.get("SMTP_SERVER") or "127.0.0.1"
        smtp_port = self.env_in.get("SMTP_PORT") or str(self.smtp_port)
        return ",".join(
            [
                f"api={base}/api/v2/monitor/health",  # the Airflow API server
                f"web={base}/",  # the Airflow UI (a 3xx is ok too)
                f"database=tcp://{src.host}:{src.port}",  # PostgreSQL (embedded or DB_HOST)
                f"notifications=tcp://{smtp_host}:{smtp_port}",  # the SMTP sink
            ]
        )

    def write_env_file(self, env: dict[str, str]) -> Path:
        """``.local/stack.env``: source it to run ``airflow`` commands against this stack."""
        keys = sorted(k for k in env if k.startswith(("AIRFLOW", "DB_", "SMTP_", "INVESTOR_", "PYTHONPATH")))
        path = self.state / "stack.env"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write("# generated by `make demo`; contains secrets — never commit\n")
            for key in keys:
                fh.write(f"export {key}={shlex.quote(env[key])}\n")
        return path
