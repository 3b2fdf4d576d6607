"""The command line of the synthetic ChatterFix dataset (``make demo`` loads it through ``load``)::

    python -m dev.demo_data.generator --scale demo --seed 42 [--end 2026-11-22T09:00:00Z]
        [--span-days 730] [--outage-week 2026-10-05] [--churn-spike-week 2026-09-14] [--force]
        [--dsn "host=... dbname=..."] [--no-progress]

Without ``--dsn`` the database comes from the seed's ``DB_*`` variables; without ``--end`` the data
ends now, floored to the UTC hour (printed). What the rows depend on: ``dev/demo_data/params.py``;
how they are loaded (unless already loaded): ``dev/demo_data/loader.py``.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from datetime import date, datetime, timezone

from dev.demo_data.loader import DatasetError, load
from dev.demo_data.params import REFERENCE_SPAN_DAYS, SCALES
from include.investor_metrics.period import iso_utc
from include.investor_metrics.settings import PostgresSettings, postgres_settings_from_env


def default_end(now: datetime | None = None) -> datetime:
    """Now, floored to the UTC hour (the command line's default ``--end``)."""
    now = (now or datetime.now(timezone.utc)).astimezone(timezone.utc)
    return now.replace(minute=0, second=0, microsecond=0)


def settings_from_dsn(dsn: str) -> PostgresSettings:
    import psycopg2.extensions

    parts = psycopg2.extensions.parse_dsn(dsn)
    return PostgresSettings(
        host=parts.get("host", "localhost"),
        port=int(parts.get("port", 5432)),
        dbname=parts.get("dbname", "postgres"),
        user=parts.get("user"),
        password=parts.get("password"),
    )


def _parse_end(raw: str) -> datetime:
    from include.investor_metrics.period import parse_period_end

    try:
        return parse_period_end(raw)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err).replace("period_end", "--end")) from None


def _parse_day(raw: str) -> date:
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{raw!r} is not a date such as 2026-10-05") from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m dev.demo_data.generator",
        description="Load a deterministic synthetic ChatterFix dataset (unless already loaded).",
    )
    parser.add_argument("--scale", choices=sorted(SCALES), default="demo")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--end", type=_parse_end, help="end of the data, ISO 8601 (default: now, floored to the hour)"
    )
    parser.add_argument("--span-days", type=int, default=REFERENCE_SPAN_DAYS)
    parser.add_argument(
        "--outage-week", type=_parse_day, help="a 12-hour api outage in the 7 days from this date"
    )
    parser.add_argument(
        "--churn-spike-week", type=_parse_day, help="~10%% of customers churn in these 7 days"
    )
    parser.add_argument("--force", action="store_true", help="reload even when already loaded")
    parser.add_argument("--dsn", help="libpq DSN or URL (default: the DB_* environment variables)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    settings = settings_from_dsn(args.dsn) if args.dsn else postgres_settings_from_env()
    end = args.end or default_end()
    print(f"end: {iso_utc(end)}{'' if args.end else ' (now, floored to the UTC hour)'}")
    print(f"database: {settings.public_description()}")
    try:
        summary = load(
            settings,
            end=end,
            scale=args.scale,
            seed=args.seed,
            span_days=args.span_days,
            outage_week=args.outage_week,
            churn_spike_week=args.churn_spike_week,
            force=args.force,
            progress=not args.no_progress,
        )
    except (ValueError, DatasetError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(summary.describe())
    return 0


if __name__ == "__main__":
    sys.exit(main())
