"""Building commit archives for the import tests.

Good archives are made the way users get them: a repository built by the real ``ostree``
CLI, laid out as osbuild-composer does (``compose.json`` beside ``repo/``) and packed
by the real ``tar`` and compressors. Bad ones are written member by member with
:mod:`tarfile`, so that each defect is exactly the one under test.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import tarfile
from collections.abc import Callable, Iterable
from pathlib import Path

from oracle.ostree_cli import copy_repo, list_objects, ostree, rev_parse

COMPRESSORS: dict[str, list[str]] = {
    "tar": [],
    "tar.gz": ["gzip", "-c"],
    "tar.xz": ["xz", "-c", "-0", "-T1"],
    "tar.bz2": ["bzip2", "-c", "-1"],
    "tar.zst": ["zstd", "-q", "-c"],
}


def stage(repo: Path, directory: Path, *, compose: dict[str, str] | None = None) -> Path:
    """``directory/repo`` (a copy of ``repo``) and ``directory/compose.json``."""
    directory.mkdir(parents=True)
    copy_repo(repo, directory / "repo")
    (directory / "compose.json").write_text(json.dumps(compose or {"ref": "main"}))
    return directory


def pack(
    staging: Path,
    out: Path,
    compression: str = "tar",
    *,
    members: Iterable[str] = (".",),
) -> Path:
    """``tar -C staging -c MEMBERS | COMPRESSOR > out`` with the real tools."""
    tar = subprocess.Popen(
        ["tar", "-C", str(staging), "-cf", "-", *members], stdout=subprocess.PIPE
    )
    assert tar.stdout is not None
    with open(out, "wb") as f:
        if COMPRESSORS[compression]:
            subprocess.run(COMPRESSORS[compression], stdin=tar.stdout, stdout=f, check=True)
        else:
            shutil.copyfileobj(tar.stdout, f)
    tar.stdout.close()
    assert tar.wait() == 0
    return out


def child_commits(
    repo: Path, ref: str, count: int, work: Path, *, parent: str | None = None
) -> list[str]:
    """Commit ``count`` children on ``ref`` in ``repo`` (each a small edit of the last),
    starting from ``parent`` (default: the ref's head). Returns them, oldest first."""
    made: list[str] = []
    base = parent or rev_parse(repo, ref)
    for i in range(count):
        overlay = work / f"overlay-{ref.replace('/', '_')}-{i}"
        (overlay / "update").mkdir(parents=True)
        (overlay / "update" / f"file-{i}.txt").write_text(f"update {i} of {ref}\n" * (i + 1))
        (overlay / "update" / "big.bin").write_bytes(os.urandom(1_500_000))  # streamed
        checksum = ostree(
            "commit",
            f"--branch={ref}",
            f"--parent={base}",
            f"--tree=ref={base}",
            f"--tree=dir={overlay}",
            f"--subject=update {i}",
            f"--timestamp=2025-01-{i + 1:02d} 00:00:00 +0000",
            repo=repo,
        ).strip()
        made.append(checksum)
        base = checksum
    return made


def update_archive(
    base: Path,
    work: Path,
    out: Path,
    *,
    ref: str = "main",
    count: int = 1,
    parent: str | None = None,
    compression: str = "tar.zst",
) -> tuple[Path, list[str], Path]:
    """An update archive for ``base``: ``count`` new commits on ``ref`` in a copy, and only
    the objects the copy gained, the ref and ``config`` in osbuild's layout.

    Returns (archive, new commits oldest first, the full copy)."""
    full = copy_repo(base, work / "full")
    before = {(c, ext) for c, ext, _ in list_objects(base)}
    commits = child_commits(full, ref, count, work, parent=parent)
    staging = work / "staging"
    (staging / "repo" / "refs" / "heads").mkdir(parents=True)
    shutil.copy(full / "config", staging / "repo" / "config")
    head = staging / "repo" / "refs" / "heads" / ref
    head.parent.mkdir(parents=True, exist_ok=True)
    head.write_text(commits[-1] + "\n")
    for checksum, ext, path in list_objects(full):
        if (checksum, ext) not in before:
            target = staging / "repo" / path.relative_to(full)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(path, target)
    (staging / "compose.json").write_text(json.dumps({"ref": ref, "ostree-commit": commits[-1]}))
    return pack(staging, out, compression), commits, full


# -- crafted archives ---------------------------------------------------------------------------


Mutate = Callable[[str, bytes], bytes | None]


def craft(
    staging: Path,
    out: Path,
    *,
    mutate: Mutate | None = None,
    extra: Iterable[tuple[tarfile.TarInfo, bytes]] = (),
    fmt: int = tarfile.GNU_FORMAT,
) -> Path:
    """A tar of ``staging`` written with :mod:`tarfile`: ``mutate(name, data)`` may change a
    regular member's bytes or drop it (None); ``extra`` members are appended."""
    with tarfile.open(out, "w", format=fmt) as tar:
        for path in sorted(staging.rglob("*")):
            name = "./" + path.relative_to(staging).as_posix()
            info = tar.gettarinfo(str(path), arcname=name)
            if path.is_file() and not path.is_symlink():
                data = path.read_bytes()
                if mutate is not None:
                    changed = mutate(name.removeprefix("./"), data)
                    if changed is None:
                        continue
                    data = changed
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            else:
                tar.addfile(info)
        for info, data in extra:
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return out


def member(
    name: str, data: bytes = b"", kind: bytes = tarfile.REGTYPE, link: str = ""
) -> tuple[tarfile.TarInfo, bytes]:
    """A crafted member (its name is written exactly as given)."""
    info = tarfile.TarInfo(name)
    info.type = kind
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    info.linkname = link
    info.mode = 0o644
    return info, data


def object_member(repo: Path, ext: str) -> str:
    """The archive path (``repo/objects/...``) of some object of type ``ext``."""
    for _, e, path in list_objects(repo):
        if e == ext:
            return "repo/" + path.relative_to(repo).as_posix()
    raise LookupError(ext)
