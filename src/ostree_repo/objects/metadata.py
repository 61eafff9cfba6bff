"""Commit objects and the small ``a{sv}`` objects around them.

* :class:`Commit`: ``(a{sv}aya(say)sstayay)``, named by the SHA-256 of its bytes.
* :class:`DetachedMetadata`: ``.commitmeta``, ``a{sv}`` named after its commit (signatures).
* :class:`Tombstone`: ``.tombstone-commit``, ``{'commit': <ay hex + NUL>}`` for a deleted commit.
"""

from __future__ import annotations

import hashlib
from typing import Any

import attrs

from ostree_repo.errors import InvalidObjectError
from ostree_repo.gvariant import Variant, dumps
from ostree_repo.objects._fields import bswap64, decode, hex_checksum
from ostree_repo.objects.names import checksum_to_bytes, is_checksum

__all__ = ["COMMIT_SIGNATURE", "Commit", "DetachedMetadata", "Tombstone"]

COMMIT_SIGNATURE = "(a{sv}aya(say)sstayay)"

Metadata = dict[str, Variant]


def _check_metadata(metadata: dict[str, Any], what: str) -> Metadata:
    for key, value in metadata.items():
        if not key:
            raise InvalidObjectError(f"{what}: empty metadata key")
        if not isinstance(value, Variant):
            raise InvalidObjectError(f"{what}: metadata value for {key!r} is not a Variant")
    return metadata


@attrs.frozen(eq=True)
class Commit:
    """A commit: a root tree and its metadata, with a subject, body, timestamp and parent.

    ``timestamp`` is seconds since the epoch as a native integer (stored byte-swapped).
    Checksums are hex strings; ``parent`` is ``None`` for a root commit.
    """

    root_tree: str
    root_meta: str
    parent: str | None = None
    subject: str = ""
    body: str = ""
    timestamp: int = 0
    metadata: Metadata = attrs.field(factory=dict)
    related: tuple[tuple[str, str], ...] = ()

    @classmethod
    def from_bytes(cls, data: bytes | bytearray | memoryview) -> Commit:
        """Decode a ``.commit`` object (strict normal form)."""
        return cls.from_value(decode(COMMIT_SIGNATURE, data, "commit"))

    @classmethod
    def from_value(cls, value: tuple[Any, ...]) -> Commit:
        """Build from the decoded GVariant tuple (also used for commits embedded in deltas)."""
        metadata, parent, related, subject, body, timestamp, tree, meta = value
        return cls(
            root_tree=hex_checksum(tree, "commit root tree"),
            root_meta=hex_checksum(meta, "commit root dirmeta"),
            parent=hex_checksum(parent, "commit parent") if parent else None,
            subject=subject,
            body=body,
            timestamp=bswap64(timestamp),
            metadata=_check_metadata(metadata, "commit"),
            related=tuple((name, hex_checksum(c, "related object")) for name, c in related),
        )

    def to_value(self) -> tuple[Any, ...]:
        """The GVariant tuple for this commit."""
        return (
            _check_metadata(self.metadata, "commit"),
            checksum_to_bytes(self.parent) if self.parent is not None else b"",
            [(name, checksum_to_bytes(c)) for name, c in self.related],
            self.subject,
            self.body,
            bswap64(self.timestamp),
            checksum_to_bytes(self.root_tree),
            checksum_to_bytes(self.root_meta),
        )

    def to_bytes(self) -> bytes:
        """Serialise to the exact bytes libostree writes."""
        return dumps(COMMIT_SIGNATURE, self.to_value())

    def checksum(self) -> str:
        """The commit's name: SHA-256 of its serialised bytes."""
        return hashlib.sha256(self.to_bytes()).hexdigest()

    @property
    def content_checksum(self) -> str:
        """The tree's identity, as ``ostree log`` prints it: sha256(root tree ‖ root dirmeta)."""
        return hashlib.sha256(
            checksum_to_bytes(self.root_tree) + checksum_to_bytes(self.root_meta)
        ).hexdigest()

    @property
    def version(self) -> str | None:
        """The ``version`` metadata string, if the commit has one."""
        value = self.metadata.get("version")
        if value is not None and value.signature == "s":
            return str(value.value)
        return None


@attrs.frozen
class DetachedMetadata:
    """A ``.commitmeta`` object: metadata kept beside a commit, such as its signatures."""

    metadata: Metadata = attrs.field(factory=dict)

    @classmethod
    def from_bytes(cls, data: bytes | bytearray | memoryview) -> DetachedMetadata:
        """Decode a ``.commitmeta`` object."""
        return cls(_check_metadata(decode("a{sv}", data, "commitmeta"), "commitmeta"))

    def to_bytes(self) -> bytes:
        """Serialise in normal form."""
        return dumps("a{sv}", _check_metadata(self.metadata, "commitmeta"))


@attrs.frozen
class Tombstone:
    """A ``.tombstone-commit``: the record that ``commit`` was deliberately deleted."""

    commit: str

    @classmethod
    def from_bytes(cls, data: bytes | bytearray | memoryview) -> Tombstone:
        """Decode a ``.tombstone-commit`` object."""
        value = decode("a{sv}", data, "tombstone-commit")
        inner = value.get("commit")
        if len(value) != 1 or inner is None or inner.signature != "ay":
            raise InvalidObjectError("tombstone-commit: expected exactly {'commit': <ay>}")
        raw: bytes = inner.value
        text = raw[:-1].decode("ascii", errors="replace")
        if not raw.endswith(b"\0") or not is_checksum(text):
            raise InvalidObjectError("tombstone-commit: 'commit' is not a NUL-terminated checksum")
        return cls(text)

    def to_bytes(self) -> bytes:
        """Serialise in normal form."""
        checksum_to_bytes(self.commit)  # validates
        return dumps("a{sv}", {"commit": Variant("ay", self.commit.encode("ascii") + b"\0")})
