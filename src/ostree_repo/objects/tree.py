"""Directory objects: :class:`DirTree` ``(a(say)a(sayay))`` and :class:`DirMeta` ``(uuua(ayay))``.

A dirtree lists a directory's files (name, content checksum) and subdirectories (name,
dirtree checksum, dirmeta checksum), each sorted by the UTF-8 bytes of the name. A dirmeta
holds a directory's owner, mode and xattrs, with uid/gid/mode stored byte-swapped.
"""

from __future__ import annotations

import hashlib
import stat
from typing import Any, NamedTuple, TypeAlias

import attrs

from ostree_repo.errors import InvalidObjectError
from ostree_repo.gvariant import dumps
from ostree_repo.gvariant._framing import offset_width, read_offsets, writer_width
from ostree_repo.objects._fields import (
    Xattrs,
    bswap32,
    check_mode,
    decode,
    xattrs_from_value,
    xattrs_to_value,
)

__all__ = [
    "DIRMETA_SIGNATURE",
    "DIRTREE_SIGNATURE",
    "DirMeta",
    "DirTree",
    "TreeDir",
    "TreeFile",
    "validate_filename",
]

DIRTREE_SIGNATURE = "(a(say)a(sayay))"
DIRMETA_SIGNATURE = "(uuua(ayay))"


def validate_filename(name: str) -> str:
    """Refuse names libostree refuses in a dirtree: ``.``, ``..`` and names with ``/``."""
    if name in (".", "..") or "/" in name:
        raise InvalidObjectError(f"invalid file name in dirtree: {name!r}")
    return name


class TreeFile(NamedTuple):
    """A non-directory entry of a dirtree: a regular file or symlink."""

    name: str
    checksum: str


class TreeDir(NamedTuple):
    """A subdirectory entry of a dirtree."""

    name: str
    tree: str
    meta: str


def _raw(checksum: str) -> bytes:
    raw = bytes.fromhex(checksum)
    if len(raw) != 32 or raw.hex() != checksum:
        raise InvalidObjectError(f"invalid checksum {checksum!r}")
    return raw


@attrs.frozen
class DirTree:
    """The entries of one directory. Lists keep their stored order (sorted by name)."""

    files: tuple[TreeFile, ...] = ()
    dirs: tuple[TreeDir, ...] = ()

    @classmethod
    def from_bytes(cls, data: bytes | bytearray | memoryview) -> DirTree:
        """Decode a ``.dirtree`` object (strict normal form, 32-byte checksums, valid names)."""
        files, dirs = decode(DIRTREE_SIGNATURE, data, "dirtree")
        if any(len(c) != 32 for _, c in files) or any(
            len(t) != 32 or len(m) != 32 for _, t, m in dirs
        ):
            raise InvalidObjectError("dirtree: checksum not 32 bytes")
        out_files = tuple([TreeFile(validate_filename(n), c.hex()) for n, c in files])
        out_dirs = tuple([TreeDir(validate_filename(n), t.hex(), m.hex()) for n, t, m in dirs])
        return cls(out_files, out_dirs)

    @classmethod
    def build(cls, files: list[TreeFile], dirs: list[TreeDir]) -> DirTree:
        """Make a dirtree with entries sorted as libostree sorts them (by UTF-8 bytes)."""
        return cls(
            tuple(sorted(files, key=lambda e: e.name.encode())),
            tuple(sorted(dirs, key=lambda e: e.name.encode())),
        )

    def to_value(self) -> tuple[Any, ...]:
        """The GVariant tuple for this dirtree."""
        return (
            [(validate_filename(f.name), _raw(f.checksum)) for f in self.files],
            [(validate_filename(d.name), _raw(d.tree), _raw(d.meta)) for d in self.dirs],
        )

    def to_bytes(self) -> bytes:
        """Serialise to the exact bytes libostree writes."""
        return dumps(DIRTREE_SIGNATURE, self.to_value())

    def checksum(self) -> str:
        """SHA-256 of the serialised bytes."""
        return hashlib.sha256(self.to_bytes()).hexdigest()


def check_dirtree(data: bytes | bytearray | memoryview) -> None:
    """Raise unless ``data`` is a valid ``.dirtree``: accepts exactly what
    :meth:`DirTree.from_bytes` accepts, without building the entries.

    The common layout (every entry shorter than 256 bytes, so with one-byte framing
    offsets) is checked directly; anything else goes through :meth:`DirTree.from_bytes`,
    which then raises or accepts.
    """
    buf = data if type(data) is bytes else bytes(data)
    if not _plain_dirtree(buf):
        DirTree.from_bytes(buf)


DirTreeRefs: TypeAlias = tuple[list[str], list[tuple[str, str]]]
"""What a dirtree refers to: file content checksums; (dirtree, dirmeta) of subdirectories."""


def dirtree_references(data: bytes | bytearray | memoryview) -> DirTreeRefs:
    """What a ``.dirtree`` refers to: its files' content checksums and its
    subdirectories' (dirtree, dirmeta) checksums, in order, for walks and closures that
    need no names. Accepts and refuses exactly what :meth:`DirTree.from_bytes` does; the
    common layout is read directly, without building entry objects."""
    buf = data if type(data) is bytes else bytes(data)
    files: list[bytes] = []
    dirs: list[tuple[bytes, bytes]] = []
    if _plain_dirtree(buf, files, dirs):
        return [f.hex() for f in files], [(t.hex(), m.hex()) for t, m in dirs]
    tree = DirTree.from_bytes(buf)
    return [f.checksum for f in tree.files], [(d.tree, d.meta) for d in tree.dirs]


def _plain_dirtree(
    buf: bytes,
    files_out: list[bytes] | None = None,
    dirs_out: list[tuple[bytes, bytes]] | None = None,
) -> bool:
    """True if ``buf`` is a valid dirtree of the common layout; False means "not sure".

    ``(a(say)a(sayay))`` in normal form: the two arrays, then the end of the first as a
    framing offset. With 32-byte checksums an entry of fewer than 256 bytes has one-byte
    offsets, so a ``(say)`` entry is ``name NUL csum off0`` with ``off0 = len - 33`` and
    a ``(sayay)`` entry is ``name NUL tree meta off1 off0`` with ``off0 = len - 66`` and
    ``off1 = len - 34``. Names are then checked all at once: joined by ``/`` they must be
    UTF-8 without NUL and with no other ``/``, and none may be ``.`` or ``..``.
    With ``files_out`` and ``dirs_out``, the raw checksums are collected into them (valid
    only when the result is True).
    """
    end = len(buf)
    width = offset_width(end)
    table = end - width
    if table < 0 or (width != 1 and writer_width(table, 1) != width):
        return False
    split = int.from_bytes(buf[table:end], "little")
    if split > table:
        return False
    names: list[bytes] = []
    files = _array_ends(buf, 0, split)
    if files is None:
        return False
    prev = 0
    for off in files:
        pos = off  # the files array starts at 0
        size = pos - prev
        if not 34 <= size <= 0xFF or buf[pos - 1] != size - 33 or buf[pos - 34]:
            return False
        names.append(buf[prev : pos - 34])
        if files_out is not None:
            files_out.append(buf[pos - 33 : pos - 1])
        prev = pos
    dirs = _array_ends(buf, split, table)
    if dirs is None:
        return False
    prev = split
    for off in dirs:
        pos = split + off
        size = pos - prev
        if (
            not 67 <= size <= 0xFF
            or buf[pos - 1] != size - 66
            or buf[pos - 2] != size - 34
            or buf[pos - 67]
        ):
            return False
        names.append(buf[prev : pos - 67])
        if dirs_out is not None:
            dirs_out.append((buf[pos - 66 : pos - 34], buf[pos - 34 : pos - 2]))
        prev = pos
    if not names:
        return True
    joined = b"/".join(names)
    if joined.count(b"/") != len(names) - 1 or b"\0" in joined:
        return False
    try:
        joined.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return b"." not in names and b".." not in names


def _array_ends(buf: bytes, start: int, end: int) -> tuple[int, ...] | None:
    """The framing offsets (element ends, relative to ``start``) of a normal-form array
    of variable-size elements in ``buf[start:end]``, or None if its framing is bad."""
    size = end - start
    if size == 0:
        return ()
    width = offset_width(size)
    last = int.from_bytes(buf[end - width : end], "little")
    count, rest = divmod(size - last, width)
    if last > size or rest or count == 0 or writer_width(last, count) != width:
        return None
    ends = read_offsets(buf, start + last, count, width)
    # the last offset is ``last``: none may point past it (into the offset table or beyond)
    return ends if max(ends) == last else None


@attrs.frozen
class DirMeta:
    """A directory's owner, permissions and extended attributes.

    ``xattrs`` pairs are (name without its NUL terminator, raw value).
    """

    uid: int = 0
    gid: int = 0
    mode: int = stat.S_IFDIR | 0o755
    xattrs: Xattrs = ()

    @classmethod
    def from_bytes(cls, data: bytes | bytearray | memoryview) -> DirMeta:
        """Decode a ``.dirmeta`` object."""
        uid, gid, mode, xattrs = decode(DIRMETA_SIGNATURE, data, "dirmeta")
        mode = bswap32(mode)
        check_mode(mode, (stat.S_IFDIR,), "dirmeta")
        return cls(bswap32(uid), bswap32(gid), mode, xattrs_from_value(xattrs, "dirmeta"))

    def to_bytes(self) -> bytes:
        """Serialise to the exact bytes libostree writes."""
        check_mode(self.mode, (stat.S_IFDIR,), "dirmeta")
        value = (bswap32(self.uid), bswap32(self.gid), bswap32(self.mode))
        return dumps(DIRMETA_SIGNATURE, (*value, xattrs_to_value(self.xattrs)))

    def checksum(self) -> str:
        """SHA-256 of the serialised bytes."""
        return hashlib.sha256(self.to_bytes()).hexdigest()
