"""Every case of ../shared/cases/ocpp16-field-cases.jsonl, replayed as a test.

The conversation comes from the file: frames the charger sends are sent,
answers are compared with the expected frames ($NOW must be a UTC time ending
in Z near now, $TX1 the transactionId the portal issued), handshakes are made
with the headers given. What the case says must be stored (``expected.store``)
is checked by the function of that case id below; a case without one fails,
so a new case in the file cannot pass unread.
"""

import asyncio
import base64
import json
import secrets
from datetime import UTC, datetime, timedelta

import pytest
from channels.db import database_sync_to_async

from ocpp_bridge.commands import command_send_async
from ocpp_bridge.models import ConnectionAttempt, Frame, RemoteCommand
from sessions.models import (
    ChargingSession,
    IdToken,
    MeterSample,
    TransactionEvent,
    TransactionEventKind,
)
from sessions.services import meter_samples_renormalise, session_start
from stations.models import Alert, AlertKind, ChargePoint, Connector, Site, StatusEvent
from stations.services import charge_point_password_set
from tests.conftest import SHARED_DATA
from tests.ocpp_bridge.conftest import PASSWORD, Charger

CASES_FILE = SHARED_DATA.parent / "cases" / "ocpp16-field-cases.jsonl"
CASES = [json.loads(line) for line in CASES_FILE.read_text().splitlines() if line]
DEFAULT_IDENTITY = "CP-FIELD"

db = database_sync_to_async


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


# --- the replay -----------------------------------------------------------------


class Replay:
    def __init__(self, case: dict):
        self.case = case
        self.tx1: int | None = None
        self.charger: Charger | None = None
        self.identity = DEFAULT_IDENTITY
        self.ids: dict[str, str] = {}  # message id in the file -> id on the wire
        self.command: asyncio.Task | None = None
        self.handshakes: list[tuple[str, bool, object]] = []

    def substitute(self, value):
        if value == "$TX1":
            return self.tx1
        if isinstance(value, dict):
            return {k: self.substitute(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.substitute(v) for v in value]
        return value

    async def connect(self, identity: str | None = None):
        identity = identity or self.identity
        self.charger = Charger(
            f"/ocpp/{identity}",
            headers=[(b"authorization", _basic(identity, PASSWORD))],
        )
        connected, detail = await self.charger.connect(timeout=5)
        assert connected, detail

    async def run(self):
        messages = self.case["messages"]
        if not any(direction.endswith(":http") for direction, _ in messages):
            await self.connect()
        for index, (direction, frame) in enumerate(messages):
            following = messages[index + 1] if index + 1 < len(messages) else None
            if direction == "cp->csms":
                await self.charger_sends(frame, following)
            elif direction == "cp->csms:raw-text":
                await self.charger.send_to(text_data=frame)
            elif direction == "csms->cp" and frame[0] == 2:
                await self.portal_calls(frame)
            elif direction == "cp->csms:http":
                await self.handshake(frame, following[1])
            elif direction == "event" and "reconnect" in frame:
                await self.charger.disconnect()
                await self.connect()
            hook = AFTER.get((self.case["id"], _message_id(frame)))
            if hook is not None:
                await db(hook)(self)
        if self.command is not None:
            self.command_result = await asyncio.wait_for(self.command, 10)

    async def charger_sends(self, frame, following):
        frame = self.substitute(frame)
        frame[1] = self.ids.get(frame[1], frame[1])
        await self.charger.send_to(text_data=json.dumps(frame))
        if frame[0] != 2:
            return  # an answer to the portal's CALL: nothing comes back
        assert following is not None and following[0] == "csms->cp"
        reply = json.loads(await self.charger.receive_from(timeout=5))
        self.compare(reply, following[1], action=frame[2])

    def compare(self, reply, expected, *, action):
        assert reply[0] == expected[0], (reply, expected)
        assert reply[1] == expected[1]
        if expected[0] == 4:
            assert reply[2] == expected[2]
            return
        got, want = dict(reply[2]), dict(expected[2])
        if action == "StartTransaction" and want.get("transactionId") == "$TX1":
            if self.tx1 is None:
                self.tx1 = got["transactionId"]
            assert isinstance(got["transactionId"], int)
        want = self.substitute(want)
        if "currentTime" in want:
            sent = got.pop("currentTime")
            assert sent.endswith("Z"), sent
            if want.pop("currentTime") == "$NOW":
                assert abs(utc(sent) - datetime.now(UTC)) < timedelta(seconds=60)
        assert got == want

    async def portal_calls(self, frame):
        charge_point = await db(ChargePoint.objects.get)(identity=self.identity)
        self.command = asyncio.create_task(
            command_send_async(
                charge_point=charge_point,
                action=frame[2],
                payload=frame[3],
                timeout_s=5,
            )
        )
        sent = json.loads(await self.charger.receive_from(timeout=5))
        assert sent[0] == 2 and sent[2] == frame[2] and sent[3] == frame[3]
        self.ids[frame[1]] = sent[1]

    async def handshake(self, request, response):
        path = request["request"].split()[1]
        headers = [
            (name.lower().encode(), value.encode())
            for name, value in request["headers"].items()
            if name.lower() in ("authorization", "user-agent")
        ]
        offered = request["headers"].get("Sec-WebSocket-Protocol")
        charger = Charger(
            path,
            headers=headers,
            subprotocols=[p.strip() for p in offered.split(",")] if offered else [],
        )
        connected, detail = await charger.connect(timeout=5)
        self.handshakes.append((path, connected, detail))
        if response["status"] == 101:
            assert connected, (path, detail)
            expected_protocol = response.get("headers", {}).get(
                "Sec-WebSocket-Protocol"
            )
            assert detail == expected_protocol
            reply = await charger.call("Heartbeat", {})
            assert reply[0] == 3
            await charger.disconnect()
        else:
            assert not connected, path


def _message_id(frame):
    return frame[1] if isinstance(frame, list) and len(frame) > 1 else None


def _basic(user: str, password: str) -> bytes:
    return b"Basic " + base64.b64encode(f"{user}:{password}".encode())


# --- set-up drawn from the case -------------------------------------------------


def _prepare(case: dict, settings, replay: Replay) -> None:
    site = Site.objects.create(code="field", name="Field", time_zone="UTC")
    texts = json.dumps(case["messages"])
    for direction, frame in case["messages"]:
        if direction == "csms->cp" and frame[0] == 3 and "interval" in frame[2]:
            settings.OCPP_HEARTBEAT_INTERVAL_S = frame[2]["interval"]

    for direction, frame in case["messages"]:
        if (
            direction == "cp->csms"
            and frame[0] == 2
            and isinstance(frame[3].get("idTag"), str)
        ):
            tag = frame[3]["idTag"].upper()
            IdToken.objects.get_or_create(value=tag)

    http = [
        (m[1], case["messages"][i + 1][1])
        for i, m in enumerate(case["messages"])
        if m[0] == "cp->csms:http"
    ]
    if not http:
        charge_point = ChargePoint.objects.create(identity=DEFAULT_IDENTITY, site=site)
        charge_point_password_set(charge_point=charge_point, password=PASSWORD)
    for request, response in http:
        from ocpp_bridge.auth import basic_credentials_parse, identity_from_path

        identity = identity_from_path(request["request"].split()[1])
        charge_point, _ = ChargePoint.objects.get_or_create(
            identity=identity, defaults={"site": site}
        )
        header = request["headers"].get("Authorization")
        if header is None:
            # A charger without a password: the embedded set-up allows it.
            settings.OCPP_REQUIRE_PASSWORD = False
            continue
        credentials = basic_credentials_parse(header.encode())
        if response["status"] == 101:
            password = credentials.password
        else:
            password = secrets.token_urlsafe(18)
        charge_point_password_set(charge_point=charge_point, password=password)

    if '"$TX1"' in texts and '"StartTransaction"' not in texts:
        # The case begins inside a running transaction.
        started = session_start(
            charge_point_id=ChargePoint.objects.get(identity=DEFAULT_IDENTITY).pk,
            connector_number=1,
            id_tag="TAG-RUNNING",
            meter_start_wh=0,
            started_at=datetime(2023, 7, 1, 20, 0, tzinfo=UTC),
        )
        replay.tx1 = started.session_id
    SETUP.get(case["id"], lambda r: None)(replay)


def _fc09_setup(replay: Replay) -> None:
    replay.open_session = session_start(
        charge_point_id=ChargePoint.objects.get(identity=DEFAULT_IDENTITY).pk,
        connector_number=1,
        id_tag="TAG-OTHER",
        meter_start_wh=100,
        started_at=datetime(2019, 7, 1, 17, 0, tzinfo=UTC),
    ).session_id


SETUP = {"FC-09": _fc09_setup}


# --- what must be stored, case by case -------------------------------------------


def _cp(identity=DEFAULT_IDENTITY) -> ChargePoint:
    return ChargePoint.objects.get(identity=identity)


def check_fc01(replay: Replay) -> None:
    event = StatusEvent.objects.get(connector_number=1)
    assert event.timestamp == utc("2023-10-19T15:28:07Z")  # site zone: UTC
    assert event.raw_timestamp == "2023-10-19T15:28:07"
    assert event.timestamp_zone_assumed is True
    session = ChargingSession.objects.get()
    assert session.started_at == utc("2023-10-19T15:28:30Z")
    assert session.raw_start_timestamp == "2023-10-19T15:28:30"
    assert session.timestamp_zone_assumed is True
    assert session.meter_start_wh == 152300


def check_fc02(replay: Replay) -> None:
    event = StatusEvent.objects.get(connector_number=2)
    assert event.status == "Preparing"
    assert event.timestamp == utc("2024-04-26T12:35:02Z")
    assert event.raw_timestamp == "2024-04-26T14:35:02+02"
    assert Connector.objects.get(number=2).status == "Preparing"


def _one_session_with_duplicate(start: str) -> None:
    session = ChargingSession.objects.get()
    assert session.started_at == utc(start)
    assert "duplicate_start" in session.flags
    duplicates = TransactionEvent.objects.filter(
        kind=TransactionEventKind.DUPLICATE_START, session=session
    )
    assert duplicates.count() == 1


def check_fc05(replay: Replay) -> None:
    _one_session_with_duplicate("2021-03-24T07:06:40Z")


def check_fc06(replay: Replay) -> None:
    _one_session_with_duplicate("2023-12-17T07:48:40.564Z")


def check_fc08(replay: Replay) -> None:
    session = ChargingSession.objects.get(pk=replay.tx1)
    assert session.meter_stop_wh == 5230
    assert session.stopped_at == utc("2023-10-03T13:10:00Z")
    samples = MeterSample.objects.filter(session=session, context="Transaction.End")
    assert [(s.raw_value, s.timestamp) for s in samples] == [
        ("5230", utc("2023-10-03T13:10:00Z"))
    ]
    conflict = TransactionEvent.objects.get(
        kind=TransactionEventKind.CONFLICTING_STOP, session=session
    )
    assert conflict.payload["meterStop"] == 5231


def check_fc09(replay: Replay) -> None:
    orphan = TransactionEvent.objects.get(kind=TransactionEventKind.ORPHAN_STOP)
    assert orphan.transaction_ref == 987654
    assert orphan.payload["meterStop"] == 20410
    assert orphan.payload["reason"] == "EVDisconnected"
    unmatched = orphan.session
    assert unmatched.is_unmatched is True
    assert unmatched.meter_stop_wh == 20410
    assert unmatched.stopped_at == utc("2019-07-01T18:22:05Z")
    assert unmatched.stop_reason == "EVDisconnected"
    # The other session of the charger is not closed on a guess.
    assert ChargingSession.objects.get(pk=replay.open_session).stopped_at is None


def check_fc13(replay: Replay) -> None:
    energy = MeterSample.objects.filter(
        measurand="Energy.Active.Import.Register"
    ).order_by("timestamp")
    assert [(s.raw_value, s.unit, s.value) for s in energy] == [
        ("361", "Wh", 361.0),
        ("362", "Wh", 362.0),
    ]
    assert all("unit_suspect" in s.flags for s in energy)
    assert MeterSample.objects.filter(measurand="Power.Active.Import").count() == 2
    assert "unit_suspect" in ChargingSession.objects.get(pk=replay.tx1).flags

    charge_point = _cp()
    charge_point.energy_scale = 1000
    charge_point.save()
    meter_samples_renormalise(charge_point=charge_point)
    assert [(s.raw_value, s.value) for s in energy.all()] == [
        ("361", 361000.0),
        ("362", 362000.0),
    ]


def check_fc15(replay: Replay) -> None:
    samples = MeterSample.objects.all()
    assert samples.count() == 4
    for sample in samples:
        assert sample.raw_value == "0"
        assert "value_not_string" in sample.flags
        assert sample.context == "Sample.Periodic"


def check_fc16(replay: Replay) -> None:
    assert MeterSample.objects.count() == 0
    frame = Frame.objects.get(message_id="e-1", direction="in")
    assert frame.raw and "schema:minItems:meterValue.*.sampledValue" in frame.flags
    assert _cp().malformed_frames >= 1


def check_fc18_live(replay: Replay) -> None:
    session = ChargingSession.objects.get(pk=replay.tx1)
    assert session.energy_wh == 895
    sample = MeterSample.objects.get(session=session)
    assert "register_session_relative" in sample.flags
    assert "register_session_relative" in session.flags


def check_fc18(replay: Replay) -> None:
    session = ChargingSession.objects.get(pk=replay.tx1)
    assert session.energy_wh == 1445
    assert not ChargingSession.objects.filter(energy_wh__lt=0).exists()
    assert MeterSample.objects.get(session=session).raw_value == "895"


def check_fc22(replay: Replay) -> None:
    charge_point = _cp()
    assert charge_point.status == "Faulted"
    event = StatusEvent.objects.get(connector_number=0)
    assert (event.error_code, event.error_code_raw) == ("OtherError", "Error")
    assert Alert.objects.filter(
        kind=AlertKind.CONNECTOR_FAULTED,
        subject=f"{DEFAULT_IDENTITY}/0",
        resolved_at__isnull=True,
    ).exists()


def check_fc23(replay: Replay) -> None:
    charge_point = _cp()
    assert charge_point.status == "Faulted"
    fault = StatusEvent.objects.get(connector_number=0)
    assert fault.info == "energy manager link lost, safe mode 14A"
    assert fault.vendor_error_code == "210"
    assert fault.timestamp == utc("2022-01-31T14:44:28Z")
    assert fault.received_at > fault.timestamp + timedelta(days=365)
    assert Connector.objects.get(number=1).status == "Available"
    assert not Connector.objects.filter(number=0).exists()
    history = list(StatusEvent.objects.order_by("timestamp"))
    assert [e.connector_number for e in history] == [0, 1]


def check_fc24(replay: Replay) -> None:
    charge_point = _cp()
    assert charge_point.charge_box_serial_number == "EVB1A00X0XX0X00000000000000000000X"
    assert charge_point.serial_number == "0X000000000X0X0X0000000000"
    assert "schema:maxLength:chargeBoxSerialNumber" in charge_point.flags
    assert "schema:maxLength:chargePointSerialNumber" in charge_point.flags


def check_fc28(replay: Replay) -> None:
    result = replay.command_result
    assert (result.outcome, result.error_code, result.error_description) == (
        "call_error",
        "FormationViolation",
        "",
    )
    command = RemoteCommand.objects.get()
    assert (
        command.outcome == "call_error" and command.error_code == "FormationViolation"
    )
    capabilities = _cp().capabilities
    assert capabilities["GetConfiguration(SupportedFeatureProfiles)"].startswith(
        "unsupported"
    )


def check_fc30(replay: Replay) -> None:
    attempt = ConnectionAttempt.objects.get(identity="CP-TEST-01")
    assert attempt.reason == "no_subprotocol"
    assert "no_subprotocol" in _cp("CP-TEST-01").last_connect_error
    assert Frame.objects.filter(
        charge_point__identity="CP-TEST-01", flags__contains=["no_subprotocol"]
    ).exists()


def check_fc32(replay: Replay) -> None:
    attempt = ConnectionAttempt.objects.get(charge_point__identity="RDAM|123")
    assert attempt.outcome == "accepted"
    assert attempt.raw_path == "/ocpp/RDAM%7C123"
    assert _cp("RDAM|123").frames.filter(action="Heartbeat").exists()
    assert _cp("CP-TEST-02").frames.filter(action="Heartbeat").exists()
    assert not ChargePoint.objects.filter(identity__contains="%").exists()


def check_fc33(replay: Replay) -> None:
    refused = ConnectionAttempt.objects.get(identity="GRS-TEST-0001")
    assert (refused.outcome, refused.reason) == ("refused", "empty_password")
    accepted = ConnectionAttempt.objects.get(identity="CP-TEST-03")
    assert accepted.outcome == "accepted"
    assert _cp("CP-TEST-03").password_hash.startswith("pbkdf2_sha256_charger$")
    stored = json.dumps(list(ConnectionAttempt.objects.values()), default=str)
    assert "pa:ss:word12345678" not in stored and "Q1AtVEVTVC0wMzpw" not in stored


def check_fc36(replay: Replay) -> None:
    token = IdToken.objects.get()
    session = ChargingSession.objects.get()
    assert session.id_token == token
    assert session.id_tag == "04A1B2C3D4E5F6"
    assert Frame.objects.get(message_id="au1", direction="out").payload == {
        "idTagInfo": {"status": "Accepted"}
    }


CHECKS = {
    "FC-01": check_fc01,
    "FC-02": check_fc02,
    "FC-05": check_fc05,
    "FC-06": check_fc06,
    "FC-08": check_fc08,
    "FC-09": check_fc09,
    "FC-13": check_fc13,
    "FC-15": check_fc15,
    "FC-16": check_fc16,
    "FC-18": check_fc18,
    "FC-22": check_fc22,
    "FC-23": check_fc23,
    "FC-24": check_fc24,
    "FC-28": check_fc28,
    "FC-30": check_fc30,
    "FC-32": check_fc32,
    "FC-33": check_fc33,
    "FC-36": check_fc36,
}
AFTER = {("FC-18", "r2"): check_fc18_live}


@pytest.mark.parametrize("case", CASES, ids=[case["id"] for case in CASES])
async def test_field_case(case, transactional_db, settings):
    assert case["id"] in CHECKS, f"{case['id']} has no check of expected.store"
    replay = Replay(case)
    await db(_prepare)(case, settings, replay)

    await replay.run()

    if replay.charger is not None:
        # The socket survived the case: the charger is still served.
        reply = await replay.charger.call("Heartbeat", {})
        assert reply[0] == 3
        await replay.charger.disconnect()
    await db(CHECKS[case["id"]])(replay)


async def test_no_subprotocol_refused_when_the_setting_asks(transactional_db, settings):
    settings.OCPP_REQUIRE_SUBPROTOCOL = True
    settings.OCPP_REQUIRE_PASSWORD = False
    site = await db(Site.objects.create)(code="s", name="S")
    await db(ChargePoint.objects.create)(identity="CP-TEST-01", site=site)

    charger = Charger("/ocpp/CP-TEST-01", subprotocols=[])
    connected, _ = await charger.connect(timeout=5)

    assert not connected
    attempt = await db(ConnectionAttempt.objects.get)()
    assert (attempt.outcome, attempt.reason) == ("refused", "no_subprotocol")
    charge_point = await db(ChargePoint.objects.get)(identity="CP-TEST-01")
    assert charge_point.last_connect_error == "no_subprotocol"
