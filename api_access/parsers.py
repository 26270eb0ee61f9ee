"""The API's JSON parser: refuses what PostgreSQL and JSON cannot hold."""

import json
import math
from typing import Any

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser


def _finite_float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):  # 1e309 reads as infinity
        raise ValueError(f"number {text} is out of range")
    return number


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, list):
        return any(_has_nul(item) for item in value)
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    return False


class StrictJSONParser(JSONParser):
    """DRF's JSON parser plus: numbers beyond float range and NUL characters
    are a 400 (PostgreSQL's jsonb and text refuse them, so a command payload or
    a lookup with one would otherwise fail as a server error)."""

    def parse(self, stream, media_type=None, parser_context=None) -> Any:
        parser_context = parser_context or {}
        encoding = parser_context.get("encoding", "utf-8")
        try:
            text = stream.read().decode(encoding)
            data = json.loads(
                text,
                parse_float=_finite_float,
                parse_constant=lambda name: _finite_float(name),
            )
        except (ValueError, RecursionError) as exc:
            raise ParseError(f"JSON parse error - {exc}") from exc
        if _has_nul(data):
            raise ParseError("JSON parse error - NUL characters are not allowed.")
        return data
