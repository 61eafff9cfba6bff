"""Storage accounting: what a version, a ref or a commit costs, and what only it costs.

Every figure counts stored bytes: OSTree objects as stored (``.filez`` for files) and the
blobs a version serves (detached metadata, static-delta superblocks and parts, summaries
and their signatures). An object shared by several items is counted once in each item's
*bytes*, and in no item's *unique bytes*: those are what deleting the item would free, the
bytes that nothing else alive in the store (any other surviving version of any
repository, and, for a ref or a commit, any other ref or commit of the same version) uses.

What each item holds:

- a **version**: every object its commits reach, and every blob its record names;
- a **ref**: the commit it points at and that commit's parents in the version (its
  history there), with their detached metadata and the deltas that lead to them;
  commits that no ref reaches are one more item, ``None``;
- a **commit**: the objects its tree reaches (its closure), its detached metadata, and
  the deltas that lead to it (a delta ``FROM-TO`` serves ``TO``).

Closures are immutable and stored per commit (:mod:`.closure`), so an answer costs
reading the version records and the closures of the live commits once; a manager keeps
the closures it read (:meth:`RepositoryManager.closure
<ostree_repo.repository.manager.RepositoryManager.closure>`), so later answers in the same
process only redo the set arithmetic.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Literal

import attrs

from ostree_repo._tasks import for_each
from ostree_repo.errors import OstreeRepoError
from ostree_repo.objects.names import parse_delta_name
from ostree_repo.repository._content import history
from ostree_repo.repository.closure import Closure, Key
from ostree_repo.repository.fsck import blob_paths
from ostree_repo.repository.records import VersionRecord
from ostree_repo.repository.repository import VersionNotFoundError

if TYPE_CHECKING:
    from ostree_repo.repository.manager import RepositoryManager

__all__ = ["Usage", "UsageReport", "usage"]

By = Literal["ref", "commit"]

#: How many version records or closures are read at once.
READ_CONCURRENCY = 16


@attrs.frozen
class Usage:
    """What one item uses: ``bytes`` over ``objects`` (OSTree objects and blobs), and the
    ``unique_bytes`` over ``unique_objects`` that only it uses."""

    bytes: int
    objects: int
    unique_bytes: int
    unique_objects: int

    def to_json(self) -> dict[str, int]:
        """A JSON-ready dict."""
        return attrs.asdict(self)


@attrs.frozen
class UsageReport:
    """The storage a version uses, and per ref or per commit (``by``) what each uses.

    ``items`` maps a ref name (``(collection ID, ref)`` for a collection ref; None for
    the commits no ref reaches) or a commit checksum to its :class:`Usage`. ``live_bytes``
    is what every surviving version of every repository of the store uses, each object
    counted once.
    """

    repository: str
    version: int
    total: Usage
    by: By | None = None
    items: Mapping[Any, Usage] = attrs.field(factory=dict)
    live_bytes: int = 0

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (items as a list, in the order of :attr:`items`)."""
        rows: list[dict[str, Any]] = []
        for item, use in self.items.items():
            if self.by == "commit":
                label: dict[str, Any] = {"commit": item}
            elif isinstance(item, tuple):
                label = {"ref": item[1], "collection_id": item[0]}
            else:
                label = {"ref": item}
            rows.append(label | use.to_json())
        doc = {"repository": self.repository, "version": self.version}
        doc |= self.total.to_json()
        return doc | {"live_bytes": self.live_bytes, "by": self.by, "items": rows}


def record_blobs(record: VersionRecord) -> set[str]:
    """Every blob a version record names."""
    return set(blob_paths(record))


def _commit_blobs(record: VersionRecord) -> dict[str, set[str]]:
    """commit -> the blobs that serve it: its detached metadata, the deltas to it."""
    blobs: dict[str, set[str]] = {c: set() for c in record.commits}
    for checksum, info in record.commits.items():
        if info.commitmeta:
            blobs[checksum].add(info.commitmeta)
    for name, delta in record.deltas.items():
        _, end = parse_delta_name(name)
        if end in blobs:
            blobs[end].add(delta.superblock)
            blobs[end].update(p for p in delta.parts if p is not None)
    return blobs


async def surviving_versions(manager: RepositoryManager) -> list[VersionRecord]:
    """Every surviving version of every repository of the store (read concurrently)."""
    found: list[VersionRecord] = []

    async def read(item: tuple[str, int]) -> None:
        name, number = item
        with contextlib.suppress(VersionNotFoundError):  # deleted meanwhile
            found.append(await manager.repository(name).version(number))

    wanted = [
        (name, number)
        for name in await manager.repositories()
        for number in await manager.repository(name).version_numbers()
        if number
    ]
    await for_each(wanted, read, limit=READ_CONCURRENCY)
    return found


async def _load_closures(manager: RepositoryManager, commits: Iterable[str]) -> dict[str, Closure]:
    """commit -> its closure (the manager's cache, else read concurrently)."""
    closures: dict[str, Closure] = {}

    async def load(commit: str) -> None:
        closures[commit] = await manager.closure(commit)

    await for_each(commits, load, limit=READ_CONCURRENCY)
    return closures


async def blob_sizes(manager: RepositoryManager) -> dict[str, int]:
    """digest -> stored size of every blob in the store (one listing)."""
    sizes = {}
    async for info in manager.store.list_named_info("blobs"):
        _, head, tail = info.path.split("/")
        sizes[head + tail] = info.size
    return sizes


class _Sizes:
    """Sizes of objects (from closures) and blobs, and sums over sets of them."""

    def __init__(self, closures: Mapping[str, Closure], blobs: Mapping[str, int]) -> None:
        self._closures = closures
        self._objects: dict[Key, int] = {}
        for closure in closures.values():
            self._objects.update(closure.sizes)
        self._blobs = blobs

    def keys(self, commits: Iterable[str]) -> set[Key]:
        """Every object the ``commits`` reach."""
        keys: set[Key] = set()
        for commit in commits:
            keys.update(self._closures[commit].sizes)
        return keys

    def of(self, keys: Iterable[Key], blobs: Iterable[str]) -> tuple[int, int]:
        objects = self._objects
        key_list = list(keys)
        blob_list = list(blobs)
        total = sum(objects[k] for k in key_list) + sum(self._blobs.get(b, 0) for b in blob_list)
        return total, len(key_list) + len(blob_list)

    def usage(
        self, keys: set[Key], blobs: set[str], unique_keys: set[Key], unique_blobs: set[str]
    ) -> Usage:
        size, count = self.of(keys, blobs)
        unique, unique_count = self.of(unique_keys, unique_blobs)
        return Usage(size, count, unique, unique_count)


def _holders(record: VersionRecord, by: By) -> dict[Any, set[str]]:
    """item -> the commits it holds, for ``by`` refs or commits."""
    if by == "commit":
        ordered = sorted(record.commits, key=lambda c: (record.commits[c].timestamp, c))
        return {c: {c} for c in ordered}
    holders: dict[Any, set[str]] = {}
    for name, head in sorted(record.refs.items()):
        holders[name] = set(history(record.commits, head, -1))
    for cid, refs in sorted(record.collection_refs.items()):
        for name, head in sorted(refs.items()):
            holders[(cid, name)] = set(history(record.commits, head, -1))
    reached = set().union(*holders.values()) if holders else set()
    loose = set(record.commits) - reached
    if loose:
        holders[None] = loose
    return holders


async def usage(
    manager: RepositoryManager, name: str, version: int | None = None, by: By | None = None
) -> UsageReport:
    """The storage version ``version`` (default: the latest) of ``name`` uses, and what
    only it uses; with ``by``, the same for each of its refs or commits."""
    if by not in (None, "ref", "commit"):
        raise OstreeRepoError(f"du by {by!r}: say ref or commit")
    target = await manager.repository(name).version(version)
    others = [
        r
        for r in await surviving_versions(manager)
        if (r.repository, r.number) != (target.repository, target.number)
    ]
    other_commits = {c for r in others for c in r.commits}
    closures = await _load_closures(manager, other_commits | set(target.commits))
    sizes = _Sizes(closures, await blob_sizes(manager))
    # what the rest of the store keeps alive
    elsewhere = sizes.keys(other_commits)
    elsewhere_blobs = {b for r in others for b in record_blobs(r)}
    keys = sizes.keys(target.commits)
    blobs = record_blobs(target)
    total = sizes.usage(keys, blobs, keys - elsewhere, blobs - elsewhere_blobs)
    live_bytes, _ = sizes.of(keys | elsewhere, blobs | elsewhere_blobs)
    items: dict[Any, Usage] = {}
    if by is not None:
        commit_blobs = _commit_blobs(target)
        holders = _holders(target, by)
        held = {item: sizes.keys(commits) for item, commits in holders.items()}
        held_blobs = {
            item: set().union(*(commit_blobs[c] for c in commits))
            for item, commits in holders.items()
        }
        key_count: Counter[Key] = Counter()
        blob_count: Counter[str] = Counter()
        for item in holders:
            key_count.update(held[item])
            blob_count.update(held_blobs[item])
        for item in holders:
            only_keys = {k for k in held[item] if key_count[k] == 1} - elsewhere
            only_blobs = {b for b in held_blobs[item] if blob_count[b] == 1} - elsewhere_blobs
            items[item] = sizes.usage(held[item], held_blobs[item], only_keys, only_blobs)
    return UsageReport(name, target.number, total, by, items, live_bytes)
