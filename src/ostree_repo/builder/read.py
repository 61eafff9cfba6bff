"""Reading a stored commit back as a tree: the inverse of committing one.

:func:`tree_from_commit` loads the tree of a commit from a store into the same
:class:`~ostree_repo.builder.tree.Dir` / :class:`~ostree_repo.builder.tree.File` /
:class:`~ostree_repo.builder.tree.Symlink` nodes the builder commits, with every file's
bytes in memory (meant for tests and small trees: a commit of gigabytes needs as much
memory). :func:`flatten` turns such a tree into ``{"usr/bin/tool": File(...), ...}``, the
form :func:`~ostree_repo.builder.tree.tree_from_mapping` accepts, so a test can compare
what it committed with what the store holds.
"""

from __future__ import annotations

import stat

import anyio

from ostree_repo._tasks import task_group
from ostree_repo.builder.tree import Dir, File, Node, Symlink
from ostree_repo.objects import Commit, DirMeta, DirTree, ObjectType
from ostree_repo.objects.content import read_filez
from ostree_repo.store import ObjectStore

__all__ = ["flatten", "tree_from_commit"]


async def tree_from_commit(store: ObjectStore, commit: str, *, concurrency: int = 16) -> Dir:
    """The tree of ``commit`` as stored in ``store``, every object verified as it is read.

    Raises :class:`~ostree_repo.errors.NotFoundError` if the commit or an object it
    reaches is missing.
    """
    root = Commit.from_bytes(await store.read_object(commit, ObjectType.COMMIT))
    limiter = anyio.CapacityLimiter(concurrency)

    async def content(checksum: str) -> File | Symlink:
        async with limiter:
            data = await store.read_object(checksum, ObjectType.FILE)
        header, body = read_filez(data, checksum)
        if stat.S_ISLNK(header.mode):
            return Symlink(header.symlink_target, header.uid, header.gid, header.xattrs)
        mode = stat.S_IMODE(header.mode)
        return File(body, mode, header.uid, header.gid, header.xattrs)

    async def directory(tree: str, meta: str) -> Dir:
        async with limiter:
            tree_obj = DirTree.from_bytes(await store.read_object(tree, ObjectType.DIRTREE))
            meta_obj = DirMeta.from_bytes(await store.read_object(meta, ObjectType.DIRMETA))
        node = Dir(stat.S_IMODE(meta_obj.mode), meta_obj.uid, meta_obj.gid, meta_obj.xattrs)
        children: dict[str, Node] = {}

        async def fill_file(name: str, checksum: str) -> None:
            children[name] = await content(checksum)

        async def fill_dir(name: str, sub_tree: str, sub_meta: str) -> None:
            children[name] = await directory(sub_tree, sub_meta)

        async with task_group() as tg:
            for entry in tree_obj.files:
                tg.start_soon(fill_file, entry.name, entry.checksum)
            for sub in tree_obj.dirs:
                tg.start_soon(fill_dir, sub.name, sub.tree, sub.meta)
        # entries in the dirtree's order (files, then directories, each sorted by name)
        names = [e.name for e in tree_obj.files] + [d.name for d in tree_obj.dirs]
        node.entries = {name: children[name] for name in names}
        return node

    return await directory(root.root_tree, root.root_meta)


def flatten(tree: Dir) -> dict[str, Node]:
    """Every path of ``tree`` (``"usr/bin/tool"``, no leading slash) mapped to its node.

    Directories appear with their owner, mode and xattrs but no entries, so a mapping
    built with :func:`~ostree_repo.builder.tree.tree_from_mapping` compares equal entry
    by entry. The root itself is not listed.
    """
    out: dict[str, Node] = {}
    stack: list[tuple[str, Dir]] = [("", tree)]
    while stack:
        prefix, node = stack.pop()
        for name, child in node.entries.items():
            path = f"{prefix}{name}"
            if isinstance(child, Dir):
                out[path] = Dir(child.mode, child.uid, child.gid, child.xattrs)
                stack.append((f"{path}/", child))
            else:
                out[path] = child
    return dict(sorted(out.items()))
