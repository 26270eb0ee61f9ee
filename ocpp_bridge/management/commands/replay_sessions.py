"""Replay a site's imported sessions as live OCPP traffic against the portal."""

import asyncio
from datetime import UTC, datetime
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.dateparse import parse_date, parse_datetime

from ocpp_bridge.replay import (
    ReplaySummary,
    replay_credentials_path,
    replay_passwords_ensure,
    replay_plan_build,
    replay_run,
    replay_sessions_select,
)
from stations.models import ChargePoint, Site


def _moment(value: str) -> datetime:
    moment = parse_datetime(value)
    if moment is None:
        day = parse_date(value)
        if day is None:
            raise CommandError(f"{value!r} is not a date (YYYY-MM-DD) or date-time.")
        moment = datetime(day.year, day.month, day.day, tzinfo=UTC)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment


class Command(BaseCommand):
    help = (
        "Connect one OCPP 1.6J client per charger of a site and replay its "
        "imported sessions (plug-in, authorize, start, meter values, stop) at a "
        "chosen speed."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--site", required=True, help="Site code, e.g. caltech.")
        parser.add_argument(
            "--url",
            default="ws://127.0.0.1:8000/ocpp/",
            help="The portal's OCPP endpoint (default %(default)s).",
        )
        parser.add_argument(
            "--speed",
            type=float,
            default=60.0,
            help="Simulated seconds per real second (default %(default)s).",
        )
        parser.add_argument(
            "--meter-interval",
            type=float,
            default=300.0,
            help="Simulated seconds between MeterValues (default %(default)s).",
        )
        parser.add_argument("--since", type=_moment, help="First plug-in, UTC.")
        parser.add_argument("--until", type=_moment, help="Last plug-in, UTC.")
        parser.add_argument("--limit", type=int, help="At most this many sessions.")
        parser.add_argument(
            "--credentials",
            type=Path,
            default=None,
            help="Passwords the replay set (default var/replay_credentials.json).",
        )
        parser.add_argument(
            "--reset-passwords",
            action="store_true",
            help="Give chargers whose password the replay does not know a new one.",
        )

    def handle(self, *args, **options) -> None:
        if options["speed"] <= 0:
            raise CommandError("--speed must be above 0.")
        if options["meter_interval"] <= 0:
            raise CommandError("--meter-interval must be above 0.")
        if not options["url"].startswith(("ws://", "wss://")):
            raise CommandError("--url must start with ws:// or wss://.")
        site = Site.objects.filter(code=options["site"]).first()
        if site is None:
            raise CommandError(f"No site with code {options['site']!r}.")

        sessions = replay_sessions_select(
            site_code=site.code,
            since=options["since"],
            until=options["until"],
            limit=options["limit"],
        )
        if not sessions:
            raise CommandError(
                f"No imported sessions for {site.code} in that window: run "
                "import_sessions first."
            )
        identities = {s.charge_point.identity for s in sessions}
        credentials_path = options["credentials"] or replay_credentials_path()
        ready = replay_passwords_ensure(
            charge_points=list(ChargePoint.objects.filter(identity__in=identities)),
            credentials_path=credentials_path,
            reset_passwords=options["reset_passwords"],
        )
        if ready.generated:
            self.stdout.write(
                f"Set a new password on {len(ready.generated)} chargers; kept in "
                f"{credentials_path} (mode 0600)."
            )
        if ready.skipped:
            self.stderr.write(
                f"Skipped {len(ready.skipped)} chargers whose password the replay "
                "does not know (use --reset-passwords to replace it): "
                + ", ".join(sorted(ready.skipped)[:10])
            )

        summary = ReplaySummary(chargers_skipped=ready.skipped)
        plans = replay_plan_build(
            sessions=sessions, passwords=ready.passwords, summary=summary
        )
        if not plans:
            raise CommandError(
                "No charger left to replay: the replay does not know the password "
                "of " + ", ".join(sorted(ready.skipped)[:10]) + " (use "
                "--reset-passwords to replace it)."
            )
        span = max(s.unplugged_at for p in plans for s in p.sessions) - min(
            s.plugged_in_at for p in plans for s in p.sessions
        )
        self.stdout.write(
            f"Replaying {summary.sessions_planned} sessions on {len(plans)} chargers "
            f"of {site.code} at {options['speed']:g}x: "
            f"{span.total_seconds() / options['speed'] / 60:.1f} minutes."
        )
        asyncio.run(
            replay_run(
                plans=plans,
                url=options["url"],
                speed=options["speed"],
                meter_interval_s=options["meter_interval"],
                summary=summary,
                progress=lambda line: self.stdout.write(line),
            )
        )

        self.stdout.write(
            f"Done: {summary.sessions_started} sessions started, "
            f"{summary.sessions_stopped} stopped, {summary.meter_values_sent} "
            f"MeterValues sent, {summary.sessions_overlapping_skipped} overlapping "
            "sessions skipped."
        )
        if summary.errors:
            raise CommandError(
                f"{len(summary.errors)} chargers failed: " + "; ".join(summary.errors)
            )
