"""Walks over every object stay within a low open-file limit: fsck, export, reclaim.

Each runs as ``ostree-repo`` in a child process whose ``RLIMIT_NOFILE`` is 256, on a
version of a few thousand objects: a walk that opened a file (or started a task) per
object would fail there, and fsck would report each failed open as damage.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import anyio
import pytest

from oracle.ostree_cli import fsck as ostree_fsck
from ostree_repo.builder import commit_tree, tree_from_mapping
from ostree_repo.repository import RepositoryManager

from .conftest import store_url

FILES = 3000
LIMIT = 256


def _limited() -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (LIMIT, hard))


def _cli(url: str, options: dict[str, Any], *argv: str) -> tuple[int, Any, str]:
    env = dict(options.get("env") or {})
    proc = subprocess.run(
        [sys.executable, "-m", "ostree_repo", "--store", url, *argv, "--json"],
        capture_output=True,
        text=True,
        preexec_fn=_limited,
        env={**os.environ, "PYTHONFAULTHANDLER": "1", **env},
        check=False,
    )
    doc = json.loads(proc.stdout) if proc.stdout.strip() else None
    return proc.returncode, doc, proc.stderr


async def _build(url: str, options: dict[str, Any]) -> int:
    files = {
        f"d{i % 40}/s{i % 7}/f{i}": f"file {i}\n".encode() * (1 + i % 50) for i in range(FILES)
    }
    async with RepositoryManager.open(url, **options) as manager:
        _, record = await commit_tree(manager, "r", tree_from_mapping(files), ref="main")
        assert record is not None
        return len(await manager.version_objects(record))


@pytest.mark.parametrize("kind", ["fs", "s3"])
def test_fsck_export_and_reclaim_within_256_open_files(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    url, options = store_url(kind, request, tmp_path)
    objects = anyio.run(_build, url, options)
    assert objects > FILES
    for workers in (["--workers", "0"], []):  # worker threads; checker processes (fs)
        status, doc, err = _cli(url, options, *workers, "fsck", "r")
        assert (status, err) == (0, "")
        assert doc["ok"] and doc["objects"] == objects and doc["unreadable"] == []
    out = tmp_path / "export"
    status, _, err = _cli(url, options, "export", "r", str(out), "--no-link")
    assert (status, err) == (0, "")
    assert "no errors found" in ostree_fsck(out)
    status, _, err = _cli(url, options, "export", "r", "--tar", str(tmp_path / "r.tar"))
    assert (status, err) == (0, "")
    with tarfile.open(tmp_path / "r.tar") as tar:
        assert sum(1 for m in tar if m.name.startswith("repo/objects/") and m.isfile()) == objects
    status, _, err = _cli(url, options, "delete", "r")
    assert status == 0, err
    status, doc, err = _cli(url, options, "reclaim", "--grace", "0")
    assert (status, err) == (0, "")
    assert doc["objects"] == objects
