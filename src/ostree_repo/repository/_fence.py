"""The handshake that keeps reclaim from deleting what a version being published needs.

Internal to ostree_repo: :meth:`Repository.publish
<ostree_repo.repository.repository.Repository.publish>` and :meth:`RepositoryManager.reclaim
<ostree_repo.repository.manager.RepositoryManager.reclaim>` run it.

Reclaim decides what is dead from what it scanned; a writer may start to rely on an old,
unreferenced object (an import that finds it stored, a copy of a commit from a version
deleted meanwhile) after that scan. Both sides write before they read, so one of them
always sees the other:

- a **writer**, before it creates its version record, *announces* what the version needs
  (its commits and blobs: ``publishing/NS-WRITER.json``; once the record is stored the
  announcement says which version it became, and protects only while that version
  lives; announcements are kept an hour, or the grace period if longer), then
  reads the *doomed lists* of every reclaim (``reclaims/NS-ID/NNNNNN``): if one names
  something it needs, it waits for that batch's verdict (``NNNNNN.done``, which lists
  what the reclaim spared) and publishes only if every such thing was spared, else
  raises :class:`ReclaimConflictError` (no version is made);
- **reclaim**, for each batch it deletes, first writes the batch's doomed list, then reads
  the announcements (those it has not read yet), spares whatever they need, deletes the
  rest and writes the batch's verdict.

If reclaim read the announcements after the writer wrote its own, it spared what the
writer needs; otherwise it wrote that batch's doomed list before the writer read the
lists, and the writer sees it. So no version ever names a deleted object; a writer fails
only when it relied on an object that a reclaim had already decided to delete before the
writer said so. Both files are removed by later reclaims once older than the grace period.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import anyio
import attrs
import zstandard

from ostree_repo.errors import ConflictError, InvalidNameError, InvalidObjectError, NotFoundError
from ostree_repo.repository.closure import Key, load_closure, split_key
from ostree_repo.repository.fsck import blob_paths
from ostree_repo.repository.layout import blob_path, closure_path, deleted_path, version_path
from ostree_repo.repository.records import VersionRecord
from ostree_repo.store import ObjectStore

__all__ = [
    "Announcements",
    "Doomed",
    "Fence",
    "ReclaimConflictError",
    "ReclaimJournal",
    "announce",
    "published",
    "remove_old",
]

PUBLISHING = "publishing"
RECLAIMS = "reclaims"

#: How long a writer waits for the verdict on a batch that names what it needs.
VERDICT_WAIT_SECONDS = 600.0
_POLL_SECONDS = 0.05


class ReclaimConflictError(ConflictError):
    """A reclaim deleted something the version being published needs (it relied on an
    object that was already unreferenced when the reclaim decided); nothing was published.
    Publishing again stores it anew (an import or sync writes the objects again)."""


def _stamp() -> str:
    return f"{time.time_ns():020d}-{uuid.uuid4().hex[:12]}"


async def announce(store: ObjectStore, record: VersionRecord) -> tuple[str, dict[str, Any]]:
    """Say that ``record`` is about to be published, and what it needs that a reclaim
    could delete: its commits (their closures and objects) and its blobs. Returns the
    announcement's path and content."""
    doc = {
        "created": time.time(),
        "repository": record.repository,
        "commits": sorted(record.commits),
        "blobs": sorted(set(blob_paths(record))),
    }
    path = f"{PUBLISHING}/{_stamp()}.json"
    await store.write_named(path, json.dumps(doc).encode())
    return path, doc


async def published(
    store: ObjectStore, announcement: tuple[str, dict[str, Any]], record: VersionRecord
) -> None:
    """Say that an announcement became version ``record`` (from now on it protects only
    while that version lives)."""
    path, doc = announcement
    await store.write_named(path, json.dumps(doc | {"published": record.number}).encode())


async def _alive(store: ObjectStore, repository: str, number: int) -> bool:
    """True while version ``number`` of ``repository`` is stored and not deleted."""
    try:
        await store.read_named(deleted_path(repository, number))
    except NotFoundError:
        try:
            await store.read_named(version_path(repository, number))
        except NotFoundError:
            return False
        return True
    return False


@attrs.frozen
class Doomed:
    """One batch a reclaim is about to delete: object keys and named files."""

    objects: frozenset[Key] = frozenset()
    files: frozenset[str] = frozenset()

    def to_bytes(self) -> bytes:
        doc = {"objects": sorted(k.hex() for k in self.objects), "files": sorted(self.files)}
        return zstandard.ZstdCompressor().compress(json.dumps(doc).encode())

    @classmethod
    def from_bytes(cls, data: bytes) -> Doomed:
        try:
            doc = json.loads(zstandard.ZstdDecompressor().decompress(data))
            return cls(frozenset(bytes.fromhex(k) for k in doc["objects"]), frozenset(doc["files"]))
        except (zstandard.ZstdError, ValueError, KeyError, TypeError) as e:
            raise InvalidObjectError(f"corrupt reclaim list: {e}") from None


class Announcements:
    """The announcements a reclaim has read, and what they need (objects, files)."""

    def __init__(self, store: ObjectStore) -> None:
        self.store = store
        self.read: set[str] = set()
        self.objects: set[Key] = set()
        self.files: set[str] = set()
        self.commits: set[str] = set()

    async def refresh(self) -> None:
        """Read the announcements not read yet; add what they need."""
        async for path in self.store.list_named(PUBLISHING):
            if path in self.read:
                continue
            try:
                data, _ = await self.store.read_named(path)
                doc = json.loads(data)
                commits, blobs = list(doc["commits"]), list(doc["blobs"])
                number = doc.get("published")
                if number is not None and not await _alive(self.store, doc["repository"], number):
                    self.read.add(path)  # that version was deleted since: nothing to keep
                    continue
            except NotFoundError:  # an old one, removed meanwhile
                continue
            except (ValueError, KeyError, TypeError, InvalidNameError):
                self.read.add(path)  # not one of ours: nothing to keep for it
                continue
            for commit in commits:
                if commit in self.commits:
                    continue
                self.commits.add(commit)
                self.files.add(closure_path(commit))
                closure = await load_closure(self.store, commit)
                if closure is not None:
                    self.objects.update(closure.sizes)
            self.files.update(blob_path(b) for b in blobs)
            self.read.add(path)


class ReclaimJournal:
    """One reclaim's doomed lists and verdicts (``reclaims/NS-ID/``), batch by batch:
    :meth:`propose`, :meth:`spare`, delete what it returns, :meth:`done`."""

    def __init__(self, store: ObjectStore) -> None:
        self.store = store
        self.prefix = f"{RECLAIMS}/{_stamp()}"
        self.announcements = Announcements(store)
        self._batches = 0
        self._name = ""
        self._doomed = self._kept = Doomed()

    async def propose(self, objects: Iterable[Key], files: Iterable[str]) -> None:
        """Publish the doomed list of the next batch."""
        self._doomed = Doomed(frozenset(objects), frozenset(files))
        self._batches += 1
        self._name = f"{self.prefix}/{self._batches:06d}"
        await self.store.write_named(self._name, self._doomed.to_bytes())

    async def spare(self) -> Doomed:
        """Read the announcements: the batch less what they need, which may go."""
        await self.announcements.refresh()
        self._kept = Doomed(
            self._doomed.objects - self.announcements.objects,
            self._doomed.files - self.announcements.files,
        )
        return self._kept

    async def done(self) -> None:
        """The batch is deleted: publish its verdict (what it spared)."""
        spared = Doomed(
            self._doomed.objects - self._kept.objects, self._doomed.files - self._kept.files
        )
        await self.store.write_named(f"{self._name}.done", spared.to_bytes())


async def remove_old(store: ObjectStore, cutoff: float) -> None:
    """Remove announcements and reclaim journals written before ``cutoff``."""
    for prefix in (PUBLISHING, RECLAIMS):
        async for info in store.list_named_info(prefix):
            if info.mtime < cutoff:
                await store.delete_named(info.path)


class Fence:
    """The writer's side: checks a version's needs against every reclaim's doomed lists
    (lists are immutable: each is read once per process)."""

    def __init__(
        self,
        store: ObjectStore,
        sleep: Callable[[float], Awaitable[Any]] = anyio.sleep,
        wait_seconds: float = VERDICT_WAIT_SECONDS,
    ) -> None:
        self.store = store
        self._lists: dict[str, Doomed] = {}
        self._sleep = sleep
        self.wait_seconds = wait_seconds

    async def _read(self, path: str) -> Doomed | None:
        cached = self._lists.get(path)
        if cached is None:
            try:
                data, _ = await self.store.read_named(path)
            except NotFoundError:
                return None
            cached = self._lists[path] = Doomed.from_bytes(data)
        return cached

    async def check(self, record: VersionRecord) -> None:
        """Raise :class:`ReclaimConflictError` if a reclaim deleted (or is deleting)
        something ``record`` needs; wait for the verdict of a batch still being deleted."""
        lists = [p async for p in self.store.list_named(RECLAIMS) if not p.endswith(".done")]
        if not lists:
            return
        files = {closure_path(c) for c in record.commits}
        files |= {blob_path(b) for b in set(blob_paths(record))}
        closures = None
        for path in sorted(lists):
            doomed = await self._read(path)
            if doomed is None:
                continue
            hit_files = set(doomed.files & files)
            hit_objects: set[Key] = set()
            if doomed.objects:
                if closures is None:
                    closures = [await load_closure(self.store, c) for c in record.commits]
                for closure in closures:
                    if closure is not None:
                        hit_objects.update(doomed.objects.intersection(closure.sizes))
            if hit_files or hit_objects:
                await self._verdict(path, hit_objects, hit_files)

    async def _missing_objects(self, keys: set[Key]) -> set[Key]:
        ordered = sorted(keys)
        present = await self.store.has_objects(split_key(k)[::-1] for k in ordered)
        return {k for k, there in zip(ordered, present, strict=True) if not there}

    async def _missing_files(self, paths: set[str]) -> set[str]:
        missing = set()
        for path in sorted(paths):
            try:
                async with self.store.open_named(path):
                    pass
            except NotFoundError:
                missing.add(path)
        return missing

    async def _verdict(self, path: str, objects: set[Key], files: set[str]) -> None:
        deadline = time.monotonic() + self.wait_seconds
        while True:
            try:
                data, _ = await self.store.read_named(f"{path}.done")
            except NotFoundError:
                if time.monotonic() > deadline:
                    raise ReclaimConflictError(
                        f"reclaim {path} is deleting objects this version needs and did "
                        f"not finish within {self.wait_seconds:g} s"
                    ) from None
                await self._sleep(_POLL_SECONDS)
                continue
            spared = Doomed.from_bytes(data)
            # deleted, unless stored again since (an import writes what is missing)
            lost = (
                await self._missing_objects(objects - spared.objects),
                await self._missing_files(files - spared.files),
            )
            if lost[0] or lost[1]:
                what = sorted(k.hex() for k in lost[0])[:3] + sorted(lost[1])[:3]
                raise ReclaimConflictError(
                    f"reclaim deleted {len(lost[0])} object(s) and {len(lost[1])} file(s) "
                    f"this version needs (it relied on them after the reclaim decided to "
                    f"delete them): {', '.join(what)}; nothing was published"
                )
            return
