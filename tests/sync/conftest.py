"""Fixtures for the sync tests: stores (from the repository tests) and served repos."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from oracle.ostree_cli import RepoInfo
from repository.conftest import anyio_backend, fs_manager, manager, store_spec

from .servers import http_server

__all__ = ["anyio_backend", "fs_manager", "manager", "store_spec"]


@pytest.fixture(scope="session")
def rich_url(rich_repo: RepoInfo) -> Iterator[str]:
    """The rich repo, served by ``python3 -m http.server`` for the whole session."""
    with http_server(rich_repo.path) as url:
        yield url


@pytest.fixture
def served() -> type:
    """The ``http_server`` context manager (for copies the test made)."""
    return http_server  # type: ignore[return-value]


@pytest.fixture
def repo_dir(tmp_path: Path) -> Path:
    return tmp_path / "remote"
