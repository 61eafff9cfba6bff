"""Fixtures for the archive-import tests: managers (shared with the repository tests) and a
small repository made by the real ``ostree`` CLI."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from oracle.ostree_cli import ostree, rev_parse
from repository.conftest import anyio_backend, fs_manager, manager, store_spec

__all__ = ["SmallRepo", "anyio_backend", "fs_manager", "manager", "small_repo", "store_spec"]


class SmallRepo:
    """An archive repo: C1 -> C2 on ``main`` (C1 with detached metadata), a static delta
    C1 -> C2 with a part file, a tombstone for a deleted orphan commit, and a 1.5 MB file
    (its ``.filez`` is streamed, not read whole)."""

    def __init__(self, path: Path, c1: str, c2: str, deleted: str) -> None:
        self.path = path
        self.c1 = c1
        self.c2 = c2
        self.deleted = deleted


@pytest.fixture(scope="session")
def small_repo(ostree_cli: None, tmp_path_factory: pytest.TempPathFactory) -> SmallRepo:
    root = tmp_path_factory.mktemp("small_repo")
    repo = root / "repo"
    ostree("init", "--mode=archive", repo=repo)
    ostree("config", "set", "core.tombstone-commits", "true", repo=repo)
    tree = root / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "a.txt").write_text("hello\n")
    (tree / "sub" / "b.bin").write_bytes(os.urandom(200_000))
    os.symlink("a.txt", tree / "link")
    stamp = "--timestamp=2024-01-01 00:00:00 +0000"
    ostree(
        "commit",
        "-b",
        "main",
        "-s",
        "one",
        stamp,
        "--add-detached-metadata-string=sig=1",
        tree,
        repo=repo,
    )
    c1 = rev_parse(repo, "main")
    (tree / "c.txt").write_text("second\n")
    (tree / "big.bin").write_bytes(os.urandom(1_500_000))
    ostree(
        "commit",
        "-b",
        "main",
        "-s",
        "two",
        "--timestamp=2024-02-01 00:00:00 +0000",
        tree,
        repo=repo,
    )
    c2 = rev_parse(repo, "main")
    orphan_tree = root / "orphan"
    orphan_tree.mkdir()
    (orphan_tree / "o.txt").write_text("orphan\n")
    deleted = ostree("commit", "--orphan", "-s", "gone", stamp, orphan_tree, repo=repo).strip()
    ostree("prune", f"--delete-commit={deleted}", repo=repo)
    ostree("static-delta", "generate", f"--from={c1}", f"--to={c2}", repo=repo)
    ostree("summary", "-u", repo=repo)
    return SmallRepo(repo, c1, c2, deleted)
