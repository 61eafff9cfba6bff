"""Exporting a version: a directory (hard-linked from a filesystem store) or a tarball."""

from __future__ import annotations

import errno
import io
import json
import os
import tarfile
from pathlib import Path

import pytest

from oracle.ostree_cli import fsck, read_refs
from ostree_repo import export as export_module
from ostree_repo.cli import main
from ostree_repo.export import export_tar, export_version
from ostree_repo.repository import RepositoryManager

from .conftest import Served

pytestmark = pytest.mark.anyio


def tree_files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


async def test_directory_export_links_from_a_filesystem_store(
    served: Served, tmp_path: Path
) -> None:
    async with RepositoryManager.open(str(served.store), create=False) as m:
        await export_version(m, "rich", tmp_path / "linked")
        await export_version(m, "rich", tmp_path / "copied", link=False)
    linked, copied = tmp_path / "linked", tmp_path / "copied"
    fsck(linked)
    assert read_refs(linked) == read_refs(served.rich.path)
    assert tree_files(linked) == tree_files(copied)
    commit = next((linked / "objects").rglob("*.commit"))
    in_store = served.store / commit.relative_to(linked)
    assert os.path.samefile(commit, in_store)
    assert not os.path.samefile(copied / commit.relative_to(linked), in_store)
    summary = linked / "summary"  # blobs are linked too
    assert summary.stat().st_nlink >= 2


async def test_links_fall_back_to_copies(
    served: Served, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = []

    def refuse(source: str, target: object) -> None:
        calls.append(source)
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(export_module.os, "link", refuse)
    async with RepositoryManager.open(str(served.store), create=False) as m:
        await export_version(m, "other", tmp_path / "out")
    fsck(tmp_path / "out")
    assert len(calls) == 1  # the first refusal turns linking off


async def test_tarball_holds_the_same_tree(served: Served, tmp_path: Path) -> None:
    async with RepositoryManager.open(str(served.store), create=False) as m:
        await export_version(m, "rich", tmp_path / "dir", link=False)
        record = await export_tar(m, "rich", tmp_path / "a.tar")
        await export_tar(m, "rich", tmp_path / "b.tar")
        await export_tar(m, "rich", tmp_path / "bare.tar", prefix="")
        with pytest.raises(Exception, match="exists"):
            await export_tar(m, "rich", tmp_path / "a.tar")
    data = (tmp_path / "a.tar").read_bytes()
    assert data == (tmp_path / "b.tar").read_bytes()  # deterministic
    assert len(data) % tarfile.RECORDSIZE == 0
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        members = tar.getmembers()
        assert all(m.name == "repo" or m.name.startswith("repo/") for m in members)
        assert all(m.uid == 0 and m.gid == 0 and m.mtime == int(record.created) for m in members)
        names = [m.name for m in members]
        assert "repo/tmp" in names and "repo/refs/remotes" in names
        tar.extractall(tmp_path / "x", filter="tar")
    fsck(tmp_path / "x" / "repo")
    assert tree_files(tmp_path / "x" / "repo") == tree_files(tmp_path / "dir")
    with tarfile.open(tmp_path / "bare.tar") as tar:
        assert "config" in tar.getnames()
    assert not list(tmp_path.glob(".*partial*"))


def test_cli_export_tar(served: Served, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "hist.tar"
    store = ["--store", str(served.store)]
    assert main([*store, "export", "--json", "hist", "--version", "1", "--tar", str(out)]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc == {"repository": "hist", "version": 1, "tar": str(out)}
    with tarfile.open(out) as tar:
        ref = tar.extractfile("repo/refs/heads/main")
        assert ref is not None and ref.read().decode().strip() == served.rich.main[2]
    assert main([*store, "export", "hist"]) == 1
    assert main([*store, "export", "hist", str(tmp_path / "d"), "--tar", str(tmp_path / "t")]) == 1
    assert "DIRECTORY or --tar" in capsys.readouterr().err
