"""The filesystem store's on-disk layer on its own: what a writer process runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from ostree_repo.errors import ChecksumMismatchError, ConflictError
from ostree_repo.objects.names import object_path
from ostree_repo.objects.objtype import ObjectType
from ostree_repo.objects.verify import whole_verifier
from ostree_repo.store import FilesystemStore
from ostree_repo.store._base import PutMode
from ostree_repo.store._disk import Disk, StageEntry

from .objfactory import Obj, dirmeta, dirmetas
from .test_filesystem import ostree, our_temp_files

pytestmark = pytest.mark.anyio


def entry(checksum: str, objtype: ObjectType, data: bytes) -> StageEntry:
    path = object_path(checksum, objtype)
    return path, data, whole_verifier(objtype, checksum), PutMode.IDEMPOTENT


def entries(objects: list[Obj]) -> list[StageEntry]:
    return [entry(o.checksum, o.objtype, o.data) for o in objects]


async def made(repo: Path) -> None:
    async with FilesystemStore(repo):
        pass


@pytest.mark.parametrize("fsync", [True, False])
async def test_stage_publish_discard(tmp_path: Path, fsync: bool) -> None:
    repo = tmp_path / "repo"
    await made(repo)
    disk = Disk(str(repo), fsync)
    objects = dirmetas(6, start=40)
    written, staged = disk.stage(entries(objects[:4]))
    assert written == [True] * 4 and len(staged) == 4
    assert not any((repo / object_path(o.checksum, o.objtype)).exists() for o in objects)
    disk.publish(staged)
    assert staged == []  # placed files are forgotten
    assert all((repo / object_path(o.checksum, o.objtype)).is_file() for o in objects[:4])

    written, staged = disk.stage(entries(objects))  # the first four are there already
    assert written == [False] * 4 + [True] * 2
    disk.discard(staged)
    assert staged == [] and our_temp_files(repo) == []
    assert not (repo / object_path(objects[5].checksum, objects[5].objtype)).exists()

    bad = entry(dirmeta(1).checksum, ObjectType.DIRMETA, dirmeta(2).data)
    with pytest.raises(ChecksumMismatchError):
        disk.stage([*entries(objects[4:]), bad])
    assert our_temp_files(repo) == []  # a refused batch leaves nothing behind
    ostree("fsck", f"--repo={repo}")


async def test_single_writes_and_conditional_ones(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    await made(repo)
    disk = Disk(str(repo), True)
    token = disk.write("a/b", b"one", None, PutMode.CREATE, want_token=True)
    assert token and (repo / "a" / "b").read_bytes() == b"one"
    with pytest.raises(ConflictError):
        disk.write("a/b", b"two", None, PutMode.CREATE, want_token=True)
    with pytest.raises(ConflictError):
        disk.write("a/b", b"two", None, PutMode.OVERWRITE, want_token=True, expect="0" * 64)
    assert disk.write("a/b", b"two", None, PutMode.OVERWRITE, want_token=True, expect=token)
    assert (repo / "a" / "b").read_bytes() == b"two"
    disk.delete("a/b")
    disk.delete("a/b")  # absent is fine
    assert not (repo / "a" / "b").exists() and our_temp_files(repo) == []
