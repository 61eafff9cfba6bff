"""Cross-checks against GLib's own GVariant (system python3 + PyGObject, in a subprocess).

Both directions on random types and values: our bytes equal GLib's, GLib finds our bytes
in normal form and reads the same value back, and on random or mutated bytes we accept
exactly what GLib calls normal form.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from oracle.glib_oracle import DICT_TAG, JUST_TAG, VARIANT_TAG, GLibOracle
from ostree_repo.errors import GVariantError
from ostree_repo.gvariant import GType, Just, Variant, dumps, loads, parse_type

from .strategies import signatures, typed_values

SETTINGS = settings(
    max_examples=int(os.environ.get("GLIB_EXAMPLES", "300")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@pytest.fixture(scope="module")
def glib() -> Iterator[GLibOracle]:
    with GLibOracle() as oracle:
        yield oracle


def to_oracle(t: GType, value: Any) -> Any:
    """Our value representation -> the oracle's."""
    code = t.code
    if code == "v":
        return (VARIANT_TAG, value.signature, to_oracle(parse_type(value.signature), value.value))
    if code == "m":
        if value is None:
            return None
        if t.element.code == "m":
            return (JUST_TAG, to_oracle(t.element, value.value))
        return to_oracle(t.element, value)
    if code == "a":
        if t.element.code == "y":
            return bytes(value)
        if t.element.code == "{":
            k, v = t.element.children
            return (DICT_TAG, [(to_oracle(k, a), to_oracle(v, b)) for a, b in value.items()])
        return [to_oracle(t.element, x) for x in value]
    if code in "({":
        return tuple(to_oracle(c, x) for c, x in zip(t.children, value, strict=True))
    return value


def from_oracle(t: GType, value: Any) -> Any:
    """The oracle's value representation -> ours."""
    code = t.code
    if code == "v":
        _, sig, inner = value
        return Variant(sig, from_oracle(parse_type(sig), inner))
    if code == "m":
        if value is None:
            return None
        if t.element.code == "m":
            return Just(from_oracle(t.element, value[1]))
        return from_oracle(t.element, value)
    if code == "a":
        if t.element.code == "y":
            return bytes(value)
        if t.element.code == "{":
            k, v = t.element.children
            return {from_oracle(k, a): from_oracle(v, b) for a, b in value[1]}
        return [from_oracle(t.element, x) for x in value]
    if code in "({":
        return tuple(from_oracle(c, x) for c, x in zip(t.children, value, strict=True))
    return value


@given(typed_values())
@SETTINGS
def test_our_bytes_equal_glibs(glib: GLibOracle, pair: tuple[str, Any]) -> None:
    signature, value = pair
    assert dumps(signature, value) == glib.encode(
        signature, to_oracle(parse_type(signature), value)
    )


@given(typed_values())
@SETTINGS
def test_glib_reads_our_bytes_as_normal_form(glib: GLibOracle, pair: tuple[str, Any]) -> None:
    signature, value = pair
    normal, glib_value = glib.decode(signature, dumps(signature, value))
    assert normal
    assert from_oracle(parse_type(signature), glib_value) == value


def _has_duplicate_keys(t: GType, value: Any) -> bool:
    """True if GLib's decoded value holds a dictionary with a repeated key anywhere."""
    code = t.code
    if code == "v":
        return _has_duplicate_keys(parse_type(value[1]), value[2])
    if code == "m" and value is not None:
        inner = value[1] if t.element.code == "m" else value
        return _has_duplicate_keys(t.element, inner)
    if code == "a" and t.element.code == "{":
        keys = [k for k, _ in value[1]]
        value_type = t.element.children[1]
        return len(set(keys)) != len(keys) or any(
            _has_duplicate_keys(value_type, b) for _, b in value[1]
        )
    if code == "a" and t.element.code != "y":
        return any(_has_duplicate_keys(t.element, x) for x in value)
    if code in "({":
        return any(_has_duplicate_keys(c, x) for c, x in zip(t.children, value, strict=True))
    return False


def _agree_on_normal_form(glib: GLibOracle, signature: str, data: bytes) -> None:
    """We accept exactly the bytes GLib's serialiser writes for the value they hold.

    GLib's ``is_normal_form`` is a little laxer than its own serialiser (it passes
    ``b""`` for ``(abab)`` holding two empty arrays, which GLib writes as ``00``), and a
    ``dict`` cannot hold a repeated key; those are the only cases where we may refuse
    what GLib calls normal.
    """
    glib_normal, glib_value = glib.decode(signature, data)
    try:
        ours = loads(signature, data)
    except GVariantError:
        if glib_normal:
            rewritten = glib.encode(signature, glib_value)
            assert rewritten != data or _has_duplicate_keys(parse_type(signature), glib_value), (
                f"we refused {data.hex()} as {signature}, which GLib writes itself"
            )
        return
    assert glib_normal, f"we accepted non-normal {data.hex()} as {signature}"
    expected = from_oracle(parse_type(signature), glib_value)
    assert ours == expected or repr(ours) == repr(expected)  # NaN never equals itself


@given(signatures(), st.binary(max_size=48))
@SETTINGS
def test_random_bytes_accepted_iff_glib_says_normal(
    glib: GLibOracle, signature: str, data: bytes
) -> None:
    _agree_on_normal_form(glib, signature, data)


@given(typed_values(), st.data())
@SETTINGS
def test_mutated_bytes_accepted_iff_glib_says_normal(
    glib: GLibOracle, pair: tuple[str, Any], data: st.DataObject
) -> None:
    signature, value = pair
    encoded = bytearray(dumps(signature, value))
    if encoded:
        i = data.draw(st.integers(0, len(encoded) - 1))
        if data.draw(st.booleans()):
            encoded[i] ^= data.draw(st.integers(1, 255))
        else:
            del encoded[i:]
    _agree_on_normal_form(glib, signature, bytes(encoded))


@pytest.mark.parametrize("length", [252, 253, 254, 65532, 65533])
def test_offset_width_boundaries_match_glib(glib: GLibOracle, length: int) -> None:
    assert dumps("as", ["a" * length]) == glib.encode("as", ["a" * length])


def test_non_minimal_offset_width(glib: GLibOracle) -> None:
    """254 body bytes with a 2-byte offset: GLib's verdict, and ours is stricter or equal."""
    data = bytes.fromhex("61" * 253 + "00" + "fe00")
    with pytest.raises(GVariantError):
        loads("as", data)
    assert glib.normal_form("as", data) != data
