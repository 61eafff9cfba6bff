"""What the server knows about repository versions, cached.

* A version's record is immutable, but a version can be deleted and a repository can
  get a new latest version at any time. So ``(repository, number)`` lookups and the
  "latest" pointer are re-checked after a short time-to-live (by default 1 s for latest,
  2 s for a pinned version): a deleted version stops being served within that time.
* The set of objects a version holds (the union of its commits' closures, with stored
  sizes) is what decides whether an object may be served. It is computed once and kept
  in a least-recently-used cache bounded by the total number of objects. It is keyed by
  the version's set of commits, since closures never change: versions with the same
  commits (a ref moved, a repository copied whole) share one entry.
* Concurrent requests that need the same thing while it is being loaded wait for the
  one load instead of repeating it.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict, defaultdict
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

import anyio

from ostree_repo._tasks import for_each
from ostree_repo.errors import NotFoundError
from ostree_repo.objects import DeltaIndex, Tombstone, parse_delta_name
from ostree_repo.repository.closure import Key, load_closure
from ostree_repo.repository.records import DeltaInfo, VersionRecord
from ostree_repo.repository.repository import Repository, VersionNotFoundError
from ostree_repo.server._http import format_http_date
from ostree_repo.store import ObjectStore

__all__ = ["ServedVersion", "VersionCache"]

_T = TypeVar("_T")


def content_etag(data: bytes) -> str:
    """A strong ETag derived from the bytes themselves."""
    return '"' + hashlib.sha256(data).hexdigest()[:40] + '"'


class ServedVersion:
    """One version as the server sees it: its record and the small files made from it."""

    def __init__(self, record: VersionRecord) -> None:
        self.record = record
        self.last_modified = int(record.created)
        #: the ``Last-Modified`` header value (the version's creation time)
        self.last_modified_header = format_http_date(self.last_modified).encode()
        self.config = record.config.to_ini()
        self.config_etag = content_etag(self.config)
        self.tombstones = frozenset(record.tombstones)
        #: refs and aliases (at their targets' commits: libostree's symlinks, followed)
        self.refs = record.resolved_refs()
        self.commit_set: tuple[str, ...] = tuple(sorted(record.commits))
        targets: dict[str, dict[str, str]] = defaultdict(dict)
        for name, delta in record.deltas.items():
            targets[parse_delta_name(name)[1]][name] = delta.superblock
        self._delta_targets = dict(targets)
        self._indexes: dict[str, bytes] = {}

    @property
    def key(self) -> tuple[str, int]:
        """``(repository, number)``."""
        return self.record.repository, self.record.number

    def ref(self, name: str, collection: str | None) -> str | None:
        """The commit a ref (of ``collection``, or a main ref or alias) points at."""
        if collection is None:
            return self.refs.get(name)
        return self.record.collection_refs.get(collection, {}).get(name)

    def commitmeta(self, commit: str) -> str | None:
        """The blob holding ``commit``'s detached metadata in this version."""
        info = self.record.commits.get(commit)
        return None if info is None else info.commitmeta

    def tombstone(self, commit: str) -> bytes | None:
        """The ``.tombstone-commit`` of ``commit``, if this version has one."""
        return Tombstone(commit).to_bytes() if commit in self.tombstones else None

    def delta(self, name: str) -> DeltaInfo | None:
        """The static delta ``name`` (``FROM-TO`` or ``TO``)."""
        return self.record.deltas.get(name)

    def delta_index(self, target: str) -> bytes | None:
        """The delta index of ``target``: the deltas to it (None when there are none)."""
        cached = self._indexes.get(target)
        if cached is None:
            deltas = self._delta_targets.get(target)
            if not deltas:
                return None
            cached = self._indexes[target] = DeltaIndex(deltas).to_bytes()
        return cached


class _Call(Generic[_T]):
    def __init__(self) -> None:
        self.done = anyio.Event()
        self.result: _T | None = None
        self.error: BaseException | None = None
        self.ok = False


class _SingleFlight(Generic[_T]):
    """Concurrent callers of one key share one running call."""

    def __init__(self) -> None:
        self._calls: dict[Hashable, _Call[_T]] = {}

    def running(self, key: Hashable) -> bool:
        """Whether a call for ``key`` is under way."""
        return key in self._calls

    async def run(self, key: Hashable, func: Callable[[], Awaitable[_T]]) -> _T:
        while True:
            call = self._calls.get(key)
            if call is None:
                call = self._calls[key] = _Call()
                try:
                    call.result = await func()
                    call.ok = True
                    return call.result
                except BaseException as e:
                    call.error = e
                    raise
                finally:
                    del self._calls[key]
                    call.done.set()
            await call.done.wait()
            if call.ok:
                return call.result  # type: ignore[return-value]
            if call.error is not None and not isinstance(
                call.error, anyio.get_cancelled_exc_class()
            ):
                raise call.error
            # the loading request was cancelled (client gone): try again ourselves


class VersionCache:
    """Resolves ``(repository, version or latest)`` to :class:`ServedVersion` and object
    sets, with the caching described in the module docstring."""

    def __init__(
        self,
        store: ObjectStore,
        *,
        latest_ttl: float = 1.0,
        version_ttl: float = 2.0,
        max_versions: int = 1024,
        max_objects: int = 2_000_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.latest_ttl = latest_ttl
        self.version_ttl = version_ttl
        self.max_versions = max_versions
        self.max_objects = max_objects
        self._clock = clock
        self._latest: dict[str, tuple[float, ServedVersion | None]] = {}
        self._versions: OrderedDict[tuple[str, int], tuple[float, ServedVersion | None]] = (
            OrderedDict()
        )
        self._objects: OrderedDict[tuple[str, ...], dict[Key, int]] = OrderedDict()
        self._object_count = 0
        self._flights: _SingleFlight[ServedVersion | None] = _SingleFlight()
        self._object_flights: _SingleFlight[dict[Key, int]] = _SingleFlight()
        self.loads = 0
        """How many object sets were computed (for tests and monitoring)."""

    async def version(self, repository: str, number: int | None) -> ServedVersion | None:
        """The version to serve, or None when the repository or version does not exist
        (or was deleted)."""
        now = self._clock()
        if number is None:
            latest = self._latest.get(repository)
            if latest is not None and (
                now - latest[0] < self.latest_ttl or self._flights.running(("latest", repository))
            ):
                # fresh, or being refreshed by another request: no one waits for a refresh
                return latest[1]

            async def load_latest() -> ServedVersion | None:
                return await self._load_latest(repository)

            return await self._flights.run(("latest", repository), load_latest)
        key = (repository, number)
        pinned = self._versions.get(key)
        if pinned is not None and now - pinned[0] < self.version_ttl:
            self._versions.move_to_end(key)
            return pinned[1]

        async def load() -> ServedVersion | None:
            return await self._load(repository, number)

        return await self._flights.run(key, load)

    async def _load_latest(self, repository: str) -> ServedVersion | None:
        checked = self._clock()
        repo = Repository(self.store, repository)
        served: ServedVersion | None = None
        if await repo.exists():
            served = self._reuse(await repo.version())
            self._remember(served.key, checked, served)
        self._latest.pop(repository, None)
        self._latest[repository] = (checked, served)
        while len(self._latest) > self.max_versions:
            del self._latest[next(iter(self._latest))]
        return served

    async def _load(self, repository: str, number: int) -> ServedVersion | None:
        checked = self._clock()
        repo = Repository(self.store, repository)
        served: ServedVersion | None = None
        if await repo.exists():
            try:
                record = await repo.version(number)
            except VersionNotFoundError:
                pass
            else:
                served = self._reuse(record)
        self._remember((repository, number), checked, served)
        return served

    def _reuse(self, record: VersionRecord) -> ServedVersion:
        """The cached ServedVersion of this record if there is one (records never change)."""
        cached = self._versions.get((record.repository, record.number))
        if cached is not None and cached[1] is not None:
            return cached[1]
        return ServedVersion(record)

    def _remember(self, key: tuple[str, int], checked: float, served: ServedVersion | None) -> None:
        self._versions[key] = (checked, served)
        self._versions.move_to_end(key)
        while len(self._versions) > self.max_versions:
            self._versions.popitem(last=False)

    async def latest(self, repository: str) -> ServedVersion | None:
        """The latest version (re-resolved at most every ``latest_ttl`` seconds)."""
        return await self.version(repository, None)

    async def objects(self, version: ServedVersion) -> dict[Key, int]:
        """Every object ``version`` holds, with its stored size."""
        key = version.commit_set
        cached = self._objects.get(key)
        if cached is not None:
            self._objects.move_to_end(key)
            return cached

        async def load() -> dict[Key, int]:
            closures: dict[str, dict[Key, int]] = {}

            async def fetch(commit: str) -> None:
                closure = await load_closure(self.store, commit)
                if closure is None:
                    raise NotFoundError(f"commit {commit} has no closure in the store")
                closures[commit] = closure.sizes

            await for_each(key, fetch, limit=16)
            union: dict[Key, int] = {}
            for commit in key:
                union.update(closures[commit])
            self.loads += 1
            self._objects[key] = union
            self._object_count += len(union)
            while self._object_count > self.max_objects and len(self._objects) > 1:
                _, dropped = self._objects.popitem(last=False)
                self._object_count -= len(dropped)
            return union

        return await self._object_flights.run(("objects", key), load)
