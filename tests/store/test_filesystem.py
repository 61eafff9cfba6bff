"""The filesystem store is a real OSTree archive repository: checked with the ostree CLI."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from ostree_repo.errors import ChecksumMismatchError, StoreError
from ostree_repo.objects.objtype import ObjectType
from ostree_repo.store import FilesystemStore, _disk, filesystem, open_store
from ostree_repo.store.filesystem import CONFIG

from .objfactory import dirmeta, file_object, padded_dirmeta

pytestmark = pytest.mark.anyio

OSTREE = shutil.which("ostree")


def ostree(*args: str | Path) -> str:
    assert OSTREE is not None, "the ostree CLI is needed for these tests"
    done = subprocess.run([OSTREE, *map(str, args)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, f"ostree {args}: {done.stdout}{done.stderr}"
    return done.stdout


def make_tree(root: Path) -> None:
    """A directory with the kinds of content a commit can hold."""
    (root / "sub" / "deeper").mkdir(parents=True)
    (root / "hello.txt").write_text("hello\n")
    (root / "empty").write_bytes(b"")
    (root / "sub" / "big.bin").write_bytes(os.urandom(3 << 20) + b"\0" * (2 << 20))
    (root / "sub" / "deeper" / "run.sh").write_text("#!/bin/sh\necho hi\n")
    (root / "sub" / "deeper" / "run.sh").chmod(0o755)
    (root / "link").symlink_to("hello.txt")
    try:
        os.setxattr(root / "hello.txt", "user.test", b"val")
        os.setxattr(root / "sub", "user.dirx", b"d1")
    except OSError:  # a filesystem without user xattrs: the objects are still valid
        pass


def file_chunks(path: Path, size: int = 64 << 10) -> Iterator[bytes]:
    with open(path, "rb") as f:
        while chunk := f.read(size):
            yield chunk


async def test_store_written_objects_pass_ostree_fsck(tmp_path: Path) -> None:
    source, tree, ours = tmp_path / "source", tmp_path / "tree", tmp_path / "ours"
    tree.mkdir()
    make_tree(tree)
    ostree("init", "--mode=archive", f"--repo={source}")
    ostree("commit", f"--repo={source}", "-b", "main", "-s", "one", f"--tree=dir={tree}")
    (tree / "hello.txt").write_text("changed\n")
    commit = ostree(
        "commit",
        f"--repo={source}",
        "-b",
        "main",
        "-s",
        "two",
        f"--tree=dir={tree}",
        "--add-detached-metadata-string=sig=value",
    ).strip()

    copied = 0
    async with open_store(str(ours)) as store:
        for path in sorted((source / "objects").glob("*/*")):
            checksum = path.parent.name + path.name.split(".")[0]
            objtype = ObjectType.from_extension(path.name.split(".", 1)[1])
            # content streamed from a blocking iterator, metadata as bytes
            data = file_chunks(path) if objtype is ObjectType.FILE else path.read_bytes()
            assert await store.write_object(checksum, objtype, data)
            copied += 1
        await store.write_named("refs/heads/main", (commit + "\n").encode())
        assert {key async for key in store.list_objects()} == {
            (
                p.parent.name + p.name.split(".")[0],
                ObjectType.from_extension(p.name.split(".", 1)[1]),
            )
            for p in (source / "objects").glob("*/*")
        }
    assert copied > 10

    report = ostree("fsck", f"--repo={ours}")
    assert "no errors found" in report and "2 commit" in report
    # byte-identical objects, and a checkout reproduces the tree
    for path in (source / "objects").glob("*/*"):
        assert (ours / path.relative_to(source)).read_bytes() == path.read_bytes()
    ostree("checkout", f"--repo={ours}", "-U", "main", tmp_path / "out")
    assert (tmp_path / "out" / "hello.txt").read_text() == "changed\n"
    assert (tmp_path / "out" / "sub" / "big.bin").read_bytes() == (
        tree / "sub" / "big.bin"
    ).read_bytes()
    assert (
        ostree("show", f"--repo={ours}", "--print-detached-metadata-key=sig", "main").strip()
        == "'value'"
    )


def test_test_objects_match_ostree(tmp_path: Path) -> None:
    """The hand-built FILE and dirmeta test objects are what ostree itself makes."""
    obj = file_object(100_000, seed=7)
    tree = tmp_path / "tree"
    tree.mkdir(mode=0o755)
    tree.chmod(0o755)
    (tree / "f").write_bytes(b"".join(obj.payload()))
    (tree / "f").chmod(0o644)
    ostree("init", "--mode=archive", f"--repo={tmp_path / 'r'}")
    ostree(
        "commit",
        f"--repo={tmp_path / 'r'}",
        "-b",
        "x",
        "--owner-uid=0",
        "--owner-gid=0",
        "--no-xattrs",
        f"--tree=dir={tree}",
    )
    listing = ostree("ls", f"--repo={tmp_path / 'r'}", "-C", "x", "/f")
    assert obj.checksum in listing
    stored = tmp_path / "r" / "objects" / obj.checksum[:2] / f"{obj.checksum[2:]}.filez"
    assert stored.exists()
    meta = dirmeta(0, 0)
    assert (
        tmp_path / "r" / "objects" / meta.checksum[:2] / f"{meta.checksum[2:]}.dirmeta"
    ).exists()
    padded = padded_dirmeta(0, 2000)
    padded_tree = tmp_path / "padded"
    padded_tree.mkdir()
    padded_tree.chmod(0o755)
    os.setxattr(padded_tree, "user.pad", padded.data[12 + 9 : -4])  # the xattr value
    ostree(
        "commit",
        f"--repo={tmp_path / 'r'}",
        "-b",
        "y",
        "--owner-uid=0",
        "--owner-gid=0",
        f"--tree=dir={padded_tree}",
    )
    stored = tmp_path / "r" / "objects" / padded.checksum[:2] / f"{padded.checksum[2:]}.dirmeta"
    assert stored.read_bytes() == padded.data


async def test_new_store_is_an_archive_repo(tmp_path: Path) -> None:
    async with FilesystemStore(tmp_path / "repo") as store:
        obj = dirmeta(1)
        await store.write_object(obj.checksum, obj.objtype, obj.data)
    repo = tmp_path / "repo"
    assert (repo / "config").read_text() == CONFIG
    for sub in ("objects", "tmp", "refs/heads", "refs/remotes", "refs/mirrors", "state"):
        assert (repo / sub).is_dir()
    ostree("fsck", f"--repo={repo}")
    mode = (repo / "objects" / obj.checksum[:2] / f"{obj.checksum[2:]}.dirmeta").stat().st_mode
    assert stat.S_IMODE(mode) & 0o444 == 0o444  # readable by a web server


async def test_opens_a_repo_made_by_ostree(tmp_path: Path) -> None:
    ostree("init", "--mode=archive", "--collection-id=org.example.Os", f"--repo={tmp_path / 'r'}")
    before = (tmp_path / "r" / "config").read_text()
    async with open_store(f"file://{tmp_path / 'r'}") as store:
        obj = dirmeta(2)
        await store.write_object(obj.checksum, obj.objtype, obj.data)
        assert (await store.read_named("config")).data.decode() == before
    assert (tmp_path / "r" / "config").read_text() == before


@pytest.mark.parametrize("mode", ["bare", "bare-user"])
async def test_refuses_non_archive_repos(tmp_path: Path, mode: str) -> None:
    ostree("init", f"--mode={mode}", f"--repo={tmp_path / 'r'}")
    with pytest.raises(StoreError, match="archive"):
        async with FilesystemStore(tmp_path / "r"):
            pass


async def test_create_false_needs_an_existing_repo(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="not an OSTree repository"):
        async with FilesystemStore(tmp_path, create=False):
            pass
    assert not (tmp_path / "config").exists()


def our_temp_files(repo: Path) -> list[str]:
    return [p.name for p in (repo / "tmp").iterdir() if p.name.startswith(".store-")]


async def test_refused_and_failed_writes_leave_no_temporary_files(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    big = file_object(5 << 20, seed=9)
    async with FilesystemStore(repo) as store:
        with pytest.raises(ChecksumMismatchError):
            await store.write_object(dirmeta(1).checksum, ObjectType.DIRMETA, dirmeta(2).data)
        with pytest.raises(ChecksumMismatchError):
            await store.write_object("ab" * 32, ObjectType.FILE, big.chunks())

        async def broken() -> AsyncIterator[bytes]:
            yield b"x" * (3 << 20)
            raise OSError("gone")

        with pytest.raises(OSError, match="gone"):
            await store.write_named("deltas/a/0", broken())
        assert our_temp_files(repo) == []
        assert not list((repo / "objects").glob("*/*"))


@pytest.mark.parametrize("syncfs", [True, False], ids=["syncfs", "fsync-each"])
async def test_batch_writes_sync_and_clean_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, syncfs: bool
) -> None:
    """Batches are durable through syncfs, or per-file fsync where there is none; a
    refused batch leaves no temporary file; the result passes ostree fsck."""
    calls: list[str] = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (calls.append("fsync"), real_fsync(fd))[1])
    if not syncfs:
        monkeypatch.setattr(_disk, "_syncfs_function", lambda: None)
    else:
        real = _disk._syncfs_function()
        assert real is not None, "syncfs is expected on Linux"

        def counted(fd: int) -> int:
            calls.append("syncfs")
            return real(fd)

        monkeypatch.setattr(_disk, "_syncfs_function", lambda: counted)
    repo = tmp_path / "repo"
    objects = [dirmeta(500 + i) for i in range(20)] + [padded_dirmeta(600, 3000)]
    async with FilesystemStore(repo) as store:
        calls.clear()
        batch = [(o.checksum, o.objtype, o.data) for o in objects]
        assert await store.write_objects(batch) == [True] * len(batch)
        if syncfs:
            assert calls == ["syncfs", "syncfs"]
        else:
            assert calls.count("fsync") >= len(batch) + 1  # files, then their directories
        bad = [*batch[:3], (dirmeta(1).checksum, ObjectType.DIRMETA, dirmeta(2).data)]
        with pytest.raises(ChecksumMismatchError):
            await store.write_objects(bad)
        assert our_temp_files(repo) == []
    ostree("fsck", f"--repo={repo}")


async def test_staged_objects_appear_at_flush_or_not_at_all(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = tmp_path / "repo"
    objects = [dirmeta(900 + i) for i in range(7)]
    big = file_object(3 << 20, seed=900)
    keys = [(o.checksum, o.objtype) for o in objects]
    async with FilesystemStore(repo) as store:
        async with store.staging() as staging:
            await staging.write_objects([(o.checksum, o.objtype, o.data) for o in objects[:3]])
            await staging.write_object(big.checksum, big.objtype, big.chunks())
            assert await store.has_objects([*keys[:3], (big.checksum, big.objtype)]) == [False] * 4
            await staging.flush()
            assert await store.has_objects(keys[:3]) == [True] * 3
            await staging.write_objects([(o.checksum, o.objtype, o.data) for o in objects[3:5]])
        assert await store.has_objects(keys) == [True] * 5 + [False] * 2
        assert await store.has_object(big.checksum, big.objtype)

        with pytest.raises(RuntimeError, match="job failed"):
            async with store.staging() as staging:
                await staging.write_objects([(o.checksum, o.objtype, o.data) for o in objects[5:]])
                raise RuntimeError("job failed")
        assert await store.has_objects(keys[5:]) == [False] * 2
        assert our_temp_files(repo) == []

        monkeypatch.setattr(filesystem.Staging, "FLUSH_EVERY", 2)
        async with store.staging() as staging:
            await staging.write_objects([(o.checksum, o.objtype, o.data) for o in objects[5:]])
            assert await store.has_objects(keys[5:]) == [True] * 2  # flushed on its own
    ostree("fsck", f"--repo={repo}")


async def test_stale_temporary_files_are_removed_on_open(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    async with FilesystemStore(repo):
        pass
    old, fresh, foreign = (
        repo / "tmp" / ".store-old",
        repo / "tmp" / ".store-new",
        repo / "tmp" / "x",
    )
    for path in (old, fresh, foreign):
        path.write_bytes(b"partial")
    two_days_ago = time.time() - 2 * 86400
    os.utime(old, (two_days_ago, two_days_ago))
    os.utime(foreign, (two_days_ago, two_days_ago))
    async with FilesystemStore(repo):
        pass
    assert not old.exists()
    assert fresh.exists() and foreign.exists()


async def test_tokens_are_content_hashes_shared_across_instances(tmp_path: Path) -> None:
    async with FilesystemStore(tmp_path / "r") as one, FilesystemStore(tmp_path / "r") as two:
        token = await one.write_named("refs/heads/main", b"a")
        assert (await two.read_named("refs/heads/main")).token == token
        await two.replace_named("refs/heads/main", b"b", token)
        assert (tmp_path / "r" / "refs" / "heads" / "main").read_bytes() == b"b"
