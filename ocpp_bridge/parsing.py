"""Tolerant reading of OCPP-J frames and of the fields chargers get wrong.

The policy (docs/ocpp.md, ../shared/cases/README.md): a charger resends
transaction messages until they are acknowledged, so a CallError over a
cosmetic deviation loses data. A frame whose meaning can be read is accepted
and flagged with the deviation; a CallError is for a frame that cannot be read.
"""

import decimal
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import jsonschema_rs
from ocpp.exceptions import (
    PropertyConstraintViolationError,
    ProtocolError,
    TypeConstraintViolationError,
)
from ocpp.messages import get_validator

OCPP_VERSION = "1.6"

# OCPP-J 1.6 §4.2.3 spells these codes differently from the 2.0.1 names the
# ocpp package raises from its parser and validator; 1.6 chargers get theirs.
ERROR_CODE_SPELLING_16 = {
    "FormatViolation": "FormationViolation",
    "OccurrenceConstraintViolation": "OccurenceConstraintViolation",
}

# A charger without a real-time clock or NTP boots at 1970 or 2000; anything
# before this date is an unset clock, not an event.
CLOCK_UNSET_BEFORE = datetime(2010, 1, 1, tzinfo=UTC)
# Clocks a day ahead of ours are wrong, but the value is kept as sent.
CLOCK_AHEAD_TOLERANCE = timedelta(days=1)
# The message id placed in a CallError answering a frame whose id is unreadable
# (the value OCPP 2.0.1 §4.2.3 prescribes; 1.6 names none).
UNKNOWN_MESSAGE_ID = "-1"
# OCPP 1.6 integers are 32-bit signed; larger ones overflow our columns.
OCPP_INT_MAX = 2**31 - 1


def _no_constant(name: str) -> None:
    # RFC 8259 has no NaN or Infinity (Python's json reads them; jsonb does not).
    raise ValueError(f"{name} is not JSON")


def _unstorable(value: Any) -> bool:
    """Whether a decoded JSON value holds a NUL or an unpaired surrogate.

    PostgreSQL text and jsonb cannot hold U+0000 and UTF-8 cannot encode a lone
    surrogate, so such a frame could not be stored or echoed.
    """
    if isinstance(value, str):
        if "\x00" in value:
            return True
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return True
        return False
    if isinstance(value, list):
        return any(_unstorable(item) for item in value)
    if isinstance(value, dict):
        return any(_unstorable(k) or _unstorable(v) for k, v in value.items())
    return False


@dataclass
class ParsedFrame:
    """An OCPP-J frame as read, or the CallError that answers it."""

    message_type: int | None = None
    message_id: Any = None
    action: str = ""
    payload: Any = None
    error_code: str = ""
    error_description: str = ""
    error_code_received: str = ""
    flags: list[str] = field(default_factory=list)

    @property
    def message_id_text(self) -> str:
        return "" if self.message_id is None else str(self.message_id)[:64]

    @property
    def readable_message_id(self) -> Any:
        return UNKNOWN_MESSAGE_ID if self.message_id is None else self.message_id


def frame_parse(text: str) -> ParsedFrame:
    """Read a frame. ``error_code`` is set when it cannot be read as OCPP-J."""
    try:
        message = json.loads(text, parse_constant=_no_constant)
    except (ValueError, TypeError, RecursionError):
        return ParsedFrame(
            error_code="FormationViolation",
            error_description="Frame is not valid JSON.",
            flags=["not_json"],
        )
    if not isinstance(message, list) or not message:
        return ParsedFrame(
            error_code="FormationViolation",
            error_description="An OCPP-J frame is a JSON array.",
            flags=["not_an_array"],
        )

    message_type = message[0]
    message_id = message[1] if len(message) > 1 else None
    flags: list[str] = []
    # A decoded JSON string holds a NUL or a lone surrogate only if the text
    # spelled it as a \u escape (JSON forbids raw control characters) or
    # holds the surrogate itself (not ASCII): most frames, plain ASCII without
    # escapes, skip the walk over every value.
    if ("\\u" in text or not text.isascii()) and _unstorable(message):
        return ParsedFrame(
            message_type=message_type if message_type in (2, 3, 4) else None,
            message_id=message_id
            if isinstance(message_id, str) and not _unstorable(message_id)
            else None,
            error_code="FormationViolation",
            error_description="The frame holds a NUL character or an unpaired"
            " surrogate.",
            flags=["unstorable_characters"],
        )
    if isinstance(message_id, int | float) and not isinstance(message_id, bool):
        # Some stacks send numeric ids; echo them back as they came.
        flags.append("message_id_not_string")
    elif not isinstance(message_id, str):
        message_id = None

    if message_type not in (2, 3, 4) or isinstance(message_type, bool):
        return ParsedFrame(
            message_id=message_id,
            error_code="ProtocolError",
            error_description="MessageTypeId must be 2, 3 or 4.",
            flags=["bad_message_type"],
        )
    if message_id is None:
        return ParsedFrame(
            message_type=message_type,
            error_code="ProtocolError",
            error_description="The frame has no message id.",
            flags=["no_message_id"],
        )

    if message_type == 2:
        if len(message) != 4 or not isinstance(message[2], str):
            return ParsedFrame(
                message_type=2,
                message_id=message_id,
                error_code="FormationViolation",
                error_description="A CALL is [2, id, action, payload].",
                flags=["bad_call_shape"],
            )
        if not isinstance(message[3], dict):
            return ParsedFrame(
                message_type=2,
                message_id=message_id,
                action=message[2],
                error_code="FormationViolation",
                error_description="The payload of a CALL is a JSON object.",
                flags=["payload_not_object"],
            )
        return ParsedFrame(
            message_type=2,
            message_id=message_id,
            action=message[2],
            payload=message[3],
            flags=flags,
        )

    if message_type == 3:
        payload = message[2] if len(message) > 2 else None
        if len(message) != 3 or not isinstance(payload, dict):
            flags.append("bad_call_result_shape")
        return ParsedFrame(
            message_type=3, message_id=message_id, payload=payload, flags=flags
        )

    # CallError: [4, id, code, description, details]; a 4-element form without
    # details is seen in the field (FC-28) and read the same way.
    code = message[2] if len(message) > 2 and isinstance(message[2], str) else ""
    if len(message) not in (4, 5):
        flags.append("bad_call_error_shape")
    return ParsedFrame(
        message_type=4,
        message_id=message_id,
        payload=message[4] if len(message) > 4 else None,
        error_code_received=code,
        error_description=str(message[3]) if len(message) > 3 else "",
        flags=flags,
    )


# Schemas with decimal 'multipleOf' limits: the package reads these (schema and
# payload alike) with Decimal so that 21.4 is not 21.399999999999995.
_DECIMAL_SCHEMAS = frozenset(
    {
        (2, "SetChargingProfile"),
        (2, "RemoteStartTransaction"),
        (3, "GetCompositeSchedule"),
    }
)
_INDEX = re.compile(r"\.\d+(?=\.|$)")


def schema_deviations(action: str, payload: Any, message_type: int = 2) -> list[str]:
    """Names of the ways ``payload`` departs from the OCPP 1.6 JSON schema.

    The package's own schemas and validator are used, without format checks:
    the schemas say ``date-time`` (RFC 3339) but OCPP 1.6 §3.15 allows any ISO
    8601 time, which chargers use (FC-01, FC-02). Most frames have nothing to
    name, which a compiled validator tells first (_schema_satisfied).
    """
    if _schema_satisfied(action, payload, message_type):
        return []
    parse_float = float
    if (message_type, action) in _DECIMAL_SCHEMAS:
        parse_float = decimal.Decimal
        payload = json.loads(json.dumps(payload), parse_float=decimal.Decimal)
    try:
        validator = get_validator(
            message_type, action, OCPP_VERSION, parse_float=parse_float
        )
    except (OSError, ValueError):
        return []
    found = set()
    for error in validator.iter_errors(payload):
        path = ".".join(str(p) for p in error.absolute_path)
        path = _INDEX.sub(".*", "." + path)[1:] if path else "-"
        found.add(f"schema:{error.validator}:{path}")
    return sorted(found)


# jsonschema-rs checks a MeterValues payload against its schema in about a
# microsecond; the package's Python validator takes 0.1 to 0.2 ms, 14% of the
# bridge's CPU at 500 frames a second (py-spy). The fast one only says "valid"
# (no deviations to name, the usual answer); anything else goes to the
# package's validator, which names the deviations as before. Both agreed on
# all of 20,000 mutated payloads of the field cases (docs/ocpp-testing.md).
# Schemas read with Decimal (_DECIMAL_SCHEMAS) always take the slow path.
_compiled: dict[tuple[int, str], Any] = {}


def _schema_satisfied(action: str, payload: Any, message_type: int) -> bool:
    key = (message_type, action)
    if key in _DECIMAL_SCHEMAS:
        return False
    if key not in _compiled:
        try:
            schema = get_validator(message_type, action, OCPP_VERSION).schema
            _compiled[key] = jsonschema_rs.Draft4Validator(
                schema, validate_formats=False
            )
        except (OSError, ValueError):
            _compiled[key] = None
    validator = _compiled[key]
    if validator is None:
        return False
    try:
        return validator.is_valid(payload)
    except (ValueError, TypeError, OverflowError):
        return False


# --- Fields -------------------------------------------------------------------


def need(payload: dict, key: str) -> Any:
    if key not in payload or payload[key] is None:
        raise ProtocolError(description=f"{key} is required.")
    return payload[key]


def as_int(value: Any, key: str, *, minimum: int | None = None) -> int:
    """An integer sent as a number, or as a string of digits (flagged by schema)."""
    number: int | None = None
    if isinstance(value, bool):
        number = None
    elif isinstance(value, int):
        number = value
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    elif isinstance(value, str):
        try:
            number = int(float(value.strip()))
        except ValueError:
            number = None
        except OverflowError:  # "1e309" reads as infinity
            number = OCPP_INT_MAX + 1
    if number is None:
        raise TypeConstraintViolationError(description=f"{key} must be an integer.")
    if minimum is not None and number < minimum:
        raise PropertyConstraintViolationError(
            description=f"{key} must be at least {minimum}."
        )
    if abs(number) > OCPP_INT_MAX:
        raise PropertyConstraintViolationError(
            description=f"{key} must be at most {OCPP_INT_MAX}."
        )
    return number


def as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value) if isinstance(value, dict | list) else str(value)


@dataclass(frozen=True)
class ChargerTime:
    value: datetime
    raw: str
    zone_assumed: bool = False
    flags: tuple[str, ...] = ()


def charger_time(raw: Any, *, tz: ZoneInfo, now: datetime) -> ChargerTime:
    """A charger's timestamp as aware UTC, with what had to be assumed.

    No zone: the site's zone is assumed (FC-01). Short offsets such as ``+02``
    are ISO 8601 and read as hours (FC-02). An unset clock (1970) or an
    unreadable value stores the time the portal received the frame.
    """
    if raw is None or raw == "":
        return ChargerTime(value=now, raw="", flags=("timestamp_missing",))
    text = raw if isinstance(raw, str) else str(raw)
    try:
        parsed = datetime.fromisoformat(text.strip())
    except ValueError:
        return ChargerTime(value=now, raw=text, flags=("timestamp_unreadable",))

    zone_assumed = parsed.tzinfo is None
    if zone_assumed:
        parsed = parsed.replace(tzinfo=tz)
    try:
        value = parsed.astimezone(UTC)
    except OverflowError:  # year 1 or 9999 pushed past the calendar by its offset
        return ChargerTime(value=now, raw=text, flags=("timestamp_unreadable",))
    flags = ["timestamp_zone_assumed"] if zone_assumed else []
    if value < CLOCK_UNSET_BEFORE:
        return ChargerTime(
            value=now,
            raw=text,
            zone_assumed=zone_assumed,
            flags=(*flags, "clock_unset"),
        )
    if value > now + CLOCK_AHEAD_TOLERANCE:
        flags.append("clock_ahead")
    return ChargerTime(
        value=value, raw=text, zone_assumed=zone_assumed, flags=tuple(flags)
    )


def utc_z(moment: datetime) -> str:
    """UTC time as OCPP wants it sent: milliseconds and a ``Z`` (not +00:00)."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def meter_samples_read(
    meter_values: Any, *, tz: ZoneInfo, now: datetime
) -> tuple[list[dict], list[str]]:
    """Sampled values as plain dicts for the services, plus frame-level flags.

    Numbers sent where strings belong are kept as decimal strings (FC-15);
    missing context/measurand/location get the 1.6 defaults; entries with no
    sampled values are skipped (FC-16: nothing to store, nothing to lose).
    """
    samples: list[dict] = []
    flags: list[str] = []
    if meter_values is None:
        return samples, flags
    if not isinstance(meter_values, list):
        raise TypeConstraintViolationError(description="meterValue must be an array.")
    for entry in meter_values:
        if not isinstance(entry, dict):
            flags.append("meter_value_not_object")
            continue
        stamp = charger_time(entry.get("timestamp"), tz=tz, now=now)
        sampled = entry.get("sampledValue") or []
        if not isinstance(sampled, list) or not sampled:
            flags.append("sampled_value_empty")
            continue
        for item in sampled:
            if not isinstance(item, dict) or "value" not in item:
                flags.append("sampled_value_unreadable")
                continue
            sample_flags = list(stamp.flags)
            value = item["value"]
            if not isinstance(value, str):
                sample_flags.append("value_not_string")
                value = as_text(value)
            if item.get("format") == "SignedData":
                sample_flags.append("signed_data")
            samples.append(
                {
                    "timestamp": stamp.value,
                    "raw_timestamp": stamp.raw,
                    "measurand": as_text(item.get("measurand"))
                    or "Energy.Active.Import.Register",
                    "phase": as_text(item.get("phase")),
                    "location": as_text(item.get("location")) or "Outlet",
                    "context": as_text(item.get("context")) or "Sample.Periodic",
                    "format": as_text(item.get("format")) or "Raw",
                    "unit": as_text(item.get("unit")),
                    "raw_value": value,
                    "flags": sample_flags,
                }
            )
    return samples, flags
