"""The investor API and the "Investor metrics" page of the Airflow UI (SPEC section 11).

- ``fastapi_apps``: the investor API (``include/investor_metrics/api/app.py``) at ``/api/investor`` of the
  Airflow API server, behind Airflow's own authentication;
- ``external_views``: "Investor metrics" in the UI navigation, the page ``/api/investor/page``
  shown inside the UI (same origin: it reads the API with the UI's session cookie).
"""

from __future__ import annotations

import base64
from functools import cached_property
from urllib.parse import urlsplit

from airflow.configuration import conf
from airflow.plugins_manager import AirflowPlugin

from include.investor_metrics.api import URL_PREFIX


def _icon(colour: str) -> str:
    svg = (f"<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 24 24' fill='none' stroke='{colour}' "
           "stroke-width='2' stroke-linecap='round'>"
           "<path d='M3 20h18M6 16v-4M11 16V8M16 16v-6M20 16V5'/></svg>")
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode()).decode()


def _page_href() -> str:
    """The page's path, under the API server's base path when it has one (``[api] base_url``)."""
    root = urlsplit(conf.get("api", "base_url", fallback="") or "/").path.rstrip("/")
    return f"{root}{URL_PREFIX}/page"


class InvestorMetricsPlugin(AirflowPlugin):
    name = "investor_metrics"
    external_views = [
        {
            "name": "Investor metrics",
            "href": _page_href(),
            "url_route": "investor-metrics",
            "destination": "nav",
            "nav_top_level": True,
            "icon": _icon("#1f2937"),
            "icon_dark_mode": _icon("#e5e7eb"),
        }
    ]

    @cached_property
    def fastapi_apps(self) -> list[dict]:
        # Every task process loads the plugins (for macros): the FastAPI app is imported only when
        # the API server asks for it, not in each task.
        from include.investor_metrics.api.app import app

        return [{"app": app, "url_prefix": URL_PREFIX, "name": "ChatterFix investor metrics API"}]
