"""The investor API's security: Airflow's own user, per-DAG access, CSRF for the session cookie.

Airflow does not authenticate plugin apps, so every route depends on Airflow's ``get_user`` (a
bearer token from ``POST /auth/token``, or the UI's ``_token`` session cookie): 401 without a
valid one. The auth manager then decides, for the DAG ``investor_metrics``: ``Reader`` needs ``GET``
on its runs, ``Collector`` needs ``POST`` on its runs (what triggering it in the UI needs): 403
otherwise. ``SameOriginJson``: a state-changing request authenticated by the session cookie (no
bearer header) must be same-origin JSON: 403 otherwise.
"""

from __future__ import annotations

from functools import cache
from typing import Annotated, Literal

from airflow.api_fastapi.auth.managers.models.base_user import BaseUser
from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity, DagDetails
from airflow.api_fastapi.core_api.security import GetUserDep
from fastapi import Depends, HTTPException, Request
from fastapi.concurrency import run_in_threadpool

from include.investor_metrics.api import DAG_ID


@cache
def _multi_team() -> bool:
    """``[core] multi_team``: read once per API-server process (like Airflow, which reads its
    configuration at start-up; reading it costs more than the rest of the access check)."""
    from airflow.configuration import conf

    return conf.getboolean("core", "multi_team", fallback=False)


def _team_name() -> str | None:
    if not _multi_team():
        return None
    from airflow.models.dag import DagModel

    return DagModel.get_team_name(DAG_ID)


def _decides_in_memory() -> bool:
    """Whether the access check can run on the event loop: Airflow's SimpleAuthManager decides
    from the token's role alone, and without multi-team there is no team to look up. Any other
    auth manager may ask a database or a remote service (FAB, Keycloak), so its check runs in the
    thread pool like Airflow's own access checks."""
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.simple.simple_auth_manager import SimpleAuthManager

    return not _multi_team() and type(get_auth_manager()) is SimpleAuthManager


def _dag_runs_access(method: Literal["GET", "POST"], what: str):
    def authorize(user: BaseUser) -> None:
        from airflow.api_fastapi.app import get_auth_manager

        allowed = get_auth_manager().is_authorized_dag(
            method=method,
            access_entity=DagAccessEntity.RUN,
            details=DagDetails(id=DAG_ID, team_name=_team_name()),
            user=user,
        )
        if not allowed:
            raise HTTPException(403, f"Forbidden: {what} needs permission to "
                                     f"{'read' if method == 'GET' else 'trigger'} the runs of the DAG "
                                     f"{DAG_ID!r}")

    async def check(user: GetUserDep) -> BaseUser:
        # Inline when it cannot block: a hand-off to the thread pool costs a request ~0.1 ms of
        # CPU (measured), about a tenth of what serving /metrics costs in-process.
        if _decides_in_memory():
            authorize(user)
        else:
            await run_in_threadpool(authorize, user)
        return user

    return check


def _same_origin_json(request: Request) -> None:
    """CSRF: a state-changing request that the browser's session cookie authenticates (no
    ``Authorization: Bearer`` header, Airflow's own precedence) must be same-origin JSON. A page of
    another site can make a browser send the cookie with a form or a "simple" request, but never
    with ``Content-Type: application/json`` (that needs a CORS preflight, which this API does not
    grant); and when the browser says where the request comes from (``Origin``,
    ``Sec-Fetch-Site``), it must be this origin. 403 otherwise. A request with a bearer token is
    not exposed to CSRF (a page of another site cannot set that header) and is not checked."""
    from airflow.api_fastapi.auth.managers.base_auth_manager import COOKIE_NAME_JWT_TOKEN

    if request.headers.get("authorization", "").lower().startswith("bearer "):
        return
    if not request.cookies.get(COOKIE_NAME_JWT_TOKEN):
        return  # no credential at all: Airflow's authentication answers 401
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "application/json":
        raise HTTPException(403, "Forbidden: a request authenticated by the session cookie must send "
                                 "Content-Type: application/json (CSRF protection)")
    fetch_site = request.headers.get("sec-fetch-site")
    if fetch_site is not None and fetch_site.lower() not in ("same-origin", "none"):
        raise HTTPException(403, f"Forbidden: a request from another site ({fetch_site}) cannot use the "
                                 "session cookie (CSRF protection)")
    origin = request.headers.get("origin")
    if origin is not None and _origin_key(origin) not in _own_origins(request):
        raise HTTPException(403, "Forbidden: a request from another origin cannot use the session cookie "
                                 "(CSRF protection)")


DEFAULT_PORTS = {"http": 80, "https": 443}


def _origin_key(url: str) -> tuple[str, int] | None:
    """(host, port) of an origin or URL; None for ``null`` or anything unparsable."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url.strip())
        port = parts.port or DEFAULT_PORTS.get(parts.scheme.lower())
    except ValueError:
        return None
    if not parts.hostname or port is None:
        return None
    return parts.hostname.lower(), port


def _own_origins(request: Request) -> set[tuple[str, int]]:
    """This server as browsers address it: the request's own host (``Host``, or the
    ``X-Forwarded-Host`` a proxy set) and Airflow's ``[api] base_url`` when it is configured."""
    from airflow.configuration import conf

    scheme = request.headers.get("x-forwarded-proto", request.url.scheme).split(",")[0].strip()
    own = set()
    for host in (request.headers.get("host"), request.headers.get("x-forwarded-host")):
        if host:
            key = _origin_key(f"{scheme}://{host.split(',')[0].strip()}")
            if key:
                own.add(key)
    base_url = conf.get("api", "base_url", fallback="")
    if base_url and (key := _origin_key(base_url)):
        own.add(key)
    return own


SameOriginJson = Depends(_same_origin_json)
Reader = Annotated[BaseUser, Depends(_dag_runs_access("GET", "reading the investor metrics"))]
Collector = Annotated[BaseUser, Depends(_dag_runs_access("POST", "collecting the investor metrics"))]
