"""Benchmark fixture: bulk-insert realistic meter samples along imported sessions.

The imported data sets carry session totals only. To measure the pages with a
meter-sample table of production size, this script spreads ``--total`` samples
(default one million) over the sessions in the current database: at each sample
time an Energy.Active.Import.Register reading (Wh) and a Power.Active.Import
reading (W). The car charges at the ACN chargers' usual 6.6 kW (or slower,
where the session's ``energy_wh`` over its stay needs less), tapering over the
last fifth of the charge as a battery does, then sits at 0 W until it leaves;
the charge ends at the done-charging time where the data set gives one. The
rows are a BENCHMARK FIXTURE, not data: each carries
``flags == ["bench_fixture"]`` and ``--delete`` removes exactly them.

    python bench/meter_samples_load.py [--total 1000000] [--delete]
"""

import argparse
import os
import random
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "giu_ev.settings")

import django  # noqa: E402

django.setup()

from sessions.models import ChargingSession, MeterSample  # noqa: E402

FIXTURE_FLAGS = ["bench_fixture"]
ENERGY = "Energy.Active.Import.Register"
POWER = "Power.Active.Import"
# Rows per INSERT: larger batches gained nothing on PostgreSQL 15 here.
BATCH_ROWS = 5000
# Share of the charging time spent tapering at the end (constant-current /
# constant-voltage charging: power falls while the battery tops up).
TAPER_SHARE = 0.2
# Level-2 power of most ACN EVSEs (32 A at 208 V): the fastest a car charges here.
RATED_POWER_W = 6600


def charge_profile(energy_wh: float, hours: float, at_h: float) -> tuple[float, float]:
    """(power W, energy Wh so far) at ``at_h`` hours into a charge of ``hours``.

    Full power P until (1 - TAPER_SHARE) of the time, then falling linearly to
    zero; P is chosen so that the integral is ``energy_wh``.
    """
    flat_h = hours * (1 - TAPER_SHARE)
    taper_h = hours - flat_h
    full_w = energy_wh / (flat_h + taper_h / 2)
    if at_h <= flat_h:
        return full_w, full_w * at_h
    into = min(at_h - flat_h, taper_h)
    power = full_w * (1 - into / taper_h)
    return power, full_w * flat_h + (full_w + power) / 2 * into


def sessions_to_sample():
    return (
        ChargingSession.objects.filter(stopped_at__isnull=False, energy_wh__gt=0)
        .only(
            "id",
            "charge_point_id",
            "connector_number",
            "started_at",
            "stopped_at",
            "done_charging_at",
            "energy_wh",
            "meter_start_wh",
        )
        .order_by("pk")
    )


def charging_hours(session: ChargingSession) -> float:
    """How long the car drew power: until done charging where known, else as long
    as rated power (with the taper) needs, and never beyond the stay."""
    stay_h = (session.stopped_at - session.started_at).total_seconds() / 3600
    if session.done_charging_at and session.done_charging_at > session.started_at:
        done_h = (session.done_charging_at - session.started_at).total_seconds() / 3600
        return min(done_h, stay_h)
    needed_h = session.energy_wh / RATED_POWER_W / (1 - TAPER_SHARE / 2)
    return min(needed_h, stay_h)


def load(total: int) -> int:
    sessions = list(sessions_to_sample())
    stay_s = sum(
        max((s.stopped_at - s.started_at).total_seconds(), 0) for s in sessions
    )
    if not sessions or stay_s <= 0:
        print("No finished sessions with energy to sample: import a data set first.")
        return 0
    # Two rows (energy and power) per sample time, over the whole stay (a meter
    # keeps reporting after the car is full).
    step_s = max(stay_s / (total / 2 - len(sessions)), 1)
    rng = random.Random(20190501)

    batch: list[MeterSample] = []
    written = 0
    for session in sessions:
        stay_h = (session.stopped_at - session.started_at).total_seconds() / 3600
        hours = charging_hours(session)
        if hours <= 0 or stay_h <= 0:
            continue
        meter_wh = session.meter_start_wh or rng.randrange(100_000, 9_000_000)
        at_s = 0.0
        while True:
            at_h = min(at_s / 3600, stay_h)
            if at_h < hours:
                power_w, energy_wh = charge_profile(session.energy_wh, hours, at_h)
            else:
                power_w, energy_wh = 0.0, session.energy_wh
            power_w *= 1 + rng.uniform(-0.02, 0.02) if power_w else 1
            timestamp = session.started_at + timedelta(hours=at_h)
            register = round(meter_wh + energy_wh, 1)
            for measurand, unit, value in (
                (ENERGY, "Wh", register),
                (POWER, "W", round(power_w, 1)),
            ):
                batch.append(
                    MeterSample(
                        session_id=session.pk,
                        charge_point_id=session.charge_point_id,
                        connector_number=session.connector_number,
                        transaction_ref=session.pk,
                        timestamp=timestamp,
                        measurand=measurand,
                        context="Sample.Periodic",
                        location="Outlet",
                        unit=unit,
                        raw_value=str(value),
                        value=value,
                        normalised_unit=unit,
                        flags=FIXTURE_FLAGS,
                    )
                )
            if at_h >= stay_h:
                break
            at_s += step_s
        if len(batch) >= BATCH_ROWS:
            MeterSample.objects.bulk_create(batch)
            written += len(batch)
            batch = []
            if written % 100_000 < BATCH_ROWS:
                print(f"{written:,} rows", flush=True)
    MeterSample.objects.bulk_create(batch)
    written += len(batch)
    print(f"{written:,} rows")
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--total", type=int, default=1_000_000)
    parser.add_argument(
        "--delete", action="store_true", help="remove the fixture rows and stop"
    )
    args = parser.parse_args()

    fixture_rows = MeterSample.objects.filter(flags=FIXTURE_FLAGS)
    removed, _ = fixture_rows.delete()
    if removed:
        print(f"Removed {removed:,} earlier benchmark-fixture samples.")
    if args.delete:
        return

    started = time.perf_counter()
    written = load(args.total)
    print(
        f"Inserted {written:,} benchmark-fixture meter samples in "
        f"{time.perf_counter() - started:.0f} s; "
        f"table now holds {MeterSample.objects.count():,} samples."
    )


if __name__ == "__main__":
    main()
