"""Human-readable rendering of decoded GVariant values, and a JSON-safe form of them.

``format_value`` writes something close to GLib's text format (``g_variant_print``),
for people; ``to_json`` turns a value into plain JSON types (bytes become hex strings,
variants ``{"signature", "value"}``), for scripts.
"""

from __future__ import annotations

import math
from typing import Any

from ostree_repo.gvariant.signature import parse_type
from ostree_repo.gvariant.values import Just, Variant

__all__ = ["format_value", "to_json"]


def to_json(value: Any) -> Any:
    """A JSON-serialisable form of a decoded value (bytes -> hex, Variant -> dict)."""
    if isinstance(value, Variant):
        return {"signature": value.signature, "value": to_json(value.value)}
    if isinstance(value, Just):
        return {"just": to_json(value.value)}
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, dict):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_json(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    return value


def _quote(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n")
    return f"'{escaped}'"


def format_value(signature: str, value: Any) -> str:
    """Render ``value`` of type ``signature`` in GVariant text style, e.g. ``{'k': <1>}``."""
    t = parse_type(signature)
    code = t.code
    if code == "b":
        return "true" if value else "false"
    if code in "sog":
        return _quote(value)
    if code == "v":
        return f"<{format_value(value.signature, value.value)}>"
    if code == "m":
        if value is None:
            return "nothing"
        inner = value.value if isinstance(value, Just) else value
        return f"just {format_value(t.element.string, inner)}"
    if code == "a":
        element = t.element
        if element.code == "y":
            raw = bytes(value)
            return "b" + _quote(raw.decode("ascii")) if raw.isascii() else "0x" + raw.hex()
        if element.code == "{":
            k, v = (c.string for c in element.children)
            items = (
                f"{format_value(k, key)}: {format_value(v, val)}" for key, val in value.items()
            )
            return "{" + ", ".join(items) + "}"
        return "[" + ", ".join(format_value(element.string, v) for v in value) + "]"
    if code in "({":
        parts = [format_value(c.string, v) for c, v in zip(t.children, value, strict=True)]
        if code == "{":
            return "{" + ": ".join(parts) + "}"
        return "(" + ", ".join(parts) + ("," if len(parts) == 1 else "") + ")"
    return repr(value)
