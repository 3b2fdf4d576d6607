"""The metrics store's connection pool (``include/investor_metrics/api/pool.py``): through the API
(503 without secrets, an empty store, a database restart) and on its own (the target, the size,
the bound)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from include.investor_metrics.api import pool as api_pool
from include.investor_metrics.api import queries
from include.investor_metrics.db import apply_metrics_schema, connect
from include.investor_metrics.settings import ConfigError
from tests.unit.api.fixtures import LATEST_END, assert_error, bearer, closed_port, db_env, iso

# The fixtures this module uses (bound by assignment, so they are no redefined imports).

# The TestClient of this FastAPI warns that Starlette prefers httpx2: not our concern here.
pytestmark = pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")


def test_database_down_is_503_without_secrets(api, store_elsewhere):
    port = closed_port()
    store_elsewhere({"DB_PORT": str(port), "DB_PASSWORD": "s3cret-do-not-leak"})
    for path in ("/api/investor/metrics", "/api/investor/alerts?severity=high",
                 "/api/investor/metrics?history=4"):
        answer = api.client.get(path, headers=bearer(api))
        error = assert_error(answer, 503, "metrics store", "unavailable")
        assert answer.headers.get("Retry-After")
        for secret in ("s3cret", str(port), api.db.host, api.db.dbname, "postgres", "password"):
            assert secret not in answer.text, secret
        assert error
    store_elsewhere(db_env(api.db))
    assert api.client.get("/api/investor/metrics", headers=bearer(api)).status_code == 200


def test_database_not_configured_is_503_naming_the_variable(api, store_elsewhere):
    store_elsewhere({"DB_HOST": ""})
    assert_error(api.client.get("/api/investor/metrics", headers=bearer(api)), 503, "DB_HOST",
                 "not configured")


def test_an_empty_store_is_404_and_has_no_alerts(api, store_elsewhere, fresh_database):
    store_elsewhere(db_env(fresh_database))  # no investor_metrics schema at all
    assert_error(api.client.get("/api/investor/metrics", headers=bearer(api)), 404, "no snapshot")
    assert_error(api.client.get("/api/investor/metrics?history=5", headers=bearer(api)), 404, "no snapshot")
    assert api.client.get("/api/investor/alerts", headers=bearer(api)).json() == {
        "success": True, "alerts": []}
    conn = connect(fresh_database)
    apply_metrics_schema(conn)
    conn.close()
    assert_error(api.client.get("/api/investor/metrics", headers=bearer(api)), 404, "investor_metrics DAG")


def test_the_pool_recovers_when_the_database_restarts(api):
    """A pooled connection killed by the server (restart, failover) costs no failed request."""
    assert api.client.get("/api/investor/metrics", headers=bearer(api)).status_code == 200
    admin = connect(api.db)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = %s AND application_name = 'investor-api'", (api.db.dbname,))
        assert cur.rowcount >= 1
    admin.close()
    assert api.client.get("/api/investor/metrics", headers=bearer(api)).status_code == 200


# --------------------------------------------------------------------------- on its own
def test_the_store_is_found_like_the_pipeline_finds_it():
    def connection(host, **kw):
        return SimpleNamespace(host=host, port=kw.get("port"), schema=kw.get("schema"), login="u",
                               password="hunter2-secret", extra_dejson=kw.get("extra", {}))

    both = {"investor_metrics_db": connection("metrics", port=6543, schema="m", extra={"sslmode": "require"}),
            "chatterfix_db": connection("source")}
    target = api_pool.resolve_store_target({}, both.get)
    assert (target.settings.host, target.settings.port, target.settings.dbname) == ("metrics", 6543, "m")
    assert target.options == {"sslmode": "require"} and "investor_metrics_db" in target.source
    source_only = api_pool.resolve_store_target({}, {"chatterfix_db": connection("source")}.get)
    assert (source_only.settings.host, source_only.settings.port, source_only.settings.dbname) == (
        "source", 5432, "chatterfix_cmms")
    env = api_pool.resolve_store_target({"DB_HOST": "h", "DB_PORT": "5433"}, {}.get)
    assert (env.settings.host, env.settings.port) == ("h", 5433)
    with pytest.raises(ConfigError, match="DB_HOST"):
        api_pool.resolve_store_target({}, {}.get)
    assert "hunter2" not in repr(target)


def test_pool_size_setting():
    assert api_pool.pool_size({}) == api_pool.DEFAULT_POOL_SIZE
    assert api_pool.pool_size({"INVESTOR_API_POOL_SIZE": "12"}) == 12
    with pytest.raises(ConfigError, match="INVESTOR_API_POOL_SIZE"):
        api_pool.pool_size({"INVESTOR_API_POOL_SIZE": "0"})


def test_the_pool_bounds_its_connections(metrics_db):
    """At most ``size`` connections; a waiting request past ``wait`` is a 503-style refusal."""
    import threading

    target = api_pool.StoreTarget(settings=metrics_db)
    pool = api_pool.MetricsStore(size=2, wait=0.3, resolve=lambda: target)
    inside, release = threading.Barrier(3), threading.Event()

    def hold(conn):
        inside.wait(timeout=5)
        release.wait(timeout=5)
        return 1

    threads = [threading.Thread(target=pool.run, args=(hold,)) for _ in range(2)]
    for thread in threads:
        thread.start()
    inside.wait(timeout=5)
    with pytest.raises(api_pool.StoreUnavailable, match="busy"):
        pool.run(lambda conn: 1)
    release.set()
    for thread in threads:
        thread.join()
    assert pool.run(lambda conn: queries.metrics_answer(conn)["metrics"]["period"]["end"]) == iso(LATEST_END)
    pool.reset()
