"""The task body of the ``investor_metrics_slack`` DAG: one Slack update per snapshot asset event
that is announced (``announce.py``), each posted once (``post.py``).

A run normally consumes one event; when several snapshots were published before the scheduler
created the run (a backfill emits one per week), it consumes them all: each is handled in the
order it was published, backfill weeks skipped, and a failure of one does not stop the others
(the first is raised at the end, so the retry posts what is still owed; the posted ones are not
posted again). A manual run of the DAG with ``period_end`` (and ``series``) in its conf posts that
stored snapshot: an operator's explicit request, under the same send-log key.
"""

from __future__ import annotations

import logging

from include.investor_metrics import contract
from include.investor_metrics import settings as config
from include.investor_metrics.period import calendar_offset, iso_utc
from include.investor_metrics.slack.announce import (
    NotASnapshotEvent,
    SnapshotEvent,
    skip_reason,
    snapshot_event,
)

log = logging.getLogger(__name__)


def snapshot_asset():
    """The Asset ``archive_snapshot`` emits (SPEC 13), as the DAG schedules on it."""
    from airflow.sdk import Asset

    return Asset(name=contract.SNAPSHOT_ASSET_NAME, uri=contract.SNAPSHOT_ASSET_URI)


def slack_connection_or_skip(conn_id: str = contract.SLACK_CONN_ID):
    """The Slack-webhook connection, or ``AirflowSkipException`` saying how to define it."""
    from airflow.sdk import Connection
    from airflow.sdk.exceptions import AirflowNotFoundException, AirflowSkipException

    try:
        return Connection.get(conn_id)
    except AirflowNotFoundException:
        raise AirflowSkipException(
            f"no Airflow connection {conn_id!r}: the Slack update is not posted. Define it (type "
            "slackwebhook, the webhook URL https://hooks.slack.com/services/... as its password) to "
            "post the weekly updates; docs/slack.md") from None


def triggering_events(context) -> list[tuple[SnapshotEvent | None, object, str]]:
    """(event, the SDK's event object, description) of each snapshot event that triggered the run,
    oldest first; event None when its extra names no snapshot."""
    accessor = context.get("triggering_asset_events") or {}
    # matched by name: the URI is normalised on the way (a trailing slash), the name is the key
    raw = [e for asset in list(accessor) if getattr(asset, "name", None) == contract.SNAPSHOT_ASSET_NAME
           for e in accessor[asset]]
    found = []
    for item in sorted(raw, key=lambda e: e.timestamp):
        where = f"asset event of {item.timestamp.isoformat()} from {item.source_dag_id or '-'}/" \
                f"{item.source_run_id or '-'}"
        try:
            event = snapshot_event(item.extra, source_dag_id=item.source_dag_id,
                                   source_run_id=item.source_run_id, timestamp=item.timestamp)
        except NotASnapshotEvent as exc:
            log.warning("%s: not a snapshot event, nothing to post: %s", where, exc)
            event = None
        found.append((event, item, where))
    return found


def source_conf_of(item):
    """A callable returning the conf of the event's source DAG run (``None`` when it is unknown)."""

    def conf():
        try:
            run = item.source_dag_run  # the Task SDK asks the API server for it
        except Exception:
            log.warning("could not read the source run of the asset event", exc_info=True)
            return None
        return dict(run.conf or {}) if run is not None else None

    return conf


def requested_event(context) -> SnapshotEvent | None:
    """The snapshot a manual run's conf names (``period_end``, ``series`` default weekly)."""
    conf = (context.get("dag_run").conf if context.get("dag_run") is not None else None) or {}
    if not conf.get("period_end"):
        return None
    series = conf.get("series") or "weekly"
    period_type = "on_demand" if series == "on_demand" else "weekly"
    try:
        return snapshot_event({"period_end": conf["period_end"], "period_type": period_type, "series": series,
                               "announce": True}, source_dag_id="manual", source_run_id=context["run_id"])
    except NotASnapshotEvent as exc:
        from airflow.sdk.exceptions import AirflowFailException

        raise AirflowFailException(f"the run's conf names no snapshot: {exc}") from None


def previous_snapshot(conn, event: SnapshotEvent, tz):
    """The week the update compares with: the week ended 7 calendar days before; an on-demand
    report's, the newest week ended at least 7 days before it (as the weekly e-mail does)."""
    from include.investor_metrics.weekly import snapshots as store

    week_before = calendar_offset(event.period_end, tz, days=7)
    if event.series == "on_demand":
        earlier = store.history(conn, 1, until=week_before, series="weekly")
        return earlier[0] if earlier else None
    return store.snapshot_for(conn, week_before, series="weekly")


def post_snapshot_updates(context) -> dict:
    """Post the update of every announced snapshot of the run's events; returns
    {"posted": [keys], "already_posted": [keys], "skipped": {description: reason}}."""
    from include.investor_metrics.db import postgres_hook
    from include.investor_metrics.slack.message import build_payload
    from include.investor_metrics.slack.post import (
        SlackRefusedError,
        post_once,
        slack_update_key,
    )
    from include.investor_metrics.weekly import snapshots as store

    manual = requested_event(context)
    if manual is not None:
        named = f"{manual.series} {iso_utc(manual.period_end)}"
        chosen = [(manual, f"the snapshot the run's conf names ({named})")]
        skipped = {}
    else:
        chosen, skipped = [], {}
        for event, item, where in triggering_events(context):
            reason = "not a snapshot event" if event is None else skip_reason(event, source_conf_of(item))
            if reason:
                log.info("%s: not posted: %s", where, reason)
                skipped[where] = reason
            else:
                chosen.append((event, where))
    if not chosen:
        from airflow.sdk.exceptions import AirflowSkipException

        why = "; ".join(skipped.values()) if skipped else "the run was not triggered by a snapshot event"
        raise AirflowSkipException(f"nothing to post: {why}")
    connection = slack_connection_or_skip()
    tz = config.investor_timezone()
    result = {"posted": [], "already_posted": [], "skipped": skipped}
    failures = []
    conn = postgres_hook(config.METRICS_CONN_ID).get_conn()
    try:
        store.ensure_schema(conn)
        for event, where in chosen:
            key = slack_update_key(event.series, event.period_end)
            snapshot = store.snapshot_for(conn, event.period_end, series=event.series)
            if snapshot is None:
                failures.append(LookupError(f"{where}: the metrics store holds no {event.series} snapshot "
                                            f"for the period ending {iso_utc(event.period_end)}"))
                continue
            payload = build_payload(snapshot, previous_snapshot(conn, event, tz), tz)
            try:
                posted = post_once(conn, conn_id=connection.conn_id, key=key, payload=payload,
                                   period_end=event.period_end, run_id=context["run_id"])
            except SlackRefusedError as exc:
                from airflow.sdk.exceptions import AirflowFailException

                raise AirflowFailException(str(exc)) from exc
            except Exception as exc:  # the others are still posted; the retry posts this one
                log.error("%s", exc)
                failures.append(exc)
                continue
            result["posted" if posted else "already_posted"].append(key)
    finally:
        conn.close()
    if failures:
        raise failures[0]
    return result
