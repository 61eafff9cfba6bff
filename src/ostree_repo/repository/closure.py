"""Commit closures: every object a commit's tree reaches, computed once per commit.

A closure holds the commit object itself, then every dirtree, dirmeta and content object
under its root, each with its stored size. It is what a version needs from the object
space for that commit, so a version's objects are the union of its commits' closures,
and copying a commit to another version copies no object.

Stored form (``closures/AB/CDEF….closure``): zstd-compressed records of 41 bytes, sorted:
one object-type byte, 32 checksum bytes, the stored size as a little-endian u64.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator

import attrs
import zstandard

from ostree_repo._tasks import for_each
from ostree_repo.errors import InvalidObjectError, NotFoundError
from ostree_repo.objects import Commit, ObjectType
from ostree_repo.objects.tree import DirTreeRefs, dirtree_references
from ostree_repo.repository.layout import closure_path
from ostree_repo.store import ObjectStore

__all__ = ["Closure", "MissingObjectError"]

_RECORD = struct.Struct("<B32sQ")
_TYPES = {
    ObjectType.FILE: 1,
    ObjectType.DIRTREE: 2,
    ObjectType.DIRMETA: 3,
    ObjectType.COMMIT: 4,
}
_CODES = {v: k for k, v in _TYPES.items()}
_TYPE_BYTES = {k: bytes([v]) for k, v in _TYPES.items()}

#: A key into a closure: object-type byte + 32 raw checksum bytes.
Key = bytes


def object_key(objtype: ObjectType, checksum: str) -> Key:
    """The compact key of an object, as closures hold it."""
    return _TYPE_BYTES[objtype] + bytes.fromhex(checksum)


def split_key(key: Key) -> tuple[ObjectType, str]:
    """Inverse of :func:`object_key`."""
    return _CODES[key[0]], key[1:].hex()


@attrs.frozen
class Closure:
    """The objects one commit reaches: key -> stored size."""

    commit: str
    sizes: dict[Key, int]

    def __iter__(self) -> Iterator[tuple[ObjectType, str]]:
        return (split_key(k) for k in self.sizes)

    def __len__(self) -> int:
        return len(self.sizes)

    @property
    def total_size(self) -> int:
        """Bytes the commit's objects take in the store."""
        return sum(self.sizes.values())

    def to_bytes(self) -> bytes:
        """Stored form: zstd of the sorted fixed-size records."""
        raw = b"".join(_RECORD.pack(k[0], k[1:], self.sizes[k]) for k in sorted(self.sizes))
        return zstandard.ZstdCompressor(level=3).compress(raw)

    @classmethod
    def from_bytes(cls, commit: str, data: bytes) -> Closure:
        """Parse a stored closure."""
        try:
            raw = zstandard.ZstdDecompressor().decompress(data)
        except zstandard.ZstdError as e:
            raise InvalidObjectError(f"corrupt closure of {commit}: {e}") from None
        if len(raw) % _RECORD.size:
            raise InvalidObjectError(f"corrupt closure of {commit}: truncated record")
        sizes = {bytes([t]) + c: s for t, c, s in _RECORD.iter_unpack(raw)}
        return cls(commit, sizes)


async def load_closure(store: ObjectStore, commit: str) -> Closure | None:
    """The stored closure of ``commit``, or None if none was saved yet."""
    try:
        data, _ = await store.read_named(closure_path(commit))
    except NotFoundError:
        return None
    return Closure.from_bytes(commit, data)


async def save_closure(store: ObjectStore, closure: Closure) -> None:
    """Store a closure (idempotent: closures of one commit are always equal)."""
    await store.write_named(closure_path(closure.commit), closure.to_bytes())


class MissingObjectError(NotFoundError):
    """An object a commit needs is not in the store (so the commit can have no closure)."""

    def __init__(self, commit: str, objtype: ObjectType, checksum: str) -> None:
        super().__init__(
            f"commit {commit} needs {objtype.value} object {checksum}, which is not in the store"
        )
        self.commit = commit
        self.objtype = objtype
        self.checksum = checksum


async def compute_closure(
    store: ObjectStore,
    commit: str,
    known_sizes: dict[Key, int] | None = None,
    concurrency: int = 32,
    *,
    trees: dict[str, tuple[int, DirTreeRefs]] | None = None,
) -> Closure:
    """Walk ``commit``'s tree in the store and return its closure.

    ``known_sizes`` (for example the closure of the parent commit) saves a size lookup for
    every object it already lists. ``trees`` caches dirtrees (stored size, references) by
    checksum: those in it are not read, those read are added, so the closures of related
    commits read each shared dirtree once. Raises :class:`MissingObjectError` naming the
    first missing object, so a closure only exists for commits whose objects are all
    stored.
    """
    known = known_sizes or {}
    cache = trees if trees is not None else {}
    sizes: dict[Key, int] = {}
    data = await _read(store, commit, ObjectType.COMMIT, commit)
    sizes[object_key(ObjectType.COMMIT, commit)] = len(data)
    root = Commit.from_bytes(data)
    pending_trees = [root.root_tree]
    metas = {root.root_meta}
    files: set[str] = set()
    seen_trees: set[str] = set(pending_trees)

    async def visit(tree: str) -> None:
        blob = await _read(store, tree, ObjectType.DIRTREE, commit)
        cache[tree] = (len(blob), dirtree_references(blob))

    while pending_trees:
        await for_each((t for t in pending_trees if t not in cache), visit, limit=concurrency)
        found, pending_trees = pending_trees, []
        for tree in found:
            size, (tree_files, tree_dirs) = cache[tree]
            sizes[object_key(ObjectType.DIRTREE, tree)] = size
            files.update(tree_files)
            for subtree, meta in tree_dirs:
                metas.add(meta)
                if subtree not in seen_trees:
                    seen_trees.add(subtree)
                    pending_trees.append(subtree)

    async def size_of(item: tuple[ObjectType, str]) -> None:
        objtype, checksum = item
        try:
            sizes[object_key(objtype, checksum)] = await store.object_size(checksum, objtype)
        except NotFoundError:
            raise MissingObjectError(commit, objtype, checksum) from None

    unknown: list[tuple[ObjectType, str]] = []
    for objtype, checksums in ((ObjectType.DIRMETA, metas), (ObjectType.FILE, files)):
        for checksum in checksums:
            key = object_key(objtype, checksum)
            if key in known:
                sizes[key] = known[key]
            else:
                unknown.append((objtype, checksum))
    await for_each(unknown, size_of, limit=concurrency)
    return Closure(commit, sizes)


async def _read(store: ObjectStore, checksum: str, objtype: ObjectType, commit: str) -> bytes:
    try:
        return await store.read_object(checksum, objtype)
    except NotFoundError:
        raise MissingObjectError(commit, objtype, checksum) from None


def union_keys(closures: Iterable[Closure]) -> set[Key]:
    """Every object key in any of ``closures``."""
    keys: set[Key] = set()
    for closure in closures:
        keys.update(closure.sizes)
    return keys
