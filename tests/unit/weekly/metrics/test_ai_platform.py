"""The ai_platform section (``weekly/metrics/ai_platform.py``) on hand-made frames."""

from __future__ import annotations

from include.investor_metrics.weekly.metrics.ai_platform import ai_platform
from tests.unit.weekly.metrics.sample_frames import (
    ai,
)

# --- AI platform -------------------------------------------------------------------------------


def test_ai_platform_figures_and_active_providers():
    frame = ai(
        # a: 10 requests (7 chat, 3 api), 4 cache hits, 1 error, 9 ok, 6 correct, 2 incorrect
        ("a", False, 10, 7, 3, 4, 1, 9, 6, 2, 812.004, 2210.0),
        # b: only errors → not an active provider
        ("b", False, 2, 0, 2, 0, 2, 0, 0, 0, 100.0, 100.0),
        (None, True, 12, 7, 5, 4, 3, 9, 6, 2, 693.3366, 2100.0),
    )
    result = ai_platform(frame)
    assert result["active_providers"] == 1
    assert result["total_requests"] == 12 and result["chat_requests"] == 7 and result["api_requests"] == 5
    assert result["cache_hit_rate"] == 33.33  # 4 / 12
    assert result["error_rate"] == 25.0  # 3 / 12
    assert result["accuracy_rate"] == 75.0  # 6 / (6 + 2)
    assert result["avg_latency_ms"] == 693.34 and result["p95_latency_ms"] == 2100.0
    assert result["providers"]["a"] == {
        "total_requests": 10, "chat_requests": 7, "api_requests": 3, "cache_hit_rate": 40.0,
        "error_rate": 10.0, "accuracy_rate": 75.0, "avg_latency_ms": 812.0, "p95_latency_ms": 2210.0,
    }  # fmt: skip
    assert result["providers"]["b"]["accuracy_rate"] is None  # no feedback at all
    assert result["providers"]["b"]["error_rate"] == 100.0
