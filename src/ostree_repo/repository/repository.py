"""A named repository in a store, and its log of immutable, numbered versions.

Every change makes a new version through :meth:`Repository.publish`: it reads the
latest version, applies the change to it, and writes record ``N+1`` with the store's
create-if-absent. When another writer took ``N+1`` first, the change is applied again to
the new latest version and the next number is tried, so concurrent writers (processes or
machines sharing a bucket) each get their own number and no version is lost. A record
is written last and whole, so a version appears complete or not at all.

Records of deleted versions are *collected* (:meth:`Repository.collect_records`) without
ever freeing their numbers: below the lowest surviving version, a *collection mark*
(``collected/NAME.json``, raised by compare-and-swap) says that every number up to it was
used; above it, a deleted version keeps its zero-byte deletion marker (rewritten to say
``collected``) when its record goes. The highest number ever used is therefore always
visible (a record, a marker or the mark), and a writer whose create-if-absent landed on a
collected number (it listed the log before that number was made, deleted and collected)
sees the mark or the marker right after its create, discards its record and tries the
next number.
"""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import attrs

from ostree_repo.errors import ConflictError, InvalidObjectError, NotFoundError, OstreeRepoError
from ostree_repo.repository._fence import Fence, announce, published
from ostree_repo.repository._summary import build_summary
from ostree_repo.repository.blobs import put_blob
from ostree_repo.repository.hooks import PublishHook, check_settings
from ostree_repo.repository.layout import (
    collected_path,
    deleted_path,
    parse_version_path,
    repo_path,
    validate_repository_name,
    version_path,
)
from ostree_repo.repository.records import VersionRecord
from ostree_repo.store import ObjectStore

__all__ = ["Change", "Repository", "VersionNotFoundError"]

#: A change: given the latest version, the content of the next one (None: nothing to do).
Change = Callable[[VersionRecord], Awaitable[VersionRecord | None]]

#: How often publish re-applies a change after losing the race for a number.
MAX_ATTEMPTS = 1000

#: What the deletion marker of a version says once its record was collected.
COLLECTED = b"collected"


class VersionNotFoundError(NotFoundError):
    """The repository has no such version, or it was deleted."""


def _content(record: VersionRecord) -> tuple[Any, ...]:
    return (
        record.refs,
        record.aliases,
        record.collection_refs,
        record.commits,
        record.deltas,
        record.tombstones,
        record.config,
        record.summary_sig,
        record.settings,
    )


def _unchanged(draft: VersionRecord, base: VersionRecord) -> bool:
    """True when ``draft`` holds what ``base`` holds. A draft without a summary signature
    vouches for none (the summary is regenerated and signed again), so the signature
    ``base`` has (one that features such as signing made) is no change to it."""
    if draft.summary_sig is None:
        base = attrs.evolve(base, summary_sig=None)
    return _content(draft) == _content(base)


class Repository:
    """Repository ``name`` in ``store``: its versions, and publishing new ones."""

    def __init__(self, store: ObjectStore, name: str, hooks: Sequence[PublishHook] = ()) -> None:
        self.store = store
        self.name = validate_repository_name(name)
        #: what runs whenever this repository makes a version (see :mod:`.hooks`)
        self.hooks = tuple(hooks)
        #: the writer's side of the handshake with reclaim (see :mod:`._fence`)
        self.fence = Fence(store)

    def __repr__(self) -> str:
        return f"Repository({self.name!r})"

    async def exists(self) -> bool:
        """True when the repository was created (and not deleted)."""
        try:
            await self.store.read_named(repo_path(self.name))
        except NotFoundError:
            return False
        return True

    async def collected_through(self) -> int:
        """The collection mark: every version number up to it was used, and its version
        deleted and collected (0: none)."""
        return (await self._mark())[0]

    async def _mark(self) -> tuple[int, str | None]:
        try:
            data, token = await self.store.read_named(collected_path(self.name))
        except NotFoundError:
            return 0, None
        try:
            through = json.loads(data)["through"]
        except (ValueError, KeyError, TypeError):
            through = None
        if not isinstance(through, int) or isinstance(through, bool) or through < 0:
            raise InvalidObjectError(f"corrupt collection mark of {self.name}: {data[:80]!r}")
        return through, token

    async def _numbers(self) -> tuple[list[int], set[int], int]:
        """(the numbers of the records above the collection mark, sorted; the deleted
        ones; the highest number ever used)."""
        records = []
        async for path in self.store.list_named(f"versions/{self.name}"):
            n = parse_version_path(path)
            if n is not None:
                records.append(n)
        markers = set()
        async for path in self.store.list_named(f"deleted/{self.name}"):
            n = parse_version_path(path)
            if n is not None:
                markers.add(n)
        # read after listing: a record made on a number collected meanwhile is under it
        through = await self.collected_through()
        highest = max([through, *records, *markers])
        numbers = sorted(n for n in records if n > through)
        return numbers, {n for n in markers if n > through}, highest

    async def version_numbers(self) -> list[int]:
        """The numbers of the versions that exist (deleted ones left out), ascending.

        Version 0, the empty version, always exists.
        """
        numbers, deleted, _ = await self._numbers()
        return [0] + [n for n in numbers if n not in deleted]

    def empty(self) -> VersionRecord:
        """Version 0: no refs, no commits."""
        return VersionRecord(repository=self.name, number=0, created=0.0)

    async def version(self, number: int | None = None) -> VersionRecord:
        """Version ``number``, or the latest one; VersionNotFoundError if absent or deleted."""
        if number is None:
            return (await self._latest())[0]
        if number == 0:
            return self.empty()
        try:
            await self.store.read_named(deleted_path(self.name, number))
        except NotFoundError:
            pass
        else:
            raise VersionNotFoundError(f"version {number} of {self.name} was deleted")
        try:
            data, _ = await self.store.read_named(version_path(self.name, number))
        except NotFoundError:
            data = None
        # read after the record: a record made on a collected number is under the mark
        if number <= await self.collected_through():
            raise VersionNotFoundError(f"version {number} of {self.name} was deleted")
        if data is None:
            raise VersionNotFoundError(f"{self.name} has no version {number}")
        return VersionRecord.from_bytes(data)

    async def versions(self) -> list[VersionRecord]:
        """Every existing version, oldest first (version 0 included)."""
        return [await self.version(n) for n in await self.version_numbers()]

    async def _latest(self) -> tuple[VersionRecord, int]:
        """(the latest surviving version, the highest number ever used)."""
        numbers, deleted, highest = await self._numbers()
        for n in reversed(numbers):
            if n not in deleted:
                try:
                    return await self.version(n), highest
                except VersionNotFoundError:  # deleted meanwhile
                    continue
        return self.empty(), highest

    async def publish(
        self, change: Change, action: dict[str, Any] | None = None
    ) -> VersionRecord | None:
        """Apply ``change`` to the latest version and store the result as the next version.

        Returns the new version, or None when the change left the content as it was (no
        version is made). ``action`` is recorded to say what made the version.
        """
        if not await self.exists():
            raise NotFoundError(f"repository {self.name} does not exist")
        # Optimistic concurrency, no lock: each attempt reads the latest version, applies
        # the change to it and claims the next number with one create-if-absent, the only
        # step other writers can see. Losing that race costs one retry, never a version.
        for _ in range(MAX_ATTEMPTS):
            # The number after the highest ever *used*, not after the latest surviving
            # version: a record, a deletion marker or the collection mark keeps each
            # number taken, so none is reused.
            base, highest = await self._latest()
            # ``change`` is a function of the base, not a stored diff, so after a lost race
            # it is applied afresh to the winner's version: both writers' changes survive.
            draft = await change(base)
            if draft is None or _unchanged(draft, base):
                return None  # also when the winner already made the same change
            for hook in self.hooks:
                draft = await hook.prepare(self, base, draft)
            if _unchanged(draft, base):  # the hooks made it what base already is
                return None
            draft.check()
            created = time.time()
            record = attrs.evolve(
                draft,
                repository=self.name,
                number=highest + 1,
                created=created,
                base=base.number,
                action=action or {},
            )
            # A summary carried over from the base describes the base's refs: make one for
            # this content. One the change brought (a sync passing the remote's signed
            # summary through) is kept as it is.
            if record.summary is None or record.summary == base.summary:
                summary = build_summary(record, int(created))
                record = attrs.evolve(record, summary=await put_blob(self.store, summary))
            for hook in self.hooks:
                record = await hook.seal(self, base, record)
            # A fresh nonce per attempt: the only way to tell our own record from another
            # writer's when the create reports a conflict (see _store_record).
            record = attrs.evolve(record, writer=uuid.uuid4().hex)
            # What the version needs is announced, then checked against every reclaim's
            # doomed lists: a reclaim reads the announcements before each batch it
            # deletes, so it either spares what we need or we see its list (see ._fence).
            announcement = await announce(self.store, record)
            await self.fence.check(record)
            stored = await self._store_record(record)
            # Our listing may predate a number that was then made, deleted and collected:
            # the create found no file and won. The mark or the marker, read after the
            # create, says so; such a record is no version.
            if stored and await self._collected(record.number):
                await self.store.delete_named(version_path(self.name, record.number))
                stored = False
            if stored:
                await published(self.store, announcement, record)
                for hook in self.hooks:
                    await hook.published(self, record)
                return record
            await self.store.delete_named(announcement[0])  # it protects nothing now
            # Lost the race for this number: the next attempt reads the winner's version
            # as the new latest, re-applies the change to it and tries the number after.
        raise OstreeRepoError(f"gave up publishing to {self.name} after {MAX_ATTEMPTS} races")

    async def _store_record(self, record: VersionRecord) -> bool:
        """Write ``record`` under its number; False when another writer took the number."""
        path = version_path(self.name, record.number)
        try:
            # The commit point: the record is written whole, last, and only if no record
            # has this number; of concurrent creators exactly one succeeds.
            await self.store.create_named(path, record.to_bytes())
        except ConflictError:
            # Usually another writer took this number: the caller rebases on its version.
            # But a create that succeeded, lost its reply and was retried by the store's
            # client (S3 retries a PUT with If-None-Match) also lands here, against our own
            # record: taking that for a lost race would publish the change twice. The
            # writer nonce tells them apart: if the record stored is ours, we won. (One
            # that cannot be read back cannot be claimed: the caller goes on as if lost.)
            with contextlib.suppress(NotFoundError):
                stored, _ = await self.store.read_named(path)
                if VersionRecord.from_bytes(stored).writer == record.writer:
                    return True
            return False
        return True

    async def _collected(self, number: int) -> bool:
        """True when ``number`` had been used and collected before a record was created
        under it (read after that create, so such a collection is always seen)."""
        if number <= await self.collected_through():
            return True
        try:
            marker, _ = await self.store.read_named(deleted_path(self.name, number))
        except NotFoundError:
            return False
        return marker == COLLECTED

    async def collect_records(self) -> int:
        """Delete the records of deleted versions; return how many went.

        Their numbers stay used: the collection mark is raised to just below the lowest
        surviving version (or to the highest number ever used, when none survives) before
        anything under it is deleted, records and markers alike; a deleted version above
        the mark keeps its deletion marker, rewritten to say ``collected`` before its
        record goes. Safe beside writers and other collectors, and after ``kill -9`` at
        any point (what is left is collected next time).
        """
        records: set[int] = set()
        async for path in self.store.list_named(f"versions/{self.name}"):
            if (n := parse_version_path(path)) is not None:
                records.add(n)
        markers: set[int] = set()
        async for path in self.store.list_named(f"deleted/{self.name}"):
            if (n := parse_version_path(path)) is not None:
                markers.add(n)
        through = await self.collected_through()
        survivors = sorted(n for n in records if n > through and n not in markers)
        target = survivors[0] - 1 if survivors else max([through, *records, *markers])
        through = await self._raise_mark(target)
        collected = 0
        for n in sorted(records):
            if n > through and n not in markers:
                continue
            if n > through:  # a deleted version above the mark: its marker stays
                await self.store.write_named(deleted_path(self.name, n), COLLECTED)
            await self.store.delete_named(version_path(self.name, n))
            collected += 1
        for n in sorted(markers):
            if n <= through:
                await self.store.delete_named(deleted_path(self.name, n))
        return collected

    async def _raise_mark(self, target: int) -> int:
        """Raise the collection mark to at least ``target``; return the mark."""
        path = collected_path(self.name)
        data = json.dumps({"through": target}).encode()
        for _ in range(MAX_ATTEMPTS):
            through, token = await self._mark()
            if through >= target:
                return through
            try:
                if token is None:
                    await self.store.create_named(path, data)
                else:
                    await self.store.replace_named(path, data, token)
            except ConflictError:
                continue  # another collector moved it: look again
            return target
        raise OstreeRepoError(f"gave up raising the collection mark of {self.name}")

    async def configure(self, settings: Mapping[str, Any]) -> VersionRecord | None:
        """Change the repository's settings: each section of ``settings`` replaces the
        one of that name, checked by the hook that owns it; a section given as None is
        removed. The change is a new version (None when nothing changed), which every
        hook sees as it sees any other; later versions carry the settings forward.
        """
        removed = {name for name, value in settings.items() if value is None}
        changed = check_settings(self.hooks, {n: v for n, v in settings.items() if v is not None})

        async def change(base: VersionRecord) -> VersionRecord:
            kept = {n: v for n, v in base.settings.items() if n not in removed}
            new = {**kept, **changed}
            if new == base.settings:
                return base
            # the summary is regenerated, so a signature of the old one would not fit it
            return attrs.evolve(base, settings=new, summary_sig=None)

        return await self.publish(change, {"kind": "configure", "sections": sorted(settings)})

    async def delete_version(self, number: int) -> None:
        """Delete version ``number``: it disappears from listings and cannot be served.

        Its number is never reused. Content other versions need is untouched; storage
        only it needed is freed by ``reclaim``.
        """
        if number == 0:
            raise OstreeRepoError("version 0 (the empty version) cannot be deleted")
        await self.version(number)  # raises if absent or already deleted
        try:
            await self.store.create_named(deleted_path(self.name, number), b"")
        except ConflictError:
            raise VersionNotFoundError(f"version {number} of {self.name} was deleted") from None
