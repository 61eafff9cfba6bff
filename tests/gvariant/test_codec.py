"""The GVariant codec: known vectors, round trips, strictness and fuzzing (no GLib needed)."""

from __future__ import annotations

import contextlib
import struct
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from ostree_repo.errors import GVariantError, OstreeRepoError
from ostree_repo.gvariant import Just, Variant, dumps, is_signature, loads, parse_type

from .strategies import signatures, typed_values

# Vectors from the format fact sheet, each checked there against GLib 2.74.
VECTORS: list[tuple[str, Any, str]] = [
    ("b", True, "01"),
    ("n", -2, "feff"),
    ("q", 0x1234, "3412"),
    ("u", 0x01020304, "04030201"),
    ("t", 0x0102030405060708, "0807060504030201"),
    ("d", 1.5, "000000000000f83f"),
    ("s", "hello", "68656c6c6f00"),
    ("o", "/a/b", "2f612f6200"),
    ("g", "a{sv}", "617b73767d00"),
    ("v", Variant("u", 7), "070000000075"),
    ("v", Variant("s", "hi"), "6869000073"),
    ("mu", 7, "07000000"),
    ("mu", None, ""),
    ("ms", "ab", "61620000"),
    ("ms", "", "0000"),
    ("ms", None, ""),
    ("ay", b"\x01\x02\x03", "010203"),
    ("au", [1, 2], "0100000002000000"),
    ("as", ["a", "bc"], "6100626300" + "0205"),
    ("(su)", ("ab", 1), "616200" + "00" + "01000000" + "03"),
    ("(ss)", ("a", "b"), "61006200" + "02"),
    ("(sss)", ("a", "bb", "c"), "6100626200630005" + "02"),
    ("a(say)", [("a", b"\x01")], "6100010204"),
    ("a{sv}", {"k": Variant("b", True)}, "6b00000000000000010062020c"),
    ("(yu)", (1, 2), "0100000002000000"),
    ("(uy)", (1, 2), "0100000002000000"),
    ("()", (), "00"),
    ("(())", ((),), "00"),
    ("a()", [(), ()], "0000"),
    ("(a(say)a(sayay))", ([], []), "00"),
    ("a{sv}", {}, ""),
    ("(as)", ([],), ""),
    ("mmi", Just(None), "00"),
    ("mmi", Just(5), "0500000000"),
    # the 18-byte content header of a plain 0755 root-owned file
    (
        "(uuuusa(ayay))",
        (0, 0, 0xED810000, 0, "", []),
        "000000000000000000" + "0081ed0000000000" + "11",
    ),
]


@pytest.mark.parametrize(("signature", "value", "hexbytes"), VECTORS)
def test_known_vectors(signature: str, value: Any, hexbytes: str) -> None:
    assert dumps(signature, value).hex() == hexbytes
    assert loads(signature, bytes.fromhex(hexbytes)) == value


@pytest.mark.parametrize(
    ("length", "tail"),
    [(252, "6100fd"), (253, "6100fe"), (254, "00ff00"), (65532, "00fdff"), (65533, "00feff0000")],
)
def test_offset_width_boundaries(length: int, tail: str) -> None:
    data = dumps("as", ["a" * length])
    assert data.endswith(bytes.fromhex(tail))
    assert loads("as", data) == ["a" * length]


def test_two_byte_tuple_offsets() -> None:
    data = dumps("(ss)", ("a" * 300, "b"))
    assert len(data) == 305 and data[-4:] == bytes.fromhex("62002d01")


@given(typed_values())
@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
def test_round_trip(pair: tuple[str, Any]) -> None:
    signature, value = pair
    data = dumps(signature, value)
    decoded = loads(signature, data)
    assert dumps(signature, decoded) == data
    assert decoded == value or value != value  # noqa: PLR0124 - NaN never equals itself


def _accepts_only_normal_form(signature: str, data: bytes) -> None:
    try:
        value = loads(signature, data)
    except GVariantError:
        return
    assert dumps(signature, value) == data


@given(signatures(), st.binary(max_size=64))
@settings(max_examples=1500)
def test_random_bytes_decode_or_raise_our_error(signature: str, data: bytes) -> None:
    _accepts_only_normal_form(signature, data)


@given(typed_values(), st.data())
@settings(max_examples=800, suppress_health_check=[HealthCheck.too_slow])
def test_mutated_encodings(pair: tuple[str, Any], data: st.DataObject) -> None:
    signature, value = pair
    encoded = bytearray(dumps(signature, value))
    action = data.draw(st.sampled_from(["flip", "truncate", "extend", "splice"]))
    if action == "flip" and encoded:
        i = data.draw(st.integers(0, len(encoded) - 1))
        encoded[i] ^= data.draw(st.integers(1, 255))
    elif action == "truncate" and encoded:
        del encoded[data.draw(st.integers(0, len(encoded) - 1)) :]
    elif action == "extend":
        encoded += data.draw(st.binary(min_size=1, max_size=8))
    elif action == "splice" and encoded:
        i = data.draw(st.integers(0, len(encoded) - 1))
        encoded[i:i] = data.draw(st.binary(min_size=1, max_size=4))
    _accepts_only_normal_form(signature, bytes(encoded))


@pytest.mark.parametrize(
    ("signature", "hexbytes", "why"),
    [
        ("b", "02", "boolean byte"),
        ("u", "070000", "wrong size"),
        ("(yi)", "5566778802010000", "non-zero padding"),
        ("s", "666f6f", "no terminator"),
        ("s", "666f006f00", "embedded NUL"),
        ("s", "ff00", "bad UTF-8"),
        ("o", "612f6200", "bad object path"),
        ("g", "6d6900", "maybe in D-Bus signature"),
        ("ms", "6162", "maybe without trailing NUL"),
        ("mu", "0700", "maybe of wrong size"),
        ("au", "010000", "array size not multiple"),
        ("as", "666f6f00626172000100", "offset out of order"),
        ("as", "6100ff", "last offset out of range"),
        ("v", "0700000000", "variant without type"),
        ("v", "0700000000757a", "variant with two types"),
        ("v", "07000000007a", "variant with unknown type"),
        ("a{sv}", "6b00000000000000010062020c6b00000000000000010062020c0c18", "dup"),
        # 254 bytes of body and one 2-byte offset: decodable, but 1-byte offsets fit
        ("as", "61" * 253 + "00" + "fe00", "non-minimal offset width"),
        ("(su)", "61620000010000000300", "trailing byte"),
        ("()", "01", "unit tuple must be 0"),
    ],
)
def test_non_normal_input_is_refused(signature: str, hexbytes: str, why: str) -> None:
    with pytest.raises(GVariantError):
        loads(signature, bytes.fromhex(hexbytes))


def test_duplicate_dictionary_keys_are_refused() -> None:
    entry = dumps("{sv}", ("k", Variant("b", True)))
    pad = bytes(-len(entry) % 8)
    body = entry + pad + entry
    data = body + bytes([len(entry), len(body)])
    with pytest.raises(GVariantError, match="duplicate"):
        loads("a{sv}", data)


@pytest.mark.parametrize(
    ("signature", "value"),
    [
        ("y", 256),
        ("y", -1),
        ("n", 0x8000),
        ("q", -1),
        ("i", 2**31),
        ("u", 2**32),
        ("x", 2**63),
        ("t", -1),
        ("t", 2**64),
        ("h", 2**31),
        ("b", 1),
        ("s", "a\0b"),
        ("s", "\ud800"),
        ("s", b"bytes"),
        ("o", "no/slash"),
        ("o", "/trailing/"),
        ("g", "mi"),
        ("g", "a"),
        ("v", 5),
        ("ay", "text"),
        ("as", "text"),
        ("a{sv}", [("k", Variant("b", True))]),
        ("(us)", (1,)),
        ("(us)", [1, "a", 2]),
        ("mmi", 5),
        ("d", "1.0"),
        ("d", 10**400),
        ("au", [1, -1]),
        ("v", Variant("zz", 1)),
    ],
)
def test_unencodable_values_raise_our_error(signature: str, value: Any) -> None:
    with pytest.raises(GVariantError):
        dumps(signature, value)


@pytest.mark.parametrize(
    "signature", ["", "z", "a", "(u", "u)", "{vs}", "{s}", "{sss}", "uu", "ai)", 1]
)
def test_invalid_signatures(signature: Any) -> None:
    with pytest.raises(GVariantError):
        parse_type(signature)


def test_signature_syntax() -> None:
    assert is_signature("") and is_signature("a{sv}uu") and is_signature("(ii)")
    assert not is_signature("mi") and not is_signature("a") and not is_signature("z")


def test_type_nesting_limit() -> None:
    parse_type("a" * 127 + "y")
    with pytest.raises(GVariantError):
        parse_type("a" * 128 + "y")
    with pytest.raises(GVariantError):
        parse_type("(" * 200 + ")" * 200)


def test_variant_nesting_limit_in_data() -> None:
    # 200 nested variants: refused with our error, never a RecursionError
    data = b"\x01\x00b"  # <true>; a variant's child starts at its offset 0, so no padding
    for _ in range(200):
        data += b"\x00v"
    with pytest.raises(GVariantError):
        loads("v", data)
    value: Any = Variant("b", True)
    for _ in range(200):
        value = Variant("v", value)
    with pytest.raises(GVariantError):
        dumps("v", value)


def test_variant_nesting_within_limit() -> None:
    value: Any = Variant("b", True)
    for _ in range(100):
        value = Variant("v", value)
    assert loads("v", dumps("v", value)) == value


@example(b"")
@given(st.binary(max_size=40))
def test_decoder_errors_are_ostree_repo_errors(data: bytes) -> None:
    for signature in ["(a(say)a(sayay))", "(uuua(ayay))", "(a{sv}aya(say)sstayay)", "a{sv}", "v"]:
        with contextlib.suppress(OstreeRepoError):
            loads(signature, data)


def test_nan_round_trips_bit_exact() -> None:
    raw = struct.pack("<Q", 0x7FF8000000000123)
    assert dumps("d", loads("d", raw)) == raw


def test_accepts_memoryview_and_bytearray() -> None:
    data = dumps("as", ["x", "yz"])
    assert loads("as", memoryview(data)) == loads("as", bytearray(data)) == ["x", "yz"]
