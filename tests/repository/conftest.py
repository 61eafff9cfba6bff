"""Fixtures for the repository-layer tests: managers over real stores, imported repos."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from ostree_repo.repository import RepositoryManager


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def store_url(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path
) -> tuple[str, dict[str, Any]]:
    """(URL, open_store options) for a fresh store of ``kind``: memory, fs or s3."""
    if kind == "memory":
        return f"memory://{uuid.uuid4().hex}", {}
    if kind == "fs":
        return str(tmp_path / "store"), {}
    server = request.getfixturevalue("seaweedfs")
    return f"s3://{server.bucket}/r-{uuid.uuid4().hex[:12]}", {"env": dict(server.env)}


@pytest.fixture(params=["fs", "s3"])
def store_spec(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, dict[str, Any]]:
    """A fresh filesystem or S3 store (the real backends)."""
    return store_url(request.param, request, tmp_path)


@pytest.fixture
async def manager(store_spec: tuple[str, dict[str, Any]]) -> AsyncIterator[RepositoryManager]:
    url, options = store_spec
    async with RepositoryManager.open(url, **options) as opened:
        yield opened


@pytest.fixture
async def fs_manager(tmp_path: Path) -> AsyncIterator[RepositoryManager]:
    """A filesystem store whose stagings hand every batch to writer processes: the path
    big imports, syncs and builds take (``manager`` covers the in-process path)."""
    options = {"workers": 2, "workers_after": 0}
    async with RepositoryManager.open(str(tmp_path / "store"), **options) as opened:
        yield opened
