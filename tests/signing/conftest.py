"""Signing fixtures: a small archive repository made by the real ``ostree`` CLI, and keys."""

from __future__ import annotations

import subprocess
from pathlib import Path

import attrs
import pytest

from oracle.ostree_cli import GpgKey, make_gpg_key, ostree, rev_parse


@attrs.frozen
class Small:
    """An archive repository with one commit on ``main`` (and a summary)."""

    path: Path
    commit: str

    def object(self, ext: str) -> Path:
        return self.path / "objects" / self.commit[:2] / f"{self.commit[2:]}.{ext}"


@pytest.fixture
def small(ostree_cli: None, tmp_path: Path) -> Small:
    repo = tmp_path / "repo"
    tree = tmp_path / "tree"
    (tree / "etc").mkdir(parents=True)
    (tree / "etc" / "os-release").write_text("NAME=test\n")
    ostree("init", "--mode=archive", repo=repo)
    ostree("commit", "-b", "main", "--subject=one", f"--tree=dir={tree}", repo=repo)
    ostree("summary", "-u", repo=repo)
    return Small(repo, rev_parse(repo, "main"))


@pytest.fixture(scope="session")
def gpg_key(tmp_path_factory: pytest.TempPathFactory) -> GpgKey:
    return make_gpg_key(tmp_path_factory.mktemp("gpg"))


def export_secret(key: GpgKey) -> bytes:
    """The key's secret key, armored (``gpg --export-secret-keys``)."""
    out = subprocess.run(
        ["gpg", "--batch", "--armor", "--export-secret-keys", key.fingerprint],
        env={"GNUPGHOME": str(key.homedir), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        check=True,
    )
    return out.stdout
