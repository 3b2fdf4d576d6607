"""Tests that start real processes beside the test (the scheduler, the run command's stack, Celery
workers, headless Chromium) or check the compose file: slow, each is marked ``integration``
(``pytest -m "not integration"`` leaves them out)."""

import pytest


def pytest_collection_modifyitems(items):
    for item in items:
        if "/integration/" in str(item.fspath):
            item.add_marker(pytest.mark.integration)
