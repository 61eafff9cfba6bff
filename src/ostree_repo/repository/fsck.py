"""fsck: check every object and blob a version needs, as ``ostree fsck`` does; repair.

What is checked, per version:

* every object its commits reach: the commit, dirtree and dirmeta objects are read,
  hashed and decoded strictly, and content objects inflated and hashed (the canonical
  content checksum), the checks of libostree's ``ostree_repo_fsck_object``. The list comes
  from the commits' closures, and the walk cross-checks it: every object a verified
  commit or dirtree names must be in a closure (a commit whose closure is missing or
  unreadable is walked from its commit object instead);
* every blob its record names (detached metadata, delta superblocks and parts, the
  summary and its signature), against its SHA-256.

Each problem is one of three kinds: **missing** (not in the store), **corrupt** (the
bytes are not the object or blob they are named after), or **unreadable** (an I/O error:
``EMFILE``, ``EIO``, a lost S3 connection; the object could not be checked, which says
nothing about its bytes). After :data:`MAX_UNREADABLE` unreadable objects fsck stops and
counts the rest as unchecked.

The walk is bounded whatever the store size: a fixed number of tasks, one open file per
task, content objects of a store that keeps local files (the filesystem store) checked
from those files in batches, by checker processes on every core
(``ostree_repo._checkers``), or by worker threads for small jobs.

Repair (``repair_from``): each missing or corrupt object is fetched from the first source
that has it (:class:`RepairSource`: another store here, an OSTree HTTP remote in
:mod:`ostree_repo.repair`), verified before it replaces the damaged copy, and checked
again in the store; blobs likewise (checked against their SHA-256); missing or corrupt
closures are computed again from the (repaired) objects.
"""

from __future__ import annotations

import functools
import hashlib
import os
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Protocol

import anyio
import anyio.to_thread
import attrs

from ostree_repo._checkers import (
    CORRUPT,
    MISSING,
    SOUND,
    UNREADABLE,
    WHOLE_MAX,
    CheckerError,
    CheckerPool,
    Verdict,
    check_files,
)
from ostree_repo._tasks import for_each, task_group
from ostree_repo.errors import (
    GVariantError,
    InvalidObjectError,
    NotFoundError,
    OstreeRepoError,
)
from ostree_repo.objects import Commit, ObjectType, delta_path, object_path, parse_delta_name
from ostree_repo.objects.tree import dirtree_references
from ostree_repo.objects.verify import new_verifier, verify_bytes
from ostree_repo.repository._summary import build_summary
from ostree_repo.repository.blobs import checked_chunks, put_blob, stream_blob
from ostree_repo.repository.closure import (
    Closure,
    Key,
    compute_closure,
    object_key,
    save_closure,
    split_key,
)
from ostree_repo.repository.layout import blob_path
from ostree_repo.repository.records import VersionRecord
from ostree_repo.store import ObjectStore

__all__ = ["FsckReport", "RepairSource", "StoreSource"]

MAX_UNREADABLE = 100
"""fsck stops after this many unreadable objects (a store that fails every read would
otherwise be retried object by object); the objects left are counted as unchecked."""

REPAIR_WHOLE_MAX = 64 << 20
"""Objects up to this size are fetched whole and verified before the damaged copy is
touched; larger ones stream into the store (verified) after it is removed."""

#: Content objects from which a filesystem store's check uses checker processes.
PROCESSES_FROM = 2048
_PROCESS_BATCH = 256
_THREAD_BATCH = 64
_META = (ObjectType.COMMIT, ObjectType.DIRTREE, ObjectType.DIRMETA)
_VERIFY_IN_THREAD = 256 << 10


@attrs.frozen
class FsckReport:
    """What ``fsck`` found in one version.

    ``missing``, ``corrupt`` and ``unreadable`` name objects (``CHECKSUM.TYPE``), blobs
    (``blob DIGEST``) and closures (``closure COMMIT``); ``errors`` says for each what
    went wrong (and, after a repair that failed, why). ``repaired`` names what a repair
    put right (it stays listed as missing or corrupt: that is what was found).
    ``unchecked`` counts the objects fsck did not get to after too many unreadable ones.
    """

    repository: str
    version: int
    objects: int
    missing: tuple[str, ...] = ()
    corrupt: tuple[str, ...] = ()
    unreadable: tuple[str, ...] = ()
    errors: Mapping[str, str] = attrs.field(factory=dict)
    repaired: tuple[str, ...] = ()
    blobs: int = 0
    unchecked: int = 0

    @property
    def damage(self) -> tuple[str, ...]:
        """What is missing or corrupt and was not repaired."""
        fixed = set(self.repaired)
        return tuple(x for x in (*self.missing, *self.corrupt) if x not in fixed)

    @property
    def damaged(self) -> bool:
        """True when damage is left (found and not repaired)."""
        return bool(self.damage)

    @property
    def complete(self) -> bool:
        """True when everything could be checked (nothing unreadable or unchecked)."""
        return not self.unreadable and not self.unchecked

    @property
    def ok(self) -> bool:
        """True when everything was checked and no damage is left."""
        return self.complete and not self.damaged

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "repository": self.repository,
            "version": self.version,
            "objects": self.objects,
            "blobs": self.blobs,
            "missing": list(self.missing),
            "corrupt": list(self.corrupt),
            "unreadable": list(self.unreadable),
            "unchecked": self.unchecked,
            "repaired": list(self.repaired),
            "not_repaired": list(self.damage),
            "errors": dict(self.errors),
            "ok": self.ok,
        }


class RepairSource(Protocol):
    """Where a repair fetches good copies from. Every method raises NotFoundError when
    the source does not have the thing, another OstreeRepoError when it fails."""

    async def object_bytes(self, checksum: str, objtype: ObjectType) -> bytes:
        """The object's stored bytes, verified against its name."""

    async def copy_object(self, store: ObjectStore, checksum: str, objtype: ObjectType) -> None:
        """Stream the object into ``store`` through its verifying write."""

    async def copy_blob(self, store: ObjectStore, digest: str, path: str) -> None:
        """Write blob ``digest`` into ``store`` (only if the bytes hash to it); ``path``
        is where an OSTree repository keeps that file (``summary``, ``deltas/…``, a
        ``.commitmeta`` object)."""


class StoreSource:
    """A :class:`RepairSource` over another open store: an ``ostree_repo`` store (blobs
    by digest) or an archive-mode OSTree repository (blobs at their OSTree paths)."""

    def __init__(self, store: ObjectStore) -> None:
        self.store = store

    def __str__(self) -> str:
        return self.store.url

    async def object_bytes(self, checksum: str, objtype: ObjectType) -> bytes:
        data = await self.store.read_object(checksum, objtype)
        await _verify(objtype, checksum, data)
        return data

    async def copy_object(self, store: ObjectStore, checksum: str, objtype: ObjectType) -> None:
        async with self.store.open_object(checksum, objtype) as stream:
            await store.write_object(checksum, objtype, stream)

    async def copy_blob(self, store: ObjectStore, digest: str, path: str) -> None:
        try:
            async with self.store.open_named(blob_path(digest)) as stream:
                await store.write_named(blob_path(digest), checked_chunks(stream, digest))
            return
        except NotFoundError:
            pass
        if path.startswith("objects/"):  # a .commitmeta: an object of an OSTree repository
            commit = path[8:10] + path[11:].removesuffix(".commitmeta")
            context = self.store.open_object(commit, ObjectType.COMMITMETA)
        else:
            context = self.store.open_named(path)
        async with context as stream:
            await store.write_named(blob_path(digest), checked_chunks(stream, digest))


def blob_paths(record: VersionRecord) -> dict[str, str]:
    """Every blob a version names, with where an OSTree repository keeps it."""
    paths: dict[str, str] = {}
    for checksum, info in record.commits.items():
        if info.commitmeta:
            paths.setdefault(info.commitmeta, object_path(checksum, ObjectType.COMMITMETA))
    for name, delta in record.deltas.items():
        start, end = parse_delta_name(name)
        paths.setdefault(delta.superblock, delta_path(start, end, "superblock"))
        for index, part in enumerate(delta.parts):
            if part is not None:
                paths.setdefault(part, delta_path(start, end, str(index)))
    if record.summary:
        paths.setdefault(record.summary, "summary")
    if record.summary_sig:
        paths.setdefault(record.summary_sig, "summary.sig")
    return paths


async def _verify(objtype: ObjectType, checksum: str, data: bytes) -> None:
    """:func:`verify_bytes`, in a worker thread for a large object (off the event loop)."""
    if len(data) > _VERIFY_IN_THREAD:
        await anyio.to_thread.run_sync(verify_bytes, objtype, checksum, data)
    else:
        verify_bytes(objtype, checksum, data)


def _label(key: Key) -> str:
    objtype, checksum = split_key(key)
    return f"{checksum}.{objtype.value}"


def _classify(error: BaseException) -> int:
    if isinstance(error, NotFoundError):
        return MISSING
    if isinstance(error, InvalidObjectError | GVariantError):
        return CORRUPT
    return UNREADABLE


class _TooManyUnreadableError(Exception):
    pass


@attrs.define
class _Fsck:
    """One fsck run over one version (see the module docstring)."""

    store: ObjectStore
    record: VersionRecord
    closures: Callable[[str], Awaitable[Closure]]
    sources: Sequence[RepairSource] | None
    processes: int | None
    concurrency: int
    max_unreadable: int
    planned: dict[Key, int] = attrs.Factory(dict)
    """Every object the version needs: its stored size, or -1 (found by the walk)."""
    problems: dict[str, tuple[int, str]] = attrs.Factory(dict)
    """label -> (status, message)."""
    damaged_keys: dict[Key, int] = attrs.Factory(dict)
    """Objects found missing or corrupt."""
    unreadable: int = 0
    stopped: bool = False
    checked: int = 0
    rechecking: set[Key] = attrs.Factory(set)
    repaired: list[str] = attrs.Factory(list)
    commit_closures: dict[str, dict[Key, int]] = attrs.Factory(dict)
    bad_closures: dict[str, None] = attrs.Factory(dict)
    discovered_files: list[Key] = attrs.Factory(list)
    pool: CheckerPool | None = None
    local: bool = attrs.field(init=False)
    """Whether the store keeps objects as local files (checked from them directly)."""

    def __attrs_post_init__(self) -> None:
        self.local = self.store.local_object_path("0" * 64, ObjectType.FILE) is not None

    # -- verdicts ---------------------------------------------------------------------------

    def _record(self, key: Key, status: int, message: str) -> None:
        if self.stopped:  # (a task that finished while the others were being cancelled)
            raise _TooManyUnreadableError
        if key in self.rechecking:
            self.rechecking.discard(key)
            label = _label(key)
            if status == SOUND:
                self.repaired.append(label)
            else:
                self.problems[label] = (self.problems[label][0], f"repaired copy: {message}")
            return
        self.checked += 1
        if status == SOUND:
            return
        self.problems[_label(key)] = (status, message)
        if status == UNREADABLE:
            self.unreadable += 1
            if self.unreadable >= self.max_unreadable:
                self.stopped = True
                raise _TooManyUnreadableError
        else:
            self.damaged_keys[key] = status

    def _plan(self, key: Key, size: int, found: list[Key], parent: Key) -> None:
        """Note an object a verified commit or dirtree names; one no closure listed is
        checked too, and its closures are marked incomplete."""
        if key in self.planned:
            return
        self.planned[key] = size
        found.append(key)
        for commit, sizes in self.commit_closures.items():
            if parent in sizes and key not in sizes and commit not in self.bad_closures:
                self.bad_closures[commit] = None
                self.problems[f"closure {commit}"] = (
                    CORRUPT,
                    f"closure of {commit} lacks {_label(key)} (named by {_label(parent)})",
                )

    # -- metadata: read, verify, follow -------------------------------------------------

    async def _check_metadata(self, key: Key, found: list[Key]) -> None:
        objtype, checksum = split_key(key)
        try:
            data = await self.store.read_object(checksum, objtype)
            await _verify(objtype, checksum, data)
            if objtype is ObjectType.COMMIT:
                root = Commit.from_bytes(data)
                refs = [
                    object_key(ObjectType.DIRTREE, root.root_tree),
                    object_key(ObjectType.DIRMETA, root.root_meta),
                ]
            elif objtype is ObjectType.DIRTREE:
                files, dirs = dirtree_references(data)
                refs = [object_key(ObjectType.FILE, f) for f in files]
                for tree, meta in dirs:
                    refs += (
                        object_key(ObjectType.DIRTREE, tree),
                        object_key(ObjectType.DIRMETA, meta),
                    )
            else:
                refs = []
        except (OstreeRepoError, OSError) as e:
            self._record(key, _classify(e), str(e))
            return
        self._record(key, SOUND, "")
        for ref in refs:
            self._plan(ref, -1, found, key)

    async def _walk(self, keys: list[Key]) -> None:
        """Check metadata objects, then those they name that no closure listed."""
        while keys:
            found: list[Key] = []
            check = functools.partial(self._check_metadata, found=found)
            await for_each(keys, check, limit=self.concurrency)
            keys = []
            for key in found:
                if split_key(key)[0] is ObjectType.FILE:
                    self.discovered_files.append(key)
                else:
                    keys.append(key)

    # -- content objects ------------------------------------------------------------------

    async def _check_stored(self, key: Key) -> None:
        """One object through the store's API (any backend)."""
        objtype, checksum = split_key(key)
        size = self.planned.get(key, -1)
        try:
            if 0 <= size <= WHOLE_MAX:
                data = await self.store.read_object(checksum, objtype)
                await _verify(objtype, checksum, data)
            else:
                async with self.store.open_object(checksum, objtype) as stream:
                    verifier = new_verifier(objtype, checksum)
                    async for chunk in stream:
                        verifier.update(chunk)
                    verifier.finish()
        except (OstreeRepoError, OSError) as e:
            self._record(key, _classify(e), str(e))
            return
        self._record(key, SOUND, "")

    async def _check_batch(self, batch: list[Key]) -> None:
        """A batch of objects the store keeps as local files, checked from the files: in
        a checker process, or in a worker thread (off the event loop)."""
        items = []
        for objtype, checksum in map(split_key, batch):
            path = self.store.local_object_path(checksum, objtype)
            assert path is not None
            items.append((path, checksum, objtype))
        verdicts: list[Verdict] | None = None
        if self.pool is not None and self.pool.alive:
            try:
                verdicts = await anyio.to_thread.run_sync(self.pool.check, items)
            except CheckerError:
                verdicts = None
        if verdicts is None:
            verdicts = await anyio.to_thread.run_sync(check_files, items)
        for key, (status, message) in zip(batch, verdicts, strict=True):
            self._record(key, status, message)

    async def _check_content(self, keys: list[Key]) -> None:
        if not keys:
            return
        keys.sort()  # by checksum: directory order on a filesystem
        if not self.local:
            await for_each(keys, self._check_stored, limit=self.concurrency)
            return
        if self.pool is not None and self.pool.alive:
            size, limit = _PROCESS_BATCH, self.pool.size
        else:
            size, limit = _THREAD_BATCH, 2
        batches = (keys[i : i + size] for i in range(0, len(keys), size))
        await for_each(batches, self._check_batch, limit=limit)

    async def _start_pool(self, count: int) -> None:
        if not self.local or count < PROCESSES_FROM:
            return
        cpus = os.cpu_count() or 1
        size = (min(cpus, 4) if cpus > 1 else 0) if self.processes is None else self.processes
        if size <= 0:
            return
        pool = CheckerPool(size)
        if await anyio.to_thread.run_sync(pool.start):
            self.pool = pool

    # -- blobs ----------------------------------------------------------------------------------

    async def _check_blob(self, digest: str) -> None:
        try:
            async for _ in stream_blob(self.store, digest):
                pass
        except (OstreeRepoError, OSError) as e:
            status = _classify(e)
            self.problems[f"blob {digest}"] = (status, str(e))
            if status == UNREADABLE:
                self.unreadable += 1

    # -- closures -------------------------------------------------------------------------

    async def _load_closures(self) -> None:
        """Plan every object of the commits' closures; a commit whose closure cannot be
        read is walked from its commit object."""
        for commit in self.record.commits:
            try:
                sizes = (await self.closures(commit)).sizes
            except (OstreeRepoError, OSError) as e:
                status = _classify(e)
                self.problems[f"closure {commit}"] = (status, str(e))
                if status != UNREADABLE:
                    self.bad_closures[commit] = None
                self.planned.setdefault(object_key(ObjectType.COMMIT, commit), -1)
                continue
            self.commit_closures[commit] = sizes
            for key, size in sizes.items():
                self.planned.setdefault(key, size)

    # -- repair ---------------------------------------------------------------------------

    async def _from_sources(
        self, label: str, attempt: Callable[[RepairSource], Awaitable[None]]
    ) -> bool:
        """Call ``attempt`` with each source until one succeeds; else say why not."""
        assert self.sources is not None
        failures = []
        for source in self.sources:
            try:
                await attempt(source)
            except NotFoundError:
                failures.append(f"not in {source}")
            except (OstreeRepoError, OSError) as e:
                failures.append(f"from {source}: {e}")
            else:
                return True
        status, found = self.problems[label]
        why = "; ".join(failures) or "no source to repair from"
        self.problems[label] = (status, f"{found}; not repaired: {why}")
        return False

    async def _repair_object(self, key: Key) -> None:
        objtype, checksum = split_key(key)
        corrupt = self.damaged_keys[key] == CORRUPT
        size = self.planned.get(key, -1)

        async def attempt(source: RepairSource) -> None:
            nonlocal corrupt
            if 0 <= size <= REPAIR_WHOLE_MAX:
                data = await source.object_bytes(checksum, objtype)  # verified
                if corrupt:  # (writing a hashed object that exists does nothing)
                    await self.store.delete_object(checksum, objtype)
                await self.store.write_object(checksum, objtype, data)
                return
            if corrupt:  # too large to hold: the verifying write streams it in
                await self.store.delete_object(checksum, objtype)
                corrupt = False
            await source.copy_object(self.store, checksum, objtype)

        if await self._from_sources(_label(key), attempt):
            self.rechecking.add(key)

    async def _repair_blob(self, digest: str, path: str) -> None:
        label = f"blob {digest}"
        if path == "summary":  # ours is made from the record: make it again
            summary = build_summary(self.record, int(self.record.created))
            if hashlib.sha256(summary).hexdigest() == digest:
                await put_blob(self.store, summary)
                self.repaired.append(label)
                return

        async def attempt(source: RepairSource) -> None:
            await source.copy_blob(self.store, digest, path)
            async for _ in stream_blob(self.store, digest):  # and check it in the store
                pass

        if await self._from_sources(label, attempt):
            self.repaired.append(label)

    async def _repair_closure(self, commit: str) -> None:
        label = f"closure {commit}"
        try:
            closure = await compute_closure(self.store, commit)
            await save_closure(self.store, closure)
        except (OstreeRepoError, OSError) as e:
            status, found = self.problems[label]
            self.problems[label] = (status, f"{found}; not repaired: {e}")
            return
        self.repaired.append(label)

    # -- the run --------------------------------------------------------------------------

    async def run(self) -> FsckReport:
        unchecked = 0
        try:
            await self._load_closures()
            await self._check_objects()
        except _TooManyUnreadableError:
            unchecked = len(self.planned) - self.checked
        finally:
            if self.pool is not None:
                await anyio.to_thread.run_sync(self.pool.close)
        blobs = blob_paths(self.record)
        if not unchecked:
            await for_each(blobs, self._check_blob, limit=4)
            if self.sources is not None:
                await self._repair_rest(blobs)
        return self._report(len(blobs), unchecked)

    async def _check_objects(self) -> None:
        meta = [k for k in self.planned if split_key(k)[0] in _META]
        files = [k for k in self.planned if split_key(k)[0] not in _META]

        async def content() -> None:
            await self._start_pool(len(files))
            await self._check_content(files)

        async with task_group() as tg:  # the closures list the files: no need to wait
            tg.start_soon(content)
            await self._walk(meta)
        await self._check_discovered()
        if self.sources is not None:
            await self._repair_objects()

    async def _check_discovered(self) -> None:
        """Check the content objects the walk found that no closure listed."""
        while self.discovered_files:
            found, self.discovered_files = self.discovered_files, []
            await self._check_content(found)

    async def _repair_objects(self) -> None:
        """Repair what was found damaged, then check it again in the store; what repaired
        metadata names and no closure listed is checked (and repaired) in turn."""
        attempted: set[Key] = set()
        while todo := [k for k in self.damaged_keys if k not in attempted]:
            attempted.update(todo)
            await for_each(todo, self._repair_object, limit=self.concurrency)
            again = [k for k in todo if k in self.rechecking]
            await self._walk([k for k in again if split_key(k)[0] in _META])
            await self._check_content([k for k in again if split_key(k)[0] not in _META])
            await self._check_discovered()

    async def _repair_rest(self, blobs: dict[str, str]) -> None:
        damaged_blobs = [
            d for d in blobs if self.problems.get(f"blob {d}", (SOUND, ""))[0] in (MISSING, CORRUPT)
        ]
        await for_each(damaged_blobs, lambda d: self._repair_blob(d, blobs[d]), limit=4)
        for commit in self.bad_closures:
            await self._repair_closure(commit)

    def _report(self, blobs: int, unchecked: int) -> FsckReport:
        by_status: dict[int, list[str]] = {MISSING: [], CORRUPT: [], UNREADABLE: []}
        for label, (status, _) in self.problems.items():
            by_status[status].append(label)
        return FsckReport(
            repository=self.record.repository,
            version=self.record.number,
            objects=len(self.planned),
            missing=tuple(sorted(by_status[MISSING])),
            corrupt=tuple(sorted(by_status[CORRUPT])),
            unreadable=tuple(sorted(by_status[UNREADABLE])),
            errors={label: message for label, (_, message) in sorted(self.problems.items())},
            repaired=tuple(sorted(self.repaired)),
            blobs=blobs,
            unchecked=unchecked,
        )


async def fsck_version(
    store: ObjectStore,
    record: VersionRecord,
    closures: Callable[[str], Awaitable[Closure]],
    *,
    repair_from: Sequence[RepairSource] | None = None,
    processes: int | None = None,
    concurrency: int = 16,
    max_unreadable: int = MAX_UNREADABLE,
) -> FsckReport:
    """Check (and with ``repair_from``, repair) version ``record`` in ``store``.

    ``closures(commit)`` is an awaitable returning the stored closure of a commit (the
    manager's cached lookup). ``repair_from``: sources to fetch damaged objects and blobs
    from, tried in order (an empty sequence repairs only closures). ``processes``: checker
    processes for a filesystem store's content objects (None: one per CPU up to 4, none on
    a single CPU; 0: none).
    """
    run = _Fsck(
        store,
        record,
        closures,
        sources=repair_from,
        processes=processes,
        concurrency=concurrency,
        max_unreadable=max_unreadable,
    )
    return await run.run()
