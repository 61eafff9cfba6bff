"""What a repository holds, in one comparable value: from a directory on disk (read
independently of the code under test, with directory file descriptors so that a 4084-byte
ref name works) or from a version record."""

from __future__ import annotations

import hashlib
import os
import posixpath
import stat
from dataclasses import dataclass, field
from pathlib import Path

from ostree_repo.objects import DeltaIndex, DeltaSuperblock, parse_delta_name
from ostree_repo.repository import RepositoryManager, VersionRecord
from ostree_repo.repository.blobs import read_blob
from ostree_repo.repository.closure import split_key

#: loose object extensions a closure holds
TREE_EXTENSIONS = ("commit", "dirtree", "dirmeta", "filez")


@dataclass
class Snapshot:
    """Refs (aliases resolved), aliases (alias -> target), collection refs, the objects of
    the commits' trees, detached metadata and delta superblocks (by SHA-256), tombstones."""

    refs: dict[str, str] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)
    mirrors: dict[tuple[str, str], str] = field(default_factory=dict)
    commits: set[str] = field(default_factory=set)
    objects: set[tuple[str, str]] = field(default_factory=set)
    commitmeta: dict[str, str] = field(default_factory=dict)
    deltas: dict[str, str] = field(default_factory=dict)
    tombstones: set[str] = field(default_factory=set)

    def without_aliases(self) -> Snapshot:
        """The same with aliases as plain refs (what a client that follows links gets)."""
        return Snapshot(**{**self.__dict__, "aliases": {}})


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _walk_refs(base: Path) -> tuple[dict[str, str], dict[str, str]]:
    """Files (name -> text through any symlink) and symlinks (name -> link text) below
    ``base``, read with directory descriptors."""
    files: dict[str, str] = {}
    links: dict[str, str] = {}
    if not base.is_dir():
        return files, links
    for top, dirs, names, fd in os.fwalk(base):
        rel = os.path.relpath(top, base)
        for name in (*names, *(d for d in dirs if _is_link(d, fd))):
            ref = name if rel == "." else f"{rel}/{name}"
            if _is_link(name, fd):
                links[ref] = os.readlink(name, dir_fd=fd)
            descriptor = os.open(name, os.O_RDONLY, dir_fd=fd)
            with os.fdopen(descriptor, "rb") as f:
                files[ref] = f.read().decode().strip()
    return files, links


def _is_link(name: str, fd: int) -> bool:
    return stat.S_ISLNK(os.stat(name, dir_fd=fd, follow_symlinks=False).st_mode)


def of_directory(repo: Path) -> Snapshot:
    """What the repository at ``repo`` holds (objects: those its commits' trees reach)."""
    from repository.walk import reachable_all

    snap = Snapshot()
    heads, links = _walk_refs(repo / "refs" / "heads")
    snap.refs = heads
    for name, text in links.items():
        target = posixpath.normpath(posixpath.join(posixpath.dirname(name), text))
        if not target.startswith("../"):
            snap.aliases[name] = target
    mirrors = repo / "refs" / "mirrors"
    if mirrors.is_dir():
        for cid in sorted(os.listdir(mirrors)):
            for name, commit in _walk_refs(mirrors / cid)[0].items():
                snap.mirrors[(cid, name)] = commit
    objects = repo / "objects"
    for sub in sorted(os.listdir(objects)) if objects.is_dir() else ():
        for entry in os.listdir(objects / sub):
            stem, _, ext = entry.partition(".")
            checksum = sub + stem
            if ext == "commit":
                snap.commits.add(checksum)
            elif ext == "commitmeta":
                snap.commitmeta[checksum] = _sha((objects / sub / entry).read_bytes())
            elif ext == "tombstone-commit":
                snap.tombstones.add(checksum)
    snap.objects = {(c, t.extension) for t, c in reachable_all(repo, snap.commits)}
    deltas = repo / "deltas"
    for superblock in deltas.rglob("superblock") if deltas.is_dir() else ():
        data = superblock.read_bytes()
        block = DeltaSuperblock.from_bytes(data)
        name = (
            block.to_checksum
            if block.from_checksum is None
            else (f"{block.from_checksum}-{block.to_checksum}")
        )
        snap.deltas[name] = _sha(data)
    return snap


async def of_version(manager: RepositoryManager, record: VersionRecord) -> Snapshot:
    """What a version holds, in the same terms."""
    snap = Snapshot(
        refs=record.resolved_refs(),
        aliases=dict(record.aliases),
        mirrors={
            (cid, n): c for cid, refs in record.collection_refs.items() for n, c in refs.items()
        },
        commits=set(record.commits),
        tombstones=set(record.tombstones),
    )
    for key in await manager.version_objects(record):
        objtype, checksum = split_key(key)
        snap.objects.add((checksum, objtype.extension))
    for checksum, info in record.commits.items():
        if info.commitmeta:
            snap.commitmeta[checksum] = _sha(await read_blob(manager.store, info.commitmeta))
    snap.deltas = {name: delta.superblock for name, delta in record.deltas.items()}
    return snap


def key_checksum(key: bytes) -> str:
    """The checksum of a closure key."""
    return split_key(key)[1]


def key_ext(key: bytes) -> str:
    """The object file extension of a closure key."""
    return split_key(key)[0].extension


def delta_indexes(repo: Path) -> dict[str, dict[str, str]]:
    """Every ``delta-indexes/`` file: its path, and the deltas it lists."""
    base = repo / "delta-indexes"
    return {
        path.relative_to(base).as_posix(): DeltaIndex.from_bytes(path.read_bytes()).deltas
        for path in sorted(base.rglob("*.index"))
    }


def delta_ends(name: str) -> tuple[str | None, str]:
    """A delta name's (from, to)."""
    return parse_delta_name(name)
