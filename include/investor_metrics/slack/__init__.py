"""Slack updates of a published snapshot (SPEC 13): the ``investor_metrics_slack`` DAG, scheduled on
the snapshot Asset, posts a period's headline numbers, their change against the previous week and
the period's alerts to a Slack incoming webhook, exactly once per period and series.

``announce`` decides from the asset event whether a snapshot is announced, ``message`` builds the
Block Kit payload (no I/O), ``post`` delivers it once through the Slack provider and the send log,
``tasks`` is the task body (docs/slack.md)."""
