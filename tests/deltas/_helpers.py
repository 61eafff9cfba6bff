"""Helpers of the delta tests: generate a delta into a repository directory, and check
it with the Python applier against the objects the store holds."""

from __future__ import annotations

import shutil
from pathlib import Path

import anyio

from ostree_repo.deltas import DeltaOptions, DeltaWorkers, GeneratedDelta, generate_delta
from ostree_repo.errors import NotFoundError
from ostree_repo.objects import ObjectType, delta_path
from ostree_repo.objects.content import read_filez
from ostree_repo.store import ObjectStore, open_store

from ._apply import apply_delta


def make_delta(
    repo: Path,
    start: str | None,
    end: str,
    options: DeltaOptions | None = None,
    processes: int = 0,
) -> GeneratedDelta[int]:
    """Generate a delta in the archive repo ``repo`` and write it where libostree keeps
    its own (``deltas/…/{superblock,N}``), with the target's detached metadata."""
    directory = repo / delta_path(start, end)
    shutil.rmtree(directory, ignore_errors=True)  # another test's delta between them

    async def run() -> GeneratedDelta[int]:
        async with (
            open_store(str(repo)) as store,
            DeltaWorkers(processes, in_process_below=0) as workers,
        ):

            async def write(index: int, data: bytes) -> int:
                directory.mkdir(parents=True, exist_ok=True)
                (directory / str(index)).write_bytes(data)
                return index

            try:
                meta = await store.read_object(end, ObjectType.COMMITMETA)
            except NotFoundError:
                meta = None
            delta = await generate_delta(
                store, start, end, write_part=write, commitmeta=meta, options=options,
                workers=workers,
            )  # fmt: skip
            directory.mkdir(parents=True, exist_ok=True)
            (directory / "superblock").write_bytes(delta.superblock)
            return delta

    return anyio.run(run)


async def _stored_objects(
    store: ObjectStore, delta: GeneratedDelta[int]
) -> dict[tuple[ObjectType, str], object]:
    wanted: dict[tuple[ObjectType, str], object] = {}
    for header in delta.headers:
        for objtype, checksum in header.objects:
            data = await store.read_object(checksum, objtype)
            wanted[(objtype, checksum)] = (
                read_filez(data, checksum) if objtype is ObjectType.FILE else data
            )
    return wanted


def check_with_python(repo: Path, delta: GeneratedDelta[int]) -> None:
    """Apply the delta written in ``repo`` with the Python applier: every object it makes
    is the store's, and the parts hold every object the headers list."""
    directory = repo / delta_path(delta.from_checksum, delta.to_checksum)
    parts = [
        (directory / str(i)).read_bytes() if (directory / str(i)).exists() else b""
        for i in range(delta.stats.parts)
    ]

    async def run() -> None:
        async with open_store(str(repo)) as store:
            # what a part may read from: any content object of the store (the client
            # holds the source commit's)
            sources: dict[str, bytes] = {}
            async for checksum, _ in store.list_objects(ObjectType.FILE):
                data = await store.read_object(checksum, ObjectType.FILE)
                sources[checksum] = read_filez(data, checksum)[1]
            made = apply_delta(delta.superblock, parts, sources.__getitem__)
            assert made == await _stored_objects(store, delta)

    anyio.run(run)
