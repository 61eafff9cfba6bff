"""Trees to commit: an in-memory description, or one read from a directory.

A tree is a :class:`Dir` whose ``entries`` map names to :class:`File`, :class:`Symlink`
or nested :class:`Dir` nodes. :func:`tree_from_mapping` builds one from a flat
``{"usr/bin/tool": File(b"..."), ...}`` description; :func:`tree_from_directory` reads a
directory as ``ostree commit --tree=dir=`` does (owners, modes and xattrs from ``lstat``).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from pathlib import Path

import attrs

from ostree_repo.errors import OstreeRepoError
from ostree_repo.objects.tree import validate_filename

__all__ = [
    "Dir",
    "File",
    "Node",
    "Symlink",
    "Xattrs",
    "tree_from_directory",
    "tree_from_mapping",
    "tree_from_tar",
]

#: Extended attributes: ``(name, value)`` pairs of bytes, sorted by name.
Xattrs = tuple[tuple[bytes, bytes], ...]


@attrs.frozen
class File:
    """A regular file: its bytes (``data``) or a path to read them from (``source``)."""

    data: bytes | None = None
    mode: int = 0o644
    uid: int = 0
    gid: int = 0
    xattrs: Xattrs = ()
    source: Path | None = None

    def size(self) -> int:
        """The file's size in bytes."""
        if self.data is not None:
            return len(self.data)
        assert self.source is not None
        return self.source.stat().st_size


@attrs.frozen
class Symlink:
    """A symbolic link to ``target``."""

    target: str
    uid: int = 0
    gid: int = 0
    xattrs: Xattrs = ()


@attrs.define
class Dir:
    """A directory: its owner, permissions, xattrs and entries."""

    mode: int = 0o755
    uid: int = 0
    gid: int = 0
    xattrs: Xattrs = ()
    entries: dict[str, Node] = attrs.field(factory=dict)


#: A node of a tree: a file, a symlink or a directory.
Node = File | Symlink | Dir


def _xattrs(value: Mapping[str, bytes] | Xattrs) -> Xattrs:
    items = value.items() if isinstance(value, Mapping) else value
    return tuple(sorted((k.encode() if isinstance(k, str) else k, v) for k, v in items))


def tree_from_mapping(entries: Mapping[str, Node | bytes | str], root: Dir | None = None) -> Dir:
    """Build a tree from ``{"path/in/tree": node}``.

    ``bytes`` stand for a plain 0644 file and ``str`` for a symlink target. Parent
    directories that are not listed are created as root-owned 0755 directories.
    """
    top = root if root is not None else Dir()
    for path in sorted(entries, key=lambda p: p.count("/")):
        node = entries[path]
        if isinstance(node, bytes):
            node = File(node)
        elif isinstance(node, str):
            node = Symlink(node)
        parts = [p for p in path.strip("/").split("/") if p]
        if not parts:
            if not isinstance(node, Dir):
                raise OstreeRepoError("the root of a tree must be a directory")
            top.mode, top.uid, top.gid, top.xattrs = node.mode, node.uid, node.gid, node.xattrs
            continue
        parent = top
        for part in parts[:-1]:
            child = parent.entries.setdefault(validate_filename(part), Dir())
            if not isinstance(child, Dir):
                raise OstreeRepoError(f"{path}: {part} is not a directory")
            parent = child
        name = validate_filename(parts[-1])
        existing = parent.entries.get(name)
        if isinstance(node, Dir) and isinstance(existing, Dir):
            node.entries.update(existing.entries)
        parent.entries[name] = node
    return top


def _read_xattrs(path: str) -> Xattrs:
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError:
        return ()
    found = []
    for name in names:
        value = os.getxattr(path, name, follow_symlinks=False)
        if value:  # libostree drops xattrs whose value is empty
            found.append((name.encode(), value))
    return tuple(sorted(found))


def tree_from_directory(
    path: str | os.PathLike[str], *, uid: int | None = None, gid: int | None = None
) -> Dir:
    """Read a directory tree as ``ostree commit --tree=dir=`` does.

    Owners and full modes come from ``lstat`` (``uid``/``gid`` override the owners of
    everything, like ``--owner-uid``/``--owner-gid``), xattrs are read without following
    links, and file contents are read later, when the file is committed. Device nodes,
    fifos and sockets are refused, as libostree refuses them.
    """
    root = Path(path)

    def owner(st: os.stat_result) -> tuple[int, int]:
        return (st.st_uid if uid is None else uid, st.st_gid if gid is None else gid)

    info = os.lstat(root)
    top = Dir(stat.S_IMODE(info.st_mode), *owner(info), _read_xattrs(str(root)))
    stack = [(root, top)]
    while stack:
        directory, node = stack.pop()
        with os.scandir(directory) as it:
            for entry in it:
                st = entry.stat(follow_symlinks=False)
                xattrs = _read_xattrs(entry.path)
                u, g = owner(st)
                if stat.S_ISDIR(st.st_mode):
                    child = Dir(stat.S_IMODE(st.st_mode), u, g, xattrs)
                    node.entries[entry.name] = child
                    stack.append((Path(entry.path), child))
                elif stat.S_ISREG(st.st_mode):
                    mode = stat.S_IMODE(st.st_mode)
                    node.entries[entry.name] = File(None, mode, u, g, xattrs, Path(entry.path))
                elif stat.S_ISLNK(st.st_mode):
                    target = os.readlink(entry.path)
                    node.entries[entry.name] = Symlink(target, u, g, xattrs)
                else:
                    raise OstreeRepoError(f"{entry.path}: not a file, symlink or directory")
    return top


#: Tar members up to this size are held in memory; larger ones are spooled to disk.
TAR_IN_MEMORY = 16 << 20


def tree_from_tar(path: str | os.PathLike[str], spool: str | os.PathLike[str]) -> Dir:
    """Read a filesystem tarball as ``ostree commit --tree=tar=`` does.

    Owners, modes and (PAX ``SCHILY.xattr.*``) xattrs come from the members; hardlinks
    share their target's contents. Members larger than :data:`TAR_IN_MEMORY` are spooled
    into the directory ``spool``, which must outlive the commit. Absolute names are made
    relative; ``..``, device nodes and fifos are refused.
    """
    import tarfile

    top = Dir()
    files: dict[str, File] = {}
    spooled = 0
    with tarfile.open(path, "r:*") as archive:
        for member in archive:
            name = member.name.strip("/")
            parts = [p for p in name.split("/") if p not in ("", ".")]
            if ".." in parts:
                raise OstreeRepoError(f"{path}: member {member.name!r} leaves the tree")
            xattrs = tuple(
                sorted(
                    (k.removeprefix("SCHILY.xattr.").encode(), v.encode("utf-8", "surrogateescape"))
                    for k, v in member.pax_headers.items()
                    if k.startswith("SCHILY.xattr.") and v
                )
            )
            mode = member.mode & 0o7777
            node: Node
            if member.isdir():
                node = Dir(mode, member.uid, member.gid, xattrs)
            elif member.isreg():
                reader = archive.extractfile(member)
                assert reader is not None
                if member.size > TAR_IN_MEMORY:
                    spooled += 1
                    target = Path(spool) / f"member-{spooled}"
                    with open(target, "wb") as out:
                        while chunk := reader.read(1 << 20):
                            out.write(chunk)
                    node = File(None, mode, member.uid, member.gid, xattrs, target)
                else:
                    node = File(reader.read(), mode, member.uid, member.gid, xattrs)
                files["/".join(parts)] = node
            elif member.issym():
                node = Symlink(member.linkname, member.uid, member.gid, xattrs)
            elif member.islnk():
                linked = files.get(member.linkname.strip("/").removeprefix("./"))
                if linked is None:
                    raise OstreeRepoError(f"{path}: hardlink {member.name!r} to an unknown file")
                node = linked
            else:
                raise OstreeRepoError(f"{path}: member {member.name!r} is not a file, link or dir")
            if not parts:
                if isinstance(node, Dir):
                    top.mode, top.uid, top.gid, top.xattrs = node.mode, node.uid, node.gid, xattrs
                continue
            tree_from_mapping({"/".join(parts): node}, root=top)
    return top
