"""Meter values stored in one batch are stored exactly as one by one.

The OCPP bridge hands the services the MeterValues of many chargers at once
(``meter_samples_record_many``), which reads what each session has stored in
one query and looks further only when that cannot answer. An operator must not
be able to tell which way a reading came in. The same odd mix of messages (in
order, late, resent, repeated within one batch, for an unknown transaction,
without one, kWh labelled Wh, a register counting per session) goes in once in
batches and once message by message through the per-message look-ups
(``_samples_store``, as StopTransaction's data still goes), and the stored
readings, flags, live energy and audit events are compared.
"""

from datetime import UTC, datetime, timedelta

import pytest

from sessions import services
from sessions.models import (
    ChargingSession,
    MeterSample,
    SessionSource,
    TransactionEvent,
)
from sessions.services import MeterValuesReport, meter_samples_record_many
from stations.models import ChargePoint, Site

START = datetime(2025, 5, 1, 8, 0, tzinfo=UTC)
UNKNOWN_TX = 987_654


def at(minutes: float) -> datetime:
    return START + timedelta(minutes=minutes)


def sample(minutes: float, raw: str, measurand: str, unit: str = "") -> dict:
    return {
        "timestamp": at(minutes),
        "raw_timestamp": at(minutes).isoformat(),
        "measurand": measurand,
        "phase": "",
        "location": "Outlet",
        "context": "Sample.Periodic",
        "unit": unit,
        "raw_value": raw,
        "flags": [],
    }


def register(minutes: float, wh: str) -> dict:
    return sample(minutes, wh, "Energy.Active.Import.Register", "Wh")


def power(minutes: float, w: str) -> dict:
    return sample(minutes, w, "Power.Active.Import", "W")


def world(site: Site, name: str) -> dict[str, ChargePoint | ChargingSession]:
    """Chargers and open sessions, one set per way of storing."""
    made: dict = {}
    for label, meter_start in (("a", 1000), ("b", 5000), ("c", 0)):
        charge_point = ChargePoint.objects.create(identity=f"{name}-{label}", site=site)
        made[label] = charge_point
        made[f"{label}-session"] = ChargingSession.objects.create(
            charge_point=charge_point,
            connector_number=1,
            started_at=START,
            meter_start_wh=meter_start,
        )
    return made


def batches(made: dict) -> list[list[MeterValuesReport]]:
    def report(label: str, samples: list[dict], tx: object = "session"):
        if tx == "session":
            tx = made[f"{label}-session"].pk
        return MeterValuesReport(
            charge_point_id=made[label].pk,
            connector_number=1,
            transaction_ref=tx,
            samples=samples,
            message_id=f"m-{label}",
            payload={"connectorId": 1},
        )

    return [
        [
            report("a", [register(10, "2000"), power(10, "7200")]),
            # Below meterStart: the firmware counts per session (FC-18).
            report("b", [register(10, "300"), power(10, "7000")]),
            report("c", [register(10, "12.000"), power(10, "9400")]),
            report("a", [register(10, "55")], tx=None),
        ],
        [
            report("a", [register(20, "3000"), power(20, "7200")]),
            # Resent in the same batch, then a late reading from before.
            report("a", [register(20, "3000"), power(20, "7200")]),
            report("a", [register(5, "1500"), power(5, "7100")]),
            report("b", [register(20, "1200"), power(20, "7000")]),
            # 1 Wh in 7 minutes at 9.4 kW: kWh labelled Wh (FC-13).
            report("c", [register(17, "12.001"), power(17, "9400")]),
            report("a", [register(21, "60")], tx=UNKNOWN_TX),
            report("a", [register(21, "61")], tx=UNKNOWN_TX),
            # Two readings with one key and different values in one message.
            report(
                "b",
                [register(30, "2000"), register(30, "2001"), power(30, "7000")],
            ),
            report("a", [power(25, "7300")]),
        ],
        [
            # The newest stored time (25) holds no register: looked up.
            report("a", [register(30, "3600"), power(30, "7200")]),
            report("b", [register(40, "2900"), power(40, "7000")]),
        ],
    ]


def stored(made: dict) -> dict:
    def samples(**where):
        return sorted(
            (
                row.timestamp,
                row.measurand,
                row.raw_value,
                row.value,
                row.transaction_ref is not None,
                sorted(row.flags),
            )
            for row in MeterSample.objects.filter(**where)
        )

    outcome: dict = {}
    for label in ("a", "b", "c"):
        session = ChargingSession.objects.get(pk=made[f"{label}-session"].pk)
        charge_point = ChargePoint.objects.get(pk=made[label].pk)
        outcome[label] = {
            "samples": samples(session=session),
            "without session": samples(charge_point=charge_point, session=None),
            "energy_wh": session.energy_wh,
            "session flags": sorted(session.flags),
            "charger flags": sorted(charge_point.flags or []),
            "events": sorted(
                TransactionEvent.objects.filter(charge_point=charge_point).values_list(
                    "kind", "transaction_ref"
                )
            ),
        }
    return outcome


def one_message(report: MeterValuesReport) -> int:
    """A message stored with the exact look-ups, not the batch's shortcuts."""
    charge_point = ChargePoint.objects.get(pk=report.charge_point_id)
    session = None
    if report.transaction_ref is not None:
        session = ChargingSession.objects.filter(
            pk=report.transaction_ref,
            charge_point=charge_point,
            source=SessionSource.OCPP,
        ).first()
        if session is None:
            services._orphan_meter_values_note(charge_point=charge_point, report=report)
    return services._samples_store(
        charge_point=charge_point,
        session=session,
        connector_number=report.connector_number,
        transaction_ref=report.transaction_ref,
        samples=report.samples,
    )


@pytest.mark.django_db
def test_a_batch_stores_what_one_message_at_a_time_stores():
    site = Site.objects.create(code="depot", name="Depot", time_zone="UTC")
    one_by_one, together = world(site, "single"), world(site, "batch")

    counts_single = [
        [one_message(report) for report in batch] for batch in batches(one_by_one)
    ]
    counts_batch = [
        meter_samples_record_many(reports=batch) for batch in batches(together)
    ]

    assert counts_batch == counts_single
    single, batch = stored(one_by_one), stored(together)
    assert batch == single
    # And what was stored is what an operator expects to see.
    assert single["a"]["energy_wh"] == 3600 - 1000
    # Five messages with readings of their own; the resend adds none.
    assert len(single["a"]["samples"]) == 2 + 2 + 2 + 1 + 2
    assert single["b"]["energy_wh"] == 2900  # a register counting per session
    assert "register_session_relative" in single["b"]["session flags"]
    assert any("conflicting_copy" in s[-1] for s in single["b"]["samples"])
    assert "unit_suspect" in single["c"]["charger flags"]
    assert single["a"]["events"] == [("orphan_meter_values", UNKNOWN_TX)]
    # No transaction, and the unknown one (its second reading repeats the key).
    assert [row[2] for row in single["a"]["without session"]] == ["55", "60"]
