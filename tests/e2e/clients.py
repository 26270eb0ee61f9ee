"""Drive third-party OCPP clients from pytest.

`OcppRpcCharger` runs `tests/e2e/peers/charger.js` (the npm `ocpp-rpc` client in
strict mode) as a child process and talks to it one JSON line at a time. Calls
the portal sends are answered by the Node side at once and collected here, so a
test can send a command from its own process and then look at what the charger
received.
"""

from __future__ import annotations

import json
import queue
import shutil
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

PEERS_DIR = Path(__file__).resolve().parent / "peers"
REPO_DIR = PEERS_DIR.parent.parent.parent
NODE = shutil.which("node") or "node"


def now_z() -> str:
    """UTC now as OCPP strict clients want it: milliseconds and a trailing Z."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class PeerError(AssertionError):
    """The Node peer died, broke a schema, or did not answer in time."""


class OcppRpcCharger:
    """One ocpp-rpc charger in a Node child process."""

    def __init__(self, *, identity: str, url: str, password: str | None) -> None:
        self.identity = identity
        self.url = url
        self.password = password
        self.events: list[dict[str, Any]] = []
        self._results: queue.Queue[dict[str, Any]] = queue.Queue()
        self._events_changed = threading.Condition()
        self._next_id = 0
        self._stderr: list[str] = []
        self._proc = subprocess.Popen(
            [NODE, str(PEERS_DIR / "charger.js")],
            cwd=REPO_DIR,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        threading.Thread(target=self._read_stdout, daemon=True).start()
        threading.Thread(target=self._read_stderr, daemon=True).start()

    # -- plumbing ------------------------------------------------------------------

    def _read_stdout(self) -> None:
        assert self._proc.stdout is not None
        for line in self._proc.stdout:
            message = json.loads(line)
            if "event" in message:
                with self._events_changed:
                    self.events.append(message)
                    self._events_changed.notify_all()
            else:
                self._results.put(message)

    def _read_stderr(self) -> None:
        assert self._proc.stderr is not None
        for line in self._proc.stderr:
            self._stderr.append(line)

    def step(self, op: str, *, timeout_s: float = 30, **fields: Any) -> dict:
        """Run one step on the Node side and return its result line."""
        self._next_id += 1
        request = {"id": self._next_id, "op": op, **fields}
        assert self._proc.stdin is not None
        self._proc.stdin.write(json.dumps(request) + "\n")
        self._proc.stdin.flush()
        try:
            result = self._results.get(timeout=timeout_s)
        except queue.Empty:
            raise PeerError(
                f"{self.identity}: no answer to {op} in {timeout_s}s; "
                f"stderr: {''.join(self._stderr)[-2000:]}"
            ) from None
        assert result["id"] == request["id"], (result, request)
        return result

    # -- what tests use ------------------------------------------------------------

    def connect(self, *, strict: bool = True, **options: Any) -> dict:
        return self.step(
            "connect",
            url=self.url,
            identity=self.identity,
            password=self.password,
            strict=strict,
            **options,
        )

    def call(self, method: str, params: dict | None = None) -> dict:
        """Send a CALL; return the CALLRESULT payload, or raise with the error."""
        result = self.step("call", method=method, params=params or {})
        if not result["ok"]:
            raise PeerError(f"{self.identity} {method} failed: {result['error']}")
        return result["response"]

    def call_result(self, method: str, params: dict | None = None) -> dict:
        """Send a CALL; return the whole step result (ok, response or error)."""
        return self.step("call", method=method, params=params or {})

    def handle(self, method: str, **answer: Any) -> None:
        self.step("handle", method=method, **answer)

    def received_calls(self, method: str | None = None) -> list[dict]:
        with self._events_changed:
            return [
                e
                for e in self.events
                if e["event"] == "call" and (method is None or e["method"] == method)
            ]

    def wait_for_call(self, method: str, *, timeout_s: float = 15) -> dict:
        deadline = time.monotonic() + timeout_s
        with self._events_changed:
            while True:
                calls = [
                    e
                    for e in self.events
                    if e["event"] == "call" and e["method"] == method
                ]
                if calls:
                    return calls[-1]
                left = deadline - time.monotonic()
                if left <= 0:
                    raise PeerError(f"{self.identity} got no {method} in {timeout_s}s")
                self._events_changed.wait(left)

    def wait_for_event(self, kind: str, *, timeout_s: float = 10) -> dict:
        deadline = time.monotonic() + timeout_s
        with self._events_changed:
            while True:
                found = [e for e in self.events if e["event"] == kind]
                if found:
                    return found[-1]
                left = deadline - time.monotonic()
                if left <= 0:
                    raise PeerError(f"{self.identity} saw no {kind} in {timeout_s}s")
                self._events_changed.wait(left)

    @property
    def strict_failures(self) -> list[dict]:
        with self._events_changed:
            return [e for e in self.events if e["event"] == "strictValidationFailure"]

    def close(self) -> dict | None:
        """Close the socket, end the Node process and return its summary."""
        if self._proc.poll() is None:
            assert self._proc.stdin is not None
            try:
                self._proc.stdin.close()
            except BrokenPipeError:
                pass
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(timeout=5)
        summaries = [e for e in self.events if e["event"] == "summary"]
        return summaries[-1] if summaries else None

    def start_transaction(
        self, *, id_tag: str, meter_start_wh: int, connector_id: int = 1
    ) -> dict:
        return self.call(
            "StartTransaction",
            {
                "connectorId": connector_id,
                "idTag": id_tag,
                "meterStart": meter_start_wh,
                "timestamp": now_z(),
            },
        )

    def stop_transaction(
        self, *, transaction_id: int, meter_stop_wh: int, reason: str
    ) -> dict:
        return self.call(
            "StopTransaction",
            {
                "transactionId": transaction_id,
                "meterStop": meter_stop_wh,
                "timestamp": now_z(),
                "reason": reason,
            },
        )

    def boot(self) -> dict:
        return self.call(
            "BootNotification",
            {
                "chargePointVendor": "GIU-e2e",
                "chargePointModel": "ocpp-rpc",
                "chargePointSerialNumber": f"SN-{self.identity}",
                "firmwareVersion": "1.0.0",
            },
        )


def run_test_ocpp(*, url: str, identity: str, password: str | None) -> tuple[int, str]:
    """Run the `test-ocpp` smoke client once; return (exit code, output)."""
    command = [str(Path(sys.executable).parent / "test-ocpp"), url, identity]
    if password is not None:
        command += ["--password", password]
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=60, cwd=REPO_DIR
    )
    return done.returncode, done.stdout + done.stderr
