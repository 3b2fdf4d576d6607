"""The Data Docs site of a validation: its GX site configuration (``site_config``) and GX's own
page views with a Jinja ``FileSystemBytecodeCache`` on their environment, so the ~50 templates
compile once per machine, not in every task (docs/adr/two-pass-validation.md).

The cache is keyed by template name and source checksum, and Jinja checks its own and Python's
version on load, so upgrading GX or Jinja never serves stale code; files are written to a
temporary name and renamed, so parallel tasks never read a half-written one. Location: Jinja's
per-user default (``$TMPDIR/_jinja2-cache-<uid>``, mode 0700), or ``INVESTOR_JINJA_CACHE_DIR``.
Without a usable directory the views compile as GX's do. This module imports GX: only
``gx_context.ephemeral_context`` imports it, inside the function.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from great_expectations.render.view import DefaultJinjaIndexPageView, DefaultJinjaPageView
from jinja2 import BytecodeCache, FileSystemBytecodeCache

log = logging.getLogger(__name__)

CACHE_DIR_ENV = "INVESTOR_JINJA_CACHE_DIR"

_cache: BytecodeCache | None = None
_cache_failed = False


def bytecode_cache() -> BytecodeCache | None:
    """The process's bytecode cache (None when no usable directory: the views then compile as
    GX's do)."""
    global _cache, _cache_failed
    if _cache is None and not _cache_failed:
        directory = os.environ.get(CACHE_DIR_ENV) or None
        try:
            if directory is not None:
                os.makedirs(directory, mode=0o700, exist_ok=True)
            _cache = FileSystemBytecodeCache(directory)
        except (OSError, RuntimeError) as exc:  # RuntimeError: Jinja found no safe temp directory
            log.warning("Data Docs: no Jinja bytecode cache (%s); templates are compiled each time", exc)
            _cache_failed = True
    return _cache


class _BytecodeCached:
    """Mixin for a GX Jinja view: its environment gets the process's bytecode cache."""

    def __init__(self, custom_styles_directory=None, custom_views_directory=None) -> None:
        super().__init__(custom_styles_directory, custom_views_directory)
        self.env.bytecode_cache = bytecode_cache()


class CachedJinjaPageView(_BytecodeCached, DefaultJinjaPageView):
    """GX's page view (validation results, suites), its templates' bytecode cached."""


class CachedJinjaIndexPageView(_BytecodeCached, DefaultJinjaIndexPageView):
    """GX's index page view, its templates' bytecode cached."""


def view_config(index: bool = False) -> dict:
    """The ``view`` entry of a GX site builder section naming one of these classes."""
    view = CachedJinjaIndexPageView if index else CachedJinjaPageView
    return {"module_name": __name__, "class_name": view.__name__}


def site_config(site_dir: Path) -> dict:
    """A GX Data Docs site written to ``site_dir``: GX's own views with the bytecode cache; no
    profiling section (nothing is profiled)."""
    return {
        "class_name": "SiteBuilder",
        "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(site_dir)},
        "site_index_builder": {"class_name": "DefaultSiteIndexBuilder", "view": view_config(index=True)},
        "site_section_builders": {
            "expectations": {"view": view_config()},
            "validations": {"view": view_config()},
            "profiling": "None",
        },
    }
