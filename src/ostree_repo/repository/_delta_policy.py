"""A repository's delta policy: which static deltas each version gets, made as it is published.

The policy is the ``"deltas"`` section of the repository's settings (see
:mod:`.hooks`), in normal form ``{"depth": N, "versions": K, "scratch": bool,
"compression": "xz" | "none", "inline": bool}``. For every ref head of a new version
(refs and collection refs) it wants a delta

* from each of the head's ``depth`` nearest ancestors in the version (1: from its
  parent, Pulp's default; N: flat-manager's ``depth``);
* from each commit that was this ref's head in the ``versions`` latest versions before
  this one (so clients that last updated a few versions ago get one download, whatever
  the history between);
* from scratch, with ``scratch`` (for first installs).

The ``none`` policy (all zero) wants none. :class:`DeltaPolicyHook` runs before the
summary of every version (import, sync, commit, copy, remove, configure alike): it adds
the deltas the policy wants (made once, see :mod:`._delta_store`) and drops the policy's
deltas that it no longer wants; reclaim then collects their blobs. Deltas that came with
the content (a remote's, possibly signed, or an imported repository's) are never
touched, nor replaced by a generated one of the same name.

On the command line a policy is written ``none``, ``parent``, ``depth=N``,
``versions=K``, ``scratch``, joined with commas, plus ``compression=none`` or
``inline``: ``parent,scratch`` is Pulp's default with from-scratch deltas too.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import attrs

from ostree_repo.deltas import DeltaOptions, DeltaProgress, DeltaWorkers
from ostree_repo.objects import delta_name, parse_delta_name
from ostree_repo.repository._delta_store import MANUAL, POLICY, DeltaMaker, check_pairs
from ostree_repo.repository.hooks import PublishHook, SettingsError
from ostree_repo.repository.records import VersionRecord
from ostree_repo.repository.repository import VersionNotFoundError

if TYPE_CHECKING:
    from ostree_repo.repository.manager import RepositoryManager
    from ostree_repo.repository.repository import Repository

__all__ = ["DeltaPolicy", "DeltaPolicyHook", "delete_deltas", "generate_deltas"]

SECTION = "deltas"
_COMPRESSIONS = ("xz", "none")


def _count(text: str, what: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise SettingsError(f"delta policy: {what} must be a number >= 0, not {text!r}")
    return value


@attrs.frozen
class DeltaPolicy:
    """Which deltas a version wants (see the module docstring)."""

    depth: int = 0
    versions: int = 0
    scratch: bool = False
    compression: str = "xz"
    inline: bool = False

    @property
    def active(self) -> bool:
        """True when the policy wants any delta."""
        return bool(self.depth or self.versions or self.scratch)

    def options(self) -> DeltaOptions:
        """How the policy's deltas are made."""
        return DeltaOptions(compression=self.compression, inline=self.inline)

    @classmethod
    def parse(cls, value: Any) -> DeltaPolicy:
        """A policy from its normal form, a JSON object, or the command-line text."""
        if isinstance(value, DeltaPolicy):
            return value
        if isinstance(value, str):
            return cls._parse_text(value)
        if not isinstance(value, Mapping):
            raise SettingsError(f"delta policy must be an object or text, not {value!r}")
        unknown = set(value) - {f.name for f in attrs.fields(cls)}
        if unknown:
            raise SettingsError(f"delta policy: unknown keys {sorted(unknown)}")
        policy = cls(**value)
        for name in ("depth", "versions"):
            number = getattr(policy, name)
            if type(number) is not int or number < 0:
                raise SettingsError(f"delta policy: {name} must be a number >= 0")
        for name in ("scratch", "inline"):
            if type(getattr(policy, name)) is not bool:
                raise SettingsError(f"delta policy: {name} must be true or false")
        if policy.compression not in _COMPRESSIONS:
            raise SettingsError(f"delta policy: compression must be one of {_COMPRESSIONS}")
        return policy

    @classmethod
    def _parse_text(cls, text: str) -> DeltaPolicy:
        fields: dict[str, Any] = {}
        for word in (w.strip() for w in text.split(",")):
            name, sep, arg = word.partition("=")
            if word in ("none", "") and not sep:
                continue
            if name == "parent" and not sep:
                fields["depth"] = max(fields.get("depth", 0), 1)
            elif name in ("depth", "versions") and sep:
                fields[name] = _count(arg, name)
            elif name in ("scratch", "inline") and not sep:
                fields[name] = True
            elif name == "compression" and sep:
                fields["compression"] = arg
            else:
                raise SettingsError(
                    f"delta policy: {word!r} is not none, parent, depth=N, versions=K, "
                    "scratch, compression=xz|none or inline"
                )
        return cls.parse(fields)

    def to_json(self) -> dict[str, Any]:
        """The normal form kept in the settings."""
        return attrs.asdict(self)

    def describe(self) -> str:
        """The policy in command-line text."""
        words = []
        if self.depth == 1:
            words.append("parent")
        elif self.depth:
            words.append(f"depth={self.depth}")
        if self.versions:
            words.append(f"versions={self.versions}")
        if self.scratch:
            words.append("scratch")
        if not words:
            words.append("none")
        if self.compression != "xz":
            words.append(f"compression={self.compression}")
        if self.inline:
            words.append("inline")
        return ",".join(words)

    async def wanted(
        self, repo: Repository, base: VersionRecord, draft: VersionRecord
    ) -> set[tuple[str | None, str]]:
        """The deltas (from or None, to) this policy wants in ``draft``."""
        heads: dict[str, str] = dict(draft.refs)
        for cid, refs in sorted(draft.collection_refs.items()):
            heads.update({f"({cid}, {ref})": c for ref, c in refs.items()})
        wanted: set[tuple[str | None, str]] = set()
        for head in set(heads.values()):
            if self.scratch:
                wanted.add((None, head))
            current = draft.commits[head].parent
            for _ in range(self.depth):
                if current is None or current not in draft.commits:
                    break
                wanted.add((current, head))
                current = draft.commits[current].parent
        if self.versions:
            for record in await _previous(repo, base, self.versions):
                for ref, head in heads.items():
                    old = _head(record, ref)
                    if old is not None and old != head and old in draft.commits:
                        wanted.add((old, head))
        return wanted


def _head(record: VersionRecord, ref: str) -> str | None:
    if ref.startswith("("):
        cid, _, name = ref[1:-1].partition(", ")
        return record.collection_refs.get(cid, {}).get(name)
    return record.refs.get(ref)


async def _previous(repo: Repository, base: VersionRecord, count: int) -> list[VersionRecord]:
    """The ``count`` latest versions before the one being made: ``base`` and the
    versions before it (fewer when there are not that many)."""
    records = [base] if base.number else []
    earlier = [n for n in await repo.version_numbers() if 0 < n < base.number]
    for number in reversed(earlier):
        if len(records) >= count:
            break
        try:
            records.append(await repo.version(number))
        except VersionNotFoundError:  # deleted meanwhile
            continue
    return records[:count]


class DeltaPolicyHook(PublishHook):
    """Gives each version the deltas its repository's policy wants (see the module
    docstring). ``processes``: worker processes generating them (default: one per CPU,
    at most 4)."""

    section: ClassVar[str | None] = SECTION

    def __init__(self, processes: int | None = None) -> None:
        self.processes = processes
        self._makers: weakref.WeakKeyDictionary[Any, DeltaMaker] = weakref.WeakKeyDictionary()

    def maker(self, store: Any) -> DeltaMaker:
        """The delta maker of ``store`` (it remembers what it made)."""
        found = self._makers.get(store)
        if found is None:
            found = self._makers[store] = DeltaMaker(store)
        return found

    def validate(self, value: Any) -> Any:
        """The policy's normal form."""
        return DeltaPolicy.parse(value).to_json()

    async def prepare(
        self, repo: Repository, base: VersionRecord, draft: VersionRecord
    ) -> VersionRecord:
        """``draft`` with the deltas the policy wants, without those it no longer does."""
        policy = DeltaPolicy.parse(draft.settings.get(SECTION, {}))
        wanted = await policy.wanted(repo, base, draft) if policy.active else set()
        deltas = {}
        for name, info in draft.deltas.items():
            start, end = parse_delta_name(name)
            ends_present = end in draft.commits and (start is None or start in draft.commits)
            if info.generated == POLICY and (start, end) not in wanted:
                continue  # no longer wanted: reclaim collects its blobs
            if info.generated and not ends_present:
                continue
            deltas[name] = info
        missing = sorted(((s, e) for s, e in wanted if delta_name(s, e) not in deltas), key=str)
        maker = self.maker(repo.store)
        options = policy.options()
        async with DeltaWorkers(self.processes) as workers:
            for start, end in missing:
                name = delta_name(start, end)
                carried = base.deltas.get(name)
                if carried is not None and carried.generated:
                    # dropped by the change (a mirror sync): its blobs are base's
                    deltas[name] = carried
                else:
                    deltas[name] = await maker.get(
                        draft, start, end, options=options, origin=POLICY, workers=workers
                    )
        for name, info in list(deltas.items()):
            if info.generated:
                start, end = parse_delta_name(name)
                deltas[name] = await maker.refit(draft, start, end, info)
        if deltas == draft.deltas:
            return draft
        return attrs.evolve(draft, deltas=deltas)


def _hook(manager: RepositoryManager) -> DeltaPolicyHook:
    for hook in manager.hooks:
        if isinstance(hook, DeltaPolicyHook):
            return hook
    return DeltaPolicyHook()


async def generate_deltas(
    manager: RepositoryManager,
    name: str,
    pairs: Sequence[tuple[str | None, str]],
    *,
    options: DeltaOptions | None = None,
    allow_unrelated: bool = False,
    processes: int | None = None,
    progress: Callable[[DeltaProgress], None] | None = None,
) -> VersionRecord | None:
    """Make the deltas (from or None, to) between commits of the latest version of
    ``name`` and publish them in a new version (None when it had them all). They are
    kept (``generated="manual"``) until :func:`delete_deltas`, whatever the policy.

    Raises CommitNotFoundError for a commit the version does not hold and
    UnrelatedCommitsError for commits that share no history (unless
    ``allow_unrelated``); a pair the version already has a delta for is left as it is.
    """
    repo = manager.repository(name)
    latest = await repo.version()
    check_pairs(latest, pairs, allow_unrelated)
    maker = _hook(manager).maker(manager.store)
    made = {}
    async with DeltaWorkers(processes) as workers:
        for start, end in pairs:
            key = delta_name(start, end)
            if key in latest.deltas and latest.deltas[key].generated != POLICY:
                continue
            made[key] = await maker.get(
                latest, start, end, options=options or DeltaOptions(), origin=MANUAL,
                workers=workers, progress=progress,
            )  # fmt: skip

    async def change(base: VersionRecord) -> VersionRecord:
        deltas = dict(base.deltas)
        for key, info in made.items():
            start, end = parse_delta_name(key)
            present = end in base.commits and (start is None or start in base.commits)
            old = deltas.get(key)
            if present and (old is None or old.generated == POLICY):
                deltas[key] = info
        return attrs.evolve(base, deltas=deltas, summary_sig=None)

    action = {"kind": "deltas", "generated": sorted(made)}
    return await repo.publish(change, action)


async def delete_deltas(
    manager: RepositoryManager, name: str, names: Sequence[str]
) -> VersionRecord | None:
    """A new version of ``name`` without the deltas ``names`` (None: it had none of them).
    A delta the repository's policy wants is made again by the policy."""
    wanted = set(names)

    async def change(base: VersionRecord) -> VersionRecord:
        deltas = {k: v for k, v in base.deltas.items() if k not in wanted}
        return attrs.evolve(base, deltas=deltas, summary_sig=None)

    action = {"kind": "delete-deltas", "deltas": sorted(wanted)}
    return await manager.repository(name).publish(change, action)
