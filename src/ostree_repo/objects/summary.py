"""The repository ``summary``: ``(a(s(taya{sv}))a{sv})``, and static-delta indexes.

The summary lists every ref with its commit's size, checksum and a little metadata,
sorted by ref name, plus repository-wide metadata (static deltas, last-modified, mode,
collection map). A delta index (``delta-indexes/XX/rest.index``) is an ``a{sv}`` with
the deltas that lead to one commit.
"""

from __future__ import annotations

import hashlib
from typing import Any, NamedTuple

import attrs

from ostree_repo.errors import InvalidObjectError
from ostree_repo.gvariant import Variant, dumps
from ostree_repo.objects._fields import bswap64, decode, hex_checksum
from ostree_repo.objects.names import checksum_to_bytes, validate_collection_id, validate_ref

__all__ = [
    "SUMMARY_SIGNATURE",
    "DeltaIndex",
    "Summary",
    "SummaryRef",
]

SUMMARY_SIGNATURE = "(a(s(taya{sv}))a{sv})"
_REFS = "a(s(taya{sv}))"

STATIC_DELTAS = "ostree.static-deltas"
LAST_MODIFIED = "ostree.summary.last-modified"
COLLECTION_ID = "ostree.summary.collection-id"
COLLECTION_MAP = "ostree.summary.collection-map"
COMMIT_TIMESTAMP = "ostree.commit.timestamp"
COMMIT_VERSION = "ostree.commit.version"


class SummaryRef(NamedTuple):
    """One ref in a summary: its commit, the commit object's size, and ref metadata."""

    name: str
    commit_size: int
    checksum: str
    metadata: dict[str, Variant]

    @property
    def timestamp(self) -> int | None:
        """The commit's timestamp (``ostree.commit.timestamp``, stored byte-swapped)."""
        value = self.metadata.get(COMMIT_TIMESTAMP)
        return bswap64(value.value) if value is not None and value.signature == "t" else None


def _refs_from_value(value: list[Any]) -> tuple[SummaryRef, ...]:
    refs = []
    for name, (size, checksum, metadata) in value:
        validate_ref(name)
        refs.append(SummaryRef(name, size, hex_checksum(checksum, f"summary ref {name}"), metadata))
    return tuple(refs)


def _refs_to_value(refs: tuple[SummaryRef, ...]) -> list[Any]:
    return [
        (validate_ref(r.name), (r.commit_size, checksum_to_bytes(r.checksum), r.metadata))
        for r in refs
    ]


def _deltas_from_value(value: Any, what: str) -> dict[str, str]:
    if not isinstance(value, Variant) or value.signature != "a{sv}":
        raise InvalidObjectError(f"{what}: {STATIC_DELTAS} is not a{{sv}}")
    deltas = {}
    for name, digest in value.value.items():
        if digest.signature != "ay":
            raise InvalidObjectError(f"{what}: delta {name} digest is not ay")
        deltas[name] = hex_checksum(digest.value, f"{what} delta {name}")
    return deltas


def _deltas_to_value(deltas: dict[str, str]) -> Variant:
    return Variant("a{sv}", {n: Variant("ay", checksum_to_bytes(c)) for n, c in deltas.items()})


@attrs.frozen
class Summary:
    """A decoded summary. ``refs`` keep their stored order (libostree sorts them by name)."""

    refs: tuple[SummaryRef, ...] = ()
    metadata: dict[str, Variant] = attrs.field(factory=dict)

    @classmethod
    def from_bytes(cls, data: bytes | bytearray | memoryview) -> Summary:
        """Decode a summary file (strict normal form, valid ref names and checksums)."""
        refs, metadata = decode(SUMMARY_SIGNATURE, data, "summary")
        summary = cls(_refs_from_value(refs), metadata)
        summary.static_deltas  # noqa: B018 - validates the delta map
        summary.collection_map  # noqa: B018 - validates the collection map
        return summary

    def to_bytes(self) -> bytes:
        """Serialise in normal form."""
        return dumps(SUMMARY_SIGNATURE, (_refs_to_value(self.refs), self.metadata))

    def checksum(self) -> str:
        """SHA-256 of the serialised summary (what ``summary.sig`` signs)."""
        return hashlib.sha256(self.to_bytes()).hexdigest()

    @property
    def static_deltas(self) -> dict[str, str]:
        """Delta name (``FROM-TO`` or ``TO``) -> SHA-256 of its superblock."""
        value = self.metadata.get(STATIC_DELTAS)
        return {} if value is None else _deltas_from_value(value, "summary")

    @property
    def last_modified(self) -> int | None:
        """``ostree.summary.last-modified`` as seconds since the epoch."""
        value = self.metadata.get(LAST_MODIFIED)
        return bswap64(value.value) if value is not None and value.signature == "t" else None

    @property
    def collection_id(self) -> str | None:
        """The collection ID of the main refs, if the repository has one."""
        value = self.metadata.get(COLLECTION_ID)
        return str(value.value) if value is not None and value.signature == "s" else None

    @property
    def collection_map(self) -> dict[str, tuple[SummaryRef, ...]]:
        """Refs of other collections: collection ID -> refs."""
        value = self.metadata.get(COLLECTION_MAP)
        if value is None:
            return {}
        if value.signature != "a{sa(s(taya{sv}))}":
            raise InvalidObjectError("summary: collection map has the wrong type")
        return {
            validate_collection_id(cid): _refs_from_value(refs) for cid, refs in value.value.items()
        }

    @staticmethod
    def make_refs(refs: list[SummaryRef]) -> tuple[SummaryRef, ...]:
        """Sort refs as libostree does (strcmp on the UTF-8 name)."""
        return tuple(sorted(refs, key=lambda r: r.name.encode()))

    @staticmethod
    def deltas_variant(deltas: dict[str, str]) -> Variant:
        """The ``ostree.static-deltas`` value for a delta map."""
        return _deltas_to_value(deltas)

    @staticmethod
    def collection_map_variant(collections: dict[str, list[SummaryRef]]) -> Variant:
        """The ``ostree.summary.collection-map`` value, collection IDs and refs sorted."""
        value = {
            validate_collection_id(cid): _refs_to_value(Summary.make_refs(refs))
            for cid, refs in sorted(collections.items(), key=lambda kv: kv[0].encode())
        }
        return Variant("a{sa(s(taya{sv}))}", value)


@attrs.frozen
class DeltaIndex:
    """A delta index: the static deltas whose target is one commit, with superblock digests."""

    deltas: dict[str, str] = attrs.field(factory=dict)
    metadata: dict[str, Variant] = attrs.field(factory=dict)

    @classmethod
    def from_bytes(cls, data: bytes | bytearray | memoryview) -> DeltaIndex:
        """Decode a ``.index`` file."""
        value = decode("a{sv}", data, "delta index")
        deltas = value.get(STATIC_DELTAS)
        return cls({} if deltas is None else _deltas_from_value(deltas, "delta index"), value)

    def to_bytes(self) -> bytes:
        """Serialise in normal form; other keys keep their place, the delta map is refreshed."""
        value = dict(self.metadata)
        if self.deltas or STATIC_DELTAS in value:
            value[STATIC_DELTAS] = _deltas_to_value(self.deltas)
        return dumps("a{sv}", value)
