"""Generating a version's ``summary`` as ``ostree summary -u`` would, from its record alone."""

from __future__ import annotations

from ostree_repo.gvariant import Variant
from ostree_repo.objects._fields import bswap64
from ostree_repo.objects.summary import (
    COLLECTION_ID,
    COLLECTION_MAP,
    COMMIT_TIMESTAMP,
    COMMIT_VERSION,
    LAST_MODIFIED,
    STATIC_DELTAS,
    Summary,
    SummaryRef,
)
from ostree_repo.repository.records import CommitInfo, VersionRecord

__all__ = ["build_summary"]


def _ref(name: str, checksum: str, info: CommitInfo) -> SummaryRef:
    metadata = {COMMIT_TIMESTAMP: Variant("t", bswap64(info.timestamp))}
    if info.version is not None:
        metadata[COMMIT_VERSION] = Variant("s", info.version)
    return SummaryRef(name, info.size, checksum, metadata)


def build_summary(record: VersionRecord, last_modified: int) -> bytes:
    """The summary for ``record``: refs (aliases listed as refs of their own, at their
    targets' commits, as libostree lists them) sorted by name with their commits' sizes,
    timestamps and versions; the static deltas with their superblock digests; the
    repository mode, collection ID and map; ``last-modified``.
    """
    refs = Summary.make_refs(
        [_ref(n, c, record.commits[c]) for n, c in record.resolved_refs().items()]
    )
    metadata: dict[str, Variant] = {
        "ostree.summary.mode": Variant("s", record.config.mode),
        LAST_MODIFIED: Variant("t", bswap64(last_modified)),
    }
    if record.deltas:
        digests = {name: delta.superblock for name, delta in sorted(record.deltas.items())}
        metadata[STATIC_DELTAS] = Summary.deltas_variant(digests)
    metadata["ostree.summary.tombstone-commits"] = Variant("b", bool(record.tombstones))
    metadata["ostree.summary.indexed-deltas"] = Variant("b", True)
    if record.config.collection_id:
        metadata[COLLECTION_ID] = Variant("s", record.config.collection_id)
    if record.collection_refs:
        collections = {
            cid: [_ref(n, c, record.commits[c]) for n, c in refs_of.items()]
            for cid, refs_of in record.collection_refs.items()
        }
        metadata[COLLECTION_MAP] = Summary.collection_map_variant(collections)
    return Summary(refs, metadata).to_bytes()
