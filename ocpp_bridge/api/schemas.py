"""OCPP 1.6 JSON schemas of the remote commands, as OpenAPI request and answer
bodies. They come from the ``ocpp`` package, the same schemas the bridge
validates frames against, so the API docs cannot drift from the protocol."""

import json
from functools import cache
from importlib import resources

_DROPPED_KEYS = {"$schema", "id", "title", "definitions"}


def _inline(node, definitions: dict):
    """Copy a draft-04 schema for OpenAPI 3.0: local $refs inlined, meta keys gone."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/definitions/"):
            return _inline(definitions[ref.rsplit("/", 1)[1]], definitions)
        return {
            key: _inline(value, definitions)
            for key, value in node.items()
            if key not in _DROPPED_KEYS
        }
    if isinstance(node, list):
        return [_inline(item, definitions) for item in node]
    return node


@cache
def ocpp16_schema(name: str) -> dict:
    """The JSON schema of an OCPP 1.6 message, e.g. ``Reset`` or ``ResetResponse``.

    A name the package has no schema for gives a free-form object.
    """
    path = resources.files("ocpp.v16").joinpath("schemas", f"{name}.json")
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        return {"type": "object", "additionalProperties": True}
    return _inline(raw, raw.get("definitions", {}))
