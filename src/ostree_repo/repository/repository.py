"""A named repository in a store, and its log of immutable, numbered versions.

Every change makes a new version through :meth:`Repository.publish`: it reads the
latest version, applies the change to it, and writes record ``N+1`` with the store's
create-if-absent. When another writer took ``N+1`` first, the change is applied again to
the new latest version and the next number is tried, so concurrent writers (processes or
machines sharing a bucket) each get their own number and no version is lost. A record
is written last and whole, so a version appears complete or not at all.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import attrs

from ostree_repo.errors import ConflictError, NotFoundError, OstreeRepoError
from ostree_repo.repository._summary import build_summary
from ostree_repo.repository.blobs import put_blob
from ostree_repo.repository.hooks import PublishHook, check_settings
from ostree_repo.repository.layout import (
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

    def __repr__(self) -> str:
        return f"Repository({self.name!r})"

    async def exists(self) -> bool:
        """True when the repository was created (and not deleted)."""
        try:
            await self.store.read_named(repo_path(self.name))
        except NotFoundError:
            return False
        return True

    async def _numbers(self) -> tuple[list[int], set[int]]:
        """(all record numbers ever written, sorted; the deleted ones)."""
        numbers = []
        async for path in self.store.list_named(f"versions/{self.name}"):
            n = parse_version_path(path)
            if n is not None:
                numbers.append(n)
        deleted = set()
        async for path in self.store.list_named(f"deleted/{self.name}"):
            n = parse_version_path(path)
            if n is not None:
                deleted.add(n)
        return sorted(numbers), deleted

    async def version_numbers(self) -> list[int]:
        """The numbers of the versions that exist (deleted ones left out), ascending.

        Version 0, the empty version, always exists.
        """
        numbers, deleted = await self._numbers()
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
            raise VersionNotFoundError(f"{self.name} has no version {number}") from None
        return VersionRecord.from_bytes(data)

    async def versions(self) -> list[VersionRecord]:
        """Every existing version, oldest first (version 0 included)."""
        return [await self.version(n) for n in await self.version_numbers()]

    async def _latest(self) -> tuple[VersionRecord, int]:
        """(the latest surviving version, the highest number ever used)."""
        numbers, deleted = await self._numbers()
        highest = numbers[-1] if numbers else 0
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
            # The number after the highest ever *written*, not after the latest surviving
            # version: a deleted version's record stays, so its number is never reused.
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
            if await self._store_record(record):
                for hook in self.hooks:
                    await hook.published(self, record)
                return record
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
