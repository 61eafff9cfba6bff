"""Python values that GVariant needs beyond the builtins: variants and nested maybes."""

from __future__ import annotations

from typing import Any

import attrs

__all__ = ["Just", "Variant"]


@attrs.frozen(repr=False)
class Variant:
    """A GVariant ``v``: a value together with its own type string.

    Two variants are equal when both the signature and the value are equal.
    """

    signature: str
    value: Any

    def __repr__(self) -> str:
        return f"Variant({self.signature!r}, {self.value!r})"


@attrs.frozen(repr=False)
class Just:
    """``Just value`` for a maybe whose element is itself a maybe (``mmi``, ``mms``, ...).

    For a plain maybe, ``None`` is Nothing and any other Python value is Just that value.
    When the element is a maybe too, ``None`` alone could not tell Nothing from
    Just-Nothing, so the outer Just is spelt ``Just(inner)``: ``Just(None)`` is Just-Nothing
    of type ``mmi``, ``Just(5)`` is Just-Just-5.
    """

    value: Any

    def __repr__(self) -> str:
        return f"Just({self.value!r})"
