"""The code's shape, read with ``ast`` and ``wc -l`` (nothing is imported; part of ``make lint``):

- every Python module of ``dags/``, ``plugins/``, ``include/`` and ``dev/`` is under
  ``MAX_MODULE_LINES`` lines (docstrings and comments count);
- the layers of ``include/investor_metrics`` (docs/adr/package-layout.md): the **base** modules
  (settings, period, db, contract, task_context, retry_rules) import no other layer; the **domain**
  packages (weekly, validation, health, mail, runtime) never import the **entry** layer (the task
  modules of the DAGs and the investor API); imports inside functions count too.

Import cycles and ``include`` → ``dev`` are checked by tests/test_import_contracts.py.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from tests.test_import_contracts import import_graph, modules_of

PROJECT_ROOT = Path(__file__).resolve().parent.parent
MAX_MODULE_LINES = 400
CHECKED_FOLDERS = ("dags", "plugins", "include", "dev")

PACKAGE = "include.investor_metrics"
BASE = "base"
DOMAIN = "domain"
ENTRY = "entry"
BASE_MODULES = {"settings", "period", "db", "contract", "task_context", "retry_rules", "storage",
                "assets"}
DOMAIN_PACKAGES = {"weekly", "validation", "health", "mail", "runtime", "slack"}
# What each layer may import, besides itself: entry → domain → base, never upwards.
MAY_IMPORT = {ENTRY: {ENTRY, DOMAIN, BASE}, DOMAIN: {DOMAIN, BASE}, BASE: {BASE}}


def layer_of(module: str) -> str | None:
    """``base``, ``domain`` or ``entry`` for a module of include/investor_metrics; None for the
    package itself. Entry: the api/ package and the DAGs' task modules (``tasks`` and
    ``*_tasks`` of a domain package)."""
    if not module.startswith(PACKAGE + "."):
        return None
    parts = module[len(PACKAGE) + 1:].split(".")
    top, last = parts[0], parts[-1]
    if top == "api":
        return ENTRY
    if top in BASE_MODULES and len(parts) == 1:
        return BASE
    if top in DOMAIN_PACKAGES:
        return ENTRY if len(parts) > 1 and (last == "tasks" or last.endswith("_tasks")) else DOMAIN
    raise AssertionError(
        f"{module}: not placed in a layer; add it to BASE_MODULES or DOMAIN_PACKAGES of {__file__}")


def layer_violations(graph: dict[str, set[str]]) -> list[str]:
    found = []
    for module, targets in sorted(graph.items()):
        layer = layer_of(module)
        if layer is None:
            continue
        for target in sorted(targets):
            target_layer = layer_of(target)
            if target_layer is not None and target_layer not in MAY_IMPORT[layer]:
                found.append(f"{module} ({layer}) imports {target} ({target_layer})")
    return found


def long_modules(root: Path, folders=CHECKED_FOLDERS, limit: int = MAX_MODULE_LINES) -> list[str]:
    found = []
    for folder in folders:
        for path in sorted((root / folder).rglob("*.py")):
            lines = len(path.read_text().splitlines())
            if lines > limit:
                found.append(f"{path.relative_to(root)}: {lines} lines")
    return found


def test_every_module_is_under_the_line_limit():
    found = long_modules(PROJECT_ROOT)
    assert not found, (f"modules over {MAX_MODULE_LINES} lines (split them by what they do):\n"
                       + "\n".join(found))


def test_every_module_of_the_package_has_a_layer():
    modules = modules_of("include")
    assert len(modules) > 10
    for module in modules:
        layer_of(module)


def test_layers_import_only_downwards():
    found = layer_violations(import_graph(modules_of("include"), top_level_only=False))
    assert not found, "imports against the layers (entry -> domain -> base):\n" + "\n".join(found)


# ---------------------------------------------------------------- the checks themselves, on known code
@pytest.mark.parametrize(("module", "layer"), [
    ("include.investor_metrics.period", BASE),
    ("include.investor_metrics.weekly.metrics", DOMAIN),
    ("include.investor_metrics.weekly.alerts.rules", DOMAIN),
    ("include.investor_metrics.weekly.tasks", ENTRY),
    ("include.investor_metrics.weekly.email_tasks", ENTRY),
    ("include.investor_metrics.health.tasks", ENTRY),
    ("include.investor_metrics.api.queries", ENTRY),
    ("include.investor_metrics", None),
])
def test_layer_of_places_modules(module, layer):
    assert layer_of(module) == layer


def test_layer_of_refuses_an_unplaced_module():
    with pytest.raises(AssertionError, match="not placed in a layer"):
        layer_of("include.investor_metrics.helpers")


def test_layer_violations_name_an_upward_import():
    graph = {
        f"{PACKAGE}.period": {f"{PACKAGE}.weekly.metrics"},  # base -> domain
        f"{PACKAGE}.mail.message": {f"{PACKAGE}.api.queries", f"{PACKAGE}.settings"},  # domain -> entry
        f"{PACKAGE}.weekly.tasks": {f"{PACKAGE}.mail.message", f"{PACKAGE}.db"},  # fine
    }
    assert layer_violations(graph) == [
        f"{PACKAGE}.mail.message (domain) imports {PACKAGE}.api.queries (entry)",
        f"{PACKAGE}.period (base) imports {PACKAGE}.weekly.metrics (domain)",
    ]


def test_long_modules_counts_lines(tmp_path):
    (tmp_path / "include").mkdir()
    (tmp_path / "include" / "short.py").write_text("x = 1\n" * 400)
    (tmp_path / "include" / "long.py").write_text("x = 1\n" * 401)
    assert long_modules(tmp_path, folders=("include",)) == ["include/long.py: 401 lines"]


def test_make_lint_runs_these_checks_and_the_line_length():
    """``make lint`` fails on a module over the limit, a layer or cycle break, ``include`` → ``dev``
    and a line over the configured width (ruff E501, not ignored)."""
    makefile = (PROJECT_ROOT / "Makefile").read_text()
    lint = makefile.split("\nlint:", 1)[1].split("\n\n", 1)[0]
    assert "tests/test_code_layout.py" in lint and "tests/test_import_contracts.py" in lint
    ruff = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["tool"]["ruff"]
    assert ruff["line-length"] == 110
    assert "E" in ruff["lint"]["select"] and "E501" not in ruff["lint"].get("ignore", [])
