"""The charger handshake: identity from the URL, subprotocol, HTTP Basic auth.

Runs as ASGI middleware in front of the charger consumer, so a refused charger
never gets an open socket. What the client sees when refused: under a server
that offers the ASGI ``websocket.http.response`` extension (uvicorn), an HTTP
401 with ``WWW-Authenticate: Basic`` (400 for a bad subprotocol or identity);
under Daphne, which lacks that extension, the handshake is denied with HTTP
403. Every attempt is kept as a ConnectionAttempt row, never with the secret.
"""

import base64
import binascii
import logging
import re
from dataclasses import dataclass
from urllib.parse import unquote

from channels.db import database_sync_to_async
from django.conf import settings
from django.core.cache import cache

from ocpp_bridge.models import ConnectionAttempt
from ocpp_bridge.services import connection_attempt_record
from stations.models import ChargePoint, RegistrationStatus
from stations.services import (
    charge_point_connect_error_record,
    charge_point_password_check,
    charge_point_register_pending,
)

logger = logging.getLogger(__name__)

SUBPROTOCOL = "ocpp1.6"
# The 1.6 JSON spec allows 48 characters (CiString48) for the identity.
IDENTITY_MAX_LENGTH = 48
_BASIC = re.compile(r"^\s*basic\s*:?\s*(?P<token>\S+)\s*$", re.IGNORECASE)

# Refusal reasons that count towards the per-address failure limit.
_AUTH_FAILURES = frozenset(
    {
        "unknown_charge_point",
        "missing_password",
        "empty_password",
        "bad_password",
        "user_mismatch",
        "malformed_authorization",
    }
)


def identity_from_path(raw_path: bytes | str) -> str:
    """The charge point id: the last path segment, percent-decoded once.

    One trailing slash is tolerated (FC-32). The raw path is used so that an
    id holding ``%2F`` stays one segment.
    """
    path = raw_path.decode("latin-1") if isinstance(raw_path, bytes) else raw_path
    path = path.split("?", 1)[0]
    if path.endswith("/"):
        path = path[:-1]
    segment = path.rsplit("/", 1)[-1]
    if segment.lower() == "ocpp":
        return ""
    return unquote(segment, encoding="utf-8", errors="strict")


@dataclass(frozen=True)
class BasicCredentials:
    username: str
    password: str  # bytes as sent, decoded with surrogateescape


def basic_credentials_parse(header: bytes) -> BasicCredentials | None:
    """Read an Authorization header; None when it is not readable Basic.

    The scheme is matched leniently ('Basic:' is seen in the field, FC-33); the
    password is split at the first colon only and kept as the bytes sent.
    """
    match = _BASIC.match(header.decode("latin-1"))
    if match is None:
        return None
    try:
        decoded = base64.b64decode(match["token"], validate=True)
    except (binascii.Error, ValueError):
        return None
    user, sep, password = decoded.partition(b":")
    if not sep:
        return None
    try:
        username = user.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return BasicCredentials(
        username=username, password=password.decode("utf-8", "surrogateescape")
    )


@dataclass(frozen=True)
class Handshake:
    accepted: bool
    reason: str
    identity: str
    charge_point_id: int | None = None
    subprotocol: str | None = None
    site_time_zone: str = "UTC"
    http_status: int = 401


def _failure_key(remote_addr: str) -> str:
    return f"ocpp:auth-failures:{remote_addr}"


def handshake_check(
    *,
    identity: str,
    raw_path: str,
    remote_addr: str,
    subprotocols: list[str],
    authorization: bytes | None,
) -> Handshake:
    """Decide whether a charger may open its socket, and record the attempt."""
    decision = _decide(
        identity=identity,
        remote_addr=remote_addr,
        subprotocols=subprotocols,
        authorization=authorization,
    )

    connection_attempt_record(
        identity=identity,
        charge_point_id=decision.charge_point_id,
        remote_addr=remote_addr,
        raw_path=raw_path,
        subprotocols=subprotocols,
        outcome=ConnectionAttempt.Outcome.ACCEPTED
        if decision.accepted
        else ConnectionAttempt.Outcome.REFUSED,
        reason=decision.reason,
    )
    if not decision.accepted:
        if decision.reason in _AUTH_FAILURES:
            key = _failure_key(remote_addr)
            cache.add(key, 0, timeout=settings.OCPP_AUTH_FAILURE_WINDOW_S)
            try:
                cache.incr(key)
            except ValueError:
                cache.set(key, 1, timeout=settings.OCPP_AUTH_FAILURE_WINDOW_S)
        if decision.charge_point_id is not None:
            charge_point_connect_error_record(
                charge_point_id=decision.charge_point_id, reason=decision.reason
            )
        logger.warning(
            "Charger handshake refused: %s",
            decision.reason,
            extra={"charge_point": identity, "remote_addr": remote_addr},
        )
    return decision


def _decide(
    *,
    identity: str,
    remote_addr: str,
    subprotocols: list[str],
    authorization: bytes | None,
) -> Handshake:
    if (
        not identity
        or len(identity) > IDENTITY_MAX_LENGTH
        or any(ch < " " or ch == "\x7f" for ch in identity)
    ):
        # OCPP ids are printable; a control character (say %00) is refused.
        return Handshake(False, "bad_identity", identity, http_status=400)
    charge_point = (
        ChargePoint.objects.select_related("site")
        .filter(identity__iexact=identity)
        .first()
    )
    known_id = charge_point.pk if charge_point else None

    if SUBPROTOCOL in subprotocols:
        subprotocol = SUBPROTOCOL
    elif subprotocols:
        return Handshake(
            False, "unsupported_subprotocol", identity, known_id, None, "UTC", 400
        )
    elif settings.OCPP_REQUIRE_SUBPROTOCOL:
        return Handshake(False, "no_subprotocol", identity, known_id, None, "UTC", 400)
    else:
        subprotocol = None

    failures = cache.get(_failure_key(remote_addr), 0)
    if failures >= settings.OCPP_AUTH_FAILURE_LIMIT:
        return Handshake(False, "rate_limited", identity, known_id, None, "UTC", 429)

    credentials = None
    if authorization is not None:
        credentials = basic_credentials_parse(authorization)
        if credentials is None:
            return Handshake(False, "malformed_authorization", identity, known_id)

    if charge_point is None:
        if settings.OCPP_UNKNOWN_CHARGE_POINTS != "pending":
            return Handshake(False, "unknown_charge_point", identity)
        charge_point = charge_point_register_pending(identity=identity)

    if credentials is not None and credentials.username.casefold() != (
        charge_point.identity.casefold()
    ):
        return Handshake(False, "user_mismatch", identity, charge_point.pk)

    if charge_point.password_hash:
        if credentials is None:
            return Handshake(False, "missing_password", identity, charge_point.pk)
        if not credentials.password:
            return Handshake(False, "empty_password", identity, charge_point.pk)
        if not charge_point_password_check(
            charge_point=charge_point, password=credentials.password
        ):
            return Handshake(False, "bad_password", identity, charge_point.pk)
    elif settings.OCPP_REQUIRE_PASSWORD:
        return Handshake(False, "no_password_set", identity, charge_point.pk)

    reason = "no_subprotocol" if subprotocol is None else ""
    if charge_point.registration_status == RegistrationStatus.PENDING:
        reason = reason or "pending"
    return Handshake(
        True,
        reason,
        charge_point.identity,
        charge_point.pk,
        subprotocol=subprotocol,
        site_time_zone=charge_point.site.time_zone,
        http_status=101,
    )


def _header(scope: dict, name: bytes) -> bytes | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return value
    return None


class OcppHandshakeMiddleware:
    """Refuses a charger before its socket opens; passes the decision on.

    The consumer finds the decision in ``scope["ocpp"]``.
    """

    def __init__(self, inner):
        self.inner = inner

    async def __call__(self, scope, receive, send):
        raw_path = scope.get("raw_path") or scope["path"].encode("utf-8")
        try:
            identity = identity_from_path(raw_path)
        except UnicodeDecodeError:
            identity = ""
        client = scope.get("client") or ("", 0)
        decision = await database_sync_to_async(
            handshake_check, thread_sensitive=False
        )(
            identity=identity,
            raw_path=raw_path.decode("latin-1"),
            remote_addr=str(client[0] or ""),
            subprotocols=list(scope.get("subprotocols") or []),
            authorization=_header(scope, b"authorization"),
        )
        if decision.accepted:
            return await self.inner(dict(scope, ocpp=decision), receive, send)
        return await _deny(scope, receive, send, decision)


async def _deny(scope, receive, send, decision: Handshake) -> None:
    message = await receive()
    if message["type"] != "websocket.connect":
        return
    if "websocket.http.response" in scope.get("extensions", {}):
        headers = [(b"content-type", b"text/plain")]
        if decision.http_status == 401:
            headers.append(
                (b"www-authenticate", b'Basic realm="OCPP", charset="UTF-8"')
            )
        await send(
            {
                "type": "websocket.http.response.start",
                "status": decision.http_status,
                "headers": headers,
            }
        )
        await send(
            {
                "type": "websocket.http.response.body",
                "body": decision.reason.encode("ascii"),
            }
        )
        return
    await send({"type": "websocket.close", "code": 1008})
