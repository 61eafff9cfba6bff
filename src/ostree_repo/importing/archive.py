"""Import commit archives: tarballs holding an archive-mode OSTree repository.

This is what osbuild-composer's "commit" images are (``./compose.json`` beside
``./repo/``), and what ``tar`` makes of any repository built by ``ostree`` or
rpm-ostree. :func:`import_archive` reads the tarball once, strictly forward (a pipe or an
HTTP upload body will do), and turns it into one new repository version:

* the format (``.tar``, ``.tar.gz``, ``.tar.xz``, ``.tar.bz2``, ``.tar.zst``) comes from
  the first bytes, never from a file name;
* every loose object is streamed from its tar member straight into the store, which
  verifies it while it is written; refs, ``config``, commits, detached metadata and
  tombstones are small and kept until the end; static-delta parts are spooled (to a
  temporary file above 1 MiB) until their superblock says what they must hash to;
* at the end the closure of every new commit is computed (which proves the archive, with
  what the store already holds, is complete), refs and updates are checked, and the
  version is published. Nothing is visible before that last step; on any error no
  version is made, and objects already stored wait for ``reclaim``.

Update archives (commits whose parent is not in the archive) and the limits that guard
against hostile archives are described in ``docs/importing.md``.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
from collections.abc import AsyncIterable, Callable, Iterator, Sequence
from typing import IO, Any, Protocol, cast

import anyio
import anyio.from_thread
import anyio.to_thread
import attrs
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from ostree_repo._tasks import task_group
from ostree_repo.errors import (
    GVariantError,
    InvalidNameError,
    InvalidObjectError,
)
from ostree_repo.importing._config import parse_repo_config
from ostree_repo.importing._refs import RefTree
from ostree_repo.importing._tarstream import CHUNK, ArchiveLimits, Member, TarStream, resolve_link
from ostree_repo.importing.errors import (
    ArchiveLimitError,
    BareRepositoryError,
    CorruptObjectError,
    IncompleteArchiveError,
    InvalidRefError,
    MissingParentError,
    NoRepositoryError,
    RepositoryConfigError,
    UnsafeArchiveError,
    UnsupportedMemberError,
    UpdateConflictError,
)
from ostree_repo.objects import (
    Commit,
    DeltaSuperblock,
    ObjectType,
    delta_name,
    delta_path,
    object_path,
    parse_object_path,
    validate_ref,
    verify_bytes,
)
from ostree_repo.objects.metadata import DetachedMetadata
from ostree_repo.objects.tree import DirTreeRefs, dirtree_references
from ostree_repo.objects.verify import find_invalid
from ostree_repo.repository._aliases import resolve_aliases
from ostree_repo.repository.blobs import put_blob
from ostree_repo.repository.closure import (
    Closure,
    Key,
    MissingObjectError,
    compute_closure,
    load_closure,
    object_key,
    save_closure,
    split_key,
)
from ostree_repo.repository.hooks import PublishHook
from ostree_repo.repository.ingest import Ingest
from ostree_repo.repository.layout import blob_path, validate_repository_name
from ostree_repo.repository.manager import RepositoryManager
from ostree_repo.repository.records import CommitInfo, DeltaInfo, RepoConfig, VersionRecord
from ostree_repo.repository.repository import Change, Repository
from ostree_repo.store import ObjectStore, Staging

__all__ = ["ArchiveLimits", "ImportProgress", "ProgressCallback", "Readable", "import_archive"]

#: Content objects up to this size are read whole; larger ones are streamed in chunks.
STREAM_THRESHOLD = CHUNK
#: Small objects travel to the writers in batches of about this many bytes ...
BATCH_BYTES = 1 << 20
#: ... or this many objects.
BATCH_OBJECTS = 128
#: Delta parts are held in memory up to this size, then spooled to a temporary file.
SPOOL_MEMORY = 1 << 20


class Readable(Protocol):
    """A binary input: only ``read(size)`` is used (no ``seek`` or ``tell``)."""

    def read(self, size: int = -1, /) -> bytes | None:
        """Up to ``size`` bytes; ``b""`` at the end."""


@attrs.define
class ImportProgress:
    """How far an import got; handed to the ``progress`` callback as it advances."""

    format: str = ""
    """``tar``, ``tar.gz``, ``tar.xz``, ``tar.bz2`` or ``tar.zst`` once detected."""
    bytes_read: int = 0
    """Bytes of the (compressed) input read so far."""
    bytes_total: int | None = None
    """The input's size when known (a path), else None."""
    members: int = 0
    """Tar members read so far."""
    objects: int = 0
    """Loose objects stored (or found already stored) so far."""
    objects_new: int = 0
    """Of those, objects the store did not have before."""
    done: bool = False
    """True on the last call, once every object is stored."""


#: The ``progress`` callback of :func:`import_archive`.
ProgressCallback = Callable[[ImportProgress], None]


class _FromAsync:
    """A :class:`Readable` over an async iterable of byte chunks (an ASGI request body,
    say), read from the importer's worker thread through the event loop."""

    def __init__(self, chunks: AsyncIterable[bytes | bytearray | memoryview]) -> None:
        self._chunks = chunks.__aiter__()
        self._buffer = b""
        self._done = False

    async def _next(self) -> bytes | None:
        try:
            return bytes(await self._chunks.__anext__())
        except StopAsyncIteration:
            return None

    def read(self, size: int = -1, /) -> bytes:
        while not self._buffer and not self._done:
            chunk = anyio.from_thread.run(self._next)
            if chunk is None:
                self._done = True
            else:
                self._buffer = chunk
        if size < 0 or size >= len(self._buffer):
            out, self._buffer = self._buffer, b""
        else:
            out, self._buffer = self._buffer[:size], self._buffer[size:]
        return out


# -- what the reader collects ---------------------------------------------------------------


class _Spool:
    """A delta part kept aside (in memory, or on disk above SPOOL_MEMORY) with its digest."""

    def __init__(self) -> None:
        self.file: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY)  # noqa: SIM115
        self._sha = hashlib.sha256()
        self.size = 0

    def write(self, chunk: bytes) -> None:
        self._sha.update(chunk)
        self.file.write(chunk)
        self.size += len(chunk)

    @property
    def digest(self) -> str:
        return self._sha.hexdigest()

    def chunks(self) -> Iterator[bytes]:
        self.file.seek(0)
        while chunk := self.file.read(CHUNK):
            yield chunk

    def close(self) -> None:
        self.file.close()


@attrs.define
class _DeltaFiles:
    superblock: bytes | None = None
    parts: dict[int, _Spool] = attrs.field(factory=dict)


@attrs.define
class _Collected:
    """What the archive held besides loose objects."""

    repo_dir: str
    format: str = ""
    repo_seen: bool = False
    config: RepoConfig | None = None
    commits: dict[str, bytes] = attrs.field(factory=dict)
    commitmeta: dict[str, bytes] = attrs.field(factory=dict)
    tombstones: set[str] = attrs.field(factory=set)
    ref_tree: RefTree = attrs.field(init=False)
    #: refs/heads, its aliases and refs/mirrors, once ``ref_tree`` is resolved
    refs: dict[str, str] = attrs.field(factory=dict)
    aliases: dict[str, str] = attrs.field(factory=dict)
    collection_refs: dict[tuple[str, str], str] = attrs.field(factory=dict)
    deltas: dict[str, _DeltaFiles] = attrs.field(factory=dict)
    configs_elsewhere: list[str] = attrs.field(factory=list)
    top_level: list[str] = attrs.field(factory=list)

    def __attrs_post_init__(self) -> None:
        self.ref_tree = RefTree(lambda path: self.member("/".join(path)))

    def close(self) -> None:
        for files in self.deltas.values():
            for spool in files.parts.values():
                spool.close()

    def member(self, rel: str) -> str:
        """The archive path of ``rel`` in the repository directory (for messages)."""
        return f"{self.repo_dir}/{rel}" if self.repo_dir else rel


# -- work for the writers --------------------------------------------------------------------


@attrs.frozen
class _Item:
    checksum: str
    objtype: ObjectType
    data: bytes
    member: str


@attrs.frozen
class _Batch:
    items: list[_Item]


@attrs.frozen
class _Stream:
    checksum: str
    objtype: ObjectType
    member: str
    size: int
    chunks: MemoryObjectReceiveStream[bytes]


_Work = _Batch | _Stream


class _AbortedError(Exception):
    """The writers failed; the reader stops (their error is the one reported)."""


# -- reading the archive (in a worker thread) ---------------------------------------------------


class _Reader:
    """Walks the tar stream in a worker thread and hands objects to the writers."""

    def __init__(
        self,
        stream: TarStream,
        collected: _Collected,
        send: MemoryObjectSendStream[_Work],
        writers: _Writers,
        progress: ImportProgress,
    ) -> None:
        self.stream = stream
        self.writers = writers
        self.collected = collected
        self.prefix = tuple(p for p in collected.repo_dir.split("/") if p not in ("", "."))
        self.send = send
        self.aborted = writers.aborted
        self.progress = progress
        self.limits = stream.limits
        self.batch: list[_Item] = []
        self.batch_bytes = 0

    def run(self) -> None:
        stream = self.stream
        progress = self.progress
        n = len(self.prefix)
        for member in stream:
            if self.aborted.is_set():
                raise _AbortedError
            progress.bytes_read = stream.input.bytes_read
            progress.members = stream.members
            inside = member.parts[:n] == self.prefix
            rel = member.parts[n:] if inside else ()
            if inside and _is_bare_object(rel):
                raise BareRepositoryError(
                    f"{member.name}: a bare-mode object; only archive-mode repositories "
                    "(.filez objects) can be imported"
                )
            if member.kind in ("symlink", "hardlink"):
                self._link(member, inside, rel)
                continue
            if not inside:
                self._note_outside(member)
                continue
            self.collected.repo_seen = True
            if member.kind == "file" and rel:
                self._file(member, rel)
            elif member.kind == "dir" and rel[:1] == ("refs",):
                self.collected.ref_tree.add_dir(rel)
        self._flush()
        progress.bytes_read = stream.input.bytes_read

    def _emit(self, work: _Work) -> None:
        try:
            anyio.from_thread.run(self.send.send, work)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            raise _AbortedError from None

    def _flush(self) -> None:
        if not self.batch:
            return
        batch, self.batch, self.batch_bytes = _Batch(self.batch), [], 0
        if self.writers.staging.blocking:
            # the filesystem store writes in this thread at no extra cost: no hand-over
            self.writers.write_batch_blocking(batch)
        else:
            self._emit(batch)

    def _link(self, member: Member, inside: bool, rel: tuple[str, ...]) -> None:
        target = resolve_link(member)
        if target[: len(self.prefix)] != self.prefix:
            where = self.collected.repo_dir or "the archive's top"
            raise UnsafeArchiveError(
                f"{member.name}: a {member.kind} to {member.linkname}, outside {where}"
            )
        if inside and member.kind == "symlink" and rel[:1] == ("refs",):
            self.collected.repo_seen = True
            self.collected.ref_tree.add_link(rel, member.linkname)  # an alias, maybe
        elif inside:
            raise UnsupportedMemberError(
                f"{member.name}: a {member.kind}; an OSTree repository holds none and links "
                "are not followed"
            )

    def _note_outside(self, member: Member) -> None:
        collected = self.collected
        if len(collected.top_level) < 8 and member.parts and len(member.parts) == 1:
            collected.top_level.append(member.parts[0] + ("/" if member.kind == "dir" else ""))
        if (
            member.kind == "file"
            and member.parts[-1:] == ("config",)
            and len(collected.configs_elsewhere) < 8
        ):
            collected.configs_elsewhere.append("/".join(member.parts[:-1]) or ".")

    def _read_small(self, member: Member, limit: int, what: str) -> bytes:
        if member.size > limit:
            raise ArchiveLimitError(
                f"{member.name}: {member.size} bytes, more than a {what} may have ({limit})"
            )
        return self.stream.read(member)

    def _file(self, member: Member, rel: tuple[str, ...]) -> None:
        head = rel[0]
        if rel == ("config",):
            data = self._read_small(member, self.limits.max_small_file_size, "config file")
            self.collected.config = parse_repo_config(member.name, data)
        elif head == "objects" and len(rel) == 3:
            self._object(member, rel)
        elif head == "refs":
            self._ref(member, rel)
        elif head == "deltas" and len(rel) == 4:
            self._delta_file(member, rel)
        # anything else (summary, delta-indexes, refs/remotes, state, tmp, ...) is not
        # imported: versions get their own summary and indexes

    def _ref(self, member: Member, rel: tuple[str, ...]) -> None:
        """A file under ``refs/``: kept until the end, when the tree (with its symlinks)
        is resolved. Files of ``refs/remotes`` and the like matter only as the target of a
        symlink: one too large to be a ref is left out."""
        limit = self.limits.max_small_file_size
        if member.size > limit and rel[1] not in ("heads", "mirrors"):
            return
        data = self._read_small(member, limit, "ref file")
        self.collected.ref_tree.add_file(rel, data.decode("ascii", "replace"))

    def _object(self, member: Member, rel: tuple[str, ...]) -> None:
        try:
            checksum, objtype = parse_object_path("/".join(rel))
        except InvalidNameError:
            return  # not a loose object (a temporary file, say): never imported
        if member.size == 0:
            raise CorruptObjectError(member.name, "an empty (zero-byte) object")
        limits = self.limits
        if objtype is ObjectType.FILE:
            if member.size > STREAM_THRESHOLD:
                self._stream_object(member, checksum, objtype)
                return
            data = self.stream.read(member)
        else:
            data = self._read_small(member, limits.max_metadata_size, "metadata object")
        if objtype in (ObjectType.FILE, ObjectType.DIRTREE, ObjectType.DIRMETA):
            self.batch.append(_Item(checksum, objtype, data, member.name))
            self.batch_bytes += len(data)
            if self.batch_bytes >= BATCH_BYTES or len(self.batch) >= BATCH_OBJECTS:
                self._flush()
            return
        try:
            verify_bytes(objtype, checksum, data)
        except (InvalidObjectError, GVariantError) as e:
            raise CorruptObjectError(member.name, str(e)) from e
        if objtype is ObjectType.COMMIT:
            self.collected.commits[checksum] = data
        elif objtype is ObjectType.COMMITMETA:
            self.collected.commitmeta[checksum] = data
        else:
            self.collected.tombstones.add(checksum)

    def _stream_object(self, member: Member, checksum: str, objtype: ObjectType) -> None:
        self._flush()
        send, receive = anyio.create_memory_object_stream[bytes](2)
        self._emit(_Stream(checksum, objtype, member.name, member.size, receive))
        try:
            for chunk in self.stream.chunks(member):
                anyio.from_thread.run(send.send, chunk)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            if self.aborted.is_set():
                raise _AbortedError from None
            # the writer stopped reading: the object was already stored
        finally:
            send.close()

    def _delta_file(self, member: Member, rel: tuple[str, ...]) -> None:
        directory = "/".join(rel[:3])
        files = self.collected.deltas.setdefault(directory, _DeltaFiles())
        name = rel[3]
        if name == "superblock":
            files.superblock = self._read_small(
                member, self.limits.max_metadata_size, "delta superblock"
            )
        elif name.isdigit() and name == str(int(name)):
            spool = _Spool()
            files.parts[int(name)] = spool
            for chunk in self.stream.chunks(member):
                spool.write(chunk)


def _is_bare_object(rel: tuple[str, ...]) -> bool:
    return len(rel) == 3 and rel[0] == "objects" and rel[2].endswith(".file")


# -- writing objects (on the event loop) ---------------------------------------------------------


class _Writers:
    """Writer tasks: store every object the reader hands over, verified by the store."""

    def __init__(
        self,
        staging: Staging,
        progress: ImportProgress,
        callback: ProgressCallback | None,
        aborted: threading.Event,
    ) -> None:
        self.staging = staging
        self.progress = progress
        self.callback = callback
        self.aborted = aborted
        self.lock = threading.Lock()
        self.sizes: dict[Key, int] = {}
        """Every object of the archive: its stored size if this import stored it, -1 if
        the store had it already (closures need the sizes)."""
        self.dirtrees: dict[str, bytes] = {}
        """The dirtrees this import stored (so verified), which closures would otherwise
        read back. (One the store had already was not checked against the archive's bytes:
        its closure reads the stored one.)"""

    async def run(self, receive: MemoryObjectReceiveStream[_Work]) -> None:
        staging = self.staging
        async with receive:
            async for work in receive:
                try:
                    if isinstance(work, _Batch):
                        await self._write_batch(work, staging)
                    else:
                        async with work.chunks:  # closing it tells the reader to skip the rest
                            new = await staging.write_object(
                                work.checksum, work.objtype, work.chunks
                            )
                        self._count(work.checksum, work.objtype, work.size, new)
                except BaseException as e:
                    self.aborted.set()  # before a stream is closed, so that the reader stops
                    if isinstance(e, InvalidObjectError | GVariantError):
                        raise CorruptObjectError(self._culprit(work), str(e)) from e
                    raise
                if self.callback is not None:
                    self.callback(self.progress)

    async def _write_batch(self, batch: _Batch, staging: Staging) -> None:
        items = batch.items
        written = await staging.write_objects([(i.checksum, i.objtype, i.data) for i in items])
        self._count_batch(items, written)

    def write_batch_blocking(self, batch: _Batch) -> None:
        """Write a batch from the reader's thread (when the staging is blocking)."""
        items = batch.items
        try:
            written = self.staging.write_objects_blocking(
                [(i.checksum, i.objtype, i.data) for i in items]
            )
        except (InvalidObjectError, GVariantError) as e:
            raise CorruptObjectError(self._culprit(batch), str(e)) from e
        self._count_batch(items, written)
        if self.callback is not None:
            anyio.from_thread.run_sync(self.callback, self.progress)

    def _count_batch(self, items: list[_Item], written: list[bool]) -> None:
        for item, new in zip(items, written, strict=True):
            self._count(item.checksum, item.objtype, len(item.data), new)
            if new and item.objtype is ObjectType.DIRTREE:
                self.dirtrees[item.checksum] = item.data  # verified as it was stored

    def _count(self, checksum: str, objtype: ObjectType, size: int, new: bool) -> None:
        with self.lock:  # the reader's thread counts too
            self.progress.objects += 1
            if new:
                self.progress.objects_new += 1
            self.sizes[object_key(objtype, checksum)] = size if new else -1

    @staticmethod
    def _culprit(work: _Work) -> str:
        """The member a verification error is about (for a batch, found by verifying its
        objects again, in memory: this is the error path)."""
        if isinstance(work, _Stream):
            return work.member
        items = work.items
        bad = find_invalid([(i.checksum, i.objtype, i.data) for i in items])
        if bad:
            return items[bad[0]].member
        return ", ".join(item.member for item in items)


# -- publishing ------------------------------------------------------------------------------


class _GuardedRepository(Repository):
    """A repository whose publish checks each base version before changing it."""

    def __init__(
        self,
        store: ObjectStore,
        name: str,
        guard: Callable[[VersionRecord], None],
        hooks: Sequence[PublishHook],
    ) -> None:
        super().__init__(store, name, hooks)
        self._guard = guard

    async def publish(
        self, change: Change, action: dict[str, Any] | None = None
    ) -> VersionRecord | None:
        async def guarded(base: VersionRecord) -> VersionRecord | None:
            self._guard(base)
            return await change(base)

        return await super().publish(guarded, action)


class _GuardedManager(RepositoryManager):
    """Lets :class:`Ingest` publish through :class:`_GuardedRepository`, so that a ref
    update is checked against the very version it is applied to (a concurrent import that
    moved the ref first makes this one fail instead of silently rewinding history)."""

    def __init__(self, manager: RepositoryManager, guard: Callable[[VersionRecord], None]) -> None:
        super().__init__(manager.store, hooks=manager.hooks)  # the caller's features run
        self._guard = guard

    def repository(self, name: str) -> Repository:
        return _GuardedRepository(self.store, name, self._guard, self.hooks)


def _chain(head: str, parents: dict[str, str | None]) -> tuple[list[str], str | None]:
    """The commits from ``head`` back through ``parents`` (archive commits), and the first
    ancestor outside them (None when the history ends in a root commit)."""
    chain: list[str] = []
    current: str | None = head
    while current is not None and current in parents and len(chain) <= len(parents):
        chain.append(current)
        current = parents[current]
    return chain, current


def _check_ref_update(
    ref: str, head: str, parents: dict[str, str | None], base: VersionRecord
) -> None:
    """``ref=``: the archive's history of ``ref`` must contain or build on the ref's head."""
    chain, boundary = _chain(head, parents)
    current = base.resolve_ref(ref)
    where = f"repository {base.repository or '(new)'} version {base.number}"
    if current is None:
        if boundary is None:
            return
        raise UpdateConflictError(
            f"ref {ref} does not exist in {where}, but the archive's commit {chain[-1]} "
            f"builds on {boundary}"
        )
    if current in chain or current == boundary:
        return
    raise UpdateConflictError(
        f"the archive's commit {chain[-1]} builds on "
        f"{boundary or 'nothing (it is a root commit)'}, but ref {ref} in {where} is at "
        f"{current}"
    )


def _oldest_first(parents: dict[str, str | None]) -> list[str]:
    """The archive's commits, each after its parent when that is in the archive too."""
    ordered: list[str] = []
    placed: set[str] = set()
    for checksum in sorted(parents):
        chain: list[str] = []
        current: str | None = checksum
        while current is not None and current in parents and current not in placed:
            chain.append(current)
            placed.add(current)
            current = parents[current]
        ordered.extend(reversed(chain))
    return ordered


class _MissingObjectError(Exception):
    """An object a commit needs is not in the store."""


def _check_self_contained(closure: Closure, archive_keys: dict[Key, int]) -> None:
    """Raise _MissingObjectError unless every object of ``closure`` (but the commit, which
    is in the archive) came with the archive."""
    commit_key = object_key(ObjectType.COMMIT, closure.commit)
    for key in closure.sizes:
        if key not in archive_keys and key != commit_key:
            objtype, checksum = split_key(key)
            raise _MissingObjectError(
                f"the archive lacks {objtype.value} object {checksum} that commit "
                f"{closure.commit} needs"
            )


async def _save_closure(
    store: ObjectStore,
    commit: str,
    parent: str | None,
    *,
    stored: dict[Key, int],
    dirtrees: dict[str, tuple[int, DirTreeRefs]],
) -> Closure:
    """Compute and save the closure of ``commit`` unless the store has it already.

    The sizes of objects this import stored are known (``stored``), and so are those of
    the parent's objects (its closure); only the others are asked of the store.
    ``dirtrees`` (size and references by checksum, filled with those this import stored)
    is shared by the commits' walks. Raises _MissingObjectError naming the first object
    that is nowhere.
    """
    existing = await load_closure(store, commit)
    if existing is not None:
        return existing
    known: dict[Key, int] = {}
    if parent is not None:
        parent_closure = await load_closure(store, parent)
        if parent_closure is not None:
            known.update(parent_closure.sizes)
    known.update((key, size) for key, size in stored.items() if size >= 0)
    try:
        closure = await compute_closure(store, commit, known, trees=dirtrees)
    except MissingObjectError as e:
        raise _MissingObjectError(
            f"commit {commit} needs {e.objtype.value} object {e.checksum}, which is neither "
            "in the archive nor in the store"
        ) from None
    await save_closure(store, closure)
    return closure


async def _latest(manager: RepositoryManager, name: str) -> VersionRecord:
    repo = manager.repository(name)
    if await repo.exists():
        return await repo.version()
    return attrs.evolve(repo.empty(), repository="")


async def _finish(
    manager: RepositoryManager,
    name: str,
    collected: _Collected,
    *,
    sizes: dict[Key, int],
    trees: dict[str, bytes],
    ref: str | None,
    action: dict[str, Any],
) -> VersionRecord | None:
    if not collected.repo_seen:
        raise NoRepositoryError(_no_repository_message(collected))
    if collected.config is None:
        raise RepositoryConfigError(
            f"{collected.member('config')} is missing: not an OSTree repository"
        )
    resolved = collected.ref_tree.resolve()
    collected.refs, collected.aliases = resolved.heads, resolved.aliases
    collected.collection_refs = resolved.mirrors
    parents = {c: Commit.from_bytes(data).parent for c, data in collected.commits.items()}
    base = await _latest(manager, name)
    store = manager.store

    heads = {**collected.refs, **resolve_aliases(collected.refs, collected.aliases)}

    def guard(version: VersionRecord) -> None:
        if ref is not None:
            head = heads.get(ref)
            if head is None:
                have = ", ".join(sorted(heads)) or "none"
                raise UpdateConflictError(f"the archive has no ref {ref} (its refs: {have})")
            _check_ref_update(ref, head, parents, version)

    guard(base)  # fail early, before anything is computed
    ingest = Ingest(_GuardedManager(manager, guard), name, config=collected.config)
    for checksum, data in collected.commits.items():
        meta = collected.commitmeta.get(checksum)
        try:
            await ingest.add_commit(checksum, data, meta)
        except (InvalidObjectError, GVariantError) as e:
            raise CorruptObjectError(
                collected.member(object_path(checksum, ObjectType.COMMITMETA)), str(e)
            ) from e
    for checksum, meta in collected.commitmeta.items():
        if checksum not in parents and checksum in base.commits:  # new signatures
            try:
                DetachedMetadata.from_bytes(meta)
            except (InvalidObjectError, GVariantError) as e:
                raise CorruptObjectError(
                    collected.member(object_path(checksum, ObjectType.COMMITMETA)), str(e)
                ) from e
            digest = await put_blob(store, meta)
            ingest.commits[checksum] = attrs.evolve(base.commits[checksum], commitmeta=digest)
    ingest.tombstones.update(collected.tombstones)
    _add_refs(ingest, collected, base)
    await _add_deltas(ingest, collected, store)

    # the dirtrees this import stored (so verified): the walks need not read them back
    dirtrees = {tree: (len(blob), dirtree_references(blob)) for tree, blob in trees.items()}
    boundaries: dict[str, str | None] = {}  # the first ancestor outside the archive
    for checksum in _oldest_first(parents):
        parent = parents[checksum]
        boundary = None if parent is None else boundaries.get(parent, parent)
        boundaries[checksum] = boundary
        orphaned = boundary is not None and boundary not in base.commits
        try:
            closure = await _save_closure(
                store, checksum, parents[checksum], stored=sizes, dirtrees=dirtrees
            )
            if orphaned:
                # truncated history is accepted only when the archive itself holds the
                # whole tree; otherwise this is an update for some other repository
                _check_self_contained(closure, sizes)
        except _MissingObjectError as e:
            if orphaned:
                raise MissingParentError(
                    f"{e}. Commit {checksum} builds on commit {boundary}, which is neither in "
                    f"the archive nor in repository {name}: an update archive imports only "
                    "into the repository that holds its parent"
                ) from None
            raise IncompleteArchiveError(f"the archive is incomplete: {e}") from None

    await manager.create_repository(name, exist_ok=True)
    return await ingest.publish(action)


def _add_refs(ingest: Ingest, collected: _Collected, base: VersionRecord) -> None:
    def resolve(commit: str, what: str) -> None:
        if commit in ingest.commits:
            return
        info: CommitInfo | None = base.commits.get(commit)
        if info is None:
            raise InvalidRefError(
                f"{what} names commit {commit}, which is neither in the archive nor in "
                f"repository {ingest.name}"
            )
        ingest.commits[commit] = info  # a ref to a commit the repository has: just move it

    for ref, commit in collected.refs.items():
        what = collected.member(f"refs/heads/{ref}")
        resolve(commit, what)
        try:
            ingest.set_ref(ref, commit)
        except InvalidNameError as e:
            raise InvalidRefError(f"{what}: {e}") from None
    for alias, target in collected.aliases.items():
        ingest.set_alias(alias, target)  # names checked, and resolved, by the ref tree
    for (cid, ref), commit in collected.collection_refs.items():
        what = collected.member(f"refs/mirrors/{cid}/{ref}")
        resolve(commit, what)
        try:
            ingest.set_ref(ref, commit, collection_id=cid)
        except InvalidNameError as e:
            raise InvalidRefError(f"{what}: {e}") from None


async def _add_deltas(ingest: Ingest, collected: _Collected, store: ObjectStore) -> None:
    for directory, files in sorted(collected.deltas.items()):
        where = collected.member(directory)
        if files.superblock is None:
            raise CorruptObjectError(where, "a static delta without its superblock")
        try:
            block = DeltaSuperblock.from_bytes(files.superblock)
        except (InvalidObjectError, GVariantError) as e:
            raise CorruptObjectError(f"{where}/superblock", str(e)) from e
        name = delta_name(block.from_checksum, block.to_checksum)
        expected = delta_path(block.from_checksum, block.to_checksum).rstrip("/")
        if expected != directory:
            raise CorruptObjectError(
                f"{where}/superblock",
                f"the superblock of delta {name}, which belongs at {expected}",
            )
        digests: list[str | None] = []
        for index, header in enumerate(block.parts):
            part = f"{where}/{index}"
            inline = block.inline_part(index)
            if inline is not None:
                if hashlib.sha256(inline).hexdigest() != header.checksum:
                    raise CorruptObjectError(part, "inline delta part checksum mismatch")
                digests.append(None)
                continue
            spool = files.parts.get(index)
            if spool is None:
                raise CorruptObjectError(part, "a delta part its superblock lists is missing")
            if spool.digest != header.checksum:
                raise CorruptObjectError(
                    part,
                    f"delta part checksum mismatch: expected {header.checksum}, got {spool.digest}",
                )
            await store.write_named(blob_path(spool.digest), spool.chunks())
            digests.append(spool.digest)
        extra = sorted(set(files.parts) - set(range(len(block.parts))))
        if extra:
            raise CorruptObjectError(
                where, f"delta parts {extra} that its superblock does not list"
            )
        ingest.deltas[name] = DeltaInfo(await put_blob(store, files.superblock), tuple(digests))


def _no_repository_message(collected: _Collected) -> str:
    where = collected.repo_dir or "the archive's top"
    found = ", ".join(collected.top_level) or "nothing"
    message = f"no OSTree repository at {where} in the archive (its top holds: {found})"
    if collected.configs_elsewhere:
        message += "; a config file is at " + ", ".join(collected.configs_elsewhere)
        message += ": name that directory (repo_dir, --repository-name)"
    return message


# -- the entry point ---------------------------------------------------------------------------


async def import_archive(
    manager: RepositoryManager,
    name: str,
    source: str | os.PathLike[str] | Readable | AsyncIterable[bytes],
    *,
    repo_dir: str = "repo",
    ref: str | None = None,
    limits: ArchiveLimits | None = None,
    progress: ProgressCallback | None = None,
    concurrency: int = 4,
) -> VersionRecord | None:
    """Import the OSTree repository inside a tar archive as a new version of ``name``.

    ``source`` is a path, a binary file object (only its ``read`` is used, so a pipe or a
    socket works) or an async iterable of byte chunks (an HTTP request body). The archive
    may be plain tar or gzip, xz, bzip2 or zstd compressed (told from its first bytes).
    The repository is looked for at ``repo_dir`` inside the archive (``"repo"``,
    osbuild-composer's layout; ``""`` or ``"."`` for the top).

    Every ref, collection ref, commit, detached metadata, tombstone and static delta of
    the archive comes in; refs of the same name move. Commits whose parent is not in the
    archive are *updates*: their parent is expected in the repository already (with
    ``ref``, it must be that ref's current head, and the archive must hold that ref); a
    commit whose parent is nowhere is accepted as truncated history if its own tree is
    complete. The repository is created if needed.

    Returns the new version, or None when the repository already held exactly this
    content (re-importing an archive makes no new version). Raises an
    :class:`~ostree_repo.importing.errors.ArchiveError` for a bad archive; in every error
    case no version is made. ``progress`` is called on the event loop as objects are
    stored, with an :class:`ImportProgress`.
    """
    validate_repository_name(name)
    if ref is not None:
        validate_ref(ref)
    parts = [p for p in repo_dir.split("/") if p not in ("", ".")]
    if ".." in parts or repo_dir.startswith("/"):
        raise InvalidNameError(f"repo_dir {repo_dir!r} must be a relative path inside the archive")
    limits = limits or ArchiveLimits()
    state = ImportProgress()
    collected = _Collected(repo_dir="/".join(parts))
    if isinstance(source, str | os.PathLike):
        fspath = os.fspath(source)
        state.bytes_total = (await anyio.to_thread.run_sync(os.stat, fspath)).st_size
        path: str | None = fspath
    else:
        path = None
    # one batch waits for a free writer at most: memory stays within concurrency + 2 batches
    send, receive = anyio.create_memory_object_stream[_Work](1)
    aborted = threading.Event()

    def read_archive() -> None:
        if path is not None:
            with open(path, "rb") as f:
                read_stream(f)
        elif hasattr(source, "read"):
            read_stream(cast(Readable, source))
        else:
            read_stream(_FromAsync(cast(AsyncIterable[bytes], source)))

    def read_stream(readable: Readable) -> None:
        stream = TarStream(readable, limits)
        state.format = collected.format = stream.format
        _Reader(stream, collected, send, writers, state).run()

    async def reader() -> None:
        try:
            await anyio.to_thread.run_sync(read_archive)
        except _AbortedError:
            pass  # a writer failed: its error is raised
        finally:
            send.close()

    try:
        try:
            async with manager.store.staging() as staging, task_group() as tg:
                writers = _Writers(staging, state, progress, aborted)
                for _ in range(max(1, concurrency)):
                    tg.start_soon(writers.run, receive.clone())
                receive.close()
                tg.start_soon(reader)
        finally:
            aborted.set()  # stop the reader thread, whatever happened
        state.done = True
        if progress is not None:
            progress(state)
        action = {
            "kind": "import-archive",
            "source": path if path is not None else "<stream>",
            "format": collected.format,
            "repo_dir": collected.repo_dir,
            "ref": ref,
        }
        return await _finish(
            manager,
            name,
            collected,
            sizes=writers.sizes,
            trees=writers.dirtrees,
            ref=ref,
            action=action,
        )
    finally:
        collected.close()
