"""Fixtures for the store tests: one conformance fixture over every backend."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from ostree_repo.store import ObjectStore, open_store

BACKENDS = ["memory", "fs", "fs-workers", "s3", "s3-sync"]
"""``s3-sync`` is the S3 store on obstore's blocking API in threads (what trio gets);
``fs-workers`` the filesystem store whose stagings hand every batch to writer processes."""


@dataclass(frozen=True)
class StoreSpec:
    """How to open one test store; plain data, so it can be sent to worker processes."""

    kind: str
    url: str
    env: dict[str, str] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)

    def open(self) -> ObjectStore:
        return open_store(self.url, env=self.env, **self.options)


def make_spec(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> StoreSpec:
    if kind == "memory":
        return StoreSpec(kind, f"memory://{uuid.uuid4().hex}")
    if kind == "fs":
        return StoreSpec(kind, str(tmp_path / "repo"))
    if kind == "fs-workers":
        return StoreSpec(kind, str(tmp_path / "repo"), options={"workers": 2, "workers_after": 0})
    server = request.getfixturevalue("seaweedfs")
    url = f"s3://{server.bucket}/t-{uuid.uuid4().hex[:12]}"
    options = {"native_async": False} if kind == "s3-sync" else {}
    return StoreSpec(kind, url, dict(server.env), options)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(params=BACKENDS)
def spec(request: pytest.FixtureRequest, tmp_path: Path) -> StoreSpec:
    """A fresh, empty store of each backend."""
    return make_spec(request.param, request, tmp_path)


@pytest.fixture
async def store(spec: StoreSpec) -> AsyncIterator[ObjectStore]:
    """The opened store of :func:`spec`."""
    async with spec.open() as opened:
        yield opened
