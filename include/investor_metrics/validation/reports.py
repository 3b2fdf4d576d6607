"""The folder of a period's data-quality report (GX Data Docs, HTML):
``<report_dir>/<period end, UTC, YYYY-MM-DD_HH-MM-SS>/index.html``. It is built in a private
temporary folder beside it and swapped in whole, so a rerun of the period replaces it and a
reader sees one report or the other, never a mix. Not world-readable: folders 0750
(``report_dir`` too), files 0640.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path

from include.investor_metrics.period import Period, file_stamp

log = logging.getLogger(__name__)

REPORT_DIR_MODE = 0o750  # the data team (owner and group) read the report; nobody else
REPORT_FILE_MODE = 0o640


def period_stamp(period: Period) -> str:
    """The period's end, UTC, as the report folder (and the GX run) is named."""
    return file_stamp(period.end)


def site_dir(report_dir: str | Path, period: Period) -> Path:
    """The period's report folder under ``report_dir`` (created, 0750, if missing)."""
    folder = Path(report_dir).expanduser().resolve() / period_stamp(period)
    folder.parent.mkdir(parents=True, exist_ok=True)
    _restrict(folder.parent)
    return folder


def build_dir(site: Path) -> Path:
    """A fresh folder beside ``site`` for GX to write the report into: mkdtemp makes it private
    (0700) while GX writes into it; :func:`publish` opens it to the group when done."""
    return Path(tempfile.mkdtemp(prefix=f".{site.name}.", dir=site.parent))


def publish(built: Path, site: Path) -> None:
    """Folders 0750, files 0640 under ``built``, then ``built`` swapped in for ``site``."""
    _restrict_tree(built)
    _replace_dir(built, site)


def _restrict(directory: Path) -> None:
    try:
        directory.chmod(REPORT_DIR_MODE)
    except OSError as exc:  # a folder of another owner: its own mode stands, say so
        log.warning("could not make %s private to its group: %s", directory, exc)


def _restrict_tree(root: Path) -> None:
    """Folders 0750, files 0640 under ``root`` (a Data Docs report is not world-readable)."""
    for folder, _dirs, files in os.walk(root):
        os.chmod(folder, REPORT_DIR_MODE)
        for name in files:
            os.chmod(os.path.join(folder, name), REPORT_FILE_MODE)


def _replace_dir(built: Path, final: Path) -> None:
    """Swap the freshly built report in for the period's previous one (each a whole folder, so
    a reader sees one report or the other, never a mix)."""
    for _attempt in range(3):
        old = None
        if final.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{final.name}.old-", dir=final.parent))
            os.replace(final, old / final.name)
        try:
            os.replace(built, final)
        except OSError:  # another run of the same period put its report there meanwhile
            continue
        finally:
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
        return
    raise RuntimeError(f"could not put the data-quality report in place at {final}")
