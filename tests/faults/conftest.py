"""The fault suite (issue 13, docs/reliability.md): real components, faults injected for real.

Every test here is marked ``faults`` (``pytest -m faults`` runs only them); ``make test`` runs them
with the rest.
"""

import pytest


def pytest_collection_modifyitems(items):
    for item in items:
        if "/faults/" in str(item.fspath):
            item.add_marker(pytest.mark.faults)
