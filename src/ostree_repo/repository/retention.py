"""Retention policies: which versions a repository keeps, and how much history per ref.

A repository's policy is its settings section ``"retention"`` (see :mod:`.hooks`)::

    {"versions": 10, "younger_than": 604800, "depth": 5}

- ``versions`` (N >= 1): keep the last N versions;
- ``younger_than`` (seconds > 0): keep the versions made less than that long ago;
- ``depth`` (D >= 0): keep, per ref, the commit it points at and at most D parents.

Every key is optional (at least one is given). A version is kept when ``versions`` or
``younger_than`` keeps it (with both, the last N are kept however old, and so is whatever
is younger); the latest version is always kept. Versions the policy does not keep are
deleted as :meth:`Repository.delete_version
<ostree_repo.repository.repository.Repository.delete_version>` deletes them, each time the
repository makes a version, and their records are collected; ``reclaim`` then frees the
storage only they used.

``depth`` acts on the content of every new version, as ``ostree prune --refs-only
--depth=D`` does: commits that no ref (or collection ref) reaches within D parents are
left out, and so are the static deltas from or to them; the remaining commits keep their
detached metadata (signatures), their deltas and their parent links (a truncated
history). Versions made before the policy keep their history until they are deleted.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import attrs

from ostree_repo._tasks import for_each
from ostree_repo.repository._content import history, remove_content
from ostree_repo.repository.hooks import PublishHook, SettingsError
from ostree_repo.repository.records import VersionRecord
from ostree_repo.repository.repository import Repository, VersionNotFoundError

__all__ = ["RetentionHook", "RetentionPolicy", "apply_retention"]

#: The settings section retention owns.
SECTION = "retention"

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> float:
    """Seconds in ``"90"``, ``"90s"``, ``"15m"``, ``"12h"``, ``"30d"`` or ``"2w"``
    (SettingsError otherwise)."""
    value = text.strip().lower()
    scale = _UNITS.get(value[-1:])
    number = value[:-1] if scale is not None else value
    try:
        seconds = float(number) * (scale or 1)
    except ValueError:
        seconds = math.nan
    if not math.isfinite(seconds) or seconds <= 0:
        raise SettingsError(f"not a duration: {text!r} (say 3600, 90m, 12h, 30d or 2w)")
    return seconds


def _count(doc: Mapping[str, Any], key: str, minimum: int) -> int | None:
    value = doc.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise SettingsError(f"retention {key} must be a whole number >= {minimum}, not {value!r}")
    return value


@attrs.frozen
class RetentionPolicy:
    """A repository's retention settings (None: that rule is not set)."""

    #: keep the last N versions
    versions: int | None = None
    #: keep versions younger than this many seconds
    younger_than: float | None = None
    #: keep per ref the commit and at most D parents
    depth: int | None = None

    @classmethod
    def from_json(cls, doc: Any) -> RetentionPolicy:
        """Parse and check a settings section (SettingsError if it is not valid)."""
        if not isinstance(doc, Mapping):
            raise SettingsError(f"retention must be an object, not {doc!r}")
        unknown = sorted(set(doc) - {"versions", "younger_than", "depth"})
        if unknown:
            raise SettingsError(
                f"unknown retention setting(s) {', '.join(unknown)} "
                "(known: versions, younger_than, depth)"
            )
        age = doc.get("younger_than")
        if age is not None and (
            isinstance(age, bool)
            or not isinstance(age, int | float)
            or not math.isfinite(age)
            or age <= 0
        ):
            raise SettingsError(f"retention younger_than must be seconds > 0, not {age!r}")
        policy = cls(
            _count(doc, "versions", 1), None if age is None else age, _count(doc, "depth", 0)
        )
        if policy == cls():
            raise SettingsError("retention needs versions, younger_than or depth")
        return policy

    @classmethod
    def of(cls, record: VersionRecord) -> RetentionPolicy:
        """The policy a version was made with (no rule set when it has none)."""
        doc = record.settings.get(SECTION)
        return cls() if doc is None else cls.from_json(doc)

    def to_json(self) -> dict[str, Any]:
        """The settings section (only the rules that are set)."""
        return {k: v for k, v in attrs.asdict(self).items() if v is not None}

    @property
    def deletes_versions(self) -> bool:
        """True when some version may be deleted (a count or an age is set)."""
        return self.versions is not None or self.younger_than is not None

    def kept(self, versions: Iterable[tuple[int, float]], now: float) -> set[int]:
        """Of ``versions`` ((number, created) of the surviving ones), the numbers the
        policy keeps: the last N, those younger than the age, and always the latest."""
        ordered = sorted(versions)
        if not ordered:
            return set()
        if not self.deletes_versions:
            return {n for n, _ in ordered}
        keep = {ordered[-1][0]}
        if self.versions is not None:
            keep.update(n for n, _ in ordered[-self.versions :])
        if self.younger_than is not None:
            keep.update(n for n, created in ordered if created > now - self.younger_than)
        return keep


def prune_history(record: VersionRecord, depth: int) -> VersionRecord:
    """``record`` with only the commits that its refs reach within ``depth`` parents
    (as ``ostree prune --refs-only --depth``); deltas from or to the others go too, and a
    summary that listed such a delta is regenerated."""
    heads = [*record.refs.values()]
    heads += [c for refs in record.collection_refs.values() for c in refs.values()]
    keep: set[str] = set()
    for head in heads:
        keep.update(history(record.commits, head, depth))
    gone = [c for c in record.commits if c not in keep]
    if not gone:
        return record
    pruned = remove_content(record, commits=gone)
    if pruned.deltas == record.deltas:  # the summary (refs and deltas) still holds
        return attrs.evolve(pruned, summary=record.summary, summary_sig=record.summary_sig)
    return attrs.evolve(pruned, summary=None, summary_sig=None)


#: How many version records retention reads at once (for the age of each).
READ_CONCURRENCY = 16


async def apply_retention(repo: Repository, now: float | None = None) -> list[int]:
    """Delete the versions of ``repo`` that the policy of its latest version no longer
    keeps, then collect the records of deleted versions; return the numbers deleted.

    Idempotent, and safe beside writers: the latest version is never deleted, and a
    version made meanwhile is newer than any it deletes. Killed midway, it leaves every
    version either whole or deleted; the next run finishes the job.
    """
    latest = await repo.version()
    policy = RetentionPolicy.of(latest)
    if not policy.deletes_versions:
        return []
    numbers = [n for n in await repo.version_numbers() if n]
    created = await _created(repo, numbers, latest, policy)
    kept = policy.kept(created.items(), time.time() if now is None else now)
    doomed = sorted(n for n in created if n not in kept and n < latest.number)
    deleted = []
    for number in doomed:
        try:
            await repo.delete_version(number)
        except VersionNotFoundError:  # deleted meanwhile (another writer's retention)
            continue
        deleted.append(number)
    await repo.collect_records()
    return deleted


async def _created(
    repo: Repository,
    numbers: list[int],
    latest: VersionRecord,
    policy: RetentionPolicy,
) -> dict[int, float]:
    """number -> creation time of each version (only the count matters without an age:
    then nothing is read)."""
    if policy.younger_than is None:
        return {n: 0.0 for n in numbers}
    times: dict[int, float] = {latest.number: latest.created}

    async def read(number: int) -> None:
        with contextlib.suppress(VersionNotFoundError):  # deleted meanwhile
            times[number] = (await repo.version(number)).created

    await for_each([n for n in numbers if n not in times], read, limit=READ_CONCURRENCY)
    return times


class RetentionHook(PublishHook):
    """Owns settings section ``"retention"`` (a :class:`RetentionPolicy`): drops history
    beyond the depth from every new version, and once it is stored deletes the versions
    the policy no longer keeps (see :func:`apply_retention`)."""

    section = SECTION

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        #: the time that ages are measured against
        self.clock = clock

    def validate(self, value: Any) -> Any:
        return RetentionPolicy.from_json(value).to_json()

    async def prepare(
        self, repo: Repository, base: VersionRecord, draft: VersionRecord
    ) -> VersionRecord:
        depth = RetentionPolicy.of(draft).depth
        return draft if depth is None else prune_history(draft, depth)

    async def published(self, repo: Repository, record: VersionRecord) -> None:
        if RetentionPolicy.of(record).deletes_versions:
            await apply_retention(repo, self.clock())
