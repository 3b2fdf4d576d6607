"""What every message shares (``mail/message.py``): a Message-ID derived from (kind, key)."""

from __future__ import annotations

import copy

from include.investor_metrics.mail.message import KIND_ALERT, KIND_WEEKLY_SUMMARY, message_id
from tests.unit.mail import helpers
from tests.unit.mail.helpers import SENDER, summary

# The shared fixtures (pytest finds a fixture by its name in the test module).
snapshot = helpers.snapshot
history = helpers.history


def test_message_ids_are_deterministic_per_kind_and_key(snapshot, history):
    first, second = summary(snapshot, history), summary(snapshot, history)
    assert first["Message-ID"] == second["Message-ID"]
    other_week = copy.deepcopy(snapshot)
    other_week["period"]["end"] = "2026-11-29T09:00:00Z"
    assert summary(other_week, history)["Message-ID"] != first["Message-ID"]
    assert message_id(KIND_ALERT, "x", SENDER) != message_id(KIND_WEEKLY_SUMMARY, "x", SENDER)
    assert first["Auto-Submitted"] == "auto-generated"
