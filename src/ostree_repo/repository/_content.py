"""Pure operations on version content: copy refs and commits, remove them, diff versions.

Each takes records and returns a new record (or a description), touching no storage: the
objects a commit needs are already shared by every repository of the store, so copying
a commit between versions copies nothing but its record entry.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import attrs

from ostree_repo.errors import NotFoundError, OstreeRepoError
from ostree_repo.objects.names import parse_delta_name, validate_ref
from ostree_repo.repository._aliases import MAX_LINKS, resolve_aliases
from ostree_repo.repository.records import CommitInfo, DeltaInfo, RepoConfig, VersionRecord

__all__ = ["add_content", "diff", "history", "merge_refs", "remove_content", "select"]


def history(commits: dict[str, CommitInfo], start: str, depth: int) -> list[str]:
    """``start`` and its parents found in ``commits``, up to ``depth`` (-1: all)."""
    chain = [start]
    current = commits[start]
    while depth != 0 and current.parent is not None and current.parent in commits:
        chain.append(current.parent)
        current = commits[current.parent]
        depth -= 1
    return chain


@attrs.frozen
class Selection:
    """What to take from a source version: refs and aliases to set, commits to include,
    and deltas."""

    refs: dict[str, str]
    collection_refs: dict[str, dict[str, str]]
    commits: dict[str, CommitInfo]
    deltas: dict[str, DeltaInfo]
    tombstones: tuple[str, ...] = ()
    aliases: dict[str, str] = attrs.field(factory=dict)
    #: the source's mode and collection ID, taken by a whole copy
    config: RepoConfig | None = None


def _alias_chain(source: VersionRecord, name: str) -> tuple[dict[str, str], str]:
    """The aliases from alias ``name`` to the ref it resolves to, and that ref."""
    chain: dict[str, str] = {}
    current = name
    while current in source.aliases and len(chain) <= MAX_LINKS:
        chain[current] = current = source.aliases[current]
    return chain, current


def select(
    source: VersionRecord,
    refs: Iterable[str] = (),
    commits: Iterable[str] = (),
    depth: int = 0,
    whole: bool = False,
) -> Selection:
    """Pick refs (with their commits) and single commits, each with ``depth`` parents.

    An alias comes with the aliases and the ref it resolves to (so that it still
    resolves in the destination). ``whole`` takes everything: all refs, aliases,
    collection refs, commits, deltas, tombstones, and the config (mode and collection
    ID: the refs of a collection repository are that collection's).
    """
    if whole:
        return Selection(
            dict(source.refs),
            {c: dict(r) for c, r in source.collection_refs.items()},
            dict(source.commits),
            dict(source.deltas),
            source.tombstones,
            dict(source.aliases),
            source.config,
        )
    chosen_refs: dict[str, str] = {}
    chosen_aliases: dict[str, str] = {}
    chosen: dict[str, CommitInfo] = {}
    for asked in refs:
        validate_ref(asked)
        chain, name = _alias_chain(source, asked)
        chosen_aliases.update(chain)
        if name not in source.refs:
            raise NotFoundError(f"version {source.number} of {source.repository} has no ref {name}")
        chosen_refs[name] = source.refs[name]
        for c in history(source.commits, source.refs[name], depth):
            chosen[c] = source.commits[c]
    for commit in commits:
        if commit not in source.commits:
            raise NotFoundError(
                f"version {source.number} of {source.repository} has no commit {commit}"
            )
        for c in history(source.commits, commit, depth):
            chosen[c] = source.commits[c]
    return Selection(chosen_refs, {}, chosen, dict(source.deltas), aliases=chosen_aliases)


def merge_refs(
    base: VersionRecord, refs: dict[str, str], aliases: dict[str, str]
) -> tuple[dict[str, str], dict[str, str]]:
    """``base``'s refs and aliases with ``refs`` and ``aliases`` set over them: a ref
    replaces an alias of the same name and the other way round, as writing
    ``refs/heads/NAME`` replaces whatever was there. AliasError if an alias of the result
    no longer resolves."""
    new_refs = {n: c for n, c in base.refs.items() if n not in aliases} | refs
    new_aliases = {n: t for n, t in base.aliases.items() if n not in refs} | aliases
    resolve_aliases(new_refs, new_aliases)
    return new_refs, new_aliases


def _deltas_between(commits: dict[str, Any], deltas: dict[str, DeltaInfo]) -> dict[str, DeltaInfo]:
    """The deltas whose both ends (or target, from scratch) are among ``commits``."""
    kept = {}
    for name, delta in deltas.items():
        start, end = parse_delta_name(name)
        if end in commits and (start is None or start in commits):
            kept[name] = delta
    return kept


def add_content(base: VersionRecord, selection: Selection) -> VersionRecord:
    """``base`` plus the selection: refs and aliases with the same name move; deltas whose
    ends are both present come along."""
    refs, aliases = merge_refs(base, selection.refs, selection.aliases)
    commits = {**base.commits, **selection.commits}
    collection_refs = {c: dict(r) for c, r in base.collection_refs.items()}
    for cid, of_cid in selection.collection_refs.items():
        collection_refs.setdefault(cid, {}).update(of_cid)
    deltas = {**base.deltas, **_deltas_between(commits, selection.deltas)}
    tombstones = tuple(sorted(set(base.tombstones) | set(selection.tombstones)))
    return attrs.evolve(
        base,
        refs=refs,
        aliases=aliases,
        collection_refs=collection_refs,
        commits=commits,
        deltas=deltas,
        tombstones=tombstones,
        config=selection.config or base.config,
        summary_sig=None,
    )


def remove_content(
    base: VersionRecord, refs: Iterable[str] = (), commits: Iterable[str] = ()
) -> VersionRecord:
    """``base`` without the named refs (or aliases) and commits.

    Removing a commit that a remaining ref points at is refused (remove the ref too), and
    so is removing a ref that a remaining alias names (as ``ostree refs --delete`` refuses
    it: remove the alias too). Deltas that lead from or to a removed commit go with it; a
    remaining child of a removed commit keeps its parent link, as a truncated history.
    """
    new_refs = dict(base.refs)
    new_aliases = dict(base.aliases)
    for name in refs:
        if name in new_aliases:
            del new_aliases[name]
        elif name in new_refs:
            del new_refs[name]
        else:
            raise NotFoundError(f"version {base.number} of {base.repository} has no ref {name}")
    for alias, target in sorted(new_aliases.items()):
        if target not in new_refs and target not in new_aliases:
            raise OstreeRepoError(
                f"ref {target} has an active alias: {alias} (remove the alias as well)"
            )
    gone = set(commits)
    for commit in gone:
        if commit not in base.commits:
            raise NotFoundError(
                f"version {base.number} of {base.repository} has no commit {commit}"
            )
    for name, commit in new_refs.items():
        if commit in gone:
            raise OstreeRepoError(f"ref {name} points at {commit}: remove the ref as well")
    collection_refs = {
        cid: {n: c for n, c in r.items() if c not in gone}
        for cid, r in base.collection_refs.items()
    }
    remaining = {c: i for c, i in base.commits.items() if c not in gone}
    return attrs.evolve(
        base,
        refs=new_refs,
        aliases=new_aliases,
        collection_refs={cid: r for cid, r in collection_refs.items() if r},
        commits=remaining,
        deltas=_deltas_between(remaining, base.deltas),
        tombstones=base.tombstones,
        summary_sig=None,
    )


def _changes(kind: str, old: dict[str, str], new: dict[str, str]) -> dict[str, Any]:
    """``KIND_added``, ``KIND_removed`` and ``KIND_moved`` (``{"from", "to"}``) of a mapping."""
    return {
        f"{kind}_added": {n: v for n, v in new.items() if n not in old},
        f"{kind}_removed": {n: v for n, v in old.items() if n not in new},
        f"{kind}_moved": {
            n: {"from": old[n], "to": v} for n, v in new.items() if n in old and old[n] != v
        },
    }


def diff(old: VersionRecord, new: VersionRecord) -> dict[str, Any]:
    """What changed from ``old`` to ``new``: refs added, removed, moved; aliases added,
    removed and pointed at another ref; commits added and removed; deltas added and
    removed."""
    return {
        **_changes("refs", old.refs, new.refs),
        **_changes("aliases", old.aliases, new.aliases),
        "commits_added": sorted(set(new.commits) - set(old.commits)),
        "commits_removed": sorted(set(old.commits) - set(new.commits)),
        "deltas_added": sorted(set(new.deltas) - set(old.deltas)),
        "deltas_removed": sorted(set(old.deltas) - set(new.deltas)),
    }
