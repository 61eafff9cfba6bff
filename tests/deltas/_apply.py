"""Apply a static delta in Python, as libostree's ``_ostree_static_delta_part_execute``
does: the tests' second oracle (the first is the real ``ostree`` client), quick enough
for property tests. It rebuilds every object a delta carries and checks its checksum.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from ostree_repo.deltas import _bsdiff as bsdiff
from ostree_repo.deltas import _opcodes as op
from ostree_repo.deltas._opcodes import read_varint
from ostree_repo.errors import InvalidObjectError
from ostree_repo.objects import DeltaSuperblock, ObjectType
from ostree_repo.objects.content import FileHeader, content_checksum
from ostree_repo.objects.delta import DeltaPart

#: objects rebuilt: (type, checksum) -> metadata bytes, or (header, content bytes)
Objects = dict[tuple[ObjectType, str], object]


def apply_part(
    part_file: bytes,
    objects: tuple[tuple[ObjectType, str], ...],
    read_source: Callable[[str], bytes],
) -> Objects:
    """Execute one part; ``read_source(checksum)`` gives an old object's content."""
    part = DeltaPart.from_bytes(part_file)
    out: Objects = {}
    ops, blob = part.ops, part.blob
    pos = 0
    index = 0
    source: str | None = None
    building: tuple[ObjectType, str, FileHeader, int] | None = None
    pieces: list[bytes] = []

    def arg() -> int:
        nonlocal pos
        value, pos = read_varint(ops, pos)
        return value

    def content_header(mode_index: int, xattr_index: int, target: str = "") -> FileHeader:
        uid, gid, mode = part.modes[mode_index]
        return FileHeader(uid, gid, mode, target, part.xattrs[xattr_index])

    def finish(objtype: ObjectType, checksum: str, header: FileHeader, data: bytes) -> None:
        actual = content_checksum(header, b"" if header.is_symlink else data)
        if actual != checksum:
            raise InvalidObjectError(f"rebuilt {checksum} as {actual}")
        out[(objtype, checksum)] = (header, data)

    while pos < len(ops):
        code = ops[pos]
        pos += 1
        if code == op.OPEN_SPLICE_AND_CLOSE:
            objtype, checksum = objects[index]
            index += 1
            if objtype.is_meta:
                length, offset = arg(), arg()
                data = blob[offset : offset + length]
                if hashlib.sha256(data).hexdigest() != checksum:
                    raise InvalidObjectError(f"rebuilt metadata {checksum} wrongly")
                out[(objtype, checksum)] = data
            else:
                mode_index, xattr_index, size, offset = arg(), arg(), arg(), arg()
                data = blob[offset : offset + size]
                mode = part.modes[mode_index][2]
                if mode & 0o170000 == 0o120000:
                    header = content_header(mode_index, xattr_index, data.decode())
                    finish(objtype, checksum, header, b"")
                else:
                    finish(objtype, checksum, content_header(mode_index, xattr_index), data)
        elif code == op.OPEN:
            objtype, checksum = objects[index]
            index += 1
            mode_index, xattr_index, size = arg(), arg(), arg()
            building = (objtype, checksum, content_header(mode_index, xattr_index), size)
            pieces = []
        elif code == op.WRITE:
            length, offset = arg(), arg()
            data = (
                read_source(source)[offset : offset + length]
                if source
                else blob[offset : offset + length]
            )
            pieces.append(data)
        elif code == op.SET_READ_SOURCE:
            offset = arg()
            source = blob[offset : offset + 32].hex()
        elif code == op.UNSET_READ_SOURCE:
            source = None
        elif code == op.BSPATCH:
            offset, length = arg(), arg()
            assert building is not None and source is not None
            pieces.append(
                bsdiff.patch(read_source(source), blob[offset : offset + length], building[3])
            )
        elif code == op.CLOSE:
            assert building is not None
            objtype, checksum, header, size = building
            data = b"".join(pieces)
            if len(data) != size:
                raise InvalidObjectError(f"{checksum}: {len(data)} bytes, not {size}")
            finish(objtype, checksum, header, data)
            building = None
            source = None
        else:
            raise InvalidObjectError(f"unknown opcode {code:#x}")
    if index != len(objects):
        raise InvalidObjectError(f"part made {index} objects, lists {len(objects)}")
    return out


def apply_delta(
    superblock: bytes, parts: list[bytes], read_source: Callable[[str], bytes]
) -> Objects:
    """Every object the delta's parts make (checked against the part headers)."""
    block = DeltaSuperblock.from_bytes(superblock)
    out: Objects = {}
    for index, header in enumerate(block.parts):
        data = block.inline_part(index)
        if data is None:
            data = parts[index]
        if hashlib.sha256(data).hexdigest() != header.checksum or len(data) != header.size:
            raise InvalidObjectError(f"part {index} does not match its header")
        made = apply_part(data, header.objects, read_source)
        # a symlink counts 0, as libostree counts it
        usize = sum(len(v) if isinstance(v, bytes) else len(v[1]) for v in made.values())  # type: ignore[arg-type,index]
        if usize != header.usize:
            raise InvalidObjectError(f"part {index}: usize {header.usize}, made {usize}")
        out.update(made)
    return out
