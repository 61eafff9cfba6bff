"""A repository with ref aliases, made by the real ``ostree`` CLI, and what libostree says
about it (the oracle the alias tests compare with)."""

from __future__ import annotations

from pathlib import Path

from oracle.ostree_cli import ostree, rev_parse

#: alias -> target, as ``build_alias_repo`` makes them (``ostree refs --create --alias``)
ALIASES = {
    "latest": "main",
    "chain": "latest",  # an alias of an alias: libostree follows the chain
    "x/y/nested": "main",  # written as the symlink ../../main
    "stable-alias": "release/stable",
}


def build_alias_repo(root: Path) -> Path:
    """``root/repo``: refs ``main`` and ``release/stable`` (two commits), the aliases of
    :data:`ALIASES`, and a summary (``ostree summary -u``)."""
    repo = root / "repo"
    ostree("init", "--mode=archive", repo=repo)
    for i, ref in enumerate(("main", "release/stable")):
        tree = root / f"tree-{i}"
        tree.mkdir()
        (tree / "file").write_text(f"content {i}\n")
        stamp = f"--timestamp=2024-01-0{i + 1} 00:00:00 +0000"
        ostree("commit", "-b", ref, "-s", ref, "--add-metadata-string=version=1.{i}", stamp,
               tree, repo=repo)  # fmt: skip
    for alias, target in ALIASES.items():
        ostree("refs", f"--create={alias}", "--alias", target, repo=repo)
    ostree("summary", "-u", repo=repo)
    return repo


def libostree_refs(repo: Path) -> dict[str, str]:
    """Every ref of ``refs/heads`` libostree lists (aliases included), with its commit
    (remote refs, ``REMOTE:NAME``, left out: no importer takes them)."""
    names = [n for n in ostree("refs", repo=repo).split() if ":" not in n]
    return {name: rev_parse(repo, name) for name in names}


def libostree_aliases(repo: Path) -> dict[str, str]:
    """``ostree refs --alias``: alias -> target."""
    lines = ostree("refs", "--alias", repo=repo).splitlines()
    return dict(line.split(" -> ", 1) for line in lines if line)
