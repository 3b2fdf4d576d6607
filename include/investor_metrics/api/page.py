"""``GET /page``: the "Investor metrics" page of the Airflow UI (``static/investor_page.html``), and
the HTML error page a browser gets instead of JSON on that path (401: how to sign in; 403).

The page is self-contained: its Content-Security-Policy lets only its own inline script and style
run, lets it talk only to this origin, and lets only Airflow's UI (same origin) frame it.
"""

from __future__ import annotations

import base64
import hashlib
import html
import re
from functools import cache
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from include.investor_metrics.api.auth import Reader
from include.investor_metrics.api.responses import NO_STORE

PAGE_FILE = Path(__file__).resolve().parents[1] / "static" / "investor_page.html"

router = APIRouter()


@router.get(
    "/page",
    summary="The Investor metrics page of the Airflow UI",
    response_class=HTMLResponse,
    responses={200: {"content": {"text/html": {}}, "description": "A self-contained HTML page"},
               401: {"content": {"text/html": {}},
                     "description": "No valid Airflow token: a page that says how to sign in"},
               403: {"content": {"text/html": {}},
                     "description": "No read access to the investor_metrics DAG"}},
)
def investor_page(user: Reader) -> HTMLResponse:
    text, csp = _page()
    return HTMLResponse(text, headers={**NO_STORE, "Content-Security-Policy": csp,
                                       "X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin"})


@cache
def _page() -> tuple[str, str]:
    """The page and its Content-Security-Policy (the hashes of its inline script and style)."""
    text = PAGE_FILE.read_text(encoding="utf-8")

    def hashes(tag: str) -> str:
        found = re.findall(rf"<{tag}>(.*?)</{tag}>", text, flags=re.S)
        return " ".join(
            f"'sha256-{base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()}'" for body in found
        )

    csp = (f"default-src 'none'; script-src {hashes('script')}; style-src {hashes('style')}; "
           "connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; "
           "frame-ancestors 'self'")
    return text, csp


def is_page(request: Request) -> bool:
    """Whether ``request`` is for the page (its errors are HTML, not JSON)."""
    return request.url.path.rstrip("/").endswith("/page")


def page_error(status_code: int, message: str, airflow_root: str,
               headers: dict[str, str] | None = None) -> HTMLResponse:
    """The page's refusal as HTML: 401 links to Airflow's sign-in at ``airflow_root``."""
    if status_code == 401:
        hint = (f"<a href='{html.escape(airflow_root, quote=True)}' target='_top'>Sign in to Airflow</a>, "
                "then open Investor metrics from the navigation.")
    else:
        hint = "Ask an Airflow administrator for access to the investor_metrics DAG."
    body = (f"<!doctype html><meta charset='utf-8'><title>Investor metrics</title>"
            f"<body style='font-family:sans-serif;padding:2rem'><h1>Investor metrics</h1>"
            f"<p>{html.escape(message)}</p><p>{hint}</p></body>")
    return HTMLResponse(body, status_code=status_code, headers={**NO_STORE, **(headers or {})})
