"""Generating a static delta from commit A (or from nothing) to commit B.

The steps follow libostree's compiler (``ostree-repo-static-delta-compilation.c``):

1. walk both trees: the delta carries the target's dirtrees, dirmetas and files that
   the source's tree does not reach (the target commit itself is embedded in the
   superblock);
2. pair each new regular file with an old one of the same name and a similar size
   (:mod:`._similar`); for each pair try rollsum matches, then a bsdiff patch
   (:mod:`._jobs`); new files above ``min_fallback_size`` that are not diffed become
   *fallbacks*, which the client fetches as plain objects;
3. cut the rest into parts of at most ``max_part_size`` bytes of payload and write them
   (compressed, in worker processes);
4. assemble the superblock: metadata (``ostree.endianness``, inline parts, the
   target's detached metadata), timestamp, both checksums, the target commit, the part
   headers and the fallbacks.

Differences from libostree, all within what its client applies: objects are ordered
for the compressor (metadata, then new files grouped by extension and name, symlinks,
then diffs) rather than in hash-table order; a delta is cut into at least as many parts
as there are workers (when it has a megabyte or more per worker), so they compress in
parallel; and bsdiff is limited to smaller files (``max_bsdiff_size``) so memory stays
bounded (see ``docs/deltas.md``).
"""

from __future__ import annotations

import hashlib
import math
import os
import stat
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any, Generic, NamedTuple, TypeVar

import anyio
import attrs

from ostree_repo._tasks import task_group
from ostree_repo.deltas import _bsdiff as bsdiff
from ostree_repo.deltas._jobs import DiffRequest, DiffResult, Entry, PartStart
from ostree_repo.deltas._payload import COMPRESSIONS, PartTables, XzSettings
from ostree_repo.deltas._rollsum import Match
from ostree_repo.deltas._similar import candidate_names, pair_similar
from ostree_repo.deltas._walk import READ_CONCURRENCY, TreeIndex, read_commit, walk_tree
from ostree_repo.deltas._workers import DeltaWorkers
from ostree_repo.deltas.errors import DeltaError
from ostree_repo.errors import InvalidObjectError, NotFoundError
from ostree_repo.gvariant import Variant, loads
from ostree_repo.objects import (
    DeltaFallback,
    DeltaPartHeader,
    DeltaSuperblock,
    DirTree,
    ObjectType,
    delta_path,
)
from ostree_repo.objects.content import FileHeader
from ostree_repo.objects.delta import ENDIANNESS
from ostree_repo.objects.metadata import Commit
from ostree_repo.store import ObjectStore

__all__ = [
    "DeltaOptions",
    "DeltaProgress",
    "DeltaStats",
    "GeneratedDelta",
    "build_superblock",
    "generate_delta",
]

T = TypeVar("T")

#: Bytes of ``.filez`` kept in memory between reading objects and writing parts;
#: objects past it are read again when their part is written.
CACHE_BUDGET = 32 << 20
#: Most bytes of entries sent to a worker in one message.
_BATCH_BYTES = 1 << 20
#: Most bytes of inputs in one batch of diffs.
_DIFF_BATCH_BYTES = 4 << 20
#: How much more of a ``.filez`` is read for its header when 64 KiB were not enough.
MAX_HEADER_READ = 10 << 20
#: Bytes of payload per part below which a delta is not split for the workers' sake.
MIN_PART_SIZE = 1_000_000


@attrs.frozen
class DeltaOptions:
    """How a delta is made. Sizes are in bytes; defaults are libostree's where it has
    one (``max-chunk-size`` 32 MB, ``min-fallback-size`` 4 MB), except
    ``max_bsdiff_size`` (libostree: 128 MB), kept low because bsdiff holds about 17
    bytes per byte of the old file."""

    #: ``"xz"`` (as libostree writes parts) or ``"none"``
    compression: str = "xz"
    #: a part holds at most this much payload (libostree's ``max-chunk-size``)
    max_part_size: int = 32_000_000
    #: new files larger than this (content stream) are fetched as loose objects; 0: never
    min_fallback_size: int = 4_000_000
    #: bsdiff is tried when the old and new file together are at most this big
    max_bsdiff_size: int = 16_000_000
    #: files are only diffed when the old and new file together are at most this big
    max_diff_size: int = 64_000_000
    #: try bsdiff for modified files (libostree's ``bsdiff-enabled``)
    bsdiff: bool = True
    #: try rollsum matches for modified files
    rollsum: bool = True
    #: carry the parts inside the superblock (one-file delta, libostree's ``--inline``)
    inline: bool = False
    #: write part sizes big-endian (``ostree.endianness`` ``'B'``)
    big_endian: bool = False
    #: how parts are xz-compressed
    xz: XzSettings = attrs.field(factory=lambda: XzSettings(dict_size=16 << 20))

    def __attrs_post_init__(self) -> None:
        if self.compression not in COMPRESSIONS:
            known = ", ".join(sorted(COMPRESSIONS))
            raise DeltaError(f"unknown delta compression {self.compression!r} (known: {known})")
        if self.max_part_size <= 0 or min(self.max_bsdiff_size, self.max_diff_size) < 0:
            raise DeltaError("delta size limits must be positive")

    def key(self) -> str:
        """A stable text naming what the options change in the delta's bytes."""
        fields = attrs.asdict(self, recurse=False)
        fields["xz"] = list(self.xz)
        return ",".join(f"{k}={v}" for k, v in sorted(fields.items()))


class DeltaProgress(NamedTuple):
    """Where a generation is: ``phase`` (``read``, ``diff``, ``write``), and how many of
    its ``total`` steps (objects read, files diffed, parts written) are ``done``."""

    phase: str
    done: int
    total: int


@attrs.frozen
class DeltaStats:
    """What a delta holds."""

    objects: int = 0
    metadata: int = 0
    files: int = 0
    rollsum: int = 0
    bsdiff: int = 0
    fallbacks: int = 0
    parts: int = 0
    #: bytes of the part files, and of the objects they produce
    size: int = 0
    usize: int = 0
    #: bytes of the fallback objects (stored)
    fallback_size: int = 0

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return attrs.asdict(self)


@attrs.frozen
class GeneratedDelta(Generic[T]):
    """A delta made by :func:`generate_delta`: the superblock's bytes, what
    ``write_part`` returned for each part (None for inline parts), and the layout that
    :func:`build_superblock` needs to make the superblock again (with other detached
    metadata)."""

    from_checksum: str | None
    to_checksum: str
    superblock: bytes
    parts: tuple[T | None, ...]
    headers: tuple[DeltaPartHeader, ...]
    fallbacks: tuple[DeltaFallback, ...]
    timestamp: int
    stats: DeltaStats


class _Content(NamedTuple):
    """A content object as read: header, file size, stored size, ``.filez`` if kept."""

    header: FileHeader
    size: int
    stored: int
    filez: bytes | None


def _content_stream_size(header: FileHeader, size: int) -> int:
    """libostree's size of a content object as a stream: length prefix, header, bytes."""
    return 8 + len(header.to_bytes()) + size


def _parse_filez_header(prefix: bytes) -> tuple[FileHeader, int] | None:
    """(header, file size) from the start of a ``.filez``; None if it is not all there."""
    if len(prefix) < 8:
        return None
    length = int.from_bytes(prefix[:4], "big")
    if len(prefix) < 8 + length:
        return None
    return FileHeader.from_filez_header(prefix[8 : 8 + length])


class _Reader:
    """Reads content objects, keeping their bytes within a budget. On a store whose
    objects are local files, many are read in one worker-thread hop."""

    def __init__(self, store: ObjectStore, budget: int) -> None:
        self.store = store
        self.budget = budget
        self.limiter = anyio.CapacityLimiter(READ_CONCURRENCY)

    async def headers(self, checksums: Sequence[str], keep_limit: int) -> list[_Content]:
        """:meth:`header` of each object, in order."""
        paths = [self.store.local_object_path(c, ObjectType.FILE) for c in checksums]
        if all(p is not None for p in paths):
            async with self.limiter:
                return await anyio.to_thread.run_sync(
                    self._local_headers, checksums, paths, keep_limit
                )
        out: list[_Content | None] = [None] * len(checksums)

        async def one(index: int) -> None:
            out[index] = await self.header(checksums[index], keep_limit)

        async with task_group() as tg:
            for index in range(len(checksums)):
                tg.start_soon(one, index)
        return [c for c in out if c is not None]

    def _local_headers(
        self, checksums: Sequence[str], paths: Sequence[str | None], keep_limit: int
    ) -> list[_Content]:
        found = []
        for checksum, path in zip(checksums, paths, strict=True):
            assert path is not None
            try:
                with open(path, "rb") as f:
                    head = f.read(1 << 16)
                    parsed = _parse_filez_header(head)
                    if parsed is None:  # a header of more than 64 KiB (xattrs)
                        head += f.read(MAX_HEADER_READ)
                        parsed = _parse_filez_header(head)
                    if parsed is None:
                        raise InvalidObjectError(f"content object {checksum}: truncated header")
                    header, size = parsed
                    stored = os.fstat(f.fileno()).st_size
                    data = None
                    if size <= keep_limit and stored <= self.budget:
                        data = head + f.read() if stored > len(head) else head
                        self.budget -= len(data)
            except FileNotFoundError:
                raise NotFoundError(f"content object {checksum} is not in the store") from None
            found.append(_Content(header, size, stored, data))
        return found

    async def header(self, checksum: str, keep_limit: int) -> _Content:
        """Read an object's header; keep its bytes if its file size is at most
        ``keep_limit`` and the budget allows (else stop reading after the header)."""
        async with self.limiter:
            try:
                async with self.store.open_object(checksum, ObjectType.FILE) as stream:
                    pieces: list[bytes] = []
                    have = 0
                    parsed = None
                    keep = True
                    complete = True
                    async for chunk in stream:
                        pieces.append(bytes(chunk))
                        have += len(chunk)
                        if parsed is None:
                            parsed = _parse_filez_header(b"".join(pieces))
                            if parsed is not None:
                                keep = parsed[1] <= keep_limit and parsed[1] + 4096 <= self.budget
                        if parsed is not None and not keep:
                            complete = False
                            break
            except NotFoundError:
                raise NotFoundError(f"content object {checksum} is not in the store") from None
            if parsed is None:
                raise InvalidObjectError(f"content object {checksum}: truncated header")
            header, size = parsed
            if not complete:
                stored = await self.store.object_size(checksum, ObjectType.FILE)
                return _Content(header, size, stored, None)
            if not keep or have > self.budget:
                return _Content(header, size, have, None)
            self.budget -= have
            return _Content(header, size, have, b"".join(pieces))

    async def filez(self, checksum: str) -> bytes:
        """An object's ``.filez``, read now."""
        async with self.limiter:
            try:
                return await self.store.read_object(checksum, ObjectType.FILE)
            except NotFoundError:
                raise NotFoundError(f"content object {checksum} is not in the store") from None


@attrs.define
class _Item:
    """One object of the delta, as the part planner sees it."""

    objtype: ObjectType
    checksum: str
    #: bytes it adds to a part's blob, and to its operations (about)
    size: int
    kind: str  # "m", "f", "b", "r"
    usize: int
    header: FileHeader | None = None
    data: bytes | None = None  # metadata bytes, or the kept .filez
    source: str | None = None
    extra: Any = None  # bsdiff patch, or rollsum matches


def _extension(names: Sequence[str]) -> str:
    name = min(names)
    dot = name.rfind(".")
    return name[dot + 1 :] if dot > 0 else ""


async def generate_delta(
    store: ObjectStore,
    from_checksum: str | None,
    to_checksum: str,
    *,
    write_part: Callable[[int, bytes], Awaitable[T]],
    commitmeta: bytes | None = None,
    options: DeltaOptions | None = None,
    workers: DeltaWorkers | None = None,
    progress: Callable[[DeltaProgress], None] | None = None,
) -> GeneratedDelta[T]:
    """Make the delta from ``from_checksum`` (None: from scratch) to ``to_checksum``,
    both commits of ``store`` with their whole trees.

    Each part file goes to ``write_part(index, data)`` as it is made (not for inline
    parts); the superblock is returned, with the target's detached metadata
    ``commitmeta`` (an ``a{sv}``) in it when given. ``workers`` runs the diffs and parts
    (by default a pool made for this call). Raises
    :class:`~.errors.CommitNotFoundError` when an end is not a commit in the store.
    """
    opts = options or DeltaOptions()
    if from_checksum == to_checksum:
        raise DeltaError(f"a delta from {to_checksum} to itself would be empty")
    async with _pool(workers) as pool:
        return await _Generation(store, opts, pool, progress).run(
            from_checksum, to_checksum, commitmeta, write_part
        )


@asynccontextmanager
async def _pool(workers: DeltaWorkers | None) -> AsyncIterator[DeltaWorkers]:
    if workers is not None:
        yield workers
        return
    async with DeltaWorkers() as pool:
        yield pool


class _Generation:
    """The state of one :func:`generate_delta` call."""

    def __init__(
        self,
        store: ObjectStore,
        options: DeltaOptions,
        workers: DeltaWorkers,
        progress: Callable[[DeltaProgress], None] | None,
    ) -> None:
        self.store = store
        self.options = options
        self.workers = workers
        self.progress = progress
        self.reader = _Reader(store, CACHE_BUDGET)

    def _report(self, phase: str, done: int, total: int) -> None:
        if self.progress is not None:
            self.progress(DeltaProgress(phase, done, total))

    async def run(
        self,
        from_checksum: str | None,
        to_checksum: str,
        commitmeta: bytes | None,
        write_part: Callable[[int, bytes], Awaitable[T]],
    ) -> GeneratedDelta[T]:
        to_data, to_commit = await read_commit(self.store, to_checksum)
        trees: dict[str, tuple[bytes, DirTree]] = {}
        old = TreeIndex()
        if from_checksum is not None:
            _, from_commit = await read_commit(self.store, from_checksum)
            old = await walk_tree(self.store, from_commit, trees)
        shared = {c for t, c in old.metadata if t is ObjectType.DIRTREE}
        new = await walk_tree(self.store, to_commit, trees, skip=shared)
        new_files = {c: names for c, names in new.files.items() if c not in old.files}
        if len(new_files) >= 200 and self.workers.processes:
            self.workers.start()  # they import while we read

        metadata = await self._metadata(new, old, trees)
        contents = await self._read_new(new_files)
        pairs = await self._pairs(new_files, contents, old)
        diffs = await self._diffs(pairs, contents)

        items = list(metadata)
        plain = [c for c in new_files if c not in diffs]
        regular = sorted(
            (c for c in plain if not contents[c].header.is_symlink),
            key=lambda c: (_extension(new_files[c]), min(new_files[c]), c),
        )
        links = sorted(
            (c for c in plain if contents[c].header.is_symlink), key=lambda c: min(new_files[c])
        )
        fallbacks: list[DeltaFallback] = []
        limit = self.options.min_fallback_size
        for checksum in regular:
            content = contents[checksum]
            if limit and _content_stream_size(content.header, content.size) > limit:
                fallbacks.append(
                    DeltaFallback(ObjectType.FILE, checksum, content.stored, content.size)
                )
                continue
            items.append(self._file_item(checksum, content))
        items.extend(self._file_item(c, contents[c]) for c in links)
        for kind in ("rollsum", "bsdiff"):
            for checksum, (source, result) in sorted(diffs.items(), key=lambda kv: kv[0]):
                if result[0] == kind:
                    items.append(self._diff_item(checksum, contents[checksum], source, result))

        headers, parts, inline = await self._write_parts(items, write_part)
        timestamp = int(time.time())
        superblock = build_superblock(
            to_data,
            from_checksum,
            to_checksum,
            headers,
            tuple(fallbacks),
            commitmeta=commitmeta,
            timestamp=timestamp,
            inline=inline,
            big_endian=self.options.big_endian,
        )
        counts = {k: sum(1 for _, r in diffs.values() if r[0] == k) for k in ("rollsum", "bsdiff")}
        stats = DeltaStats(
            objects=len(items),
            metadata=len(metadata),
            files=len(items) - len(metadata) - len(diffs),
            rollsum=counts["rollsum"],
            bsdiff=counts["bsdiff"],
            fallbacks=len(fallbacks),
            parts=len(headers),
            size=sum(h.size for h in headers),
            usize=sum(h.usize for h in headers),
            fallback_size=sum(f.size for f in fallbacks),
        )
        return GeneratedDelta(
            from_checksum,
            to_checksum,
            superblock,
            tuple(parts),
            tuple(headers),
            tuple(fallbacks),
            timestamp,
            stats,
        )

    # -- reading ---------------------------------------------------------------------------

    async def _metadata(
        self, new: TreeIndex, old: TreeIndex, trees: dict[str, tuple[bytes, DirTree]]
    ) -> list[_Item]:
        """The new dirtrees and dirmetas, with their bytes, in walk order."""
        keys = [k for k in new.metadata if k not in old.metadata]
        metas: dict[str, bytes] = {}
        limiter = anyio.CapacityLimiter(READ_CONCURRENCY)

        async def read_meta(checksum: str) -> None:
            async with limiter:
                try:
                    metas[checksum] = await self.store.read_object(checksum, ObjectType.DIRMETA)
                except NotFoundError:
                    raise NotFoundError(f"dirmeta {checksum} is not in the store") from None

        async with task_group() as tg:
            for objtype, checksum in keys:
                if objtype is ObjectType.DIRMETA:
                    tg.start_soon(read_meta, checksum)
        items = []
        for objtype, checksum in keys:
            data = trees[checksum][0] if objtype is ObjectType.DIRTREE else metas[checksum]
            items.append(_Item(objtype, checksum, len(data), "m", len(data), data=data))
        return items

    async def _read_all(self, checksums: Sequence[str], keep_limit: int) -> dict[str, _Content]:
        found: dict[str, _Content] = {}
        total = len(checksums)
        batches = [checksums[i : i + 256] for i in range(0, total, 256)]

        async def one(batch: Sequence[str]) -> None:
            found.update(zip(batch, await self.reader.headers(batch, keep_limit), strict=True))
            self._report("read", len(found), total)

        async with task_group() as tg:
            for batch in batches:
                tg.start_soon(one, batch)
        return found

    async def _read_new(self, new_files: dict[str, list[str]]) -> dict[str, _Content]:
        """Headers (and, within the budget, bytes) of the new content objects."""
        keep = max(self.options.min_fallback_size, self.options.max_diff_size)
        return await self._read_all(list(new_files), keep)

    async def _pairs(
        self, new_files: dict[str, list[str]], contents: dict[str, _Content], old: TreeIndex
    ) -> dict[str, str]:
        """``{new file: old file}`` for the modified files worth diffing."""
        opts = self.options
        if not old.files or not (opts.rollsum or opts.bsdiff):
            return {}
        regular = {
            c: (contents[c].size, tuple(new_files[c]))
            for c in new_files
            if not contents[c].header.is_symlink
        }
        exact, fuzzy = candidate_names(names for _, names in regular.values())
        wanted = [
            c
            for c, names in old.files.items()
            if any(n in exact or n.split(".", 1)[0] in fuzzy for n in names)
        ]
        old_contents = await self._read_all(wanted, opts.max_diff_size)
        contents.update(old_contents)
        candidates = {
            c: (content.size, tuple(old.files[c]))
            for c, content in old_contents.items()
            if not content.header.is_symlink
        }
        pairs = pair_similar(regular, candidates)
        kept = {}
        for new_checksum, old_checksum in pairs.items():
            source = contents[old_checksum]
            if not source.header.mode & stat.S_IROTH:
                continue  # a bare-user client may not be able to read it (as libostree)
            if source.size + contents[new_checksum].size > opts.max_diff_size:
                continue
            kept[new_checksum] = old_checksum
        return kept

    # -- diffs ----------------------------------------------------------------------------

    async def _diffs(
        self, pairs: dict[str, str], contents: dict[str, _Content]
    ) -> dict[str, tuple[str, tuple[str, Any]]]:
        """``{new file: (old file, result)}`` for the pairs that diffing paid for."""
        opts = self.options
        results: dict[str, tuple[str, tuple[str, Any]]] = {}
        batches: list[list[tuple[str, str]]] = []
        batch: list[tuple[str, str]] = []
        size = 0
        for new_checksum, old_checksum in sorted(
            pairs.items(), key=lambda kv: -contents[kv[0]].size
        ):
            batch.append((new_checksum, old_checksum))
            size += contents[new_checksum].size + contents[old_checksum].size
            if size >= _DIFF_BATCH_BYTES:
                batches.append(batch)
                batch, size = [], 0
        if batch:
            batches.append(batch)
        done = 0

        async def run(batch: list[tuple[str, str]]) -> None:
            nonlocal done
            requests = []
            memory = 0
            for new_checksum, old_checksum in batch:
                new, old = contents[new_checksum], contents[old_checksum]
                allow = opts.bsdiff and new.size + old.size <= opts.max_bsdiff_size
                requests.append(
                    DiffRequest(
                        new_checksum,
                        new.filez or await self.reader.filez(new_checksum),
                        old_checksum,
                        old.filez or await self.reader.filez(old_checksum),
                        allow,
                    )
                )
                estimate = bsdiff.memory_estimate(old.size, new.size) if allow else 0
                memory = max(memory, estimate + 3 * (old.size + new.size))
            memory += sum(len(r.filez) + len(r.source_filez) for r in requests)
            answers: list[DiffResult] = await self.workers.diffs(requests, opts.rollsum, memory)
            for (new_checksum, old_checksum), answer in zip(batch, answers, strict=True):
                if answer is not None:
                    results[new_checksum] = (old_checksum, answer)
            done += len(batch)
            self._report("diff", done, len(pairs))

        async with task_group() as tg:
            for one in batches:
                tg.start_soon(run, one)
        return results

    # -- parts ----------------------------------------------------------------------------

    def _file_item(self, checksum: str, content: _Content) -> _Item:
        header = content.header
        size = len(header.symlink_target.encode()) if header.is_symlink else content.size
        # libostree counts a symlink's size as 0 in a part's uncompressed size
        return _Item(
            ObjectType.FILE, checksum, size + 12, "f", content.size, header=header,
            data=content.filez,
        )  # fmt: skip

    def _diff_item(
        self, checksum: str, content: _Content, source: str, result: tuple[str, Any]
    ) -> _Item:
        kind, extra = result
        if kind == "bsdiff":
            patch: bytes = extra
            return _Item(
                ObjectType.FILE, checksum, 32 + len(patch) + 24, "b", content.size,
                header=content.header, source=source, extra=patch,
            )  # fmt: skip
        matches: tuple[Match, ...] = extra
        literal = content.size - sum(m.length for m in matches)
        return _Item(
            ObjectType.FILE, checksum, 32 + literal + 12 * len(matches) + 12, "r", content.size,
            header=content.header, data=content.filez, source=source, extra=matches,
        )  # fmt: skip

    def _cut(self, items: list[_Item]) -> list[list[_Item]]:
        """Items split into parts: at most ``max_part_size`` each, and at least one per
        worker when each gets :data:`MIN_PART_SIZE` or more."""
        total = sum(i.size for i in items)
        if not items:
            return [[]]
        count = max(
            math.ceil(total / self.options.max_part_size),
            min(max(1, self.workers.processes), math.ceil(total / MIN_PART_SIZE)),
        )
        target = math.ceil(total / count)
        parts: list[list[_Item]] = [[]]
        filled = 0
        for item in items:
            if parts[-1] and filled + item.size > target and len(parts) < count:
                parts.append([])
                filled = 0
            parts[-1].append(item)
            filled += item.size
        return parts

    async def _write_parts(
        self, items: list[_Item], write_part: Callable[[int, bytes], Awaitable[T]]
    ) -> tuple[list[DeltaPartHeader], list[T | None], list[bytes]]:
        """Write the parts; (their headers, what ``write_part`` returned for each (None
        when inline), the inline parts' bytes)."""
        plan = self._cut(items)
        headers: list[DeltaPartHeader | None] = [None] * len(plan)
        results: list[T | None] = [None] * len(plan)
        inline: list[bytes] = [b""] * len(plan) if self.options.inline else []
        done = 0

        async def write(index: int, part: list[_Item]) -> None:
            nonlocal done
            data = await self._write_part(part)
            headers[index] = DeltaPartHeader(
                0,
                hashlib.sha256(data).hexdigest(),
                len(data),
                sum(i.usize for i in part),
                tuple((i.objtype, i.checksum) for i in part),
            )
            if self.options.inline:
                inline[index] = data
            else:
                results[index] = await write_part(index, data)
            done += 1
            self._report("write", done, len(plan))

        self._report("write", 0, len(plan))
        async with task_group() as tg:
            for index, part in enumerate(plan):
                tg.start_soon(write, index, part)
        return [h for h in headers if h is not None], results, inline

    async def _write_part(self, part: list[_Item]) -> bytes:
        tables = PartTables()
        indices = [tables.add(i.header) if i.header is not None else (0, 0) for i in part]
        modes, xattrs = tables.encode()
        payload = len(modes) + len(xattrs) + sum(i.size for i in part)
        start = PartStart(self.options.compression, self.options.xz, modes, xattrs, payload)
        memory = payload // 4 + (
            self.options.xz.memory(payload) if self.options.compression == "xz" else payload
        )
        async with self.workers.part(start, memory) as session:
            batch: list[Entry] = []
            size = 0
            for item, index in zip(part, indices, strict=True):
                entry = await self._entry(item, index)
                batch.append(entry)
                size += item.size
                if size >= _BATCH_BYTES:
                    await session.send(batch)
                    batch, size = [], 0
            if batch:
                await session.send(batch)
            return await session.finish()

    async def _entry(self, item: _Item, indices: tuple[int, int]) -> Entry:
        if item.kind == "m":
            return ("m", item.data)
        if item.kind == "b":
            return ("b", item.checksum, item.usize, indices, item.source, item.extra)
        filez = item.data or await self.reader.filez(item.checksum)
        if item.kind == "f":
            return ("f", item.checksum, filez, indices)
        return ("r", item.checksum, filez, indices, item.source, item.extra)


def build_superblock(
    commit: bytes,
    from_checksum: str | None,
    to_checksum: str,
    headers: Sequence[DeltaPartHeader],
    fallbacks: Sequence[DeltaFallback] = (),
    *,
    commitmeta: bytes | None = None,
    timestamp: int = 0,
    inline: Sequence[bytes] = (),
    big_endian: bool = False,
) -> bytes:
    """A superblock as libostree writes it: metadata ``ostree.endianness``, then the
    inline parts (``deltas/<path>/N`` -> ``(yay)``) if any, then the target's detached
    metadata (``deltas/<path>/commitmeta``); the timestamp, both ends, the target
    commit, the part headers and the fallbacks."""
    metadata: dict[str, Variant] = {ENDIANNESS: Variant("y", ord("B" if big_endian else "l"))}
    for index, part in enumerate(inline):
        key = delta_path(from_checksum, to_checksum, str(index))
        metadata[key] = Variant("(yay)", (part[0], part[1:]))
    if commitmeta is not None:
        key = delta_path(from_checksum, to_checksum, "commitmeta")
        metadata[key] = Variant("a{sv}", loads("a{sv}", commitmeta))
    block = DeltaSuperblock(
        to_checksum=to_checksum,
        commit=Commit.from_bytes(commit),
        from_checksum=from_checksum,
        timestamp=timestamp,
        metadata=metadata,
        parts=tuple(headers),
        fallbacks=tuple(fallbacks),
    )
    data = block.to_bytes()
    DeltaSuperblock.from_bytes(data)  # the embedded commit must be the target, byte for byte
    return data
