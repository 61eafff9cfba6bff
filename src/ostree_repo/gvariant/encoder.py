"""GVariant encoding in normal form, compiled once per type string.

Each type compiles to a closure ``encode(value, out, depth)`` that appends the value's
serialisation to the bytearray ``out``. Containers align their children relative to
their own start and choose the narrowest framing offsets, so the output is GLib's
normal form byte for byte. Values of the wrong Python type, out of range, or otherwise
not representable raise :class:`~ostree_repo.errors.GVariantError`.
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Callable, Mapping
from typing import Any

from ostree_repo.errors import GVariantError
from ostree_repo.gvariant._framing import pack_offsets, writer_width
from ostree_repo.gvariant.signature import (
    MAX_DEPTH,
    GType,
    is_object_path,
    is_signature,
    parse_type,
)
from ostree_repo.gvariant.values import Just, Variant

__all__ = ["dumps", "encoder_for"]

Encoder = Callable[[Any, bytearray, int], None]

_INT_RANGES = {
    "y": (0, 0xFF),
    "n": (-0x8000, 0x7FFF),
    "q": (0, 0xFFFF),
    "i": (-0x80000000, 0x7FFFFFFF),
    "u": (0, 0xFFFFFFFF),
    "h": (-0x80000000, 0x7FFFFFFF),
    "x": (-0x8000000000000000, 0x7FFFFFFFFFFFFFFF),
    "t": (0, 0xFFFFFFFFFFFFFFFF),
}
_STRUCT_CODES = {"y": "B", "n": "h", "q": "H", "i": "i", "u": "I", "h": "i", "x": "q", "t": "Q"}


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _bad(t: GType, value: Any, why: str = "") -> GVariantError:
    kind = type(value).__name__
    return GVariantError(f"cannot encode {kind} {_short(value)} as {t.string!r}{why}")


def dumps(signature: str, value: Any) -> bytes:
    """Encode ``value`` as GVariant type ``signature`` in normal form."""
    out = bytearray()
    encoder_for(signature)(value, out, 0)
    return bytes(out)


@functools.lru_cache(maxsize=4096)
def encoder_for(signature: str) -> Encoder:
    """The compiled encoder for ``signature`` (cached)."""
    return _compile(parse_type(signature))


def _compile(t: GType) -> Encoder:
    code = t.code
    if code in _INT_RANGES:
        return _integer(t)
    if code == "b":
        return _boolean(t)
    if code == "d":
        return _double(t)
    if code in "sog":
        return _string(t)
    if code == "v":
        return _variant(t)
    if code == "m":
        return _maybe(t)
    if code == "a":
        return _array(t)
    return _tuple(t)


def _integer(t: GType) -> Encoder:
    low, high = _INT_RANGES[t.code]
    pack = struct.Struct("<" + _STRUCT_CODES[t.code]).pack

    def encode(value: Any, out: bytearray, depth: int) -> None:
        if not isinstance(value, int):
            raise _bad(t, value)
        if not low <= value <= high:
            raise _bad(t, value, " (out of range)")
        out += pack(value)

    return encode


def _boolean(t: GType) -> Encoder:
    def encode(value: Any, out: bytearray, depth: int) -> None:
        if value is True:
            out.append(1)
        elif value is False:
            out.append(0)
        else:
            raise _bad(t, value)

    return encode


def _double(t: GType) -> Encoder:
    pack = struct.Struct("<d").pack

    def encode(value: Any, out: bytearray, depth: int) -> None:
        if not isinstance(value, float | int) or isinstance(value, bool):
            raise _bad(t, value)
        try:
            out += pack(float(value))
        except OverflowError:
            raise _bad(t, value, " (out of range)") from None

    return encode


def _string(t: GType) -> Encoder:
    check = {"s": None, "o": is_object_path, "g": is_signature}[t.code]

    def encode(value: Any, out: bytearray, depth: int) -> None:
        if not isinstance(value, str) or "\0" in value:
            raise _bad(t, value)
        if check is not None and not check(value):
            raise _bad(t, value, " (invalid syntax)")
        try:
            out += value.encode("utf-8")
        except UnicodeEncodeError:
            raise _bad(t, value, " (not valid UTF-8)") from None
        out.append(0)

    return encode


def _variant(t: GType) -> Encoder:
    def encode(value: Any, out: bytearray, depth: int) -> None:
        if not isinstance(value, Variant):
            raise _bad(t, value, " (expected a Variant)")
        child_type = parse_type(value.signature)
        if depth + child_type.depth >= MAX_DEPTH:
            raise _bad(t, value, f" (nesting deeper than {MAX_DEPTH})")
        encoder_for(value.signature)(value.value, out, depth + 1)
        out.append(0)
        out += value.signature.encode("ascii")

    return encode


def _maybe(t: GType) -> Encoder:
    element = t.element
    child = _compile(element)
    unwrap = element.code == "m"
    variable = not element.fixed

    def encode(value: Any, out: bytearray, depth: int) -> None:
        if value is None:
            return
        if unwrap:
            if not isinstance(value, Just):
                raise _bad(t, value, " (a maybe of a maybe takes Just(...) or None)")
            value = value.value
        child(value, out, depth + 1)
        if variable:
            out.append(0)

    return encode


def _array(t: GType) -> Encoder:
    element = t.element
    if element.code == "y":
        return _bytestring(t)
    is_dict = element.code == "{"
    child = _compile(element)
    fixed = element.fixed
    mask = element.align - 1
    numeric = element.code in _STRUCT_CODES and element.code != "y"

    def items(value: Any) -> Any:
        if is_dict:
            if not isinstance(value, Mapping):
                raise _bad(t, value, " (expected a mapping)")
            return value.items()
        if not isinstance(value, list | tuple):
            raise _bad(t, value, " (expected a list)")
        return value

    if numeric:
        low, high = _INT_RANGES[element.code]
        code = _STRUCT_CODES[element.code]

        def encode_numbers(value: Any, out: bytearray, depth: int) -> None:
            value = items(value)
            for v in value:
                if not isinstance(v, int) or not low <= v <= high:
                    raise _bad(element, v, " (out of range)" if isinstance(v, int) else "")
            out += struct.pack(f"<{len(value)}{code}", *value)

        return encode_numbers

    if fixed:

        def encode_fixed(value: Any, out: bytearray, depth: int) -> None:
            depth += 1
            for v in items(value):
                child(v, out, depth)

        return encode_fixed

    def encode(value: Any, out: bytearray, depth: int) -> None:
        start = len(out)
        ends = []
        depth += 1
        for v in items(value):
            pad = (start - len(out)) & mask
            if pad:
                out += bytes(pad)
            child(v, out, depth)
            ends.append(len(out) - start)
        if ends:
            out += pack_offsets(ends, writer_width(len(out) - start, len(ends)))

    return encode


def _bytestring(t: GType) -> Encoder:
    def encode(value: Any, out: bytearray, depth: int) -> None:
        if not isinstance(value, bytes | bytearray | memoryview):
            raise _bad(t, value, " (expected bytes)")
        out += value

    return encode


def _tuple(t: GType) -> Encoder:
    compiled = [(_compile(m), m.align - 1) for m in t.children]
    last = len(compiled) - 1
    framed = [not m.fixed and i != last for i, m in enumerate(t.children)]
    fixed = t.fixed
    count = len(compiled)
    is_entry = t.code == "{"

    def encode(value: Any, out: bytearray, depth: int) -> None:
        if not isinstance(value, tuple | list) or len(value) != count:
            what = "a 2-tuple" if is_entry else f"a {count}-tuple"
            raise _bad(t, value, f" (expected {what})")
        start = len(out)
        ends = []
        depth += 1
        for (child, mask), v, frame in zip(compiled, value, framed, strict=True):
            pad = (start - len(out)) & mask
            if pad:
                out += bytes(pad)
            child(v, out, depth)
            if frame:
                ends.append(len(out) - start)
        if fixed:
            pad = fixed - (len(out) - start)
            if pad:
                out += bytes(pad)
        elif ends:
            ends.reverse()
            out += pack_offsets(ends, writer_width(len(out) - start, len(ends)))

    return encode
