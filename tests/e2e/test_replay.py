"""replay_sessions: real imported Caltech sessions replayed live over OCPP.

The sessions come from the ACN-Data file in ../shared/data (imported with
import_sessions); the replay's chargers (the `ocpp` package over `websockets`)
talk to a real Daphne process, and the energy each imported session delivered
must arrive as the energy of the OCPP session it became.
"""

import io
import stat

import pytest
from django.core.management import call_command

from tests.conftest import ACN_DIR

pytestmark = pytest.mark.integration

CALTECH_2020 = (
    ACN_DIR / "raw_api_json" / "acndata_sessions_caltech_2019-12-30_2020-12-30.json"
)


@pytest.fixture
def caltech_imported():
    call_command("import_sessions", str(CALTECH_2020), stdout=io.StringIO())


def _replay(daphne_server, credentials, **options) -> str:
    out = io.StringIO()
    call_command(
        "replay_sessions",
        site="caltech",
        url=daphne_server.ocpp_url,
        # 20,000x: a 10-hour session lasts under 2 s; a MeterValues every
        # 15 simulated minutes still gives dozens per session.
        speed=20000,
        meter_interval=900,
        credentials=credentials,
        stdout=out,
        stderr=out,
        **options,
    )
    return out.getvalue()


def test_imported_sessions_replay_with_their_energy(
    caltech_imported, daphne_server, tmp_path
):
    from sessions.models import ChargingSession, MeterSample, SessionSource
    from stations.models import ChargePoint

    imported = list(
        ChargingSession.objects.filter(
            source=SessionSource.IMPORT, charge_point__site__code="caltech"
        )
        .exclude(energy_wh=None)
        .order_by("started_at", "pk")[:4]
    )
    credentials = tmp_path / "replay_credentials.json"

    output = _replay(daphne_server, credentials, limit=4)

    replayed = ChargingSession.objects.filter(source=SessionSource.OCPP).order_by(
        "started_at"
    )
    overlapping = int(output.split("Done:")[1].split(",")[3].split()[0])
    assert replayed.count() == 4 - overlapping >= 1, output
    delivered = sorted(s.energy_wh for s in replayed)
    wanted = sorted(s.energy_wh for s in imported)
    for energy_wh in delivered:
        # Registers are whole Wh: each replayed session matches an imported one.
        assert any(abs(energy_wh - w) <= 1 for w in wanted), (delivered, wanted)
    for session in replayed:
        assert session.stopped_at is not None
        assert session.stop_reason == "EVDisconnected"
        assert MeterSample.objects.filter(session=session).count() >= 4
    # Passwords: set, hashed, kept only in the 0600 credentials file.
    saved = __import__("json").loads(credentials.read_text())
    assert stat.S_IMODE(credentials.stat().st_mode) == 0o600
    for identity, password in saved.items():
        assert password not in output
        assert ChargePoint.objects.get(identity=identity).password_hash
    assert "Set a new password on" in output


def test_a_second_replay_reuses_the_passwords_it_set(
    caltech_imported, daphne_server, tmp_path
):
    credentials = tmp_path / "replay_credentials.json"
    _replay(daphne_server, credentials, limit=1)
    first = credentials.read_text()

    output = _replay(daphne_server, credentials, limit=1)

    assert "Set a new password" not in output
    assert credentials.read_text() == first


def test_a_charger_whose_password_it_does_not_know_is_left_alone(
    caltech_imported, daphne_server, tmp_path
):
    from django.core.management.base import CommandError

    from sessions.models import ChargingSession, SessionSource
    from stations.services import charge_point_password_set

    first = (
        ChargingSession.objects.filter(source=SessionSource.IMPORT)
        .exclude(energy_wh=None)
        .order_by("started_at", "pk")
        .select_related("charge_point")
        .first()
    )
    charge_point = first.charge_point
    charge_point_password_set(charge_point=charge_point)
    staff_set_hash = charge_point.password_hash

    with pytest.raises(CommandError, match="--reset-passwords") as error:
        _replay(daphne_server, tmp_path / "c.json", limit=1)

    assert charge_point.identity in str(error.value)
    charge_point.refresh_from_db()
    assert charge_point.password_hash == staff_set_hash
    output = _replay(daphne_server, tmp_path / "c.json", limit=1, reset_passwords=True)
    assert "Done: 1 sessions started, 1 stopped" in output
