"""Importing commit archives made by the real ostree CLI, tar and compressors."""

from __future__ import annotations

import filecmp
import hashlib
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

import ostree_repo.importing.archive as archive_module
from oracle.ostree_cli import RepoInfo, copy_repo, list_deltas, ostree, read_refs, rev_parse
from ostree_repo.export import export_version
from ostree_repo.gvariant import Variant, dumps
from ostree_repo.importing import ImportProgress, import_archive
from ostree_repo.importing.errors import (
    MissingParentError,
    NoRepositoryError,
    UpdateConflictError,
)
from ostree_repo.objects import Summary
from ostree_repo.repository import RepositoryManager
from ostree_repo.repository.closure import split_key
from repository.walk import reachable_all

from ._archives import COMPRESSORS, pack, stage, update_archive
from .conftest import SmallRepo

pytestmark = pytest.mark.anyio


def _fsck(path: Path) -> None:
    subprocess.run(["ostree", "fsck", f"--repo={path}"], check=True, capture_output=True)


async def _objects(manager: RepositoryManager, name: str) -> set:
    record = await manager.repository(name).version()
    return {split_key(k) for k in await manager.version_objects(record)}


async def test_osbuild_archive_of_the_rich_repo(
    manager: RepositoryManager, rich_repo: RepoInfo, tmp_path: Path
) -> None:
    """Everything comes along, byte for byte; the export passes ``ostree fsck``."""
    archive = pack(
        stage(rich_repo.path, tmp_path / "staging"), tmp_path / "commit.tar.zst", "tar.zst"
    )
    seen: list[ImportProgress] = []
    record = await import_archive(manager, "rich", archive, progress=seen.append)
    assert record is not None and record.number == 1
    assert record.action["kind"] == "import-archive" and record.action["format"] == "tar.zst"
    assert record.refs == rich_repo.refs
    assert set(record.commits) == set(rich_repo.commits)
    assert set(record.deltas) == set(rich_repo.deltas)
    assert set(record.tombstones) == set(rich_repo.tombstoned)
    signed = {c for c, i in record.commits.items() if i.commitmeta}
    metas = {c for c in rich_repo.commits if rich_repo.object_path(c, "commitmeta").exists()}
    assert signed == metas
    assert await _objects(manager, "rich") == reachable_all(rich_repo.path, rich_repo.commits)
    loose = [o for o in rich_repo.objects() if o[1] in ("filez", "dirtree", "dirmeta")]
    assert seen[-1].done and seen[-1].objects == seen[-1].objects_new == len(loose)
    assert seen[-1].bytes_read == seen[-1].bytes_total == archive.stat().st_size

    out = tmp_path / "export"
    await export_version(manager, "rich", out)
    _fsck(out)
    assert read_refs(out)[0] == rich_repo.refs
    assert list_deltas(out) == sorted(rich_repo.deltas)
    summary = Summary.from_bytes((out / "summary").read_bytes())
    assert summary.static_deltas == {n: d.superblock for n, d in record.deltas.items()}
    assert set(summary.static_deltas) == set(rich_repo.deltas)
    for delta in rich_repo.deltas.values():  # superblocks and parts, byte for byte
        exported = out / delta.path.relative_to(rich_repo.path)
        for original in [delta.superblock, *delta.parts]:
            assert filecmp.cmp(original, exported / original.name, shallow=False)
    # the same archive again: no new version
    assert await import_archive(manager, "rich", archive) is None
    assert await manager.repository("rich").version_numbers() == [0, 1]


@pytest.mark.parametrize("compression", sorted(COMPRESSORS))
async def test_every_compression_told_by_content(
    fs_manager: RepositoryManager, small_repo: SmallRepo, tmp_path: Path, compression: str
) -> None:
    # a name that says nothing: the format comes from the bytes
    archive = pack(stage(small_repo.path, tmp_path / "s"), tmp_path / "upload.bin", compression)
    record = await import_archive(fs_manager, "small", archive)
    assert record is not None and record.action["format"] == compression
    assert record.refs == {"main": small_repo.c2}
    assert set(record.commits) == {small_repo.c1, small_repo.c2}
    assert record.tombstones == (small_repo.deleted,)
    assert record.commits[small_repo.c1].commitmeta is not None
    assert set(record.deltas) == {f"{small_repo.c1}-{small_repo.c2}"}
    assert (await fs_manager.fsck("small")).ok


async def test_collection_refs_and_config(
    fs_manager: RepositoryManager, collection_repo: RepoInfo, tmp_path: Path
) -> None:
    archive = pack(stage(collection_repo.path, tmp_path / "s"), tmp_path / "c.tar.gz", "tar.gz")
    record = await import_archive(fs_manager, "col", archive)
    assert record is not None
    assert record.config.collection_id == collection_repo.collection_id
    expected: dict[str, dict[str, str]] = {}
    for (cid, ref), commit in collection_repo.collection_refs.items():
        expected.setdefault(cid, {})[ref] = commit
    assert record.collection_refs == expected and expected
    out = tmp_path / "export"
    await export_version(fs_manager, "col", out)
    _fsck(out)


async def test_non_seekable_inputs(
    fs_manager: RepositoryManager, small_repo: SmallRepo, tmp_path: Path
) -> None:
    staging = stage(small_repo.path, tmp_path / "s")
    # a pipe from a subprocess, as an HTTP upload body would be: no seek, no tell
    tar = subprocess.Popen(["tar", "-C", str(staging), "-cf", "-", "."], stdout=subprocess.PIPE)
    zstd = subprocess.Popen(["zstd", "-q", "-c"], stdin=tar.stdout, stdout=subprocess.PIPE)
    assert tar.stdout is not None and zstd.stdout is not None
    tar.stdout.close()
    with pytest.raises(OSError):
        zstd.stdout.seek(0)
    record = await import_archive(fs_manager, "piped", zstd.stdout)
    assert zstd.wait() == 0 and tar.wait() == 0
    assert record is not None and record.refs == {"main": small_repo.c2}
    assert record.action["source"] == "<stream>"

    class OnlyRead:  # nothing but read(), returning short reads
        def __init__(self, path: Path) -> None:
            self._f = open(path, "rb")  # noqa: SIM115

        def read(self, size: int = -1) -> bytes:
            return self._f.read(min(size, 777) if size > 0 else 777)

    archive = pack(staging, tmp_path / "a.tar.xz", "tar.xz")
    source = OnlyRead(archive)
    assert not hasattr(source, "seek") and not hasattr(source, "tell")
    record = await import_archive(fs_manager, "wrapped", source)
    assert record is not None and record.refs == {"main": small_repo.c2}


async def test_member_names_with_and_without_dot_slash_and_repo_dir(
    fs_manager: RepositoryManager, small_repo: SmallRepo, tmp_path: Path
) -> None:
    staging = stage(small_repo.path, tmp_path / "s")
    plain = pack(staging, tmp_path / "plain.tar", members=["compose.json", "repo"])
    record = await import_archive(fs_manager, "plain", plain)
    assert record is not None and record.refs == {"main": small_repo.c2}
    # the repository at the archive's top, as `tar -C repo -c .` makes it
    top = pack(staging / "repo", tmp_path / "top.tar.gz", "tar.gz")
    with pytest.raises(NoRepositoryError, match=r"config file is at \."):
        await import_archive(fs_manager, "top", top)
    assert not await fs_manager.repository("top").exists()
    record = await import_archive(fs_manager, "top", top, repo_dir=".")
    assert record is not None and record.refs == {"main": small_repo.c2}
    # or anywhere the user names
    nested = tmp_path / "n"
    copy_repo(small_repo.path, nested / "images" / "os" / "repo")
    archive = pack(nested, tmp_path / "nested.tar")
    record = await import_archive(fs_manager, "nested", archive, repo_dir="images/os/repo")
    assert record is not None and record.refs == {"main": small_repo.c2}


async def test_update_archives(
    fs_manager: RepositoryManager, rich_repo: RepoInfo, tmp_path: Path
) -> None:
    """Commits whose oldest parent is the repository's head; several per archive."""
    base = pack(stage(rich_repo.path, tmp_path / "s"), tmp_path / "base.tar")
    await import_archive(fs_manager, "os", base)
    head = rich_repo.refs["main"]
    archive, new, full = update_archive(
        rich_repo.path, tmp_path / "u", tmp_path / "u.tar.zst", count=2
    )
    record = await import_archive(fs_manager, "os", archive, ref="main")
    assert record is not None and record.number == 2
    assert record.refs["main"] == new[-1]
    assert record.commits[new[0]].parent == head and record.commits[new[1]].parent == new[0]
    assert set(record.commits) == set(rich_repo.commits) | set(new)
    assert await _objects(fs_manager, "os") == reachable_all(full, [*rich_repo.commits, *new])
    out = tmp_path / "export"
    await export_version(fs_manager, "os", out)
    _fsck(out)
    assert rev_parse(out, "main") == new[-1] and rev_parse(out, "main^^") == head
    # without ref= an update works too (the parent is in the repository)
    await fs_manager.create_repository("os2")
    await fs_manager.copy("os", "os2", version=1, whole=True)
    record = await import_archive(fs_manager, "os2", archive)
    assert record is not None and record.refs["main"] == new[-1]


async def test_update_archive_on_the_wrong_parent(
    fs_manager: RepositoryManager, rich_repo: RepoInfo, tmp_path: Path
) -> None:
    base = pack(stage(rich_repo.path, tmp_path / "s"), tmp_path / "base.tar")
    await import_archive(fs_manager, "os", base)
    head, older = rich_repo.main[-1], rich_repo.main[-2]
    # a child of C4 while main is at C5
    archive, _, _ = update_archive(
        rich_repo.path, tmp_path / "u", tmp_path / "u.tar.zst", parent=older
    )
    with pytest.raises(UpdateConflictError) as caught:
        await import_archive(fs_manager, "os", archive, ref="main")
    assert older in str(caught.value) and head in str(caught.value)
    with pytest.raises(UpdateConflictError, match="no ref stable"):
        await import_archive(fs_manager, "os", archive, ref="stable")
    assert await fs_manager.repository("os").version_numbers() == [0, 1]
    # into a repository without the parent: refused, naming the parent
    with pytest.raises(UpdateConflictError, match="does not exist"):
        await import_archive(fs_manager, "fresh", archive, ref="main")
    with pytest.raises(MissingParentError, match=older):
        await import_archive(fs_manager, "fresh", archive)
    assert not await fs_manager.repository("fresh").exists()


async def test_truncated_history_is_accepted(
    fs_manager: RepositoryManager, small_repo: SmallRepo, tmp_path: Path
) -> None:
    """A complete commit whose parent is nowhere (``pull --depth=0``), as libostree allows."""
    shallow = tmp_path / "shallow" / "repo"
    shallow.parent.mkdir()
    ostree("init", "--mode=archive", repo=shallow)
    ostree("pull-local", "--depth=0", str(small_repo.path), "main", repo=shallow)
    archive = pack(shallow.parent, tmp_path / "shallow.tar")
    record = await import_archive(fs_manager, "shallow", archive)
    assert record is not None and set(record.commits) == {small_repo.c2}
    assert record.commits[small_repo.c2].parent == small_repo.c1
    out = tmp_path / "export"
    await export_version(fs_manager, "shallow", out)
    _fsck(out)


async def test_async_iterable_source(
    fs_manager: RepositoryManager, small_repo: SmallRepo, tmp_path: Path
) -> None:
    """An HTTP request body, as an ASGI server hands it over: an async iterable of chunks."""
    archive = pack(stage(small_repo.path, tmp_path / "s"), tmp_path / "a.tar.gz", "tar.gz")

    async def body() -> AsyncIterator[bytes]:
        with open(archive, "rb") as f:
            while chunk := f.read(65536):
                yield chunk

    record = await import_archive(fs_manager, "uploaded", body())
    assert record is not None and record.refs == {"main": small_repo.c2}


async def test_ref_moved_by_a_concurrent_writer(
    fs_manager: RepositoryManager,
    small_repo: SmallRepo,
    collection_repo: RepoInfo,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The ref check is repeated on the version the update is applied to: if another writer
    moved the ref meanwhile, the import fails instead of rewinding that writer's work."""
    shallow = tmp_path / "c1" / "repo"
    shallow.parent.mkdir()
    ostree("init", "--mode=archive", repo=shallow)
    ostree("pull-local", str(small_repo.path), small_repo.c1, repo=shallow)
    ostree("refs", "--create=main", small_repo.c1, repo=shallow)
    await import_archive(fs_manager, "os", pack(shallow.parent, tmp_path / "c1.tar"))
    update = pack(stage(small_repo.path, tmp_path / "s"), tmp_path / "c2.tar")
    other = pack(stage(collection_repo.path, tmp_path / "o"), tmp_path / "other.tar")
    real = archive_module._save_closure
    raced: list[bool] = []

    async def racing(*args: object, **kwargs: object) -> object:
        if not raced:  # another writer moves main after our check, before our publish
            raced.append(True)
            await import_archive(fs_manager, "os", other)
        return await real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(archive_module, "_save_closure", racing)
    with pytest.raises(UpdateConflictError, match=f"is at {collection_repo.refs['main']}"):
        await import_archive(fs_manager, "os", update, ref="main")
    assert raced and await fs_manager.repository("os").version_numbers() == [0, 1, 2]
    assert (await fs_manager.repository("os").version()).refs["main"] == collection_repo.refs[
        "main"
    ]


async def test_new_signatures_for_a_commit_the_repository_holds(
    fs_manager: RepositoryManager, small_repo: SmallRepo, tmp_path: Path
) -> None:
    """An archive of nothing but ``config`` and a ``.commitmeta`` re-signs a commit."""
    first = await import_archive(
        fs_manager, "os", pack(stage(small_repo.path, tmp_path / "s"), tmp_path / "a.tar")
    )
    assert first is not None and first.commits[small_repo.c2].commitmeta is None
    staging = tmp_path / "sig"
    meta = dumps("a{sv}", {"ostree.sign.ed25519": Variant("aay", [bytes(64)])})
    path = staging / "repo" / "objects" / small_repo.c2[:2] / f"{small_repo.c2[2:]}.commitmeta"
    path.parent.mkdir(parents=True)
    path.write_bytes(meta)
    (staging / "repo" / "config").write_bytes((small_repo.path / "config").read_bytes())
    record = await import_archive(fs_manager, "os", pack(staging, tmp_path / "sig.tar"))
    assert record is not None and record.refs == first.refs
    assert record.commits[small_repo.c2].commitmeta == hashlib.sha256(meta).hexdigest()
    assert record.commits[small_repo.c1] == first.commits[small_repo.c1]
