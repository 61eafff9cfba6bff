"""GVariant type strings: parsing, alignment, fixed sizes, and D-Bus name syntax.

A type string is parsed once into a tree of :class:`GType` nodes; the parse is cached,
so codecs compiled from it are cached too (see :mod:`.decoder` and :mod:`.encoder`).
"""

from __future__ import annotations

import functools
import re

import attrs

from ostree_repo.errors import GVariantError

__all__ = [
    "MAX_DEPTH",
    "GType",
    "is_object_path",
    "is_signature",
    "parse_type",
]

#: GLib's G_VARIANT_MAX_RECURSION_DEPTH: no value may sit this many containers deep.
MAX_DEPTH = 128

#: Codes that may be dictionary keys.
BASIC_CODES = frozenset("bynqiuxthdsog")

# code -> (alignment, fixed size; 0 = variable size)
_SCALARS: dict[str, tuple[int, int]] = {
    "b": (1, 1),
    "y": (1, 1),
    "n": (2, 2),
    "q": (2, 2),
    "i": (4, 4),
    "u": (4, 4),
    "h": (4, 4),
    "x": (8, 8),
    "t": (8, 8),
    "d": (8, 8),
    "s": (1, 0),
    "o": (1, 0),
    "g": (1, 0),
    "v": (8, 0),
}


@attrs.frozen
class GType:
    """One node of a parsed type string.

    ``code`` is the first character (``a``, ``m``, ``(``, ``{`` or a scalar code);
    ``children`` holds the element type of ``a``/``m`` or the members of ``(``/``{``.
    ``fixed`` is the serialised size of a fixed-size type and 0 for variable-size types.
    ``depth`` is the number of nesting levels the type spans (a scalar is 1, ``ay`` is 2).
    """

    string: str
    code: str
    children: tuple[GType, ...]
    align: int
    fixed: int
    depth: int

    @property
    def element(self) -> GType:
        """The element type of an array or maybe."""
        return self.children[0]


def _round_up(n: int, align: int) -> int:
    return (n + align - 1) & -align


def _make_container(string: str, code: str, children: tuple[GType, ...]) -> GType:
    depth = 1 + max((c.depth for c in children), default=0)
    if code in "am":
        return GType(string, code, children, children[0].align, 0, depth)
    # tuple or dict entry
    align = max((c.align for c in children), default=1)
    size = 0
    for child in children:
        if not child.fixed:
            return GType(string, code, children, align, 0, depth)
        size = _round_up(size, child.align) + child.fixed
    size = _round_up(size, align) or 1  # the unit tuple () takes one byte
    return GType(string, code, children, align, size, depth)


def _scan(s: str, pos: int, level: int) -> tuple[GType, int]:
    """Parse one complete type starting at ``s[pos]``; return it and the position after it."""
    if level > MAX_DEPTH:
        raise GVariantError(f"type string {s!r} nests deeper than {MAX_DEPTH} levels")
    if pos >= len(s):
        raise GVariantError(f"incomplete type string {s!r}")
    code = s[pos]
    scalar = _SCALARS.get(code)
    if scalar is not None:
        return GType(code, code, (), scalar[0], scalar[1], 1), pos + 1
    if code in "am":
        child, end = _scan(s, pos + 1, level + 1)
        return _make_container(s[pos:end], code, (child,)), end
    if code == "(":
        members: list[GType] = []
        p = pos + 1
        while p < len(s) and s[p] != ")":
            member, p = _scan(s, p, level + 1)
            members.append(member)
        if p >= len(s):
            raise GVariantError(f"unterminated tuple in type string {s!r}")
        return _make_container(s[pos : p + 1], "(", tuple(members)), p + 1
    if code == "{":
        if pos + 1 >= len(s) or s[pos + 1] not in BASIC_CODES:
            raise GVariantError(f"dictionary key must be a basic type in {s!r}")
        key, p = _scan(s, pos + 1, level + 1)
        value, p = _scan(s, p, level + 1)
        if p >= len(s) or s[p] != "}":
            raise GVariantError(f"dictionary entry must have exactly two members in {s!r}")
        return _make_container(s[pos : p + 1], "{", (key, value)), p + 1
    raise GVariantError(f"invalid character {code!r} in type string {s!r}")


@functools.lru_cache(maxsize=4096)
def parse_type(signature: str) -> GType:
    """Parse a single complete, definite GVariant type string (``"a{sv}"``, ``"(uuua(ayay))"``).

    Raises :class:`GVariantError` for anything else: empty or trailing text, unknown codes,
    non-basic dictionary keys, or nesting deeper than :data:`MAX_DEPTH`.
    """
    if not isinstance(signature, str):
        raise GVariantError(f"type string must be str, not {type(signature).__name__}")
    gtype, end = _scan(signature, 0, 1)
    if end != len(signature):
        raise GVariantError(f"trailing characters in type string {signature!r}")
    return gtype


_DBUS_SIGNATURE_CHARS = frozenset("ybnqiuxthdvasog(){}")


def is_signature(text: str) -> bool:
    """True when ``text`` is a D-Bus signature: zero or more complete types, no maybes."""
    if not set(text) <= _DBUS_SIGNATURE_CHARS:
        return False
    pos = 0
    try:
        while pos < len(text):
            _, pos = _scan(text, pos, 1)
    except GVariantError:
        return False
    return True


_OBJECT_PATH = re.compile(r"/|(?:/[A-Za-z0-9_]+)+")


def is_object_path(text: str) -> bool:
    """True when ``text`` is a D-Bus object path (``/``, ``/a/b_1``; no empty elements)."""
    return _OBJECT_PATH.fullmatch(text) is not None
