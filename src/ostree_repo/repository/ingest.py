"""Bringing commits into a repository: the shared end of import, sync and commit.

An :class:`Ingest` collects what arrives (commits, refs, detached metadata, static
deltas, tombstones), storing each piece as it comes: objects through the store's
verifying writes, everything else as checksummed blobs. :meth:`Ingest.publish` then
computes the closure of every new commit (which proves that all its objects are
stored) and makes the new version. Nothing is visible before that last step.

Internal to ostree_repo: import, sync and the builder use it; users call those.
"""

from __future__ import annotations

import hashlib
from typing import Any

import attrs

from ostree_repo.errors import ChecksumMismatchError, InvalidObjectError, NotFoundError
from ostree_repo.objects import Commit, DeltaSuperblock, ObjectType
from ostree_repo.objects.metadata import DetachedMetadata
from ostree_repo.objects.names import delta_name, validate_collection_id, validate_ref
from ostree_repo.repository._aliases import resolve_aliases
from ostree_repo.repository._content import merge_refs
from ostree_repo.repository.blobs import put_blob
from ostree_repo.repository.manager import RepositoryManager
from ostree_repo.repository.records import CommitInfo, DeltaInfo, RepoConfig, VersionRecord

__all__ = ["Ingest", "commit_info"]


def commit_info(commit: Commit, size: int, commitmeta: str | None = None) -> CommitInfo:
    """The record entry for a decoded commit of ``size`` bytes."""
    return CommitInfo(
        parent=commit.parent,
        timestamp=commit.timestamp,
        subject=commit.subject,
        size=size,
        root_tree=commit.root_tree,
        root_meta=commit.root_meta,
        version=commit.version,
        commitmeta=commitmeta,
    )


@attrs.define
class Ingest:
    """What one import or sync brings into repository ``name``."""

    manager: RepositoryManager
    name: str
    refs: dict[str, str] = attrs.field(factory=dict)
    #: alias name -> the ref (or alias) it names
    aliases: dict[str, str] = attrs.field(factory=dict)
    collection_refs: dict[str, dict[str, str]] = attrs.field(factory=dict)
    commits: dict[str, CommitInfo] = attrs.field(factory=dict)
    deltas: dict[str, DeltaInfo] = attrs.field(factory=dict)
    tombstones: set[str] = attrs.field(factory=set)
    config: RepoConfig | None = None
    _settings: dict[str, Any] | None = attrs.field(default=None, init=False)

    async def settings(self) -> dict[str, Any]:
        """The settings of the repository's latest version (read once), which say what
        it admits."""
        if self._settings is None:
            repo = self.manager.repository(self.name)
            self._settings = (await repo.version()).settings if await repo.exists() else {}
        return self._settings

    async def add_commit(
        self, checksum: str, data: bytes, commitmeta: bytes | None = None, *, admit: bool = True
    ) -> Commit:
        """Store a commit object (verified) and, if given, its detached metadata.

        With ``admit`` (commits that come from elsewhere) the manager's hooks may refuse
        it first (see :meth:`PublishHook.admit_commit
        <ostree_repo.repository.hooks.PublishHook.admit_commit>`); then nothing is stored.
        """
        if admit and self.manager.hooks:
            repo = self.manager.repository(self.name)
            settings = await self.settings()
            for hook in self.manager.hooks:
                await hook.admit_commit(repo, settings, checksum, data, commitmeta)
        await self.manager.store.write_object(checksum, ObjectType.COMMIT, data)
        commit = Commit.from_bytes(data)
        meta_digest = None
        if commitmeta is not None:
            DetachedMetadata.from_bytes(commitmeta)  # must be a valid a{sv}
            meta_digest = await put_blob(self.manager.store, commitmeta)
        self.commits[checksum] = commit_info(commit, len(data), meta_digest)
        return commit

    def set_ref(self, name: str, commit: str, collection_id: str | None = None) -> None:
        """Point ref ``name`` (of another collection, if given) at ``commit``."""
        validate_ref(name)
        if collection_id is None:
            self.refs[name] = commit
            self.aliases.pop(name, None)
        else:
            validate_collection_id(collection_id)
            self.collection_refs.setdefault(collection_id, {})[name] = commit

    def set_alias(self, name: str, target: str) -> None:
        """Make ``name`` an alias of ref (or alias) ``target``."""
        validate_ref(name)
        validate_ref(target)
        self.aliases[name] = target
        self.refs.pop(name, None)

    async def add_delta(self, superblock: bytes, parts: dict[int, bytes]) -> str:
        """Store a static delta (superblock and part files, byte for byte) after checking
        each part against the checksum its superblock gives. Parts that the superblock
        carries inline (``--inline`` deltas) have no file. Returns the delta's name."""
        block = DeltaSuperblock.from_bytes(superblock)
        digests: list[str | None] = []
        for index, header in enumerate(block.parts):
            inline = block.inline_part(index)
            data = inline if inline is not None else parts.get(index)
            if data is None:
                raise InvalidObjectError(f"delta to {block.to_checksum}: part {index} is missing")
            digest = hashlib.sha256(data).hexdigest()
            if digest != header.checksum:
                raise ChecksumMismatchError(header.checksum, digest, "delta part")
            digests.append(None if inline is not None else await put_blob(self.manager.store, data))
        name = delta_name(block.from_checksum, block.to_checksum)
        self.deltas[name] = DeltaInfo(
            await put_blob(self.manager.store, superblock), tuple(digests)
        )
        return name

    def draft(self, base: VersionRecord, *, replace: bool = False) -> VersionRecord:
        """The next version's content: ``base`` plus what was ingested (refs of the same
        name move, a ref replacing an alias of its name and the other way round), or with
        ``replace`` only what was ingested; deltas come along when both their ends are
        present. The summary signature is dropped: the summary will be regenerated unless
        the caller sets one it can vouch for. AliasError if an alias resolves to no ref.
        """
        deltas = {
            n: d for n, d in self.deltas.items() if _delta_ends_present(n, base, self, replace)
        }
        if replace:
            resolve_aliases(self.refs, self.aliases)
            return attrs.evolve(
                base,
                refs=dict(self.refs),
                aliases=dict(self.aliases),
                collection_refs={c: dict(r) for c, r in self.collection_refs.items()},
                commits=dict(self.commits),
                deltas=deltas,
                tombstones=tuple(sorted(self.tombstones)),
                config=self.config or base.config,
                summary_sig=None,
            )
        collection_refs = {c: dict(r) for c, r in base.collection_refs.items()}
        for cid, refs in self.collection_refs.items():
            collection_refs.setdefault(cid, {}).update(refs)
        new_refs, new_aliases = merge_refs(base, self.refs, self.aliases)
        return attrs.evolve(
            base,
            refs=new_refs,
            aliases=new_aliases,
            collection_refs=collection_refs,
            commits={**base.commits, **self.commits},
            deltas={**base.deltas, **deltas},
            tombstones=tuple(sorted(set(base.tombstones) | self.tombstones)),
            config=self.config or base.config,
            summary_sig=None,
        )

    async def publish(
        self, action: dict[str, Any], *, replace: bool = False
    ) -> VersionRecord | None:
        """Compute closures for the new commits and publish the next version.

        With ``replace`` the new version holds exactly what was ingested (a mirror);
        otherwise it is the latest version plus the ingested content, refs of the same
        name moving. Refs must point at commits of the new version.
        """
        for name, commit in self.refs.items():
            if commit not in self.commits:
                raise NotFoundError(f"ref {name} points at {commit}, which was not brought in")
        for checksum in _oldest_first(self.commits):
            await self.manager.ensure_closure(checksum, self.commits[checksum].parent)

        async def change(base: VersionRecord) -> VersionRecord:
            return self.draft(base, replace=replace)

        return await self.manager.repository(self.name).publish(change, action)


def _delta_ends_present(name: str, base: VersionRecord, ingest: Ingest, replace: bool) -> bool:
    from ostree_repo.objects.names import parse_delta_name

    start, end = parse_delta_name(name)
    present = set(ingest.commits) if replace else set(ingest.commits) | set(base.commits)
    return end in present and (start is None or start in present)


def _oldest_first(commits: dict[str, CommitInfo]) -> list[str]:
    """Commits ordered so that a parent comes before its children (when both are here)."""
    ordered: list[str] = []
    placed: set[str] = set()
    for checksum in sorted(commits, key=lambda c: commits[c].timestamp):
        chain = []
        current: str | None = checksum
        while current is not None and current in commits and current not in placed:
            chain.append(current)
            placed.add(current)
            current = commits[current].parent
        ordered.extend(reversed(chain))
    return ordered
