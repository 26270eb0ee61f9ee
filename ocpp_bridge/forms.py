"""Turning a station-page form into an OCPP command payload."""

import json
from datetime import datetime
from zoneinfo import ZoneInfo

from django.http import QueryDict

from ocpp_bridge.commands import ActionSpec
from ocpp_bridge.parsing import utc_z


def command_payload_from_form(
    spec: ActionSpec, data: QueryDict, *, time_zone: str
) -> tuple[dict, dict[str, str]]:
    """Returns (payload, errors by field). Times are read in the site's zone."""
    payload: dict = {}
    errors: dict[str, str] = {}
    if data.get("payload", "").strip():
        try:
            payload = json.loads(data["payload"])
        except ValueError:
            return {}, {"payload": "Not valid JSON."}
        if not isinstance(payload, dict):
            return {}, {"payload": "A JSON object is expected."}
        return payload, errors

    for field in spec.fields:
        raw = data.get(field.name, "").strip() or field.default
        if not raw:
            if field.required:
                errors[field.name] = "Required."
            continue
        try:
            payload[field.name] = _read(field.kind, raw, field.choices, time_zone)
        except ValueError as exc:
            errors[field.name] = str(exc)
    return payload, errors


def _read(kind: str, raw: str, choices: tuple[str, ...], time_zone: str):
    if kind == "int":
        try:
            return int(raw)
        except ValueError:
            raise ValueError("A whole number is expected.") from None
    if kind == "json":
        try:
            return json.loads(raw)
        except ValueError:
            raise ValueError("Not valid JSON.") from None
    if kind == "choice":
        if raw not in choices:
            raise ValueError(f"One of {', '.join(choices)}.")
        return raw
    if kind == "datetime":
        try:
            moment = datetime.fromisoformat(raw)
        except ValueError:
            raise ValueError("A date and time is expected.") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=ZoneInfo(time_zone))
        return utc_z(moment)
    return raw
