"""Static deltas a repository generates: making them, finding them again, keeping them fit.

Deltas are made by :func:`ostree_repo.deltas.generate_delta`; here their superblock and
parts become blobs and a :class:`~.records.DeltaInfo` that says who asked for the delta
(``generated``: ``"policy"`` or ``"manual"``), with which options (``options``, a short
digest of :class:`~ostree_repo.deltas.DeltaOptions`) and which detached metadata of the
target it embeds (``commitmeta``).

Generating is expensive, so a delta is made once per (from, to, options):

* a :class:`DeltaMaker` remembers what it made in this process (a publish that loses the
  race for its version number applies its change and hooks again, and finds them);
* every delta made is indexed in the store, ``generated-deltas/TO[:2]/TO[2:]/FROM-OPTIONS.json``
  (``scratch`` for FROM), so another process, or a later version that wants it again,
  reuses its blobs instead of generating again. The blobs of an indexed delta that no
  version holds are written again when it is reused (which also makes them young, so a
  concurrent reclaim's grace period protects them); an index entry whose blobs were
  reclaimed is ignored and the delta made again.

When the target's detached metadata changes (a new signature), a generated delta's
superblock is made again around its parts (:meth:`DeltaMaker.refit`): the parts do not
depend on it.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import attrs

from ostree_repo.deltas import (
    CommitNotFoundError,
    DeltaOptions,
    DeltaProgress,
    DeltaWorkers,
    UnrelatedCommitsError,
    generate_delta,
)
from ostree_repo.errors import ChecksumMismatchError, NotFoundError
from ostree_repo.gvariant import Variant, loads
from ostree_repo.objects import DeltaSuperblock, delta_path, parse_delta_name
from ostree_repo.repository.blobs import put_blob, read_blob
from ostree_repo.repository.records import DeltaInfo, VersionRecord
from ostree_repo.store import ObjectStore

__all__ = [
    "MANUAL",
    "POLICY",
    "DeltaMaker",
    "check_pairs",
    "describe",
    "index_path",
    "options_token",
    "related",
]

POLICY = "policy"
MANUAL = "manual"
#: How long a delta this process made is trusted without looking at its blobs (seconds;
#: well inside reclaim's grace period).
RECENT_SECONDS = 600.0


def options_token(options: DeltaOptions) -> str:
    """A short, stable name for how a delta is made."""
    return hashlib.sha256(options.key().encode()).hexdigest()[:16]


def index_path(start: str | None, end: str, token: str) -> str:
    """Where the index entry of a generated delta lives."""
    return f"generated-deltas/{end[:2]}/{end[2:]}/{start or 'scratch'}-{token}.json"


def related(record: VersionRecord, start: str, end: str) -> bool:
    """True when one commit is an ancestor of the other in ``record``."""

    def ancestors(commit: str) -> Iterable[str]:
        seen = set()
        current: str | None = commit
        while current is not None and current in record.commits and current not in seen:
            seen.add(current)
            yield current
            current = record.commits[current].parent

    return start in ancestors(end) or end in ancestors(start)


class DeltaMaker:
    """Makes and finds the generated deltas of one store (see the module docstring)."""

    def __init__(self, store: ObjectStore) -> None:
        self.store = store
        self._recent: dict[tuple[str | None, str, str], tuple[float, DeltaInfo]] = {}

    async def get(
        self,
        record: VersionRecord,
        start: str | None,
        end: str,
        *,
        options: DeltaOptions,
        origin: str,
        workers: DeltaWorkers,
        progress: Callable[[DeltaProgress], None] | None = None,
    ) -> DeltaInfo:
        """The delta ``start`` -> ``end`` for a version like ``record`` (which has both
        commits), made now unless it was made before."""
        token = options_token(options)
        key = (start, end, token)
        recent = self._recent.get(key)
        if recent is not None and await self._fresh(*recent):
            info = recent[1]
        else:
            found = await self._indexed(start, end, token)
            if found is None:
                found = await self._make(record, start, end, options, workers, progress)
            info = found
            self._recent[key] = (time.monotonic(), info)
        info = attrs.evolve(info, generated=origin)
        return await self.refit(record, start, end, info)

    async def _fresh(self, made: float, info: DeltaInfo) -> bool:
        """Whether a delta this process made can be used as it is: recent (its blobs are
        younger than any reclaim grace period is sensible) and its superblock still
        there (a reclaim with no grace period may have taken it)."""
        if time.monotonic() - made >= RECENT_SECONDS:
            return False
        try:
            await read_blob(self.store, info.superblock)
        except (NotFoundError, ChecksumMismatchError):
            return False
        return True

    async def _indexed(self, start: str | None, end: str, token: str) -> DeltaInfo | None:
        """The indexed delta, its blobs written again; None if not indexed or reclaimed."""
        try:
            data, _ = await self.store.read_named(index_path(start, end, token))
            info = DeltaInfo.from_json(json.loads(data))
        except (NotFoundError, ValueError, KeyError, TypeError):
            return None
        try:
            for digest in (info.superblock, *(p for p in info.parts if p is not None)):
                await put_blob(self.store, await read_blob(self.store, digest), digest)
        except (NotFoundError, ChecksumMismatchError):
            return None
        return info

    async def _make(  # noqa: PLR0917
        self,
        record: VersionRecord,
        start: str | None,
        end: str,
        options: DeltaOptions,
        workers: DeltaWorkers,
        progress: Callable[[DeltaProgress], None] | None,
    ) -> DeltaInfo:
        for commit in (start, end):
            if commit is not None and commit not in record.commits:
                raise CommitNotFoundError(f"commit {commit} is not in {record.repository}")
        meta_digest = record.commits[end].commitmeta
        meta = await read_blob(self.store, meta_digest) if meta_digest else None

        async def write_part(index: int, data: bytes) -> str:
            return await put_blob(self.store, data)

        delta = await generate_delta(
            self.store, start, end, write_part=write_part, commitmeta=meta, options=options,
            workers=workers, progress=progress,
        )  # fmt: skip
        info = DeltaInfo(
            await put_blob(self.store, delta.superblock),
            delta.parts,
            POLICY,
            options_token(options),
            meta_digest,
        )
        doc = json.dumps(info.to_json(), separators=(",", ":")).encode()
        await self.store.write_named(index_path(start, end, info.options), doc)
        return info

    async def refit(
        self, record: VersionRecord, start: str | None, end: str, info: DeltaInfo
    ) -> DeltaInfo:
        """``info`` with a superblock that embeds the target's detached metadata of
        ``record`` (the same ``info`` when it already does)."""
        wanted = record.commits[end].commitmeta
        if wanted == info.commitmeta:
            return info
        block = DeltaSuperblock.from_bytes(await read_blob(self.store, info.superblock))
        key = delta_path(start, end, "commitmeta")
        metadata = {k: v for k, v in block.metadata.items() if k != key}
        if wanted is not None:
            metadata[key] = Variant("a{sv}", loads("a{sv}", await read_blob(self.store, wanted)))
        superblock = attrs.evolve(block, metadata=metadata).to_bytes()
        digest = await put_blob(self.store, superblock)
        return attrs.evolve(info, superblock=digest, commitmeta=wanted)


def check_pairs(
    record: VersionRecord, pairs: Sequence[tuple[str | None, str]], allow_unrelated: bool
) -> None:
    """Refuse pairs whose ends are not commits of ``record``, or (unless
    ``allow_unrelated``) that share no history there."""
    for start, end in pairs:
        for commit in (start, end):
            if commit is not None and commit not in record.commits:
                raise CommitNotFoundError(
                    f"commit {commit} is not in version {record.number} of {record.repository}"
                )
        if start == end:
            raise UnrelatedCommitsError(f"a delta from {end} to itself would be empty")
        if start is not None and not allow_unrelated and not related(record, start, end):
            raise UnrelatedCommitsError(
                f"commits {start} and {end} are unrelated in {record.repository}: neither is "
                "an ancestor of the other (allow unrelated commits to make the delta anyway)"
            )


def describe(record: VersionRecord) -> list[dict[str, Any]]:
    """The deltas of a version, as listed: name, ends, origin, parts."""
    out = []
    for name, info in sorted(record.deltas.items()):
        start, end = parse_delta_name(name)
        out.append(
            {
                "name": name,
                "from": start,
                "to": end,
                "generated": info.generated or None,
                "parts": len(info.parts),
                "superblock": info.superblock,
            }
        )
    return out
