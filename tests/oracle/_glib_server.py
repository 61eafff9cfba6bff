"""GLib GVariant oracle server, run by the *system* Python (``/usr/bin/python3``).

This script is started by :class:`tests.oracle.glib_oracle.GLibOracle` and must
only depend on the standard library and PyGObject (``gi``).  It does not import
anything from the project.

Protocol (synchronous, one request then one response, over stdin/stdout):

* every message is an 8-byte big-endian length followed by that many bytes of
  pickle data (protocol 5, plain builtins only);
* a request is a tuple ``(op, *args)``;
* a response is ``("ok", result)`` or ``("err", exception_type_name, message)``.

Ops: ``ping``, ``encode``, ``decode``, ``normal_form``, ``is_normal``,
``print``, ``format``, ``parse`` and ``batch`` (a list of
requests, answered by a list of responses).  See ``glib_oracle.py`` for the
value representation.

The server never exits because of a bad request: every exception raised while
handling one is turned into an error response.  It exits when stdin reaches
EOF.
"""

from __future__ import annotations

import os
import pickle
import struct
import sys
import traceback
from typing import Any

import gi

gi.require_version("GLib", "2.0")
from gi.repository import GLib  # noqa: E402

PICKLE_PROTOCOL = 5
_HEADER = struct.Struct(">Q")

VARIANT_TAG = "__variant__"
DICT_TAG = "__dict__"
JUST_TAG = "__just__"

_BASIC = frozenset("bynqiuxthdsog")

# ---------------------------------------------------------------------------
# Type strings


class TypeNode:
    """A parsed definite GVariant type."""

    __slots__ = ("children", "kind", "sig")

    def __init__(self, kind: str, sig: str, children: tuple[TypeNode, ...] = ()) -> None:
        self.kind = kind  # a basic code, "v", "a", "m", "(" or "{"
        self.sig = sig
        self.children = children


def _parse_one(sig: str, pos: int, depth: int) -> tuple[TypeNode, int]:
    if depth > 255:
        raise ValueError("type string nested too deeply")
    if pos >= len(sig):
        raise ValueError(f"truncated type string {sig!r}")
    c = sig[pos]
    if c in _BASIC or c == "v":
        return TypeNode(c, c), pos + 1
    if c in "am":
        child, end = _parse_one(sig, pos + 1, depth + 1)
        return TypeNode(c, sig[pos:end], (child,)), end
    if c == "(":
        children: list[TypeNode] = []
        p = pos + 1
        while True:
            if p >= len(sig):
                raise ValueError(f"unterminated tuple in {sig!r}")
            if sig[p] == ")":
                return TypeNode("(", sig[pos : p + 1], tuple(children)), p + 1
            child, p = _parse_one(sig, p, depth + 1)
            children.append(child)
    if c == "{":
        key, p = _parse_one(sig, pos + 1, depth + 1)
        if key.kind not in _BASIC:
            raise ValueError(f"dict entry key must be a basic type in {sig!r}")
        value, p = _parse_one(sig, p, depth + 1)
        if p >= len(sig) or sig[p] != "}":
            raise ValueError(f"bad dict entry in {sig!r}")
        return TypeNode("{", sig[pos : p + 1], (key, value)), p + 1
    raise ValueError(f"unsupported or indefinite type code {c!r} in {sig!r}")


_TYPE_CACHE: dict[str, TypeNode] = {}


def parse_type(sig: str) -> TypeNode:
    """Parse a single complete definite type string (cached)."""
    node = _TYPE_CACHE.get(sig)
    if node is None:
        if not isinstance(sig, str):
            raise TypeError(f"type string must be str, not {type(sig).__name__}")
        node, end = _parse_one(sig, 0, 0)
        if end != len(sig):
            raise ValueError(f"trailing characters in type string {sig!r}")
        if len(_TYPE_CACHE) < 10000:
            _TYPE_CACHE[sig] = node
    return node


_VTYPE_CACHE: dict[str, Any] = {}


def vtype(sig: str) -> Any:
    """A cached ``GLib.VariantType``."""
    t = _VTYPE_CACHE.get(sig)
    if t is None:
        t = GLib.VariantType.new(sig)
        if len(_VTYPE_CACHE) < 10000:
            _VTYPE_CACHE[sig] = t
    return t


# ---------------------------------------------------------------------------
# Python value -> GLib.Variant

_INT_RANGES = {
    "y": (0, 0xFF),
    "n": (-(2**15), 2**15 - 1),
    "q": (0, 2**16 - 1),
    "i": (-(2**31), 2**31 - 1),
    "h": (-(2**31), 2**31 - 1),
    "u": (0, 2**32 - 1),
    "x": (-(2**63), 2**63 - 1),
    "t": (0, 2**64 - 1),
}

_INT_CTORS = {
    "y": GLib.Variant.new_byte,
    "n": GLib.Variant.new_int16,
    "q": GLib.Variant.new_uint16,
    "i": GLib.Variant.new_int32,
    "h": GLib.Variant.new_handle,
    "u": GLib.Variant.new_uint32,
    "x": GLib.Variant.new_int64,
    "t": GLib.Variant.new_uint64,
}


def _check_str(value: Any, sig: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{sig}: expected str, got {type(value).__name__}")
    if "\x00" in value:
        raise ValueError(f"{sig}: string contains NUL")
    return value


def build(node: TypeNode, value: Any) -> Any:
    """Build a ``GLib.Variant`` of type ``node`` from the project representation."""
    k = node.kind
    if k in _INT_CTORS:
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"{k}: expected int, got {type(value).__name__}")
        lo, hi = _INT_RANGES[k]
        if not lo <= value <= hi:
            raise OverflowError(f"{k}: {value} out of range")
        return _INT_CTORS[k](value)
    if k == "b":
        if not isinstance(value, (bool, int)) or value not in (0, 1):
            raise TypeError(f"b: expected bool, got {value!r}")
        return GLib.Variant.new_boolean(bool(value))
    if k == "d":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"d: expected float, got {type(value).__name__}")
        return GLib.Variant.new_double(float(value))
    if k == "s":
        return GLib.Variant.new_string(_check_str(value, k))
    if k == "o":
        if not GLib.Variant.is_object_path(_check_str(value, k)):
            raise ValueError(f"o: invalid object path {value!r}")
        return GLib.Variant.new_object_path(value)
    if k == "g":
        if not GLib.Variant.is_signature(_check_str(value, k)):
            raise ValueError(f"g: invalid signature {value!r}")
        return GLib.Variant.new_signature(value)
    if k == "v":
        if not (isinstance(value, tuple) and len(value) == 3 and value[0] == VARIANT_TAG):
            raise TypeError(f"v: expected ({VARIANT_TAG!r}, sig, value), got {value!r:.200}")
        return GLib.Variant.new_variant(build(parse_type(value[1]), value[2]))
    if k == "m":
        (elem,) = node.children
        if value is None:
            return GLib.Variant.new_maybe(vtype(elem.sig), None)
        if isinstance(value, tuple) and len(value) == 2 and value[0] == JUST_TAG:
            value = value[1]
        return GLib.Variant.new_maybe(None, build(elem, value))
    if k == "a":
        (elem,) = node.children
        if elem.kind == "y" and isinstance(value, (bytes, bytearray, memoryview)):
            return GLib.Variant.new_from_bytes(vtype("ay"), GLib.Bytes.new(bytes(value)), True)
        if elem.kind == "{":
            if isinstance(value, dict):
                items: Any = list(value.items())
            elif isinstance(value, tuple) and len(value) == 2 and value[0] == DICT_TAG:
                items = value[1]
            else:
                items = value
            if not isinstance(items, (list, tuple)):
                raise TypeError(f"{node.sig}: expected dict or list of pairs")
            return GLib.Variant.new_array(vtype(elem.sig), [build(elem, kv) for kv in items])
        if not isinstance(value, (list, tuple)):
            raise TypeError(f"{node.sig}: expected list, got {type(value).__name__}")
        return GLib.Variant.new_array(vtype(elem.sig), [build(elem, x) for x in value])
    if k == "(":
        if not isinstance(value, (list, tuple)) or len(value) != len(node.children):
            n = len(node.children)
            raise TypeError(f"{node.sig}: expected a {n}-tuple, got {value!r:.200}")
        return GLib.Variant.new_tuple(
            *[build(c, x) for c, x in zip(node.children, value, strict=True)]
        )
    if k == "{":
        if not isinstance(value, (list, tuple)) or len(value) != 2:
            raise TypeError(f"{node.sig}: expected a (key, value) pair")
        return GLib.Variant.new_dict_entry(
            build(node.children[0], value[0]), build(node.children[1], value[1])
        )
    raise ValueError(f"cannot build type {node.sig!r}")


# ---------------------------------------------------------------------------
# GLib.Variant -> Python value

_GETTERS = {
    "b": GLib.Variant.get_boolean,
    "y": GLib.Variant.get_byte,
    "n": GLib.Variant.get_int16,
    "q": GLib.Variant.get_uint16,
    "i": GLib.Variant.get_int32,
    "h": GLib.Variant.get_handle,
    "u": GLib.Variant.get_uint32,
    "x": GLib.Variant.get_int64,
    "t": GLib.Variant.get_uint64,
    "d": GLib.Variant.get_double,
    "s": GLib.Variant.get_string,
    "o": GLib.Variant.get_string,
    "g": GLib.Variant.get_string,
}


def _bytes_of(v: Any) -> bytes:
    data = v.get_data_as_bytes().get_data()
    return bytes(data) if data is not None else b""


def unpack(node: TypeNode, v: Any) -> Any:
    """Unpack a ``GLib.Variant`` by walking it according to ``node``."""
    k = node.kind
    getter = _GETTERS.get(k)
    if getter is not None:
        return getter(v)
    if k == "v":
        child = v.get_variant()
        csig = child.get_type_string()
        return (VARIANT_TAG, csig, unpack(parse_type(csig), child))
    if k == "m":
        if v.n_children() == 0:
            return None
        (elem,) = node.children
        inner = unpack(elem, v.get_child_value(0))
        return (JUST_TAG, inner) if elem.kind == "m" else inner
    if k == "a":
        (elem,) = node.children
        if elem.kind == "y":
            return _bytes_of(v)
        n = v.n_children()
        items = [unpack(elem, v.get_child_value(i)) for i in range(n)]
        if elem.kind == "{":
            return (DICT_TAG, items)
        return items
    if k in "({":
        return tuple(unpack(c, v.get_child_value(i)) for i, c in enumerate(node.children))
    raise ValueError(f"cannot unpack type {node.sig!r}")


def _from_bytes(sig: str, data: bytes) -> Any:
    parse_type(sig)  # validates: GLib would only emit a critical warning
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"data must be bytes, not {type(data).__name__}")
    v = GLib.Variant.new_from_bytes(vtype(sig), GLib.Bytes.new(bytes(data)), False)
    if v is None:
        raise ValueError("GLib.Variant.new_from_bytes returned NULL")
    return v


# ---------------------------------------------------------------------------
# Operations


def op_ping() -> str:
    return "pong"


def op_encode(sig: str, value: Any) -> bytes:
    return _bytes_of(build(parse_type(sig), value))


def op_decode(sig: str, data: bytes) -> tuple[bool, Any]:
    v = _from_bytes(sig, data)
    return bool(v.is_normal_form()), unpack(parse_type(sig), v)


def op_normal_form(sig: str, data: bytes) -> bytes:
    return _bytes_of(_from_bytes(sig, data).get_normal_form())


def op_is_normal(sig: str, data: bytes) -> bool:
    return bool(_from_bytes(sig, data).is_normal_form())


def op_print(sig: str, data: bytes, type_annotate: bool = True) -> str:
    return str(_from_bytes(sig, data).print_(type_annotate))


def op_format(sig: str, value: Any, type_annotate: bool = True) -> str:
    return str(build(parse_type(sig), value).print_(type_annotate))


def op_parse(sig: str | None, text: str) -> tuple[str, bytes]:
    if sig is not None:
        parse_type(sig)
    v = GLib.Variant.parse(vtype(sig) if sig is not None else None, text, None, None)
    return str(v.get_type_string()), _bytes_of(v)


OPS: dict[str, Any] = {
    "ping": op_ping,
    "encode": op_encode,
    "decode": op_decode,
    "normal_form": op_normal_form,
    "is_normal": op_is_normal,
    "print": op_print,
    "format": op_format,
    "parse": op_parse,
}


def handle(request: Any) -> tuple[Any, ...]:
    """Run one request and return a response tuple; never raises."""
    try:
        if not isinstance(request, tuple) or not request or not isinstance(request[0], str):
            raise TypeError(f"malformed request {request!r:.200}")
        op = request[0]
        if op == "batch":
            (subs,) = request[1:]
            return ("ok", [handle(sub) for sub in subs])
        fn = OPS.get(op)
        if fn is None:
            raise ValueError(f"unknown op {op!r}")
        return ("ok", fn(*request[1:]))
    except Exception as exc:
        msg = str(exc) or traceback.format_exc(limit=3)
        return ("err", type(exc).__name__, msg)


def _read_exact(fd: int, n: int) -> bytes | None:
    chunks: list[bytes] = []
    while n:
        chunk = os.read(fd, min(n, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def main() -> int:
    """Serve requests until EOF on stdin."""
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 4000))
    in_fd = os.dup(0)
    out_fd = os.dup(1)
    # Anything else written to stdout (e.g. g_print from C) goes to stderr instead,
    # so it can never corrupt the protocol stream.
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    while True:
        header = _read_exact(in_fd, _HEADER.size)
        if header is None:
            return 0
        (length,) = _HEADER.unpack(header)
        payload = _read_exact(in_fd, length)
        if payload is None:
            return 0
        try:
            request = pickle.loads(payload)
        except Exception as exc:
            response: tuple[Any, ...] = ("err", type(exc).__name__, f"bad request: {exc}")
        else:
            response = handle(request)
        try:
            out = pickle.dumps(response, protocol=PICKLE_PROTOCOL)
        except Exception as exc:
            out = pickle.dumps(("err", type(exc).__name__, str(exc)), protocol=PICKLE_PROTOCOL)
        _write_all(out_fd, _HEADER.pack(len(out)) + out)


if __name__ == "__main__":
    sys.exit(main())
