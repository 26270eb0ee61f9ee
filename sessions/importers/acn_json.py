"""ACN-Data API JSON: ``{"_meta": {...}, "_items": [session, ...]}`` (or a bare list).

Times are RFC 1123 strings in GMT. A session's driver inputs are its
``userInputs``; the last entry is the latest the driver gave, so that one is
stored. ``userID`` (null when nobody claimed the session) becomes an IdToken and
a Vehicle. This is the original record of the network, so where the flattened
CSV copy holds the same session, the JSON's values win.

Items are decoded one by one so a bad item can be reported with its line.
"""

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from django.utils.text import slugify

from sessions.importers import acn
from sessions.importers.base import (
    FileUnreadable,
    ParsedFile,
    RowError,
    RowRejected,
    SessionRecord,
    SiteSpec,
    kwh_to_wh,
    stop_check,
    text_read,
)

FORMAT = "acn-json"
RANK = 2
_DECODER = json.JSONDecoder(parse_float=Decimal)


def sniff(head: str) -> bool:
    text = head.lstrip()
    return text[:1] in ("{", "[") and ("sessionID" in text or '"_meta"' in text)


def parse(path: Path, *, label: str, time_zone: ZoneInfo | None = None) -> ParsedFile:
    """Records of one file. ``time_zone`` is not used: times are in GMT."""
    meta, items = _document_read(text_read(path))
    default_site = _meta_site(meta)
    return ParsedFile(
        len(items), _records(items, label=label, default_site=default_site)
    )


def _records(
    items: list[tuple[int, Any]], *, label: str, default_site: SiteSpec | None
) -> Iterator[SessionRecord | RowError]:
    for line, item in items:
        try:
            yield _record(item, line=line, default_site=default_site)
        except RowRejected as exc:
            yield RowError(label, line, str(exc))


def _record(item: Any, *, line: int, default_site: SiteSpec | None) -> SessionRecord:
    if not isinstance(item, dict):
        raise RowRejected("the item is not a JSON object")
    session_id = _text(item, "sessionID")
    space_id = _text(item, "spaceID")
    site_id = item.get("siteID")
    if site_id not in (None, ""):
        site = acn.site_for_id(
            str(site_id),
            fallback_code=default_site.code if default_site else "",
            time_zone=str(item.get("timezone") or ""),
        )
    elif default_site is not None:
        site = default_site
    else:
        raise RowRejected("cannot tell the site: no siteID and no _meta.site")

    started_at = _time(item.get("connectionTime"), name="connectionTime")
    stopped_at = None
    if item.get("disconnectTime") is not None:
        stopped_at = _time(item["disconnectTime"], name="disconnectTime")
    stop_check(started_at, stopped_at)
    done_charging_at = None
    flags = []
    if item.get("doneChargingTime") is not None:
        done_charging_at = _time(item["doneChargingTime"], name="doneChargingTime")
        if done_charging_at < started_at or (
            stopped_at and done_charging_at > stopped_at
        ):
            # Seen in the Caltech export: about 1 in 60 sessions.
            flags.append("done_charging_outside_session")
    if item.get("kWhDelivered") is None:
        raise RowRejected("kWhDelivered is missing")
    energy_wh = kwh_to_wh(item["kWhDelivered"], name="kWhDelivered")

    user = None
    if item.get("userID") not in (None, ""):
        user = acn.user_spec(str(item["userID"]).strip())
    requested_energy_wh = requested_departure_at = None
    inputs = item.get("userInputs")
    if isinstance(inputs, list) and inputs and isinstance(inputs[-1], dict):
        latest = inputs[-1]
        if latest.get("kWhRequested") is not None:
            requested_energy_wh = kwh_to_wh(latest["kWhRequested"], name="kWhRequested")
        if latest.get("requestedDeparture") is not None:
            requested_departure_at = _time(
                latest["requestedDeparture"], name="requestedDeparture"
            )

    return SessionRecord(
        external_id=acn.external_id(session_id),
        site=site,
        charge_point_identity=acn.charge_point_identity(site, space_id),
        started_at=started_at,
        stopped_at=stopped_at,
        energy_wh=energy_wh,
        line=line,
        raw_start_timestamp=str(item["connectionTime"]),
        raw_stop_timestamp=str(item.get("disconnectTime") or ""),
        user=user,
        done_charging_at=done_charging_at,
        requested_energy_wh=requested_energy_wh,
        requested_departure_at=requested_departure_at,
        flags=flags,
    )


def _text(item: dict, name: str) -> str:
    value = item.get(name)
    if value is None or not str(value).strip():
        raise RowRejected(f"{name} is missing")
    return str(value).strip()


def _time(value: Any, *, name: str) -> datetime:
    if not isinstance(value, str):
        raise RowRejected(f"{name} is missing")
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        raise RowRejected(f"{name} is not an RFC 1123 time: {value!r}") from None
    if parsed.tzinfo is None:
        raise RowRejected(f"{name} has no time zone: {value!r}")
    return parsed.astimezone(UTC)


def _meta_site(meta: dict) -> SiteSpec | None:
    code = slugify(str(meta.get("site") or ""))
    if not code:
        return None
    return acn.SITES_BY_CODE.get(code) or SiteSpec(
        code=code, name=f"ACN {code}", time_zone=acn.ACN_TIME_ZONE
    )


# --- reading the document item by item -----------------------------------------


def _document_read(text: str) -> tuple[dict, list[tuple[int, Any]]]:
    """``_meta`` and the items of the document, each item with its first line."""
    scanner = _Scanner(text)
    try:
        opening = scanner.peek()
        if opening == "[":
            return {}, scanner.array_items()
        if opening != "{":
            raise FileUnreadable("not an ACN-Data JSON document (no object or list)")
        meta: dict = {}
        items: list[tuple[int, Any]] | None = None
        scanner.expect("{")
        while scanner.peek() != "}":
            key = scanner.value()
            scanner.expect(":")
            if key == "_items":
                items = scanner.array_items()
            else:
                value = scanner.value()
                if key == "_meta" and isinstance(value, dict):
                    meta = value
            if scanner.peek() == ",":
                scanner.expect(",")
        if items is None:
            raise FileUnreadable("no _items list in the document")
        return meta, items
    except json.JSONDecodeError as exc:
        raise FileUnreadable(
            f"not valid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from exc


class _Scanner:
    """Walks the top of a JSON text; values are decoded by the json module."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.line = 1
        self._counted_to = 0

    def _skip(self) -> None:
        text, pos = self.text, self.pos
        while pos < len(text) and text[pos] in " \t\r\n":
            pos += 1
        self.pos = pos

    def _line_at(self, pos: int) -> int:
        self.line += self.text.count("\n", self._counted_to, pos)
        self._counted_to = pos
        return self.line

    def peek(self) -> str:
        self._skip()
        if self.pos >= len(self.text):
            raise json.JSONDecodeError(
                "unexpected end of the document", self.text, self.pos
            )
        return self.text[self.pos]

    def expect(self, char: str) -> None:
        if self.peek() != char:
            raise json.JSONDecodeError(f"expected {char!r}", self.text, self.pos)
        self.pos += 1

    def value(self) -> Any:
        self._skip()
        value, self.pos = _DECODER.raw_decode(self.text, self.pos)
        return value

    def array_items(self) -> list[tuple[int, Any]]:
        items = []
        self.expect("[")
        while self.peek() != "]":
            line = self._line_at(self.pos)
            items.append((line, self.value()))
            if self.peek() == ",":
                self.expect(",")
            elif self.peek() != "]":
                raise json.JSONDecodeError("expected ',' or ']'", self.text, self.pos)
        self.expect("]")
        return items
