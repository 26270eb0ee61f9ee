"""A bare OCPP 1.6J central system: the `ocpp` package over `websockets`, no DB.

It is the yardstick `bench/ocpp_load.py` measures the portal against: the
least a Python central system has to do to answer the same frames (parse,
validate against the 1.6 schemas, answer). It keeps nothing and checks no
password. Run it on its own with

    python bench/reference_server.py --port 9100

It prints ``READY <port>`` on stdout once it listens.
"""

import argparse
import asyncio
import logging
from datetime import UTC, datetime
from itertools import count

import websockets
from ocpp.routing import on
from ocpp.v16 import ChargePoint, call_result
from ocpp.v16.enums import (
    Action,
    AuthorizationStatus,
    DataTransferStatus,
    RegistrationStatus,
)

_transaction_ids = count(1)


def _now_z() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class BareChargePoint(ChargePoint):
    """Answers what a charger sends; stores nothing."""

    @on(Action.boot_notification)
    async def on_boot(self, **kwargs) -> call_result.BootNotification:
        return call_result.BootNotification(
            current_time=_now_z(), interval=300, status=RegistrationStatus.accepted
        )

    @on(Action.heartbeat)
    async def on_heartbeat(self) -> call_result.Heartbeat:
        return call_result.Heartbeat(current_time=_now_z())

    @on(Action.status_notification)
    async def on_status(self, **kwargs) -> call_result.StatusNotification:
        return call_result.StatusNotification()

    @on(Action.authorize)
    async def on_authorize(self, id_tag: str) -> call_result.Authorize:
        return call_result.Authorize(
            id_tag_info={"status": AuthorizationStatus.accepted}
        )

    @on(Action.start_transaction)
    async def on_start(self, **kwargs) -> call_result.StartTransaction:
        return call_result.StartTransaction(
            transaction_id=next(_transaction_ids),
            id_tag_info={"status": AuthorizationStatus.accepted},
        )

    @on(Action.meter_values)
    async def on_meter_values(self, **kwargs) -> call_result.MeterValues:
        return call_result.MeterValues()

    @on(Action.stop_transaction)
    async def on_stop(self, **kwargs) -> call_result.StopTransaction:
        return call_result.StopTransaction()

    @on(Action.data_transfer)
    async def on_data_transfer(self, **kwargs) -> call_result.DataTransfer:
        return call_result.DataTransfer(status=DataTransferStatus.accepted)


async def _serve_one(websocket) -> None:
    identity = websocket.request.path.rstrip("/").rsplit("/", 1)[-1]
    charge_point = BareChargePoint(identity, websocket)
    try:
        await charge_point.start()
    except websockets.ConnectionClosed:
        return


async def serve(host: str, port: int) -> None:
    async with websockets.serve(
        _serve_one,
        host,
        port,
        subprotocols=["ocpp1.6"],
        # Keep-alive as Daphne does by default (20 s pings), so both servers
        # carry the same per-connection work.
        ping_interval=20,
        # Daphne (autobahn) does not offer permessage-deflate; neither does the
        # yardstick, so both spend their CPU on the same work.
        compression=None,
        max_queue=32,
    ) as server:
        bound = server.sockets[0].getsockname()[1]
        print(f"READY {bound}", flush=True)
        await asyncio.Future()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    # The ocpp package logs every frame at INFO; a yardstick must not pay for that.
    logging.basicConfig(level=logging.WARNING)
    try:
        asyncio.run(serve(args.host, args.port))
    except KeyboardInterrupt:
        return


if __name__ == "__main__":
    main()
