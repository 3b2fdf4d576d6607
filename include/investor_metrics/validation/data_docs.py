"""Great Expectations Data Docs page views that compile their Jinja templates once per machine.

GX's ``DefaultJinjaView`` builds a new Jinja ``Environment`` for every view it instantiates (four
per ``build_data_docs``), so every validation in a fresh task process parsed and compiled the same
~50 templates again: a third of what writing a week's data-quality report cost. These views are
GX's own, with a Jinja ``FileSystemBytecodeCache`` on their environment: the first report on a
machine compiles the templates and stores their bytecode, every later one loads it.

The cache is keyed by template name and source checksum, and Jinja checks its own and Python's
version on load, so upgrading GX or Jinja never serves stale code; files are written to a
temporary name and renamed, so parallel tasks never read a half-written one. Location: Jinja's
per-user default (``$TMPDIR/_jinja2-cache-<uid>``, mode 0700), or ``INVESTOR_JINJA_CACHE_DIR``.

``include.investor_metrics.validation.runner`` names these classes in its Data Docs site configuration; this module imports
GX, so nothing else imports it.
"""

from __future__ import annotations

import logging
import os

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
    return {"module_name": __name__, "class_name": (CachedJinjaIndexPageView if index else CachedJinjaPageView).__name__}
