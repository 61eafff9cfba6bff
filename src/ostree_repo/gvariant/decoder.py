"""Strict GVariant decoding, compiled once per type string.

Each type compiles to a closure ``decode(buf, start, end, depth)`` that reads the value
serialised in ``buf[start:end]``. Every closure checks the rules of normal form as it
goes (sizes, zero padding, framing offsets in order, in bounds and of minimal width,
booleans 0/1, NUL-terminated UTF-8 strings, valid variant types, nesting depth), so
whatever it accepts re-encodes to exactly the same bytes. Anything else raises
:class:`~ostree_repo.errors.GVariantError`.
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Callable
from typing import Any

from ostree_repo.errors import GVariantError
from ostree_repo.gvariant._framing import offset_width, read_offsets, writer_width
from ostree_repo.gvariant.signature import (
    MAX_DEPTH,
    GType,
    is_object_path,
    is_signature,
    parse_type,
)
from ostree_repo.gvariant.values import Just, Variant

__all__ = ["decoder_for", "loads"]

Decoder = Callable[[bytes, int, int, int], Any]

_STRUCT_CODES = {"n": "h", "q": "H", "i": "i", "u": "I", "h": "i", "x": "q", "t": "Q", "d": "d"}


def _fail(gtype: GType, start: int, why: str) -> GVariantError:
    return GVariantError(f"{why} in {gtype.string!r} value at offset {start}")


def loads(signature: str, data: bytes | bytearray | memoryview) -> Any:
    """Decode ``data`` as a normal-form GVariant of type ``signature``.

    Raises :class:`GVariantError` when the signature is invalid or the bytes are truncated,
    malformed or not in normal form.
    """
    buf = data if type(data) is bytes else bytes(data)
    return decoder_for(signature)(buf, 0, len(buf), 0)


@functools.lru_cache(maxsize=4096)
def decoder_for(signature: str) -> Decoder:
    """The compiled decoder for ``signature`` (cached)."""
    return _compile(parse_type(signature))


def _compile(t: GType) -> Decoder:
    code = t.code
    if code in _STRUCT_CODES:
        return _scalar(t, struct.Struct("<" + _STRUCT_CODES[code]))
    if code == "b":
        return _boolean(t)
    if code == "y":
        return _byte(t)
    if code in "sog":
        return _string(t)
    if code == "v":
        return _variant(t)
    if code == "m":
        return _maybe(t)
    if code == "a":
        return _array(t)
    if t.fixed:
        return _fixed_tuple(t)
    return _variable_tuple(t)


def _scalar(t: GType, st: struct.Struct) -> Decoder:
    size = st.size
    unpack = st.unpack_from

    def decode(buf: bytes, start: int, end: int, depth: int) -> Any:
        if end - start != size:
            raise _fail(t, start, f"size {end - start} instead of {size}")
        return unpack(buf, start)[0]

    return decode


def _boolean(t: GType) -> Decoder:
    def decode(buf: bytes, start: int, end: int, depth: int) -> bool:
        if end - start != 1:
            raise _fail(t, start, f"size {end - start} instead of 1")
        b = buf[start]
        if b > 1:
            raise _fail(t, start, f"boolean byte {b:#x}")
        return b == 1

    return decode


def _byte(t: GType) -> Decoder:
    def decode(buf: bytes, start: int, end: int, depth: int) -> int:
        if end - start != 1:
            raise _fail(t, start, f"size {end - start} instead of 1")
        return buf[start]

    return decode


def _string(t: GType) -> Decoder:
    check = {"s": None, "o": is_object_path, "g": is_signature}[t.code]

    def decode(buf: bytes, start: int, end: int, depth: int) -> str:
        if end <= start or buf[end - 1] != 0:
            raise _fail(t, start, "string without NUL terminator")
        try:
            text = buf[start : end - 1].decode("utf-8")
        except UnicodeDecodeError:
            raise _fail(t, start, "invalid UTF-8") from None
        if "\0" in text:
            raise _fail(t, start, "NUL inside string")
        if check is not None and not check(text):
            raise _fail(t, start, f"invalid {'object path' if t.code == 'o' else 'signature'}")
        return text

    return decode


def _variant(t: GType) -> Decoder:
    def decode(buf: bytes, start: int, end: int, depth: int) -> Variant:
        sep = buf.rfind(0, start, end)
        if sep < 0:
            raise _fail(t, start, "variant without type separator")
        try:
            signature = buf[sep + 1 : end].decode("ascii")
            child_type = parse_type(signature)
        except (UnicodeDecodeError, GVariantError):
            raise _fail(t, start, "variant with invalid type string") from None
        if depth + child_type.depth >= MAX_DEPTH:
            raise _fail(t, start, f"nesting deeper than {MAX_DEPTH}")
        return Variant(signature, decoder_for(signature)(buf, start, sep, depth + 1))

    return decode


def _maybe(t: GType) -> Decoder:
    element = t.element
    child = _compile(element)
    wrap = element.code == "m"
    fixed = element.fixed

    def decode(buf: bytes, start: int, end: int, depth: int) -> Any:
        if end == start:
            return None
        if fixed:
            if end - start != fixed:
                raise _fail(t, start, f"maybe of size {end - start} instead of {fixed}")
            value = child(buf, start, end, depth + 1)
        else:
            if buf[end - 1] != 0:
                raise _fail(t, start, "maybe without trailing NUL")
            value = child(buf, start, end - 1, depth + 1)
        return Just(value) if wrap else value

    return decode


def _array(t: GType) -> Decoder:
    element = t.element
    if element.code == "y":
        return _bytestring
    if element.code == "{":
        entries = _variable_array(t) if not element.fixed else _fixed_array(t)

        def decode_dict(buf: bytes, start: int, end: int, depth: int) -> dict[Any, Any]:
            pairs = entries(buf, start, end, depth)
            result = dict(pairs)
            if len(result) != len(pairs):
                raise _fail(t, start, "duplicate dictionary key")
            return result

        return decode_dict
    if element.fixed:
        return _fixed_array(t)
    return _variable_array(t)


def _bytestring(buf: bytes, start: int, end: int, depth: int) -> bytes:
    return buf[start:end]


def _fixed_array(t: GType) -> Decoder:
    element = t.element
    size = element.fixed
    if element.code in _STRUCT_CODES:
        code = _STRUCT_CODES[element.code]

        def decode_numbers(buf: bytes, start: int, end: int, depth: int) -> list[Any]:
            n, rest = divmod(end - start, size)
            if rest:
                raise _fail(t, start, f"array size not a multiple of {size}")
            return list(struct.unpack_from(f"<{n}{code}", buf, start))

        return decode_numbers
    if element.code == "b":

        def decode_booleans(buf: bytes, start: int, end: int, depth: int) -> list[bool]:
            raw = buf[start:end]
            if raw.translate(None, b"\x00\x01"):
                raise _fail(t, start, "boolean byte not 0 or 1")
            return [b == 1 for b in raw]

        return decode_booleans
    child = _compile(element)

    def decode(buf: bytes, start: int, end: int, depth: int) -> list[Any]:
        if (end - start) % size:
            raise _fail(t, start, f"array size not a multiple of {size}")
        depth += 1
        return [child(buf, p, p + size, depth) for p in range(start, end, size)]

    return decode


def _variable_array(t: GType) -> Decoder:
    element = t.element
    child = _compile(element)
    mask = element.align - 1

    def decode(buf: bytes, start: int, end: int, depth: int) -> list[Any]:
        size = end - start
        if size == 0:
            return []
        width = offset_width(size)
        last = int.from_bytes(buf[end - width : end], "little")
        table = start + last
        count, rest = divmod(end - table, width)
        if last > size or rest or count == 0:
            raise _fail(t, start, "bad offset table")
        if writer_width(last, count) != width:
            raise _fail(t, start, "framing offsets wider than needed")
        values = []
        pos = start
        depth += 1
        for offset in read_offsets(buf, table, count, width):
            item = pos
            if mask:
                item += (start - pos) & mask
                if item > pos and any(buf[pos:item]):
                    raise _fail(t, pos, "non-zero padding")
            pos = start + offset
            if pos < item or pos > table:
                raise _fail(t, item, "framing offset out of order")
            values.append(child(buf, item, pos, depth))
        return values

    return decode


def _fixed_tuple(t: GType) -> Decoder:
    size = t.fixed
    layout: list[tuple[Decoder, int, int]] = []  # (decoder, start, end) relative
    pads: list[tuple[int, int]] = []
    pos = 0
    for member in t.children:
        item = (pos + member.align - 1) & -member.align
        if item > pos:
            pads.append((pos, item))
        layout.append((_compile(member), item, item + member.fixed))
        pos = item + member.fixed
    if size > pos:
        pads.append((pos, size))

    def decode(buf: bytes, start: int, end: int, depth: int) -> tuple[Any, ...]:
        if end - start != size:
            raise _fail(t, start, f"size {end - start} instead of {size}")
        for a, b in pads:
            if any(buf[start + a : start + b]):
                raise _fail(t, start + a, "non-zero padding")
        depth += 1
        return tuple([dec(buf, start + a, start + b, depth) for dec, a, b in layout])

    return decode


def _variable_tuple(t: GType) -> Decoder:
    """Generate a straight-line decoder for this tuple layout.

    A generic loop over members spends most of its time deciding, member by member, what
    it could know in advance (fixed or framed, aligned or not). The generated function
    has those decisions made: for ``(say)`` it is a dozen lines with one offset read.
    Byte strings (``ay``) are sliced inline, other members use their own decoders.
    """
    children = t.children
    last = len(children) - 1
    framed = [i for i, m in enumerate(children) if not m.fixed and i != last]
    nframed = len(framed)
    env: dict[str, Any] = {
        "t": t,
        "_fail": _fail,
        "offset_width": offset_width,
        "writer_width": writer_width,
        "read_offsets": read_offsets,
    }
    src = ["def decode(buf, start, end, depth):"]
    add = src.append
    if nframed:
        # Up to 255 bytes the width is 1, which is always the narrowest: no calls needed.
        add("    width = 1 if 0 < end - start <= 0xFF else offset_width(end - start)")
        add(f"    table = end - {nframed} * width")
        add("    if table < start:")
        add("        raise _fail(t, start, 'truncated framing offsets')")
        add(f"    if width != 1 and writer_width(table - start, {nframed}) != width:")
        add("        raise _fail(t, start, 'framing offsets wider than needed')")
        if nframed == 1:
            add("    off0 = int.from_bytes(buf[table:end], 'little')")
        else:
            names = ", ".join(f"off{k}" for k in reversed(range(nframed)))
            add(f"    {names} = read_offsets(buf, table, {nframed}, width)")
    else:
        add("    table = end")
    add("    pos = start")
    add("    depth += 1")
    for i, member in enumerate(children):
        if i and member.align > 1:
            add(f"    item = pos + ((start - pos) & {member.align - 1})")
            add("    if item > pos and any(buf[pos:item]):")
            add("        raise _fail(t, pos, 'non-zero padding')")
        else:
            add("    item = pos")
        if member.fixed:
            add(f"    pos = item + {member.fixed}")
        elif i == last:
            add("    pos = table")
        else:
            add(f"    pos = start + off{framed.index(i)}")
        add("    if pos < item or pos > table:")
        add("        raise _fail(t, item, 'member out of bounds')")
        if member.string == "ay":
            add(f"    v{i} = buf[item:pos]")
        else:
            env[f"d{i}"] = _compile(member)
            add(f"    v{i} = d{i}(buf, item, pos, depth)")
    add("    if pos != table:")
    add("        raise _fail(t, pos, 'trailing bytes')")
    add("    return (" + "".join(f"v{i}, " for i in range(len(children))) + ")")
    # compiled under a name of its own, so profilers tell the generated decoders apart
    exec(compile("\n".join(src), f"<decode {t.string}>", "exec"), env)
    decoder: Decoder = env["decode"]
    return decoder
