"""The repositories of one store, and what works across them: copy, fsck, reclaim.

:class:`RepositoryManager` is the entry point of the repository layer::

    async with RepositoryManager.open("./ostree-store") as manager:
        repo = await manager.create_repository("fedora")
        version = await manager.copy("staging", "fedora", refs=["fedora/x86_64/iot"])
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import attrs

from ostree_repo._tasks import for_each
from ostree_repo.errors import ConflictError, NotFoundError
from ostree_repo.objects import ObjectType, object_path
from ostree_repo.repository._content import add_content, remove_content, select
from ostree_repo.repository._fence import Doomed, ReclaimJournal, remove_old
from ostree_repo.repository.blobs import read_blob
from ostree_repo.repository.closure import (
    Closure,
    Key,
    compute_closure,
    load_closure,
    object_key,
    save_closure,
)
from ostree_repo.repository.fsck import FsckReport, RepairSource, blob_paths, fsck_version
from ostree_repo.repository.hooks import PublishHook, check_settings, default_hooks
from ostree_repo.repository.layout import repo_path
from ostree_repo.repository.records import CommitInfo, VersionRecord
from ostree_repo.repository.repository import Repository
from ostree_repo.store import ObjectInfo, ObjectStore, open_store

if TYPE_CHECKING:
    from ostree_repo.signing import SigningKey, SigningKeys

__all__ = ["FsckReport", "ReclaimReport", "RepositoryManager"]

#: Objects and files younger than this are never reclaimed (like git's prune expiry).
DEFAULT_GRACE_SECONDS = 3600.0
_CONCURRENCY = 16  # store calls in flight in a walk over many objects or files
_DELETE_BATCH = 1024  # objects reclaim finds before it deletes them

#: Announcements and doomed lists are kept at least this long (see :mod:`._fence`).
_FENCE_SECONDS = 3600.0

#: A reclaim checkpoint (for tests): awaited with the name of the step reached.
Checkpoint = Callable[[str], Awaitable[None]]


@attrs.frozen
class ReclaimReport:
    """What ``reclaim`` deleted (or, in a dry run, would delete)."""

    objects: int
    object_bytes: int
    files: int
    file_bytes: int
    dry_run: bool
    #: version records collected (records of deleted versions)
    records: int = 0
    #: with ``listing``: (path in the store, bytes) of each object and file
    items: tuple[tuple[str, int], ...] = ()

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (``items`` as ``[{"path", "bytes"}]``)."""
        doc = attrs.asdict(self)
        doc["items"] = [{"path": p, "bytes": b} for p, b in self.items]
        return doc


class RepositoryManager:
    """All repositories of ``store``. The store must be open while the manager is used."""

    def __init__(
        self,
        store: ObjectStore,
        *,
        hooks: Sequence[PublishHook] | None = None,
        keys: SigningKeys | Iterable[SigningKey] | None = None,
    ) -> None:
        self.store = store
        #: what runs whenever one of its repositories makes a version (see
        #: :mod:`ostree_repo.repository.hooks`); :func:`default_hooks` unless given
        #: (``keys``: the private keys its repositories may sign with, never stored)
        self.hooks = default_hooks(keys=keys) if hooks is None else tuple(hooks)
        self._closures: dict[str, Closure] = {}

    @classmethod
    @asynccontextmanager
    async def open(
        cls,
        url: str,
        *,
        hooks: Sequence[PublishHook] | None = None,
        keys: SigningKeys | Iterable[SigningKey] | None = None,
        **store_options: Any,
    ) -> AsyncIterator[RepositoryManager]:
        """Open the store at ``url`` (see :func:`~ostree_repo.store.open_store` for the
        options) and yield a manager for it (``hooks``, ``keys``: as for the
        constructor)."""
        async with open_store(url, **store_options) as store:
            yield cls(store, hooks=hooks, keys=keys)

    # -- repositories --------------------------------------------------------------------

    def repository(self, name: str) -> Repository:
        """Repository ``name`` (no I/O; see :meth:`Repository.exists`)."""
        return Repository(self.store, name, self.hooks)

    async def create_repository(
        self, name: str, *, exist_ok: bool = False, settings: Mapping[str, Any] | None = None
    ) -> Repository:
        """Create repository ``name``; ConflictError if it exists (unless ``exist_ok``).

        ``settings`` (sections of :meth:`Repository.configure`) are checked first and
        become version 1 of a new repository; an existing one (``exist_ok``) is
        configured with them only where they differ.
        """
        repo = self.repository(name)
        if settings:
            check_settings(self.hooks, {n: v for n, v in settings.items() if v is not None})
        doc = json.dumps({"name": name, "created": time.time()}).encode()
        try:
            await self.store.create_named(repo_path(name), doc)
        except ConflictError:
            if not exist_ok:
                raise ConflictError(f"repository {name} already exists") from None
        if settings:
            await repo.configure(settings)
        return repo

    async def configure(self, name: str, settings: Mapping[str, Any]) -> VersionRecord | None:
        """Change the settings of repository ``name`` (see :meth:`Repository.configure`)."""
        return await self.repository(name).configure(settings)

    async def repositories(self) -> list[str]:
        """The names of all repositories, sorted."""
        names = []
        async for path in self.store.list_named("repos"):
            base = path.rsplit("/", 1)[-1]
            if base.endswith(".json"):
                names.append(base.removesuffix(".json"))
        return sorted(names)

    async def delete_repository(self, name: str) -> None:
        """Delete a repository and all its versions (their numbers are never reused)."""
        repo = self.repository(name)
        if not await repo.exists():
            raise NotFoundError(f"repository {name} does not exist")
        for number in await repo.version_numbers():
            if number:
                with contextlib.suppress(NotFoundError):  # deleted concurrently
                    await repo.delete_version(number)
        await self.store.delete_named(repo_path(name))

    # -- closures --------------------------------------------------------------------------

    async def closure(self, commit: str) -> Closure:
        """The stored closure of ``commit`` (cached); NotFoundError if it has none."""
        cached = self._closures.get(commit)
        if cached is None:
            cached = await load_closure(self.store, commit)
            if cached is None:
                raise NotFoundError(f"commit {commit} has no closure in the store")
            self._closures[commit] = cached
        return cached

    async def ensure_closure(self, commit: str, parent: str | None = None) -> Closure:
        """The closure of ``commit``, computed from the store and saved if it is new.

        Fails with NotFoundError when an object the commit needs is not stored: no
        version can name a commit whose tree is incomplete.
        """
        existing = self._closures.get(commit) or await load_closure(self.store, commit)
        if existing is None:
            known: dict[Key, int] = {}
            if parent is not None:
                parent_closure = await load_closure(self.store, parent)
                if parent_closure is not None:
                    known = parent_closure.sizes
            existing = await compute_closure(self.store, commit, known)
            await save_closure(self.store, existing)
        self._closures[commit] = existing
        return existing

    async def version_objects(self, record: VersionRecord) -> dict[Key, int]:
        """Every object of a version with its stored size (the union of its closures)."""
        objects: dict[Key, int] = {}
        for commit in record.commits:
            objects.update((await self.closure(commit)).sizes)
        return objects

    async def version_size(self, record: VersionRecord) -> int:
        """Bytes of objects the version reaches (shared objects counted once)."""
        return sum((await self.version_objects(record)).values())

    # -- copy and remove ---------------------------------------------------------------------

    async def copy(
        self,
        source: str,
        destination: str,
        *,
        version: int | None = None,
        refs: Iterable[str] = (),
        commits: Iterable[str] = (),
        depth: int = 0,
        whole: bool = False,
        create: bool = False,
    ) -> VersionRecord | None:
        """Copy refs, commits or a whole version of ``source`` into a new version of
        ``destination`` (same store). Each commit comes with ``depth`` parents (-1: all),
        its detached metadata, and the deltas whose both ends end up present. Objects are
        shared, never duplicated. Returns the new version, or None if nothing changed.

        With ``create``, a missing ``destination`` is created, once the selection is known
        to be good (a refused copy makes no repository).
        """
        source_repo = self.repository(source)
        if not await source_repo.exists():
            raise NotFoundError(f"repository {source} does not exist")
        src = await source_repo.version(version)
        selection = select(src, refs, commits, depth, whole)
        for commit in selection.commits:
            await self.closure(commit)  # every commit of a version has one
        await self._admit_copied(destination, selection.commits)
        if create:
            await self.create_repository(destination, exist_ok=True)

        async def change(base: VersionRecord) -> VersionRecord:
            return add_content(base, selection)

        action = {
            "kind": "copy",
            "source": source,
            "source_version": src.number,
            "refs": list(refs),
            "commits": list(commits),
            "depth": depth,
            "whole": whole,
        }
        return await self.repository(destination).publish(change, action)

    async def _admit_copied(self, name: str, commits: Mapping[str, CommitInfo]) -> None:
        """Let the hooks refuse copied commits that ``name`` does not hold yet."""
        repo = self.repository(name)
        if not await repo.exists():
            return  # publish says so
        latest = await repo.version()
        for checksum, info in commits.items():
            if checksum in latest.commits:
                continue
            data = await self.store.read_object(checksum, ObjectType.COMMIT)
            meta = await read_blob(self.store, info.commitmeta) if info.commitmeta else None
            for hook in self.hooks:
                await hook.admit_commit(repo, latest.settings, checksum, data, meta)

    async def remove(
        self, name: str, *, refs: Iterable[str] = (), commits: Iterable[str] = ()
    ) -> VersionRecord | None:
        """A new version of ``name`` without the given refs and commits."""
        ref_list, commit_list = list(refs), list(commits)

        async def change(base: VersionRecord) -> VersionRecord:
            return remove_content(base, ref_list, commit_list)

        action = {"kind": "remove", "refs": ref_list, "commits": commit_list}
        return await self.repository(name).publish(change, action)

    # -- fsck ---------------------------------------------------------------------------------

    async def fsck(
        self,
        name: str,
        version: int | None = None,
        *,
        repair_from: Sequence[RepairSource] | None = None,
        processes: int | None = None,
    ) -> FsckReport:
        """Check that every object and blob a version reaches exists and verifies, as
        ``ostree fsck`` does (see ``ostree_repo.repository.fsck``).

        An I/O error is reported as *unreadable* (not checked), never as damage.
        ``repair_from``: sources (tried in order) to fetch damaged objects and blobs from,
        each verified before it replaces the damaged copy; missing or corrupt closures are
        computed again. ``processes``: checker processes for a filesystem store (None:
        one per CPU up to 4; 0: none).
        """
        record = await self.repository(name).version(version)
        report = await fsck_version(
            self.store, record, self.closure, repair_from=repair_from, processes=processes
        )
        for label in report.repaired:
            if label.startswith("closure "):
                self._closures.pop(label.removeprefix("closure "), None)
        return report

    # -- reclaim -------------------------------------------------------------------------------

    async def _live(self) -> tuple[set[Key], set[str], set[str]]:
        """(object keys, blob digests, commits with a closure) that surviving versions use."""
        objects: set[Key] = set()
        blobs: set[str] = set()
        commits: set[str] = set()
        for name in await self.repositories():
            repo = self.repository(name)
            for record in await repo.versions():
                blobs.update(blob_paths(record))
                commits.update(record.commits)

        async def add(commit: str) -> None:
            cached = self._closures.get(commit)  # (not cached otherwise: a whole store's)
            closure = cached or await load_closure(self.store, commit)
            if closure is None:
                raise NotFoundError(f"commit {commit} has no closure in the store")
            objects.update(closure.sizes)

        await for_each(sorted(commits), add, limit=_CONCURRENCY)
        return objects, blobs, commits

    async def reclaim(
        self,
        *,
        grace_seconds: float = DEFAULT_GRACE_SECONDS,
        dry_run: bool = False,
        listing: bool = False,
        checkpoint: Checkpoint | None = None,
    ) -> ReclaimReport:
        """Delete objects, blobs and closures that no surviving version of any repository
        needs and that are older than ``grace_seconds``, and collect the records of
        deleted versions (see :meth:`Repository.collect_records`).

        Safe beside running imports, syncs and any other writer: what they write is
        younger than the grace period, closures they saved (before publishing) protect
        every object they rely on, and each batch is deleted only after its doomed list
        is published and the announcements of versions being published were read (see
        :mod:`._fence`): a writer that starts relying on an old unreferenced object after
        the scan either gets it spared or fails without publishing. Closures go before
        the objects they list (an interrupted reclaim leaves unreferenced objects, never
        a closure that names deleted ones); objects are deleted in bounded batches as the
        listing finds them. ``listing`` puts every object and file that goes (or would
        go) in the report, with its size. ``checkpoint`` (for tests) is awaited with
        ``"scanned"``, and for each batch ``"listed"`` and ``"spared"``, before the
        deletes.
        """
        started = time.time()
        cutoff = started - grace_seconds
        records = 0
        if not dry_run:
            async for name in self._logs():
                records += await self.repository(name).collect_records()
        # Announcements first: a version published after this read is in the scan below.
        journal = ReclaimJournal(self.store)
        await journal.announcements.refresh()
        live_objects, live_blobs, live_commits = await self._live()
        live_objects |= journal.announcements.objects
        live_commits |= journal.announcements.commits
        # Closures written recently belong to versions being made: keep what they reach.
        doomed_files: list[tuple[str, int]] = []
        async for info in self.store.list_named_info("closures"):
            commit = _commit_of(info.path)
            if commit in live_commits:
                continue
            if info.mtime >= cutoff:
                closure = await load_closure(self.store, commit)
                if closure is not None:
                    live_objects.update(closure.sizes)
            else:
                doomed_files.append((info.path, info.size))
        async for info in self.store.list_named_info("blobs"):
            digest = info.path.split("/")[1] + info.path.split("/")[2]
            needed = digest in live_blobs or info.path in journal.announcements.files
            if not needed and info.mtime < cutoff:
                doomed_files.append((info.path, info.size))
        if checkpoint is not None:
            await checkpoint("scanned")
        tally = _Tally(listing)

        async def delete_file(path: str) -> None:
            await self.store.delete_named(path)
            if path.startswith("closures/"):
                self._closures.pop(_commit_of(path), None)

        async def delete_object(obj: ObjectInfo) -> None:
            await self.store.delete_object(obj.checksum, obj.objtype)

        async def guarded(objects: Iterable[Key], files: Iterable[str]) -> Doomed:
            await journal.propose(objects, files)
            if checkpoint is not None:
                await checkpoint("listed")
            kept = await journal.spare()
            if checkpoint is not None:
                await checkpoint("spared")
            return kept

        async def delete_objects(batch: list[ObjectInfo]) -> None:
            if dry_run:
                tally.add_objects(batch)
                return
            keyed = {}
            going = []  # objects of types no version names (no closure lists them)
            for obj in batch:
                key = _key(obj.objtype, obj.checksum)
                if key is None:
                    going.append(obj)
                else:
                    keyed[key] = obj
            kept = await guarded(keyed, ())
            going += [obj for key, obj in keyed.items() if key in kept.objects]
            await for_each(going, delete_object, limit=_CONCURRENCY)
            await journal.done()
            tally.add_objects(going)

        if dry_run:
            tally.add_files(doomed_files)
        elif doomed_files:
            sizes = dict(doomed_files)
            going = sorted((await guarded((), sizes)).files)
            await for_each(going, delete_file, limit=_CONCURRENCY)
            await journal.done()
            tally.add_files([(path, sizes[path]) for path in going])
        batch: list[ObjectInfo] = []
        async for obj in self.store.list_objects_info():
            key = _key(obj.objtype, obj.checksum)
            if (key is None or key not in live_objects) and obj.mtime < cutoff:
                batch.append(obj)
                if len(batch) >= _DELETE_BATCH:
                    await delete_objects(batch)
                    batch = []
        if batch:
            await delete_objects(batch)
        if not dry_run:
            await remove_old(self.store, started - max(grace_seconds, _FENCE_SECONDS))
        return tally.report(dry_run, records)

    async def _logs(self) -> AsyncIterator[str]:
        """The names of repositories with a version log (deleted repositories too)."""
        names = set(await self.repositories())
        async for path in self.store.list_named("versions"):
            names.add(path.split("/")[1])
        for name in sorted(names):
            yield name


class _Tally:
    """What a reclaim deleted (or would), optionally with every name and size."""

    def __init__(self, listing: bool) -> None:
        self.listing = listing
        self.objects = self.object_bytes = self.files = self.file_bytes = 0
        self.items: list[tuple[str, int]] = []

    def add_files(self, files: list[tuple[str, int]]) -> None:
        self.files += len(files)
        self.file_bytes += sum(size for _, size in files)
        if self.listing:
            self.items += files

    def add_objects(self, objects: list[ObjectInfo]) -> None:
        self.objects += len(objects)
        self.object_bytes += sum(o.size for o in objects)
        if self.listing:
            self.items += [(object_path(o.checksum, o.objtype), o.size) for o in objects]

    def report(self, dry_run: bool, records: int) -> ReclaimReport:
        return ReclaimReport(
            objects=self.objects,
            object_bytes=self.object_bytes,
            files=self.files,
            file_bytes=self.file_bytes,
            dry_run=dry_run,
            records=records,
            items=tuple(self.items),
        )


_CLOSURE_TYPES = {ObjectType.FILE, ObjectType.DIRTREE, ObjectType.DIRMETA, ObjectType.COMMIT}


def _key(objtype: ObjectType, checksum: str) -> Key | None:
    """The closure key of an object, or None for types closures never hold."""
    return object_key(objtype, checksum) if objtype in _CLOSURE_TYPES else None


def _commit_of(closure_file: str) -> str:
    _, head, tail = closure_file.split("/")
    return head + tail.removesuffix(".closure")
