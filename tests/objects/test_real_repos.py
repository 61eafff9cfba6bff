"""The object codec against repositories made by the real ``ostree`` CLI.

Every metadata object decodes and re-encodes to identical bytes, every content object's
recomputed checksum equals its name and re-compresses to the original ``.filez``, and
summaries, superblocks, parts and indexes round-trip and agree with what was built.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from oracle.ostree_cli import RepoInfo
from ostree_repo.objects import (
    Commit,
    DeltaIndex,
    DeltaSuperblock,
    DetachedMetadata,
    DirMeta,
    DirTree,
    ObjectType,
    Summary,
    Tombstone,
    delta_index_path,
    delta_path,
    encode_filez,
    parse_object_path,
    read_filez,
    verify_bytes,
)
from ostree_repo.objects.delta import DeltaPart
from ostree_repo.objects.summary import COMMIT_VERSION

DECODERS: dict[str, Callable[[bytes], Any]] = {
    "commit": Commit.from_bytes,
    "dirtree": DirTree.from_bytes,
    "dirmeta": DirMeta.from_bytes,
    "commitmeta": DetachedMetadata.from_bytes,
    "tombstone-commit": Tombstone.from_bytes,
}


def _objects(repo: RepoInfo, *exts: str) -> list[tuple[str, str, Path]]:
    return [(c, e, p) for c, e, p in repo.objects() if e in exts]


def test_rich_repo_has_every_kind_of_object(rich_repo: RepoInfo) -> None:
    counts = rich_repo.object_counts()
    for ext in ("commit", "dirtree", "dirmeta", "filez", "commitmeta", "tombstone-commit"):
        assert counts.get(ext, 0) > 0, ext


@pytest.mark.parametrize("ext", sorted(DECODERS))
def test_metadata_objects_round_trip(rich_repo: RepoInfo, ext: str) -> None:
    for checksum, _, path in _objects(rich_repo, ext):
        data = path.read_bytes()
        obj = DECODERS[ext](data)
        assert obj.to_bytes() == data, path
        verify_bytes(ObjectType(ext), checksum, data)
        if ext in ("commit", "dirtree", "dirmeta"):
            assert obj.checksum() == checksum


def test_content_objects_verify_and_recompress_identically(rich_repo: RepoInfo) -> None:
    objects = _objects(rich_repo, "filez")
    assert len(objects) > 10
    for checksum, _, path in objects:
        data = path.read_bytes()
        header, payload = read_filez(data, checksum)
        again = b"".join(
            encode_filez(
                header, len(payload), [payload[i : i + 7000] for i in range(0, len(payload), 7000)]
            )
        )
        assert again == data, path
        verify_bytes(ObjectType.FILE, checksum, data)


def test_symlinks_xattrs_and_modes_are_read(rich_repo: RepoInfo) -> None:
    headers = [read_filez(p.read_bytes())[0] for _, _, p in _objects(rich_repo, "filez")]
    assert any(h.is_symlink and h.symlink_target for h in headers)
    assert any(h.mode & 0o111 for h in headers if not h.is_symlink)
    if rich_repo.xattrs:
        assert any(h.xattrs for h in headers)
    assert any(h.mode & 0o7000 for h in headers), "setuid/setgid/sticky bits survive"


def test_commits_match_what_was_committed(rich_repo: RepoInfo) -> None:
    for checksum in rich_repo.commits:
        info = rich_repo.commit_info[checksum]
        commit = Commit.from_bytes(rich_repo.object_path(checksum, "commit").read_bytes())
        assert commit.subject == info.subject
        assert commit.body == info.body
        assert commit.timestamp == info.timestamp
        assert commit.parent == info.parent
        for key, value in info.metadata_strings.items():
            assert commit.metadata[key].signature == "s"
            assert commit.metadata[key].value == value


def test_summary_round_trips_and_lists_refs_and_deltas(rich_repo: RepoInfo) -> None:
    assert rich_repo.summary is not None
    data = rich_repo.summary.read_bytes()
    summary = Summary.from_bytes(data)
    assert summary.to_bytes() == data
    assert {r.name: r.checksum for r in summary.refs} == rich_repo.refs
    assert [r.name for r in summary.refs] == sorted(rich_repo.refs, key=str.encode)
    for ref in summary.refs:
        commit_file = rich_repo.object_path(ref.checksum, "commit")
        assert ref.commit_size == commit_file.stat().st_size
        commit = Commit.from_bytes(commit_file.read_bytes())
        assert ref.timestamp == commit.timestamp
        if commit.version is not None:
            assert ref.metadata[COMMIT_VERSION].value == commit.version
    expected = {name: d.superblock_sha256 for name, d in rich_repo.deltas.items()}
    assert summary.static_deltas == expected
    assert summary.last_modified is not None


def test_collection_summary(collection_repo: RepoInfo) -> None:
    assert collection_repo.summary is not None
    data = collection_repo.summary.read_bytes()
    summary = Summary.from_bytes(data)
    assert summary.to_bytes() == data
    assert summary.collection_id == collection_repo.collection_id
    found = {
        (cid, r.name): r.checksum for cid, refs in summary.collection_map.items() for r in refs
    }
    assert found == {
        k: v
        for k, v in collection_repo.collection_refs.items()
        if k[0] != collection_repo.collection_id
    }


def test_deltas_round_trip_and_paths(rich_repo: RepoInfo) -> None:
    assert rich_repo.deltas
    for name, delta in rich_repo.deltas.items():
        data = delta.superblock.read_bytes()
        block = DeltaSuperblock.from_bytes(data)
        assert block.to_bytes() == data
        assert block.from_checksum == delta.from_commit and block.to_checksum == delta.to_commit
        assert block.swapped == (delta.endianness == "B")
        rel = delta.superblock.relative_to(rich_repo.path).as_posix()
        assert rel == delta_path(delta.from_commit, delta.to_commit, "superblock")
        for index, header in enumerate(block.parts):
            if delta.inline:
                continue
            part_file = delta.path / str(index)
            part_bytes = part_file.read_bytes()
            assert hashlib.sha256(part_bytes).hexdigest() == header.checksum
            assert len(part_bytes) == header.size
            part = DeltaPart.from_bytes(part_bytes)
            assert part.ops
        assert name in {n for n in rich_repo.deltas}


def test_delta_indexes(rich_repo: RepoInfo) -> None:
    indexes = list((rich_repo.path / "delta-indexes").rglob("*.index"))
    assert indexes
    targets = {d.to_commit for d in rich_repo.deltas.values()}
    paths = {delta_index_path(t) for t in targets}
    for index_file in indexes:
        data = index_file.read_bytes()
        index = DeltaIndex.from_bytes(data)
        assert index.to_bytes() == data
        assert index_file.relative_to(rich_repo.path).as_posix() in paths
        for name, digest in index.deltas.items():
            assert rich_repo.deltas[name].superblock_sha256 == digest


def test_tombstones_name_their_commit(rich_repo: RepoInfo) -> None:
    for checksum, _, path in _objects(rich_repo, "tombstone-commit"):
        assert Tombstone.from_bytes(path.read_bytes()).commit == checksum
        assert checksum in rich_repo.tombstoned


def test_object_paths(rich_repo: RepoInfo) -> None:
    for checksum, ext, path in rich_repo.objects():
        assert parse_object_path(path.relative_to(rich_repo.path).as_posix()) == (
            checksum,
            ObjectType.from_extension(ext),
        )


def test_summary_signature_decodes(rich_repo: RepoInfo) -> None:
    assert rich_repo.summary_sig is not None, "gpg missing: scripts/install-deps.sh installs it"
    from ostree_repo.gvariant import loads

    sigs = loads("a{sv}", rich_repo.summary_sig.read_bytes())
    assert sigs["ostree.gpgsigs"].signature == "aay"
    assert sigs["ostree.gpgsigs"].value
