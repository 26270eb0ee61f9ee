"""Large frames over a real socket, to Daphne started as the container starts it.

Daphne's own limit (1 MiB a message) closes the socket of a charger that sends
more; the web role raises it to OCPP_MAX_MESSAGE_BYTES (docs/ocpp.md).
"""

import base64
import json
import re

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from tests.conftest import REPO_DIR

pytestmark = pytest.mark.integration

MIB = 1024 * 1024


def entrypoint_message_limit() -> int:
    """The limit the container uses when OCPP_MAX_MESSAGE_BYTES is not set."""
    script = (REPO_DIR / "docker" / "entrypoint.sh").read_text()
    return int(re.search(r"OCPP_MAX_MESSAGE_BYTES:-(\d+)", script).group(1))


def _open(server, identity: str, password: str):
    token = base64.b64encode(f"{identity}:{password}".encode()).decode()
    return connect(
        server.ocpp_url + identity,
        subprotocols=["ocpp1.6"],
        additional_headers={"Authorization": f"Basic {token}"},
        open_timeout=30,
    )


def _data_transfer(message_id: str, size: int) -> str:
    """A DataTransfer frame of exactly ``size`` characters (a diagnostics dump)."""
    empty = json.dumps([2, message_id, "DataTransfer", {"vendorId": "V", "data": ""}])
    return empty.replace('"data": ""', '"data": "' + "x" * (size - len(empty)) + '"')


def test_a_frame_twice_daphnes_default_limit_is_answered_and_stored(
    container_web_server, e2e_site
):
    from ocpp_bridge.models import Frame
    from stations.services import charge_point_create

    charge_point, password = charge_point_create(identity="E2E-BIG-1", site=e2e_site)
    frame = _data_transfer("big-1", 2 * MIB)

    with _open(container_web_server, "E2E-BIG-1", password) as socket:
        socket.send(frame)
        answer = json.loads(socket.recv(timeout=60))
        socket.send(json.dumps([2, "beat-1", "Heartbeat", {}]))
        beat = json.loads(socket.recv(timeout=30))

    assert answer == [3, "big-1", {"status": "UnknownVendorId"}]
    assert beat[:2] == [3, "beat-1"]  # the same socket is still served
    stored = Frame.objects.get(
        charge_point=charge_point, direction="in", message_id="big-1"
    )
    assert len(stored.raw) == len(frame) == 2 * MIB


def test_a_frame_over_the_limit_drops_the_socket_and_is_not_stored(
    container_web_server, e2e_site
):
    from ocpp_bridge.models import Frame
    from stations.services import charge_point_create

    charge_point, password = charge_point_create(identity="E2E-BIG-2", site=e2e_site)
    limit = entrypoint_message_limit()

    with _open(container_web_server, "E2E-BIG-2", password) as socket:
        with pytest.raises(ConnectionClosed) as closed:
            socket.send(_data_transfer("too-big", limit + 1))
            socket.recv(timeout=60)

    # Daphne (autobahn) drops the TCP connection: no close frame, no CallError.
    assert closed.value.rcvd is None
    assert not Frame.objects.filter(charge_point=charge_point, direction="in").exists()
