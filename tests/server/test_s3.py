"""Serving from an S3 store (SeaweedFS): streamed through bounded chunks, ranges by skipping."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import anyio
import httpx

from oracle.ostree_cli import fsck, list_objects, ostree, read_refs
from ostree_repo.importing import import_directory
from ostree_repo.repository import RepositoryManager
from ostree_repo.server import create_app

from ._servers import ThreadedServer
from .conftest import Served, publish_original_summary


def test_pull_from_an_s3_store(served: Served, seaweedfs: Any, tmp_path: Path) -> None:
    url = f"s3://{seaweedfs.bucket}/serve-{uuid.uuid4().hex[:12]}"
    env = dict(seaweedfs.env)
    rich = served.rich

    async def build() -> None:
        async with RepositoryManager.open(url, env=env) as m:
            await import_directory(m, "rich", rich.path)
            if rich.summary_sig is not None:
                await publish_original_summary(m, "rich", rich.path)

    anyio.run(build)
    app = create_app(url, store_options={"env": env})
    with ThreadedServer(app) as running:
        repo = tmp_path / "client"
        ostree("init", "--mode=archive", repo=repo)
        ostree("remote", "add", "--no-gpg-verify", "origin", f"{running.url}/rich/", repo=repo)
        ostree("pull", "--mirror", "--depth=-1", "origin", repo=repo)
        fsck(repo)
        assert read_refs(repo) == read_refs(rich.path)
        big = next(
            p for _, e, p in list_objects(rich.path) if e == "filez" and p.stat().st_size > 4e6
        )
        data = big.read_bytes()
        path = "/rich/" + big.relative_to(rich.path).as_posix()
        part = rich.deltas[rich.main[-1]].parts[0]
        with httpx.Client(base_url=running.url, timeout=30) as http:
            assert http.get(path).content == data
            middle = http.get(path, headers={"Range": "bytes=2000000-2999999"})
            assert middle.status_code == 206 and middle.content == data[2_000_000:3_000_000]
            assert http.head(path).headers["content-length"] == str(len(data))
            blob = "/rich/" + part.relative_to(rich.path).as_posix()
            assert http.get(blob).content == part.read_bytes()
            assert http.head(blob).headers["content-length"] == str(part.stat().st_size)
            assert http.get("/rich/summary").content == (rich.path / "summary").read_bytes()
