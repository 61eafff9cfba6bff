"""Fixtures for the delta tests: a private copy of the rich repo (an archive repo our
filesystem store opens as it is), and a helper that writes generated deltas into a
repository directory for the real ``ostree`` client."""

from __future__ import annotations

from pathlib import Path

import pytest

from oracle.ostree_cli import RepoInfo, copy_repo


@pytest.fixture(scope="module")
def rich_copy(rich_repo: RepoInfo, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the rich repo (its libostree deltas removed) the tests may write to."""
    repo = copy_repo(rich_repo.path, tmp_path_factory.mktemp("rich") / "repo")
    for sub in ("deltas", "delta-indexes"):
        for path in sorted((repo / sub).rglob("*"), reverse=True):
            path.unlink() if path.is_file() else path.rmdir()
    (repo / "summary").unlink(missing_ok=True)
    (repo / "summary.sig").unlink(missing_ok=True)
    return repo
