"""The commit builder gives the checksums ``ostree commit`` gives, over varied trees."""

from __future__ import annotations

import calendar
import os
import subprocess
import time
from pathlib import Path

import pytest

from oracle.ostree_cli import RepoInfo
from ostree_repo.builder import (
    Dir,
    File,
    Symlink,
    commit_tree,
    tree_from_directory,
    tree_from_mapping,
)
from ostree_repo.errors import OstreeRepoError
from ostree_repo.export import export_version
from ostree_repo.gvariant import Variant
from ostree_repo.objects import Commit
from ostree_repo.repository import RepositoryManager

pytestmark = pytest.mark.anyio
TIMESTAMP = calendar.timegm(time.strptime("2024-01-02 03:04:05", "%Y-%m-%d %H:%M:%S"))


def _ostree_commit(repo: Path, tree: Path, *args: str) -> str:
    if not (repo / "config").exists():
        subprocess.run(["ostree", "init", f"--repo={repo}", "--mode=archive"], check=True)
    out = subprocess.run(
        [
            "ostree",
            "commit",
            f"--repo={repo}",
            f"--tree=dir={tree}",
            "--timestamp=2024-01-02 03:04:05 +0000",
            *args,
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    return out.stdout.strip()


async def test_every_rich_repo_tree_gives_the_same_root(
    fs_manager: RepositoryManager, rich_repo: RepoInfo
) -> None:
    for checksum in rich_repo.commits:
        info = rich_repo.commit_info[checksum]
        real = Commit.from_bytes(rich_repo.object_path(checksum, "commit").read_bytes())
        tree = tree_from_directory(info.tree, uid=info.owner_uid, gid=info.owner_gid)
        ours, _ = await commit_tree(
            fs_manager,
            "r",
            tree,
            ref=info.ref,
            subject=info.subject,
            body=info.body,
            timestamp=info.timestamp,
            parent=info.parent,
            metadata={k: Variant("s", v) for k, v in info.metadata_strings.items()},
        )
        record = await fs_manager.repository("r").version()
        built = record.commits[ours]
        assert (built.root_tree, built.root_meta) == (real.root_tree, real.root_meta), info.label
        if not info.metadata and not info.generate_sizes:
            assert ours == checksum, info.label


async def test_mapping_tree_matches_ostree_commit(
    fs_manager: RepositoryManager, tmp_path: Path
) -> None:
    entries = {
        "usr/bin/tool": File(b"#!/bin/sh\necho tool\n", mode=0o755),
        "usr/lib/empty": File(b""),
        "usr/lib/big.bin": File(os.urandom(300_000)),
        "usr/share/doc/ünïcode.txt": File("héllo\n".encode()),
        "usr/share/B": File(b"upper"),
        "usr/share/a": File(b"lower"),
        "usr/share/a.b": File(b"dot"),
        "usr/share/a-b": File(b"dash"),
        "etc/secret": File(b"x", mode=0o600),
        "etc/suid": File(b"s", mode=0o4755),
        "tmp": Dir(mode=0o1777),
        "var/lib/empty-dir": Dir(),
        "lib": "usr/lib",
        "etc/dangling": Symlink("/nowhere"),
        "etc/xattr-file": File(b"x", xattrs=((b"user.b", b"2"), (b"user.a", b"1"))),
    }
    tree = tree_from_mapping(entries)
    # the same tree on disk, committed by the real ostree
    disk = tmp_path / "tree"
    disk.mkdir()
    for path, node in sorted(entries.items()):
        target = disk / path
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(node, File):
            target.write_bytes(node.data or b"")
            os.chmod(target, node.mode)
            for name, value in node.xattrs:
                os.setxattr(target, name, value)
        elif isinstance(node, Dir):
            target.mkdir(exist_ok=True)
            os.chmod(target, node.mode)
        else:
            target.symlink_to(node if isinstance(node, str) else node.target)
    for directory in [disk, *[p for p in disk.rglob("*") if p.is_dir() and not p.is_symlink()]]:
        if directory != disk / "tmp":
            os.chmod(directory, 0o755)
    expected = _ostree_commit(tmp_path / "repo", disk, "-b", "main", "-s", "subject", "--body=body")
    ours, record = await commit_tree(
        fs_manager, "m", tree, ref="main", subject="subject", body="body", timestamp=TIMESTAMP
    )
    assert ours == expected
    assert record is not None and record.refs == {"main": ours}
    # a second commit on the ref takes the first as its parent, as ostree commit -b does
    second = tree_from_mapping(
        {**entries, "usr/bin/tool": File(b"#!/bin/sh\necho v2\n", mode=0o755)}
    )
    child, _ = await commit_tree(fs_manager, "m", second, ref="main", timestamp=TIMESTAMP)
    assert (await fs_manager.repository("m").version()).commits[child].parent == ours
    out = tmp_path / "export"
    await export_version(fs_manager, "m", out)
    subprocess.run(["ostree", "fsck", f"--repo={out}"], check=True, capture_output=True)


async def test_bad_trees_are_refused(fs_manager: RepositoryManager, tmp_path: Path) -> None:
    with pytest.raises(OstreeRepoError):
        tree_from_mapping({"a/..": File(b"x")})
    with pytest.raises(OstreeRepoError):
        tree_from_mapping({"a": File(b"x"), "a/b": File(b"y")})
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(OstreeRepoError):
        tree_from_directory(tmp_path)


async def test_tarball_matches_ostree_commit_tree_tar(
    fs_manager: RepositoryManager, tmp_path: Path
) -> None:
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "usr/bin").mkdir(parents=True)
    (root / "etc/a").write_text("a\n")
    (root / "usr/bin/x").write_text("#!/bin/sh\n")
    (root / "usr/bin/x").chmod(0o755)
    (root / "usr/link").symlink_to("../etc/a")
    os.link(root / "etc/a", root / "etc/hard")
    (root / "big").write_bytes(os.urandom(17 << 20))  # spooled, not held in memory
    for d in (root, root / "etc", root / "usr", root / "usr/bin"):
        d.chmod(0o755)
    tarball = tmp_path / "fs.tar"
    subprocess.run(
        ["tar", "--numeric-owner", "-C", str(root), "-cf", str(tarball), "."], check=True
    )
    repo = tmp_path / "repo"
    subprocess.run(["ostree", "init", f"--repo={repo}", "--mode=archive"], check=True)
    expected = subprocess.run(
        [
            "ostree",
            "commit",
            f"--repo={repo}",
            "-b",
            "main",
            f"--tree=tar={tarball}",
            "-s",
            "t",
            "--timestamp=2024-01-02 03:04:05 +0000",
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    from ostree_repo.builder import tree_from_tar

    spool = tmp_path / "spool"
    spool.mkdir()
    ours, _ = await commit_tree(
        fs_manager, "t", tree_from_tar(tarball, spool), ref="main", subject="t", timestamp=TIMESTAMP
    )
    assert ours == expected
    assert len(list(spool.iterdir())) == 1
