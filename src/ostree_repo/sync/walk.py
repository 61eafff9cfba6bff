"""The object walk: every dirtree, dirmeta and content object that commits' trees reach
and the store lacks, fetched by a fixed pool of workers into one staging block.

Dirtrees and dirmeta go first (a dirtree must be read to know what is under it), content
objects after them, from the same pool. Whether objects are stored already is asked once
per dirtree, for all its new entries together; a subtree whose root dirtree belongs to a
complete closure (``known``) is not even walked, since a closure exists only when every
object under it is stored.

With the lean HTTP client, a worker takes content objects in groups (up to
:data:`GROUP`) and fetches each group in one pipelined batch
(:meth:`Remote.fetch_small_objects`); what a batch leaves undone (large objects,
errors, a connection closed under it) goes back to the queue to be fetched one by one,
with the usual retries.

Writes go through :meth:`ObjectStore.staging`: small objects (up to
:data:`~ostree_repo.sync.remote.SMALL_BODY`) are collected and written in batches by
writer tasks, each batch verified and written in one worker-thread hop; larger ones
stream through the staging's verifying write. A batch with a bad object is sorted out
object by object and the bad ones are fetched again (then reported as usual). What was
fetched is flushed (durable, visible) when the walk ends, also when it fails, so a sync
run again fetches only what is still missing.
"""

from __future__ import annotations

import collections
import contextlib
from collections.abc import Callable, Iterable

import anyio
import anyio.to_thread
import attrs
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from ostree_repo._tasks import task_group
from ostree_repo.errors import ChecksumMismatchError, InvalidObjectError
from ostree_repo.objects import ObjectType
from ostree_repo.objects.tree import dirtree_references
from ostree_repo.objects.verify import find_invalid
from ostree_repo.repository.closure import Key, object_key
from ostree_repo.store import ObjectStore, Staging
from ostree_repo.sync.remote import Remote

__all__ = ["WalkStats", "fetch_trees"]

#: Objects (and bytes) per batch written to the store in one go.
BATCH_OBJECTS = 512
BATCH_BYTES = 4 * 1024 * 1024
#: Tasks writing batches (each runs its batch in a worker thread).
WRITERS = 2
#: Content objects a worker takes at once to fetch in one batch (lean client only).
GROUP = 32

_Obj = tuple[str, ObjectType, bytes]
#: A unit of work: (checksum, type, already stored?)
_Item = tuple[str, ObjectType, bool]


@attrs.define
class WalkStats:
    """Counts of one walk."""

    fetched: int = 0
    present: int = 0
    fetched_bytes: int = 0
    #: stored sizes learnt on the way (saves a size lookup per object when closures are made)
    sizes: dict[Key, int] = attrs.field(factory=dict)


class _Queue:
    """Work for the pool: metadata before content (content that a batch left undone,
    to fetch one by one, before the rest); ends when empty and nobody is busy (a busy
    worker may still add work)."""

    def __init__(self) -> None:
        self.meta: collections.deque[_Item] = collections.deque()
        self.single: collections.deque[_Item] = collections.deque()
        self.files: collections.deque[_Item] = collections.deque()
        self.busy = 0
        self._event = anyio.Event()
        self._waiting = 0

    def put(self, item: _Item) -> None:
        (self.files if item[1] is ObjectType.FILE else self.meta).append(item)
        self._wake()

    def put_single(self, item: _Item) -> None:
        """Queue an item to be fetched on its own (not in a batch)."""
        self.single.append(item)
        self._wake()

    def more_files(self, n: int) -> list[_Item]:
        """Up to ``n`` more content items, taken along with one from :meth:`get` (they
        count as part of that one's work: one :meth:`done` for all)."""
        files = self.files
        return [files.popleft() for _ in range(min(n, len(files)))]

    def _wake(self) -> None:
        if self._waiting:
            self._waiting = 0
            self._event.set()
            self._event = anyio.Event()

    async def get(self) -> tuple[_Item, bool] | None:
        """The next item and whether it may be fetched in a batch (content objects not
        left undone by one); None at the end."""
        while True:
            if self.meta:
                self.busy += 1
                return self.meta.popleft(), False
            if self.single:
                self.busy += 1
                return self.single.popleft(), False
            if self.files:
                self.busy += 1
                return self.files.popleft(), True
            if not self.busy:
                self._wake()  # let the other workers see the end too
                return None
            self._waiting += 1
            await self._event.wait()

    def done(self) -> None:
        self.busy -= 1
        if not self.busy and not self.meta and not self.single and not self.files:
            self._wake()


@attrs.define
class _Walk:
    remote: Remote
    store: ObjectStore
    staging: Staging
    known: set[Key]
    progress: Callable[[WalkStats], None] | None
    stats: WalkStats = attrs.field(factory=WalkStats)
    queue: _Queue = attrs.field(factory=_Queue)
    seen: set[tuple[str, ObjectType]] = attrs.field(factory=set)
    pending: list[_Obj] = attrs.field(factory=list)
    pending_bytes: int = 0
    unwritten: list[list[_Obj]] = attrs.field(factory=list)
    batches: MemoryObjectSendStream[list[_Obj]] | None = None
    sending: anyio.Lock = attrs.field(factory=anyio.Lock)

    def tick(self, key: Key, size: int) -> None:
        stats = self.stats
        stats.fetched += 1
        stats.fetched_bytes += size
        stats.sizes[key] = size
        if self.progress is not None:
            self.progress(stats)

    async def enqueue_new(self, candidates: Iterable[tuple[str, ObjectType]]) -> None:
        """Queue the objects not seen yet and not in ``known``: to fetch if the store
        lacks them, dirtrees present to be read."""
        new = []
        for checksum, objtype in candidates:
            entry = (checksum, objtype)
            if entry not in self.seen and object_key(objtype, checksum) not in self.known:
                self.seen.add(entry)
                new.append(entry)
        if not new:
            return
        present = await self.store.has_objects(new)
        for (checksum, objtype), stored in zip(new, present, strict=True):
            if stored:
                self.stats.present += 1
                if objtype is ObjectType.DIRTREE:
                    self.queue.put((checksum, objtype, True))
            else:
                self.queue.put((checksum, objtype, False))

    # -- the workers ---------------------------------------------------------------------

    async def worker(self) -> None:
        queue = self.queue
        batches = self.remote.batches
        while (got := await queue.get()) is not None:
            item, batchable = got
            try:
                if batches and batchable:
                    await self.process_files([item, *queue.more_files(GROUP - 1)])
                else:
                    await self.process(item)
            finally:
                queue.done()

    async def process_files(self, items: list[_Item]) -> None:
        """Fetch content objects in one batch; queue what it left undone to be fetched
        one by one."""
        fetched, rest = await self.remote.fetch_small_objects([(c, t) for c, t, _ in items])
        for checksum, objtype, data in fetched:
            await self.add(checksum, objtype, data)
            self.tick(object_key(objtype, checksum), len(data))
        for checksum, objtype in rest:
            self.queue.put_single((checksum, objtype, False))
        if self.full:
            await self.send_pending()

    async def process(self, item: _Item) -> None:
        checksum, objtype, stored = item
        if objtype is ObjectType.FILE:
            size = await self.remote.store_object(self.staging, checksum, objtype, small=self.add)
            self.tick(object_key(objtype, checksum), size)
            if self.full:
                await self.send_pending()
            return
        if stored:
            data = await self.store.read_object(checksum, objtype)
            self.stats.sizes[object_key(objtype, checksum)] = len(data)
        else:
            fetched = await self.remote.get_metadata(checksum, objtype)  # verified
            assert fetched is not None
            data = fetched
            await self.add(checksum, objtype, data)
            self.tick(object_key(objtype, checksum), len(data))
            if self.full:
                await self.send_pending()
        if objtype is ObjectType.DIRTREE:
            files, dirs = dirtree_references(data)
            entries: list[tuple[str, ObjectType]] = []
            for subtree, meta in dirs:
                entries.append((meta, ObjectType.DIRMETA))
                entries.append((subtree, ObjectType.DIRTREE))
            entries.extend((checksum, ObjectType.FILE) for checksum in files)
            await self.enqueue_new(entries)

    # -- batched writes ------------------------------------------------------------------

    async def add(self, checksum: str, objtype: ObjectType, data: bytes) -> None:
        """Have a small object written (verified) with the next batch. Never waits: it
        runs while a request holds its connection."""
        self.pending.append((checksum, objtype, data))
        self.pending_bytes += len(data)

    @property
    def full(self) -> bool:
        return len(self.pending) >= BATCH_OBJECTS or self.pending_bytes >= BATCH_BYTES

    async def send_pending(self, *, force: bool = False) -> None:
        """Hand the pending objects to the writers once they make a batch (or ``force``).

        One task at a time: while the writers are behind, every worker with a full
        batch waits here instead of fetching more, which bounds the memory in use."""
        async with self.sending:
            if not self.pending or not (force or self.full):
                return
            batch, self.pending, self.pending_bytes = self.pending, [], 0
            self.unwritten.append(batch)
            assert self.batches is not None
            await self.batches.send(batch)  # waits while the writers are behind

    async def writer(self, batches: MemoryObjectReceiveStream[list[_Obj]]) -> None:
        async with batches:
            async for batch in batches:
                await self.write(batch, refetch=True)
                self.unwritten = [b for b in self.unwritten if b is not batch]

    async def write(self, batch: list[_Obj], *, refetch: bool) -> None:
        """Write a batch through the staging; objects that fail verification are fetched
        again (``refetch``) or dropped."""
        try:
            await self.staging.write_objects(batch)
            return
        except (ChecksumMismatchError, InvalidObjectError):
            pass
        bad = set(await anyio.to_thread.run_sync(find_invalid, batch))
        good = [obj for i, obj in enumerate(batch) if i not in bad]
        if good:
            await self.staging.write_objects(good)
        if refetch:
            for i in sorted(bad):
                checksum, objtype, _ = batch[i]
                # one attempt was spent on the bytes that failed
                await self.remote.store_object(self.staging, checksum, objtype, attempt=1)

    async def run(self, roots: Iterable[tuple[str, str]], concurrency: int) -> None:
        firsts: list[tuple[str, ObjectType]] = []
        for tree, meta in roots:
            firsts += [(meta, ObjectType.DIRMETA), (tree, ObjectType.DIRTREE)]
        await self.enqueue_new(firsts)
        send, receive = anyio.create_memory_object_stream[list[_Obj]](WRITERS)
        self.batches = send
        async with task_group() as tg:
            for _ in range(WRITERS):
                tg.start_soon(self.writer, receive.clone())
            receive.close()
            async with send:
                async with task_group() as workers:
                    for _ in range(max(1, concurrency)):
                        workers.start_soon(self.worker)
                await self.send_pending(force=True)

    async def save(self) -> None:
        """After a failure: store what was fetched and is sound, so that a new run need
        not fetch it again."""
        batches = [*self.unwritten, self.pending]
        self.unwritten, self.pending = [], []
        for batch in batches:
            if batch:
                await self.write(batch, refetch=False)
        await self.staging.flush()


async def fetch_trees(
    remote: Remote,
    store: ObjectStore,
    roots: Iterable[tuple[str, str]],
    known: set[Key],
    *,
    concurrency: int,
    progress: Callable[[WalkStats], None] | None = None,
) -> WalkStats:
    """Make every object under the (root dirtree, root dirmeta) pairs present in ``store``.

    Returns when all of them are stored, durable and visible.
    """
    async with store.staging() as staging:
        walk = _Walk(remote, store, staging, known, progress)
        try:
            await walk.run(roots, concurrency)
        except BaseException:
            with anyio.CancelScope(shield=True), contextlib.suppress(Exception):
                await walk.save()  # (if that fails too, the first error is what matters)
            raise
    return walk.stats
