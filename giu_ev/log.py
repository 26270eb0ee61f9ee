"""Logging: the ids a record concerns, secrets masked, JSON or readable lines.

Settings pick the format with ``LOG_FORMAT`` (``json`` in production, ``text``
for a developer's terminal); both go through the two filters below.

Ids travel two ways. A call passes them in ``extra`` (``charge_point``,
``session``, ``model_version``), or code that works for one charger or one
model for a while binds them once with :func:`log_context` (a context
manager) or :func:`log_context_bind` (for a Channels consumer: bind in
``connect``; the consumer runs in its own asyncio task, so the ids stay with
that charger's socket and are copied into threads by ``sync_to_async``).
"""

from __future__ import annotations

import contextvars
import datetime as dt
import logging
import re
import traceback
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from pythonjsonlogger.json import JsonFormatter

LOG_IDS = ("charge_point", "session", "model_version")

_context: contextvars.ContextVar[Mapping[str, Any] | None] = contextvars.ContextVar(
    "giu_log_context", default=None
)


def log_context_bind(**ids: Any) -> contextvars.Token:
    """Bind ids (charge_point=..., session=..., model_version=...) from now on.

    Returns the token for ``log_context_reset``; a consumer may keep the ids
    for its whole life instead, as its task ends with the socket.
    """
    unknown = set(ids) - set(LOG_IDS)
    if unknown:
        raise ValueError(f"not a log id: {sorted(unknown)}")
    given = {key: value for key, value in ids.items() if value is not None}
    return _context.set({**(_context.get() or {}), **given})


def log_context_reset(token: contextvars.Token) -> None:
    _context.reset(token)


@contextmanager
def log_context(**ids: Any) -> Iterator[None]:
    """Ids for every record logged inside the ``with`` block."""
    token = log_context_bind(**ids)
    try:
        yield
    finally:
        log_context_reset(token)


class ContextIdsFilter(logging.Filter):
    """Copy bound ids onto the record; ids passed in ``extra`` win."""

    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in (_context.get() or {}).items():
            if getattr(record, key, None) is None:
                setattr(record, key, value)
        return True


# --- Secrets ---------------------------------------------------------------------

MASK = "***"

# Names of values that must never reach a log line, compared in lower case
# with '-' read as '_'. Defence in depth: code should not log them at all.
SECRET_NAMES = frozenset(
    {
        "authorization",
        "proxy_authorization",
        "http_authorization",
        "password",
        "passwd",
        "password_hash",
        "secret",
        "secret_key",
        "token",
        "access_token",
        "refresh_token",
        "api_key",
        "apikey",
        "x_api_key",
        "http_x_api_key",
        "cookie",
        "http_cookie",
        "set_cookie",
        "sessionid",
        "csrftoken",
        "auth_key",
        "authorizationkey",
    }
)

_KEY_ALTERNATION = "|".join(
    sorted(
        {
            r"(?:proxy[_-]|http_)?authorization",
            r"passw(?:or)?d",
            r"secret(?:[_-]key)?",
            r"(?:access[_-]|refresh[_-])?token",
            r"(?:x[_-])?api[_-]?key",
            r"authorizationkey",
            r"auth[_-]key",
            r"sessionid",
            r"csrftoken",
            r"cookie",
        }
    )
)
# key=value, key: value, "key": "value", 'key': 'value' (dict reprs, headers,
# query strings). An Authorization value keeps its scheme word and loses the rest.
_KEY_VALUE = re.compile(
    rf"""(?P<key>["']?\b(?:{_KEY_ALTERNATION})\b["']?\s*[:=]\s*)"""
    r"""(?P<scheme>(?:Basic|Bearer|Token|Api-Key)\s+)?"""
    r"""(?P<value>"[^"]*"|'[^']*'|[^\s,;&}\]]+)""",
    re.IGNORECASE,
)
# Credentials inside a URL: scheme://user:password@host
_URL_PASSWORD = re.compile(r"(?P<head>\b[a-z][a-z0-9+.-]*://[^/\s:@]*:)[^/\s@]+@", re.I)


def mask_text(text: str) -> str:
    """The text with secret values replaced by ``***``."""

    def _key_value(match: re.Match) -> str:
        value = match.group("value")
        quote = value[0] if value[:1] in {'"', "'"} else ""
        return f"{match.group('key')}{match.group('scheme') or ''}{quote}{MASK}{quote}"

    text = _KEY_VALUE.sub(_key_value, text)
    return _URL_PASSWORD.sub(lambda m: f"{m.group('head')}{MASK}@", text)


def _is_secret_name(name: str) -> bool:
    return name.lower().replace("-", "_") in SECRET_NAMES


def mask_value(value: Any) -> Any:
    """Mask secrets in a value given in ``extra``: strings, mappings, lists."""
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, Mapping):
        return {
            k: MASK if _is_secret_name(str(k)) else mask_value(v)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return type(value)(mask_value(v) for v in value)
    return value


_RECORD_ATTRS = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


class SecretMaskFilter(logging.Filter):
    """Mask secrets in the message, its arguments, extras and tracebacks."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        record.msg = mask_text(message)
        record.args = None

        for key, value in list(vars(record).items()):
            if key in _RECORD_ATTRS:
                continue
            setattr(record, key, MASK if _is_secret_name(key) else mask_value(value))

        if record.exc_info:
            text = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
            record.exc_text = mask_text(text)
            record.exc_info = None
        elif record.exc_text:
            record.exc_text = mask_text(record.exc_text)
        if record.stack_info:
            record.stack_info = mask_text(record.stack_info)
        return True


# --- Formats ---------------------------------------------------------------------


class TextFormatter(logging.Formatter):
    """Readable lines, the record's ids appended: ``... [charge_point=CP-1]``."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        ids = [
            f"{key}={getattr(record, key)}"
            for key in LOG_IDS
            if getattr(record, key, None) is not None
        ]
        if not ids:
            return line
        head, newline, rest = line.partition("\n")
        return f"{head} [{' '.join(ids)}]{newline}{rest}"


def _json_default(value: Any) -> Any:
    """Dates as ISO 8601; any other object (a request, a model) as masked text."""
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    return mask_text(str(value))


class JsonLinesFormatter(JsonFormatter):
    """One JSON object a line: time (UTC, ISO 8601), level, logger, message, extras."""

    def __init__(self) -> None:
        super().__init__(
            ["levelname", "name", "message"],
            rename_fields={"levelname": "level", "name": "logger"},
            timestamp="time",
            json_default=_json_default,
        )
