"""Hypothesis strategies for GVariant type strings and values of those types."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from ostree_repo.gvariant import GType, Just, Variant, parse_type

SCALARS = list("bynqiuxthdsog")
INT_RANGES = {
    "y": (0, 0xFF),
    "n": (-0x8000, 0x7FFF),
    "q": (0, 0xFFFF),
    "i": (-0x80000000, 0x7FFFFFFF),
    "u": (0, 0xFFFFFFFF),
    "h": (-0x80000000, 0x7FFFFFFF),
    "x": (-0x8000000000000000, 0x7FFFFFFFFFFFFFFF),
    "t": (0, 0xFFFFFFFFFFFFFFFF),
}


def signatures(max_leaves: int = 6, allow_maybe: bool = True) -> st.SearchStrategy[str]:
    """Random complete type strings, including v, maybes, dicts, unit and nested tuples."""
    leaves = st.sampled_from([*SCALARS, "v"])

    def extend(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        options = [
            children.map(lambda c: "a" + c),
            st.lists(children, min_size=0, max_size=4).map(lambda cs: "(" + "".join(cs) + ")"),
            st.tuples(st.sampled_from(SCALARS), children).map(
                lambda kv: "a{" + kv[0] + kv[1] + "}"
            ),
        ]
        if allow_maybe:
            options.append(children.map(lambda c: "m" + c))
        return st.one_of(*options)

    return st.recursive(leaves, extend, max_leaves=max_leaves)


def dbus_signatures() -> st.SearchStrategy[str]:
    """Values for ``g``: concatenations of complete types without maybes."""
    return st.lists(signatures(max_leaves=3, allow_maybe=False), max_size=3).map("".join)


OBJECT_PATHS = st.one_of(
    st.just("/"),
    st.lists(st.from_regex(r"[A-Za-z0-9_]{1,6}", fullmatch=True), min_size=1, max_size=4).map(
        lambda parts: "/" + "/".join(parts)
    ),
)
TEXT = st.text(st.characters(blacklist_characters="\0", blacklist_categories=("Cs",)), max_size=20)


def values(signature: str, variant_depth: int = 2) -> st.SearchStrategy[Any]:
    """Random Python values of GVariant type ``signature``."""
    return _values(parse_type(signature), variant_depth)


def _values(t: GType, variant_depth: int) -> st.SearchStrategy[Any]:
    code = t.code
    if code in INT_RANGES:
        low, high = INT_RANGES[code]
        return st.integers(low, high)
    if code == "b":
        return st.booleans()
    if code == "d":
        return st.floats(allow_nan=False)
    if code == "s":
        return TEXT
    if code == "o":
        return OBJECT_PATHS
    if code == "g":
        return dbus_signatures()
    if code == "v":
        inner = signatures(max_leaves=3) if variant_depth > 0 else st.sampled_from(SCALARS)
        return inner.flatmap(
            lambda sig: _values(parse_type(sig), variant_depth - 1).map(
                lambda v, sig=sig: Variant(sig, v)
            )
        )
    if code == "m":
        element = _values(t.element, variant_depth)
        if t.element.code == "m":
            element = element.map(Just)
        return st.one_of(st.none(), element)
    if code == "a":
        if t.element.code == "y":
            return st.binary(max_size=40)
        if t.element.code == "{":
            key, value = t.element.children
            return st.dictionaries(
                _values(key, variant_depth), _values(value, variant_depth), max_size=4
            )
        return st.lists(_values(t.element, variant_depth), max_size=4)
    return st.tuples(*(_values(c, variant_depth) for c in t.children))


def typed_values(max_leaves: int = 6) -> st.SearchStrategy[tuple[str, Any]]:
    """(signature, value) pairs."""
    return signatures(max_leaves).flatmap(lambda sig: st.tuples(st.just(sig), values(sig)))
