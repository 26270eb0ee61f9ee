"""A test charger speaking OCPP-J through WebsocketCommunicator.

Consumer tests use the transactional database: the bridge writes from the
thread pool (other connections than the test's), as it does in production.
"""

import base64
import itertools
import json
from urllib.parse import quote, urlparse

import pytest
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator

from ocpp_bridge.routing import websocket_urlpatterns

PASSWORD = "correct-horse-battery-1"

_ids = itertools.count(1)


def basic(user: str, password: str | bytes) -> bytes:
    raw = (
        user.encode()
        + b":"
        + (password if isinstance(password, bytes) else password.encode())
    )
    return b"Basic " + base64.b64encode(raw)


class Charger(WebsocketCommunicator):
    """A communicator that sends raw_path like Daphne and speaks OCPP-J."""

    def __init__(
        self,
        path: str,
        *,
        headers=None,
        subprotocols=("ocpp1.6",),
        client=("10.0.0.1", 5000),
    ):
        application = URLRouter(websocket_urlpatterns)
        super().__init__(
            application,
            path,
            headers=list(headers or []),
            subprotocols=list(subprotocols),
        )
        self.scope["raw_path"] = urlparse(path).path.encode("latin-1")
        self.scope["client"] = client

    async def call(
        self,
        action: str,
        payload: dict,
        message_id: str | None = None,
        timeout: float = 5,
    ):
        message_id = message_id or f"m-{next(_ids)}"
        await self.send_to(text_data=json.dumps([2, message_id, action, payload]))
        reply = json.loads(await self.receive_from(timeout=timeout))
        assert reply[1] == message_id, reply
        return reply

    async def raw(self, text: str, timeout: float = 5):
        await self.send_to(text_data=text)
        return json.loads(await self.receive_from(timeout=timeout))


@pytest.fixture
def tdb(transactional_db):
    return transactional_db


@pytest.fixture
def site_utc(tdb):
    from stations.models import Site

    return Site.objects.create(code="depot", name="Depot", time_zone="UTC")


@pytest.fixture
def make_charger(tdb, site_utc):
    from stations.models import ChargePoint
    from stations.services import charge_point_password_set

    def make(identity: str = "CP-1", *, password: str | None = PASSWORD, site=None):
        charge_point = ChargePoint.objects.create(
            identity=identity, site=site or site_utc
        )
        if password:
            charge_point_password_set(charge_point=charge_point, password=password)
        return charge_point

    return make


@pytest.fixture
def connect():
    opened = []

    async def open_(
        identity: str = "CP-1",
        *,
        password=PASSWORD,
        path=None,
        user=None,
        headers=None,
        **kwargs,
    ):
        path = path or f"/ocpp/{quote(identity, safe='')}"
        all_headers = list(headers or [])
        if password is not None:
            all_headers.append((b"authorization", basic(user or identity, password)))
        charger = Charger(path, headers=all_headers, **kwargs)
        connected, detail = await charger.connect(timeout=5)
        opened.append(charger)
        charger.connected, charger.detail = connected, detail
        return charger

    yield open_


@pytest.fixture(autouse=True)
def _close_db_pools():
    """The bridge's pool threads keep pooled connections; free them per test."""
    yield
    from asgiref.sync import SyncToAsync
    from django.db import connections

    # The thread that runs the tests' own sync_to_async calls keeps its
    # connection between tests; close it before the database is flushed.
    SyncToAsync.single_thread_executor.submit(connections.close_all).result()
    for connection in connections.all(initialized_only=True):
        if hasattr(connection, "close_pool"):
            connection.close_pool()


@pytest.fixture
def charger_cp(tdb, site_utc):
    """A registered charger CP-1 with the test password."""
    from stations.models import ChargePoint
    from stations.services import charge_point_password_set

    charge_point = ChargePoint.objects.create(identity="CP-1", site=site_utc)
    charge_point_password_set(charge_point=charge_point, password=PASSWORD)
    return charge_point


async def answer_next(charger: Charger, payload: dict | None = None, *, error=None):
    """Receive the portal's next CALL and answer it (a CallResult or CallError)."""
    call = json.loads(await charger.receive_from(timeout=5))
    assert call[0] == 2, call
    if error:
        await charger.send_to(text_data=json.dumps([4, call[1], error, "no", {}]))
    else:
        await charger.send_to(text_data=json.dumps([3, call[1], payload or {}]))
    return call
