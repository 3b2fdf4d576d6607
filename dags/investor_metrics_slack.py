"""
### Slack updates of the investor metrics

Owner: data engineering. Contract: `SPEC.md` of the project (section 13); the work lives in
`include/investor_metrics/slack/` (`tasks.py` the task body); docs: `docs/slack.md`.

Scheduled on the Asset `investor_metrics_snapshot`, which the weekly DAG's `archive_snapshot`
updates with every published snapshot (its extra: `period_end`, `period_type`, `series`, `mrr`,
`announce`). `post_slack_update` posts the period's headline numbers (MRR, ARR, active customers,
MRR growth, net new MRR, NRR, uptime, AI requests), their change against the previous week and the
period's alerts to a Slack incoming webhook, through the Slack provider and the connection
`slack_investor_updates` (type `slackwebhook`, the webhook URL as its password).

- Posted when the e-mail is sent: scheduled weeks, manual runs with `send_email`; never backfills.
- Exactly once per period and series (the send log, key `slack_update` / `<series>|<period end>`):
  a rerun or a cleared task does not post again.
- No connection: the task is skipped, with the reason in its log. A 5xx or a lost connection
  retries; a 4xx (revoked webhook) fails at once.
- Trigger it by hand with conf `{"period_end": "...", "series": "weekly"}` to post a stored snapshot.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import dag, get_current_context, task

from include.investor_metrics import contract
from include.investor_metrics import settings as config
from include.investor_metrics.assets import SNAPSHOT_ASSET
from include.investor_metrics.retry_rules import BAD_INPUT_FAILS_AT_ONCE
from include.investor_metrics.slack import tasks as slack

OWNER, OWNER_LINK = config.dag_owner()  # the owner's name in the DAG list links to OWNER_LINK
SNAPSHOT = SNAPSHOT_ASSET  # include/investor_metrics/assets.py: the weekly DAG emits it


@dag(
    dag_id=contract.SLACK_DAG_ID,
    schedule=[SNAPSHOT],
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,  # updates reach the channel in the order the snapshots were published
    dagrun_timeout=timedelta(hours=1),
    doc_md=__doc__,
    owner_links={OWNER: OWNER_LINK},
    tags=["investor-metrics", "slack", "reporting"],
    default_args={
        "owner": OWNER,
        "retries": 3,
        "retry_delay": timedelta(minutes=1),
        "retry_exponential_backoff": True,
        "execution_timeout": timedelta(minutes=10),
        "retry_policy": BAD_INPUT_FAILS_AT_ONCE,  # a malformed setting fails at once
    },
)
def investor_metrics_slack():
    @task(doc_md="Posts the update of each announced snapshot of the run's asset events to Slack, "
                 "once per period and series (send log); skipped without the connection.")
    def post_slack_update() -> dict:
        return slack.post_snapshot_updates(get_current_context())

    post_slack_update()


investor_metrics_slack()
