"""Where signatures live: the ``a{sv}`` of a commit's ``.commitmeta`` and of ``summary.sig``.

libostree keeps every signature of one kind in one ``aay`` entry of that dictionary:
``ostree.sign.ed25519`` (64-byte ed25519 signatures, ``ostree sign``) and
``ostree.gpgsigs`` (binary OpenPGP signature packets, ``ostree gpg-sign`` and
``ostree summary --gpg-sign``). Signing appends to the entry and leaves every other key
and every earlier signature as it was; ``summary.sig`` has the same form as a
``.commitmeta``. A commit's signatures sign the commit object's bytes, a summary's sign
the ``summary`` file's bytes.
"""

from __future__ import annotations

from collections.abc import Iterable

from ostree_repo.errors import GVariantError, InvalidObjectError
from ostree_repo.gvariant import Variant
from ostree_repo.objects.metadata import DetachedMetadata
from ostree_repo.signing.errors import SignatureError

__all__ = [
    "ED25519_KEY",
    "GPG_KEY",
    "SIGNATURE_KEYS",
    "add_signatures",
    "dump_signatures",
    "parse_signatures",
    "signatures",
]

#: ``aay`` of ed25519 signatures (``OSTREE_SIGN_METADATA_ED25519_KEY``)
ED25519_KEY = "ostree.sign.ed25519"
#: ``aay`` of binary OpenPGP signature packets (``_OSTREE_METADATA_GPGSIGS_NAME``)
GPG_KEY = "ostree.gpgsigs"
#: the entries that hold signatures, by kind
SIGNATURE_KEYS = {"ed25519": ED25519_KEY, "gpg": GPG_KEY}


def parse_signatures(data: bytes | None, what: str) -> dict[str, Variant]:
    """The ``a{sv}`` of a ``.commitmeta`` or ``summary.sig`` (empty for None);
    :class:`SignatureError` if it is not one (truncated, not in normal form)."""
    if data is None:
        return {}
    try:
        return DetachedMetadata.from_bytes(data).metadata
    except (GVariantError, InvalidObjectError) as e:
        raise SignatureError(f"{what}: not a valid signature dictionary ({e})") from None


def signatures(metadata: dict[str, Variant], key: str) -> list[bytes]:
    """The signatures under ``key`` (none when absent or not an ``aay``, as libostree)."""
    value = metadata.get(key)
    if value is None or value.signature != "aay":
        return []
    return [bytes(s) for s in value.value]


def add_signatures(
    metadata: dict[str, Variant], key: str, new: Iterable[bytes]
) -> dict[str, Variant]:
    """``metadata`` with ``new`` appended under ``key`` (ones already there are not added
    twice); every other entry is kept."""
    existing = signatures(metadata, key)
    added = [s for s in new if s not in existing]
    if not added:
        return dict(metadata)
    return {**metadata, key: Variant("aay", existing + added)}


def dump_signatures(metadata: dict[str, Variant]) -> bytes:
    """The normal-form bytes of a ``.commitmeta`` or ``summary.sig``."""
    return DetachedMetadata(metadata).to_bytes()
