"""Version records: what one immutable repository version holds, as stored.

A version is described entirely by its record, so listing refs and commits never reads
an object. The record names refs and commits; the objects a commit's tree reaches are
listed once per commit in its *closure* (see :mod:`.closure`), and everything else a
version serves (detached metadata, static deltas, the summary and its signature) is a
content-addressed *blob* named by its SHA-256.
"""

from __future__ import annotations

import json
from typing import Any

import attrs

from ostree_repo.errors import InvalidObjectError
from ostree_repo.objects.names import is_checksum, validate_collection_id, validate_ref
from ostree_repo.repository._aliases import AliasError, resolve_alias, resolve_aliases

__all__ = ["CommitInfo", "DeltaInfo", "RepoConfig", "VersionRecord"]

#: Version of the record format; readers refuse newer ones.
FORMAT = 1


@attrs.frozen
class CommitInfo:
    """What a version knows about one of its commits without reading the commit object."""

    parent: str | None
    timestamp: int
    subject: str
    size: int
    root_tree: str
    root_meta: str
    version: str | None = None
    #: blob holding the commit's ``.commitmeta`` in this version, if it has one
    commitmeta: str | None = None

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return attrs.asdict(self)

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> CommitInfo:
        """Inverse of :meth:`to_json`."""
        return cls(**doc)


@attrs.frozen
class DeltaInfo:
    """A static delta a version serves: its superblock and parts, all blobs.

    A delta that came in (import, sync) has an empty ``generated``; one we made says who
    asked for it (``"policy"``: the repository's delta policy, which drops it when it no
    longer wants it; ``"manual"``: ``deltas generate``, kept until deleted), with
    ``options`` naming how it was made and ``commitmeta`` the target's detached
    metadata blob it embeds (see :mod:`._delta_store`).
    """

    superblock: str
    #: blob of each part file; None for a part the superblock carries inline
    parts: tuple[str | None, ...] = ()
    generated: str = ""
    options: str = ""
    commitmeta: str | None = None

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (a delta that came in has only superblock and parts)."""
        doc: dict[str, Any] = {"superblock": self.superblock, "parts": list(self.parts)}
        if self.generated:
            doc.update(generated=self.generated, options=self.options, commitmeta=self.commitmeta)
        return doc

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> DeltaInfo:
        """Inverse of :meth:`to_json`."""
        return cls(
            doc["superblock"],
            tuple(doc["parts"]),
            doc.get("generated", ""),
            doc.get("options", ""),
            doc.get("commitmeta"),
        )


@attrs.frozen
class RepoConfig:
    """The repository ``config`` a version is served with."""

    mode: str = "archive-z2"
    collection_id: str | None = None

    def to_ini(self) -> bytes:
        """The ``config`` file served to clients."""
        lines = ["[core]", "repo_version=1", f"mode={self.mode}", "indexed-deltas=true"]
        if self.collection_id:
            lines.append(f"collection-id={self.collection_id}")
        return ("\n".join(lines) + "\n").encode()


def _sorted(mapping: dict[str, Any]) -> dict[str, Any]:
    return dict(sorted(mapping.items(), key=lambda kv: kv[0].encode()))


@attrs.frozen
class VersionRecord:
    """One repository version.

    ``refs`` maps ref names to commits; ``aliases`` maps alias names to the ref (or
    alias) each names, as libostree's ``refs/heads`` symlinks do (see
    :mod:`._aliases`; :meth:`resolved_refs` lists both as clients see them);
    ``collection_refs`` maps collection IDs to refs of other collections; ``commits``
    holds every commit of the version (also those no ref points at); ``deltas`` maps
    delta names (``FROM-TO`` or ``TO``) to their blobs. ``summary`` and ``summary_sig``
    are blobs. ``action`` says what made the version.
    ``settings`` holds the repository's policies, a JSON object of sections each owned
    by one feature (see :mod:`ostree_repo.repository.hooks`); it is carried forward from
    version to version.
    """

    repository: str
    number: int
    created: float
    refs: dict[str, str] = attrs.field(factory=dict)
    collection_refs: dict[str, dict[str, str]] = attrs.field(factory=dict)
    commits: dict[str, CommitInfo] = attrs.field(factory=dict)
    deltas: dict[str, DeltaInfo] = attrs.field(factory=dict)
    tombstones: tuple[str, ...] = ()
    config: RepoConfig = RepoConfig()
    summary: str | None = None
    summary_sig: str | None = None
    base: int | None = None
    action: dict[str, Any] = attrs.field(factory=dict)
    settings: dict[str, Any] = attrs.field(factory=dict)
    #: random token of the writer that created the record (tells it its own record apart)
    writer: str = ""
    aliases: dict[str, str] = attrs.field(factory=dict)

    def resolve_ref(self, name: str) -> str | None:
        """The commit ref or alias ``name`` points at (None: no such ref)."""
        commit = self.refs.get(name)
        if commit is None and name in self.aliases:
            try:
                return resolve_alias(name, self.refs, self.aliases)
            except AliasError:
                return None
        return commit

    def resolved_refs(self) -> dict[str, str]:
        """Refs and aliases with the commit each points at, as libostree lists them (and
        as the summary and the server give them), sorted by name."""
        return _sorted({**self.refs, **resolve_aliases(self.refs, self.aliases)})

    def check(self) -> VersionRecord:
        """Validate names and references; return self."""
        for name, commit in self.refs.items():
            validate_ref(name)
            if commit not in self.commits:
                raise InvalidObjectError(f"ref {name} points at {commit}, not in the version")
        for name, target in self.aliases.items():
            validate_ref(name)
            validate_ref(target)
        try:
            resolve_aliases(self.refs, self.aliases)
        except AliasError as e:
            raise InvalidObjectError(str(e)) from None
        for cid, refs in self.collection_refs.items():
            validate_collection_id(cid)
            for name, commit in refs.items():
                validate_ref(name)
                if commit not in self.commits:
                    raise InvalidObjectError(f"ref ({cid}, {name}) points at a missing commit")
        for checksum in self.commits:
            if not is_checksum(checksum):
                raise InvalidObjectError(f"invalid commit checksum {checksum!r}")
        return self

    def to_bytes(self) -> bytes:
        """The stored form: compact JSON, keys in a stable order."""
        doc = {
            "format": FORMAT,
            "repository": self.repository,
            "number": self.number,
            "created": self.created,
            "base": self.base,
            "action": self.action,
            "config": attrs.asdict(self.config),
            "refs": _sorted(self.refs),
            "aliases": _sorted(self.aliases),
            "collection_refs": {c: _sorted(r) for c, r in sorted(self.collection_refs.items())},
            "commits": {c: info.to_json() for c, info in sorted(self.commits.items())},
            "deltas": {n: d.to_json() for n, d in sorted(self.deltas.items())},
            "tombstones": sorted(self.tombstones),
            "summary": self.summary,
            "summary_sig": self.summary_sig,
            "settings": dict(sorted(self.settings.items())),
            "writer": self.writer,
        }
        return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> VersionRecord:
        """Parse a stored record."""
        try:
            doc = json.loads(data)
            if doc.get("format") != FORMAT:
                raise InvalidObjectError(f"unsupported version record format {doc.get('format')}")
            return cls(
                repository=doc["repository"],
                number=doc["number"],
                created=doc["created"],
                refs=doc["refs"],
                collection_refs=doc["collection_refs"],
                commits={c: CommitInfo.from_json(i) for c, i in doc["commits"].items()},
                deltas={n: DeltaInfo.from_json(d) for n, d in doc["deltas"].items()},
                tombstones=tuple(doc["tombstones"]),
                config=RepoConfig(**doc["config"]),
                summary=doc["summary"],
                summary_sig=doc["summary_sig"],
                base=doc["base"],
                action=doc["action"],
                settings=doc.get("settings", {}),
                writer=doc.get("writer", ""),
                aliases=doc.get("aliases", {}),
            )
        except (ValueError, KeyError, TypeError) as e:
            raise InvalidObjectError(f"corrupt version record: {e}") from e
