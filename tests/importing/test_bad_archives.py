"""Bad archives: each is refused with its own exception, and no version is made."""

from __future__ import annotations

import gzip
import io
import os
import tarfile
from pathlib import Path

import pytest
import zstandard

from oracle.ostree_cli import RepoInfo, list_objects, ostree
from ostree_repo.errors import OstreeRepoError
from ostree_repo.importing import ArchiveLimits, import_archive
from ostree_repo.importing.errors import (
    ArchiveError,
    ArchiveLimitError,
    BareRepositoryError,
    CorruptArchiveError,
    CorruptObjectError,
    DuplicateMemberError,
    IncompleteArchiveError,
    InvalidRefError,
    NotAnArchiveError,
    RepositoryConfigError,
    TruncatedArchiveError,
    UnsafeArchiveError,
    UnsupportedMemberError,
)
from ostree_repo.objects import Tombstone
from ostree_repo.repository import RepositoryManager

from ._archives import COMPRESSORS, craft, member, pack, stage
from .conftest import SmallRepo

pytestmark = pytest.mark.anyio


@pytest.fixture
def staging(small_repo: SmallRepo, tmp_path: Path) -> Path:
    return stage(small_repo.path, tmp_path / "staging")


async def refused(
    manager: RepositoryManager,
    source: Path | bytes,
    error: type[BaseException],
    match: str | None = None,
    **options: object,
) -> ArchiveError:
    """Import ``source`` into a new repository and check it fails with ``error`` leaving no
    version (nor even the repository)."""
    data = io.BytesIO(source) if isinstance(source, bytes) else source
    with pytest.raises(error, match=match) as caught:
        await import_archive(manager, "bad", data, **options)  # type: ignore[arg-type]
    assert isinstance(caught.value, ArchiveError) and isinstance(caught.value, OstreeRepoError)
    assert not await manager.repository("bad").exists()
    return caught.value


def _objects(small_repo: SmallRepo, ext: str) -> list[str]:
    """Archive paths of the objects of type ``ext``, largest first."""
    found = [(p.stat().st_size, p) for _, e, p in list_objects(small_repo.path) if e == ext]
    return [
        "repo/" + p.relative_to(small_repo.path).as_posix() for _, p in sorted(found, reverse=True)
    ]


# -- unsafe and unsupported members ------------------------------------------------------------

UNSAFE = {
    "absolute path": (member("/etc/evil", b"x"), "absolute"),
    "dot-dot": (member("repo/../../evil", b"x"), r"'\.\.'"),
    "symlink out of the repo": (
        member("repo/refs/heads/evil", kind=tarfile.SYMTYPE, link="../../../etc/passwd"),
        "outside",
    ),
    "absolute symlink": (member("latest", kind=tarfile.SYMTYPE, link="/etc/passwd"), "absolute"),
    "symlink beside the repo to its parent": (
        member("up", kind=tarfile.SYMTYPE, link=".."),
        "outside",
    ),
    "hardlink out of the repo": (
        member("repo/objects/ab/cd.filez", kind=tarfile.LNKTYPE, link="compose.json"),
        "outside",
    ),
    "character device": (member("repo/tty", kind=tarfile.CHRTYPE), "character device"),
    "block device": (member("repo/sda", kind=tarfile.BLKTYPE), "block device"),
    "fifo": (member("fifo", kind=tarfile.FIFOTYPE), "fifo"),
}


@pytest.mark.parametrize("case", sorted(UNSAFE))
async def test_unsafe_members(
    fs_manager: RepositoryManager, staging: Path, tmp_path: Path, case: str
) -> None:
    extra, match = UNSAFE[case]
    archive = craft(staging, tmp_path / "a.tar", extra=[extra])
    await refused(fs_manager, archive, UnsafeArchiveError, match)


async def test_links_inside_the_repository_are_not_followed(
    fs_manager: RepositoryManager, staging: Path, tmp_path: Path
) -> None:
    """Only symlinks under refs/ (ref aliases, see test_aliases.py) are read."""
    link = member("repo/objects/ab/link", kind=tarfile.SYMTYPE, link="../../config")
    archive = craft(staging, tmp_path / "a.tar", extra=[link])
    await refused(fs_manager, archive, UnsupportedMemberError, "links are not followed")


@pytest.mark.parametrize("what", ["object", "ref"])
async def test_duplicate_members(
    fs_manager: RepositoryManager,
    small_repo: SmallRepo,
    staging: Path,
    tmp_path: Path,
    what: str,
) -> None:
    if what == "object":
        name = _objects(small_repo, "dirtree")[0]
        data = (staging / name).read_bytes()  # the very same bytes, a second time
    else:
        name, data = "repo/refs/heads/main", (small_repo.c1 + "\n").encode()
    archive = craft(staging, tmp_path / "a.tar", extra=[member("./" + name, data)])
    await refused(fs_manager, archive, DuplicateMemberError, "twice")


# -- not a (whole) archive ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"hello world\n" * 100,
        os.urandom(4096),
        gzip.compress(b"not a tar, but gzip\n" * 100),
        zstandard.ZstdCompressor().compress(os.urandom(2000)),
    ],
    ids=["empty", "text", "random", "gzip-text", "zstd-random"],
)
async def test_not_an_archive(fs_manager: RepositoryManager, data: bytes) -> None:
    await refused(fs_manager, data, NotAnArchiveError)


def _last_member_end(archive: Path) -> int:
    with tarfile.open(archive) as tar:
        last = tar.getmembers()[-1]
    return last.offset_data + -(-last.size // 512) * 512


async def test_truncated_plain_archives(
    fs_manager: RepositoryManager, staging: Path, tmp_path: Path
) -> None:
    archive = pack(staging, tmp_path / "a.tar")
    data = archive.read_bytes()
    await refused(fs_manager, data[: len(data) // 2], TruncatedArchiveError)
    await refused(fs_manager, data[: len(data) // 2 - 100], TruncatedArchiveError)
    # cut exactly after the last member: only the end-of-archive blocks are missing
    end = _last_member_end(archive)
    assert data[end:].strip(b"\0") == b"" and len(data) - end >= 1024
    await refused(fs_manager, data[:end], TruncatedArchiveError, "end-of-archive")
    await refused(fs_manager, data[: end + 512], TruncatedArchiveError)


@pytest.mark.parametrize("compression", ["tar.gz", "tar.xz", "tar.bz2", "tar.zst"])
async def test_truncated_compressed_archives(
    fs_manager: RepositoryManager, staging: Path, tmp_path: Path, compression: str
) -> None:
    data = pack(staging, tmp_path / "a", compression).read_bytes()
    # the last byte holds no tar data, only the stream's checksum or end marker
    await refused(fs_manager, data[:-1], TruncatedArchiveError, "ends early")
    await refused(fs_manager, data[: len(data) // 2], TruncatedArchiveError)


# offset and new value of a byte that breaks the compressed stream's own framing
CORRUPTIONS = {"tar.gz": (2, 7), "tar.xz": (8, 0x55), "tar.bz2": (5, 0), "tar.zst": (4, 0x08)}


@pytest.mark.parametrize("compression", sorted(CORRUPTIONS))
async def test_corrupt_compressed_streams(
    fs_manager: RepositoryManager, staging: Path, tmp_path: Path, compression: str
) -> None:
    data = bytearray(pack(staging, tmp_path / "a", compression).read_bytes())
    offset, value = CORRUPTIONS[compression]
    data[offset] = value
    error = await refused(fs_manager, bytes(data), CorruptArchiveError)
    assert not isinstance(error, TruncatedArchiveError)


# -- not an archive-mode repository ------------------------------------------------------------


async def test_bare_repositories(
    fs_manager: RepositoryManager, staging: Path, tmp_path: Path
) -> None:
    bare = tmp_path / "bare" / "repo"
    bare.parent.mkdir()
    ostree("init", "--mode=bare-user", repo=bare)
    (tmp_path / "tree").mkdir()
    (tmp_path / "tree" / "f").write_text("f\n")
    ostree("commit", "-b", "main", tmp_path / "tree", repo=bare)
    await refused(fs_manager, pack(bare.parent, tmp_path / "b.tar"), BareRepositoryError)
    # a bare config on archive objects is refused as well, and so are .file objects alone
    text = (staging / "repo" / "config").read_text().replace("archive-z2", "bare")
    with_config = craft(
        staging, tmp_path / "c.tar", mutate=lambda n, d: text.encode() if n == "repo/config" else d
    )
    await refused(fs_manager, with_config, BareRepositoryError, "bare-mode")
    dotfile = member("repo/objects/ab/" + "c" * 62 + ".file", b"x")
    dotfile_archive = craft(staging, tmp_path / "d.tar", extra=[dotfile])
    await refused(fs_manager, dotfile_archive, BareRepositoryError, r"\.file")


@pytest.mark.parametrize(
    ("config", "match"),
    [
        (None, "missing"),
        (b"[core]\nrepo_version=2\nmode=archive-z2\n", "repo_version"),
        (b"\xff\xfe garbage", "unreadable"),
    ],
)
async def test_missing_or_bad_config(
    fs_manager: RepositoryManager,
    staging: Path,
    tmp_path: Path,
    config: bytes | None,
    match: str,
) -> None:
    archive = craft(
        staging, tmp_path / "a.tar", mutate=lambda n, d: config if n == "repo/config" else d
    )
    await refused(fs_manager, archive, RepositoryConfigError, match)


# -- corrupt content ---------------------------------------------------------------------------


def _flip_last(data: bytes) -> bytes:
    return data[:-1] + bytes([data[-1] ^ 0x01])


@pytest.mark.parametrize(
    "ext", ["commit", "dirtree", "dirmeta", "filez", "big-filez", "commitmeta", "tombstone-commit"]
)
async def test_corrupt_objects(
    fs_manager: RepositoryManager,
    small_repo: SmallRepo,
    staging: Path,
    tmp_path: Path,
    ext: str,
) -> None:
    names = _objects(small_repo, "filez" if ext == "big-filez" else ext)
    # the big .filez (1.5 MB) is streamed in chunks, the others are read whole
    target = names[0] if ext == "big-filez" else names[-1]
    if ext == "tombstone-commit":
        replacement = Tombstone(small_repo.c1).to_bytes()  # names another commit
    elif ext == "commitmeta":
        replacement = b"\x07garbage"
    else:
        replacement = _flip_last((staging / target).read_bytes())
    archive = craft(
        staging, tmp_path / "a.tar", mutate=lambda n, d: replacement if n == target else d
    )
    error = await refused(fs_manager, archive, CorruptObjectError, target.split("/")[-1][:20])
    assert error.member.endswith(target)  # type: ignore[attr-defined]


@pytest.mark.parametrize("what", ["superblock", "part"])
async def test_corrupt_static_deltas(
    fs_manager: RepositoryManager, staging: Path, tmp_path: Path, what: str
) -> None:
    def mutate(name: str, data: bytes) -> bytes:
        if name.startswith("repo/deltas/"):
            if what == "superblock" and name.endswith("/superblock"):
                return data[: len(data) // 2]
            if what == "part" and name.endswith("/0"):
                return _flip_last(data)
        return data

    archive = craft(staging, tmp_path / "a.tar", mutate=mutate)
    error = await refused(fs_manager, archive, CorruptObjectError)
    assert error.member.endswith("superblock" if what == "superblock" else "/0")  # type: ignore[attr-defined]


async def test_zero_byte_object(
    fs_manager: RepositoryManager, small_repo: SmallRepo, staging: Path, tmp_path: Path
) -> None:
    target = _objects(small_repo, "dirmeta")[0]
    archive = craft(staging, tmp_path / "a.tar", mutate=lambda n, d: b"" if n == target else d)
    await refused(fs_manager, archive, CorruptObjectError, "zero-byte")


@pytest.mark.parametrize(
    ("content", "match"),
    [(b"garbage\n", "not a commit checksum"), (b"0" * 64 + b"\n", "neither in the archive")],
)
async def test_bad_refs(
    fs_manager: RepositoryManager, staging: Path, tmp_path: Path, content: bytes, match: str
) -> None:
    archive = craft(
        staging,
        tmp_path / "a.tar",
        mutate=lambda n, d: content if n == "repo/refs/heads/main" else d,
    )
    await refused(fs_manager, archive, InvalidRefError, match)


@pytest.mark.parametrize("ext", ["dirtree", "filez", "dirmeta"])
async def test_commit_whose_objects_are_missing(
    fs_manager: RepositoryManager,
    small_repo: SmallRepo,
    staging: Path,
    tmp_path: Path,
    ext: str,
) -> None:
    target = _objects(small_repo, ext)[-1]
    archive = craft(staging, tmp_path / "a.tar", mutate=lambda n, d: None if n == target else d)
    checksum = target.split("/")[-2] + target.split("/")[-1].split(".")[0]
    error = await refused(fs_manager, archive, IncompleteArchiveError, checksum)
    assert ext.removesuffix("z") in str(error)


async def test_failure_leaves_existing_versions_alone(
    fs_manager: RepositoryManager,
    small_repo: SmallRepo,
    collection_repo: RepoInfo,
    staging: Path,
    tmp_path: Path,
) -> None:
    other = pack(stage(collection_repo.path, tmp_path / "other"), tmp_path / "other.tar")
    await import_archive(fs_manager, "kept", other)
    target = _objects(small_repo, "filez")[0]
    archive = craft(
        staging, tmp_path / "a.tar", mutate=lambda n, d: _flip_last(d) if n == target else d
    )
    with pytest.raises(CorruptObjectError):
        await import_archive(fs_manager, "kept", archive)
    assert await fs_manager.repository("kept").version_numbers() == [0, 1]


async def test_damaged_copy_of_a_stored_object_is_not_read(
    fs_manager: RepositoryManager, small_repo: SmallRepo, staging: Path, tmp_path: Path
) -> None:
    """An object the store holds already is skipped, not read again: a damaged copy in a
    later archive changes nothing (the store's verified copy is what versions use)."""
    await import_archive(fs_manager, "first", pack(staging, tmp_path / "good.tar"))
    target = _objects(small_repo, "filez")[0]
    archive = craft(
        staging, tmp_path / "a.tar", mutate=lambda n, d: _flip_last(d) if n == target else d
    )
    record = await import_archive(fs_manager, "second", archive)
    assert record is not None and record.refs == {"main": small_repo.c2}
    assert (await fs_manager.fsck("second")).ok


# -- bombs and limits --------------------------------------------------------------------------


def _header(name: str, size: int, kind: bytes = tarfile.REGTYPE) -> bytes:
    info = tarfile.TarInfo(name)
    info.size = size
    info.type = kind
    return info.tobuf(tarfile.GNU_FORMAT)


async def test_huge_declared_sizes(fs_manager: RepositoryManager) -> None:
    # a member claiming a petabyte: refused at its header, nothing read
    data = _header("repo/objects/ab/" + "c" * 62 + ".filez", 1 << 50) + bytes(1024)
    await refused(fs_manager, data, ArchiveLimitError, "above the limit")
    # an extended (pax) header claiming 2 MiB would be read into memory: refused
    data = _header("././@PaxHeader", 2 << 20, tarfile.XHDTYPE) + bytes(1024)
    await refused(fs_manager, data, ArchiveLimitError, "extended tar header")
    # metadata objects are small
    limits = ArchiveLimits(max_metadata_size=1000)
    data = _header("repo/objects/ab/" + "c" * 62 + ".dirtree", 5000) + bytes(6144)
    await refused(fs_manager, data, ArchiveLimitError, "more than a metadata", limits=limits)


async def test_deep_nesting_and_long_names(
    fs_manager: RepositoryManager, staging: Path, tmp_path: Path
) -> None:
    deep = craft(
        staging, tmp_path / "d.tar", extra=[member("a/" * 100 + "f", b"x")], fmt=tarfile.PAX_FORMAT
    )
    await refused(fs_manager, deep, ArchiveLimitError, "deep")
    long = craft(
        staging, tmp_path / "l.tar", extra=[member("x" * 9000, b"x")], fmt=tarfile.PAX_FORMAT
    )
    await refused(fs_manager, long, ArchiveLimitError, "longer")


async def test_member_count_limit(
    fs_manager: RepositoryManager, staging: Path, tmp_path: Path
) -> None:
    archive = pack(staging, tmp_path / "a.tar")
    await refused(
        fs_manager,
        archive,
        ArchiveLimitError,
        "more than 20 members",
        limits=ArchiveLimits(max_members=20),
    )


async def test_compression_bomb(fs_manager: RepositoryManager) -> None:
    # 100 MB of zeros in one member: a few KB of zstd
    buffer = io.BytesIO()
    with zstandard.ZstdCompressor(level=1).stream_writer(buffer, closefd=False) as writer:
        writer.write(_header("bomb", 100 << 20))
        zeros = bytes(1 << 20)
        for _ in range(100):
            writer.write(zeros)
    data = buffer.getvalue()
    assert len(data) < 100_000
    await refused(fs_manager, data, ArchiveLimitError, "expands more than")
    await refused(
        fs_manager,
        data,
        ArchiveLimitError,
        "expands to more than",
        limits=ArchiveLimits(max_expanded_size=10 << 20),
    )


def test_every_compressor_is_covered() -> None:
    assert set(CORRUPTIONS) == set(COMPRESSORS) - {"tar"}
