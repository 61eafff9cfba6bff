"""The repository features libostree can produce, one small repository each, made by the
real ``ostree`` CLI.

Each :class:`Feature` builds ``ROOT/repo``; the matrix runs every one through every route
(import from a directory and a tarball, sync from a static server, copy, serve and
``ostree pull --mirror``, export) and compares refs, commits and objects with the source.
"""

from __future__ import annotations

import itertools
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from importing._aliases import ALIASES
from oracle.ostree_cli import ostree

Build = Callable[[Path], None]


@dataclass(frozen=True)
class Feature:
    """A repository feature: how to build it, and what its pulls need."""

    name: str
    build: Build
    #: extra ``ostree pull`` options (both from us and from the source)
    pull: tuple[str, ...] = ()
    #: the refs ``ostree pull --mirror`` asks for (none: every ref of the summary)
    pull_refs: tuple[str, ...] = ()
    doc: str = ""


def _init(repo: Path, *config: tuple[str, str], mode: str = "archive") -> None:
    ostree("init", f"--mode={mode}", repo=repo)
    for key, value in config:
        ostree("config", "set", key, value, repo=repo)


def _tree(root: Path, name: str, files: dict[str, str] | None = None) -> Path:
    tree = root / f"tree-{name}"
    tree.mkdir(parents=True)
    for path, text in (files or {"file": f"{name}\n"}).items():
        (tree / path).parent.mkdir(parents=True, exist_ok=True)
        (tree / path).write_text(text)
    return tree


_STAMPS = itertools.count(1)


def _commit(repo: Path, tree: Path, *args: str, branch: str | None = "main") -> str:
    """``ostree commit`` with a fixed, increasing timestamp (stable checksums)."""
    stamp = f"--timestamp=2024-01-01 00:00:{next(_STAMPS) % 60:02d} +0000"
    where = [f"--branch={branch}"] if branch else ["--orphan"]
    return ostree("commit", *where, "-s", tree.name, stamp, *args, tree, repo=repo).strip()


def _two_commits(root: Path, repo: Path, *args: str, ref: str = "main") -> tuple[str, str]:
    first = _commit(repo, _tree(root, "one"), *args, branch=ref)
    second = _commit(repo, _tree(root, "two", {"file": "two\n", "more": "x" * 5000}), *args,
                     branch=ref)  # fmt: skip
    return first, second


# -- builders ---------------------------------------------------------------------------------


def aliases(root: Path) -> None:
    from importing._aliases import build_alias_repo

    build_alias_repo(root)


def aliases_in_a_collection(root: Path) -> None:
    repo = root / "repo"
    _init(repo, ("core.collection-id", "org.example.Aliases"))
    _two_commits(root, repo)
    _commit(repo, _tree(root, "stable"), branch="release/stable")
    for alias, target in ALIASES.items():
        ostree("refs", f"--create={alias}", "--alias", target, repo=repo)
    ostree("summary", "-u", repo=repo)  # also commits ostree-metadata


def collection_mirrors(root: Path) -> None:
    repo = root / "repo"
    _init(repo, ("core.collection-id", "org.example.Main"))
    first, second = _two_commits(root, repo)
    ostree("refs", "--collections", "--create=org.example.Other:foo/bar", first, repo=repo)
    ostree("refs", "--collections", "--create=org.example.Other:baz", second, repo=repo)
    ostree("refs", "--collections", "--create=org.example.Third:one", second, repo=repo)
    ostree("summary", "-u", repo=repo)


def collection_metadata(root: Path) -> None:
    """``core.collection-id``: every ``summary -u`` commits ``ostree-metadata`` (twice
    here, so it has a parent)."""
    repo = root / "repo"
    _init(repo, ("core.collection-id", "org.example.Metadata"))
    _two_commits(root, repo)
    ostree("summary", "-u", repo=repo)
    _commit(repo, _tree(root, "three"))
    ostree("summary", "-u", repo=repo)


def tombstones(root: Path) -> None:
    repo = root / "repo"
    _init(repo, ("core.tombstone-commits", "true"))
    first, _ = _two_commits(root, repo)
    ostree("prune", f"--delete-commit={first}", repo=repo)
    ostree("summary", "-u", repo=repo)


def _plain(
    *config: tuple[str, str],
    mode: str = "archive",
    commit: tuple[str, ...] = (),
    deltas: bool = False,
    summary: bool = True,
) -> Build:
    """A builder: ``init`` with ``config``, two commits on ``main`` (``ostree commit``
    options ``commit``), with ``deltas`` a from-scratch, a from-to and an ``--inline``
    delta, then ``summary -u`` unless not ``summary``."""

    def build(root: Path) -> None:
        repo = root / "repo"
        _init(repo, *config, mode=mode)
        first, second = _two_commits(root, repo, *commit)
        if deltas:
            ostree("static-delta", "generate", "--empty", f"--to={second}", repo=repo)
            ostree("static-delta", "generate", f"--from={first}", f"--to={second}", repo=repo)
            ostree("static-delta", "generate", "--inline", f"--from={second}", f"--to={first}",
                   repo=repo)  # fmt: skip
        if summary:
            ostree("summary", "-u", repo=repo)

    return build


CONFIG_KEYS = (
    ("core.min-free-space-size", "500MB"),
    ("core.fsync", "false"),
    ("core.lock-timeout-secs", "30"),
    ("core.payload-link-threshold", "1000"),
    ("core.auto-update-summary", "false"),
    ("core.no-deltas-in-summary", "false"),
    ('remote "upstream".url', "https://example.com/repo"),
    ('remote "upstream".gpg-verify', "false"),
)


def mode_archive(root: Path) -> None:
    """``mode=archive``, the name ``ostree init --mode=archive`` no longer writes."""
    repo = root / "repo"
    _init(repo)
    config = repo / "config"
    config.write_text(config.read_text().replace("mode=archive-z2", "mode=archive"))
    _two_commits(root, repo)
    ostree("summary", "-u", repo=repo)


def config_quirks(root: Path) -> None:
    """A hand-edited ``config`` GLib's key file parser accepts: a key and the ``core``
    group given twice (the last value wins), a key of another case (another key)."""
    repo = root / "repo"
    _init(repo)
    _two_commits(root, repo)
    with open(repo / "config", "a") as config:
        config.write("mode=bare\nmode=archive-z2\nMode=bare\n# a comment\n")
        config.write('[core]\nmin-free-space-percent=3\n[remote "x"]\nurl=file:///x\n')
    assert ostree("config", "get", "core.mode", repo=repo).strip() == "archive-z2"
    ostree("summary", "-u", repo=repo)


def bind_ref(root: Path) -> None:
    """``--bind-ref``: the commit is bound to ``main`` and to ``other/ref`` too."""
    repo = root / "repo"
    _init(repo)
    commit = _commit(repo, _tree(root, "one"), "--bind-ref=other/ref")
    ostree("refs", "--create=other/ref", commit, repo=repo)
    ostree("summary", "-u", repo=repo)


def orphan(root: Path) -> None:
    repo = root / "repo"
    _init(repo)
    _commit(repo, _tree(root, "one"))
    _commit(repo, _tree(root, "orphan"), branch=None)
    ostree("summary", "-u", repo=repo)


def no_bindings(root: Path) -> None:
    repo = root / "repo"
    _init(repo)
    commit = _commit(repo, _tree(root, "one"), "--no-bindings")
    ostree("refs", "--create=elsewhere", commit, repo=repo)  # unbound: pullable anywhere
    ostree("summary", "-u", repo=repo)


#: ref names made of every kind of character libostree allows: ASCII letters, digits,
#: ``_``, then ``-`` and ``.`` past the first one; Unicode letters and digits
REF_NAMES = (
    "ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz0123456789",
    "a-b.c_d/E-9.z",
    "_.-/0-./x.-_",
    "ünïcödé/ÆØÅ-ß.ẞ",
    "日本語/한국어_中文",
    "٣٤٥/x²/ǅ",
)


def ref_names(root: Path) -> None:
    repo = root / "repo"
    _init(repo)
    commit = _commit(repo, _tree(root, "one"), "--no-bindings")
    for name in REF_NAMES:
        ostree("refs", f"--create={name}", commit, repo=repo)
    ostree("summary", "-u", repo=repo)


#: libostree opens ``refs/heads/NAME`` from the repository: PATH_MAX (4096, with its NUL)
#: less ``refs/heads/`` leaves 4084 bytes; each component is at most NAME_MAX (255)
LONGEST_REF = "/".join(["l" * 255] * 15 + ["m" * 244])
NAME_MAX_REF = "n" * 255


def long_ref(root: Path) -> None:
    assert len(LONGEST_REF) == 4084
    repo = root / "repo"
    _init(repo)
    commit = _commit(repo, _tree(root, "one"), "--no-bindings")
    ostree("refs", f"--create={LONGEST_REF}", commit, repo=repo)
    ostree("refs", f"--create={NAME_MAX_REF}", commit, repo=repo)
    ostree("summary", "-u", repo=repo)


def _one_tree(make: Callable[[Path], None]) -> Build:
    """A builder: one commit on ``main`` of the tree ``make(directory)`` fills."""

    def build(root: Path) -> None:
        repo = root / "repo"
        _init(repo)
        tree = root / "tree"
        tree.mkdir()
        make(tree)
        _commit(repo, tree)
        ostree("summary", "-u", repo=repo)

    return build


def _symlinks(tree: Path) -> None:
    """Only symlinks: relative, absolute, dangling, to a directory, a long target."""
    os.symlink("target", tree / "relative")
    os.symlink("/usr/bin/env", tree / "absolute")
    os.symlink("../../nowhere", tree / "dangling")
    os.symlink(".", tree / "self")
    os.symlink("x" * 1000, tree / "long")


def _deep(tree: Path) -> None:
    """200 nested directories and a file at the bottom."""
    bottom = tree.joinpath(*(f"d{depth:03d}" for depth in range(200)))
    bottom.mkdir(parents=True)
    (bottom / "bottom").write_text("at the bottom\n")


#: 16 user xattrs of 64 KiB (the kernel's limit for one value): 1 MiB on a file and a dir
XATTR_VALUE = 64 << 10
XATTR_COUNT = 16


def big_xattrs(root: Path) -> None:
    """The tree is made on a tmpfs (/dev/shm): ext4 keeps a file's xattrs in one block."""
    repo = root / "repo"
    _init(repo)
    with tempfile.TemporaryDirectory(dir="/dev/shm") as scratch:
        tree = Path(scratch) / "tree-xattrs"
        (tree / "dir").mkdir(parents=True)
        (tree / "file").write_text("xattrs\n")
        for target in (tree / "file", tree / "dir"):
            for i in range(XATTR_COUNT):
                os.setxattr(target, f"user.big{i:02d}", bytes([65 + i]) * XATTR_VALUE)
        _commit(repo, tree)
    ostree("summary", "-u", repo=repo)


FEATURES = [
    Feature("aliases", aliases, pull=("--disable-verify-bindings",),
            doc="ref aliases (`ostree refs --create=A --alias T`), chained and nested"),
    Feature("aliases-in-a-collection", aliases_in_a_collection,
            pull=("--disable-verify-bindings",),
            doc="ref aliases in a repository with `core.collection-id`"),
    Feature("collection-mirrors", collection_mirrors, pull=("--disable-verify-bindings",),
            doc="collection refs under `refs/mirrors/` (`ostree refs --collections`)"),
    Feature("collection-metadata", collection_metadata,
            doc="`core.collection-id` and the `ostree-metadata` ref (`summary -u`)"),
    Feature("tombstones", tombstones, doc="`core.tombstone-commits` and a deleted parent"),
    Feature("generate-sizes", _plain(commit=("--generate-sizes",)),
            doc="`commit --generate-sizes` (`ostree.sizes`)"),
    Feature("detached-metadata",
            _plain(commit=("--add-detached-metadata-string=example.key=hello",)),
            doc="`--add-detached-metadata-string`"),
    Feature("indexed-deltas", _plain(("core.indexed-deltas", "true"), deltas=True),
            doc="from-scratch, from-to and inline deltas; `summary -u` with "
                "`indexed-deltas=true` (`delta-indexes/`)"),
    Feature("unindexed-deltas", _plain(deltas=True),
            doc="the same deltas, `summary -u` without `indexed-deltas`"),
    Feature("no-summary", _plain(deltas=True, summary=False), pull_refs=("main",),
            doc="deltas and refs without any `summary`"),
    Feature("mode-archive", mode_archive, doc="`mode=archive` (the older name)"),
    Feature("mode-archive-z2", _plain(mode="archive-z2"), doc="`mode=archive-z2`"),
    Feature("config-keys", _plain(*CONFIG_KEYS),
            doc="`min-free-space-size`, `fsync`, `lock-timeout-secs`, remotes, ... in "
                "`config`"),
    Feature("config-quirks", config_quirks,
            doc="a `config` with a key and a group twice, and keys of another case"),
    Feature("min-free-space-percent", _plain(("core.min-free-space-percent", "0")),
            doc="`min-free-space-percent`"),
    Feature("bind-ref", bind_ref, doc="`commit --bind-ref` (two bindings)"),
    Feature("orphan", orphan, doc="`commit --orphan` (a commit on no ref)"),
    Feature("no-bindings", no_bindings, doc="`commit --no-bindings`, under a second ref"),
    Feature("ref-names", ref_names, doc="refs made of every allowed kind of character"),
    Feature("long-ref", long_ref, doc="the longest ref name (4084 bytes) and a 255-byte one"),
    Feature("empty-tree", _one_tree(lambda tree: None), doc="a commit of an empty tree"),
    Feature("symlink-tree", _one_tree(_symlinks), doc="a tree of symlinks only"),
    Feature("deep-tree", _one_tree(_deep), doc="a tree 200 directories deep"),
    Feature("big-xattrs", big_xattrs,
            doc="1 MiB of xattrs (16 x 64 KiB) on a file and a directory"),
]  # fmt: skip

BY_NAME = {f.name: f for f in FEATURES}
