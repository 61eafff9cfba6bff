"""Random damage to encoded objects, for the fuzz tests of every decoder."""

from __future__ import annotations

from hypothesis import strategies as st


def mutate(data: bytes, draw: st.DataObject, *, rounds: int = 4) -> bytes:
    """Flip, truncate, insert, delete or append a few bytes (1 to ``rounds`` times)."""
    buf = bytearray(data)
    for _ in range(draw.draw(st.integers(1, rounds))):
        action = draw.draw(st.sampled_from(["flip", "truncate", "insert", "delete", "extend"]))
        if not buf:
            buf += draw.draw(st.binary(min_size=1, max_size=8))
            continue
        i = draw.draw(st.integers(0, len(buf) - 1))
        if action == "flip":
            buf[i] ^= draw.draw(st.integers(1, 255))
        elif action == "truncate":
            del buf[i:]
        elif action == "insert":
            buf[i:i] = draw.draw(st.binary(min_size=1, max_size=8))
        elif action == "delete":
            del buf[i : i + draw.draw(st.integers(1, 16))]
        else:
            buf += draw.draw(st.binary(min_size=1, max_size=8))
    return bytes(buf)
