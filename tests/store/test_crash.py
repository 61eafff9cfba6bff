"""Crash safety: kill -9 a writer at random points; everything visible must be whole."""

from __future__ import annotations

import dataclasses
import json
import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from ostree_repo.objects.objtype import ObjectType
from ostree_repo.objects.verify import new_verifier
from ostree_repo.store import ObjectStore

from ._workers import is_sealed
from .conftest import StoreSpec, make_spec
from .objfactory import dirmeta

pytestmark = pytest.mark.anyio

TESTS_DIR = Path(__file__).resolve().parents[1]
KILLS = 5


@pytest.fixture(params=["fs", "fs-workers", "s3"])
def crash_spec(request: pytest.FixtureRequest, tmp_path: Path) -> StoreSpec:
    return make_spec(request.param, request, tmp_path)


def run_writer_and_kill(spec: StoreSpec, start: int, lines: int) -> str:
    """Start a writer and SIGKILL it right after its ``lines``-th progress line.

    The writer prints a line per finished round and per chunk of a streamed object, so
    the kill lands at varied points, often mid-stream. Returns the last line read.
    """
    writer = subprocess.Popen(
        [sys.executable, "-m", "store._workers", json.dumps(dataclasses.asdict(spec)), str(start)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(TESTS_DIR)},
        cwd=TESTS_DIR,
    )
    assert writer.stdout is not None
    seen, last = 0, ""
    try:
        while seen < lines and (line := writer.stdout.readline()):
            seen, last = seen + 1, line
    finally:
        os.kill(writer.pid, signal.SIGKILL)
        writer.wait()
        writer.stdout.close()
    assert writer.returncode == -signal.SIGKILL
    assert seen == lines, "the writer died on its own"
    return last.strip()


async def check_everything_visible_is_whole(store: ObjectStore) -> tuple[int, int]:
    objects = 0
    async for checksum, objtype in store.list_objects():
        verifier = new_verifier(objtype, checksum)
        async with store.open_object(checksum, objtype) as stream:
            async for chunk in stream:
                verifier.update(chunk)
        verifier.finish()  # raises if the object is partial or corrupt
        objects += 1
    files = 0
    async for path in store.list_named():
        if path == "config":
            continue
        assert is_sealed((await store.read_named(path)).data), path
        files += 1
    return objects, files


async def test_killed_writers_leave_only_whole_objects_and_files(crash_spec: StoreSpec) -> None:
    rng = random.Random(1234)
    counts = []
    kill_points = []
    for kill in range(KILLS):
        kill_points.append(run_writer_and_kill(crash_spec, kill * 1000, rng.randint(3, 40)))
        async with crash_spec.open() as store:
            counts.append(await check_everything_visible_is_whole(store))
            assert await store.has_object(dirmeta(kill * 1000).checksum, ObjectType.DIRMETA)
    assert "chunk" in kill_points  # some kills did interrupt a streamed write
    objects = [c[0] for c in counts]
    assert objects == sorted(objects) and objects[-1] > objects[0]  # progress, nothing lost
    if crash_spec.kind.startswith("fs"):
        root = Path(crash_spec.url)
        assert [p for p in (root / "objects").glob("*/*") if p.name.count(".") != 1] == []
        # the interrupted writes left their (invisible) temporary files behind
        assert list((root / "tmp").glob(".store-*"))
