"""An independent tree walk over an ostree-made repository directory.

It reads loose object files directly and decodes them with the object codec, sharing no
code with the repository layer's closures, so tests can compare the two.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ostree_repo.objects import Commit, DirTree, ObjectType

Key = tuple[ObjectType, str]


def _path(repo: Path, checksum: str, ext: str) -> Path:
    return repo / "objects" / checksum[:2] / f"{checksum[2:]}.{ext}"


def reachable(repo: Path, commit: str) -> set[Key]:
    """The commit object and every dirtree, dirmeta and file its root reaches."""
    found: set[Key] = {(ObjectType.COMMIT, commit)}
    root = Commit.from_bytes(_path(repo, commit, "commit").read_bytes())
    stack = [(root.root_tree, root.root_meta)]
    while stack:
        tree, meta = stack.pop()
        found.add((ObjectType.DIRMETA, meta))
        if (ObjectType.DIRTREE, tree) in found:
            continue
        found.add((ObjectType.DIRTREE, tree))
        entries = DirTree.from_bytes(_path(repo, tree, "dirtree").read_bytes())
        found.update((ObjectType.FILE, f.checksum) for f in entries.files)
        stack.extend((d.tree, d.meta) for d in entries.dirs)
    return found


def reachable_all(repo: Path, commits: list[str] | set[str]) -> set[Key]:
    """The union of :func:`reachable` over ``commits``."""
    out: set[Key] = set()
    for c in commits:
        out |= reachable(repo, c)
    return out


async def stored_objects(manager: Any) -> set[Key]:
    """The commit, dirtree, dirmeta and file objects a store holds."""
    return {(t, c) async for c, t in manager.store.list_objects() if t in _CLOSURE_TYPES}


_CLOSURE_TYPES = {ObjectType.FILE, ObjectType.DIRTREE, ObjectType.DIRMETA, ObjectType.COMMIT}
