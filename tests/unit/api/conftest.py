"""The API app and its metrics store, built once for every test file of this folder."""

import pytest

from tests.unit.api import fixtures

metrics_db = pytest.fixture(fixtures.make_metrics_db, scope="package", name="metrics_db")
api = pytest.fixture(fixtures.make_api, scope="package", name="api")
store_elsewhere = fixtures.store_elsewhere
