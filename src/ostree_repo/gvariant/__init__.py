"""A pure-Python GVariant codec, byte-identical to GLib's normal form.

``dumps(signature, value)`` encodes and ``loads(signature, data)`` decodes strictly. Python
values map to GVariant types as follows:

| GVariant              | Python |
|-----------------------|--------|
| ``b``                 | ``bool`` |
| ``y n q i u x t h``   | ``int`` |
| ``d``                 | ``float`` |
| ``s o g``             | ``str`` |
| ``ay``                | ``bytes`` (any bytes-like object when encoding) |
| other ``a``           | ``list`` (a tuple is accepted when encoding) |
| ``a{..}``             | ``dict`` (insertion order is the serialised order) |
| ``(..)`` and ``{..}`` | ``tuple`` |
| ``m``                 | ``None`` for Nothing, else the value (see below) |
| ``v``                 | :class:`Variant` |

:class:`Just` wraps the value of a maybe whose element is itself a maybe.

Decoding accepts only normal form: any input that decodes re-encodes to the same bytes.
Duplicate keys in a dictionary are refused on decoding, since a ``dict`` cannot hold them.
"""

from ostree_repo.errors import GVariantError
from ostree_repo.gvariant.decoder import decoder_for, loads
from ostree_repo.gvariant.encoder import dumps, encoder_for
from ostree_repo.gvariant.signature import (
    MAX_DEPTH,
    GType,
    is_object_path,
    is_signature,
    parse_type,
)
from ostree_repo.gvariant.text import format_value, to_json
from ostree_repo.gvariant.values import Just, Variant

__all__ = [
    "MAX_DEPTH",
    "GType",
    "GVariantError",
    "Just",
    "Variant",
    "decoder_for",
    "dumps",
    "encoder_for",
    "format_value",
    "is_object_path",
    "is_signature",
    "loads",
    "parse_type",
    "to_json",
]
