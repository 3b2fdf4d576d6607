"""Investor alerts (SPEC section 6): ``rules`` (the rules, pure), ``thresholds`` (their settings),
``evaluate`` (a snapshot against the rules: the alerts and their identity), ``churn_history`` (the
previous weeks ``churn_spike`` compares with) and ``store`` (the alert store and
``alert_history.json``)."""
