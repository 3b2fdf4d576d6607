"""The Great Expectations context a validation runs in: ephemeral (in memory: no ``gx/`` folder),
no usage statistics, no progress bars, GX's INFO chatter kept out of the task log, and the Data
Docs site (``data_docs``) when a report is written. Great Expectations is imported inside the
functions (it takes seconds); ``gx_url`` gives GX the database URL it can work with.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

DATA_DOCS_SITE = "data_quality"


def quiet_gx() -> None:
    """No usage statistics; GX's INFO chatter drowns the task log, keep its warnings."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    gx_log = logging.getLogger("great_expectations")
    if gx_log.level == logging.NOTSET:
        gx_log.setLevel(logging.WARNING)


def gx_url(url) -> str:
    """The database URL for GX, always with the psycopg2 driver.

    ``url``: a string or a SQLAlchemy ``URL`` (``PostgresHook.sqlalchemy_url``, which names
    psycopg 3 when it is installed). GX keeps a row condition's bounds as strings (its suites are
    serialised); psycopg2 sends them as untyped literals that PostgreSQL reads as timestamptz,
    where psycopg 3 binds them as varchar and the comparison fails. ``str(URL)`` would mask the
    password, hence ``render_as_string``.
    """
    from sqlalchemy.engine import make_url

    parsed = make_url(url) if isinstance(url, str) else url
    return parsed.set(drivername="postgresql+psycopg2").render_as_string(hide_password=False)


def ephemeral_context(site_dir: Path | None):
    """An in-memory GX context; with ``site_dir``, its Data Docs site is written there."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    sites = {}
    if site_dir is not None:
        # data_docs imports GX at module level: imported here, with GX, not when this module is
        from include.investor_metrics.validation.data_docs import site_config

        sites[DATA_DOCS_SITE] = site_config(site_dir)
    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
        data_docs_sites=sites,
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False),  # no tqdm bars in the task log
    )
    context = gx.get_context(mode="ephemeral", project_config=config)
    # GX serialises the whole project config to YAML after every datasource, asset and batch
    # definition added and, in an ephemeral context, keeps the text in a store nothing reads
    # (docs/adr/two-pass-validation.md): skip that on this context only.
    context._save_project_config = lambda: None
    return context


def build_data_docs(context) -> None:
    """Write the context's Data Docs site (the validations run on it so far)."""
    context.build_data_docs(site_names=[DATA_DOCS_SITE])


def run_id(run_name: str):
    from great_expectations.core.run_identifier import RunIdentifier

    return RunIdentifier(run_name=run_name)
