"""Verifying objects as their bytes stream in: the gate every object passes into a store.

``new_verifier(objtype, checksum)`` returns an object with ``update(chunk)`` and
``finish()``. ``finish`` raises :class:`~ostree_repo.errors.ChecksumMismatchError` when
the bytes do not carry the announced name, or :class:`~ostree_repo.errors.InvalidObjectError`
when they are not a well-formed object of that type:

* ``dirtree``, ``dirmeta``, ``commit``: SHA-256 of the bytes, and the bytes decode strictly.
* ``file`` (``.filez``): the header is parsed and the DEFLATE stream inflated; the name is
  the canonical content checksum (see :mod:`.content`).
* ``commitmeta``: named after its commit; must be a normal-form ``a{sv}``.
* ``tombstone-commit``: named after the deleted commit, which it must name.

Metadata objects are buffered (they are small: libostree caps them at 10-128 MiB and
we cap at :data:`MAX_METADATA_SIZE`); content is streamed in bounded memory.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from typing import Protocol

from ostree_repo.errors import ChecksumMismatchError, GVariantError, InvalidObjectError
from ostree_repo.objects.content import FilezReader, filez_checksum
from ostree_repo.objects.metadata import Commit, DetachedMetadata, Tombstone
from ostree_repo.objects.names import validate_checksum
from ostree_repo.objects.objtype import ObjectType
from ostree_repo.objects.tree import DirMeta, DirTree, check_dirtree

__all__ = [
    "MAX_METADATA_SIZE",
    "Verifier",
    "find_invalid",
    "new_verifier",
    "verify_bytes",
    "whole_verifier",
]

#: Largest metadata object accepted (libostree 2023.4+ allows 128 MiB).
MAX_METADATA_SIZE = 128 * 1024 * 1024


class Verifier(Protocol):
    """Checks one object's bytes, fed in chunks."""

    def update(self, chunk: bytes | bytearray | memoryview) -> None:
        """Feed the next chunk of the stored form of the object."""

    def finish(self) -> None:
        """Raise unless the bytes fed are a valid object with the announced name."""


_PARSERS: dict[ObjectType, Callable[[bytes], object]] = {
    ObjectType.DIRTREE: DirTree.from_bytes,
    ObjectType.DIRMETA: DirMeta.from_bytes,
    ObjectType.COMMIT: Commit.from_bytes,
    ObjectType.COMMITMETA: DetachedMetadata.from_bytes,
    ObjectType.TOMBSTONE_COMMIT: Tombstone.from_bytes,
}


class _MetadataVerifier:
    def __init__(self, objtype: ObjectType, checksum: str) -> None:
        self._objtype = objtype
        self._checksum = checksum
        self._buf = bytearray()

    def update(self, chunk: bytes | bytearray | memoryview) -> None:
        self._buf += chunk
        if len(self._buf) > MAX_METADATA_SIZE:
            raise InvalidObjectError(
                f"{self._objtype.value} object larger than {MAX_METADATA_SIZE}"
            )

    def finish(self) -> None:
        _verify_metadata(self._objtype, self._checksum, bytes(self._buf))


class _ContentVerifier:
    def __init__(self, checksum: str) -> None:
        self._checksum = checksum
        self._reader = FilezReader(keep=False)

    def update(self, chunk: bytes | bytearray | memoryview) -> None:
        self._reader.feed(chunk)

    def finish(self) -> None:
        self._reader.finish()
        actual = self._reader.checksum()
        if actual != self._checksum:
            raise ChecksumMismatchError(self._checksum, actual, "content object")


def new_verifier(objtype: ObjectType, checksum: str) -> Verifier:
    """A verifier for an object of ``objtype`` that should be named ``checksum``."""
    validate_checksum(checksum)
    if objtype is ObjectType.FILE:
        return _ContentVerifier(checksum)
    return _MetadataVerifier(objtype, checksum)


def verify_bytes(objtype: ObjectType, checksum: str, data: bytes | bytearray | memoryview) -> None:
    """Verify a whole object held in memory (see :func:`new_verifier`).

    Same verdicts and errors as feeding ``data`` to :func:`new_verifier` and finishing,
    on a faster path: no verifier object, no copy of the bytes when they are ``bytes``.
    """
    if objtype is not ObjectType.FILE:
        validate_checksum(checksum)
        _verify_metadata(objtype, checksum, data)
        return
    # A content object's name is checked by comparing it with the hex digest, which
    # only a valid checksum can equal; so the (comparatively costly) name validation
    # only runs on failure, where it must win as it does in new_verifier.
    try:
        actual = filez_checksum(data)
    except Exception:
        validate_checksum(checksum)
        raise
    if actual != checksum:
        validate_checksum(checksum)
        raise ChecksumMismatchError(checksum, actual, "content object")


def _verify_metadata(
    objtype: ObjectType, checksum: str, data: bytes | bytearray | memoryview
) -> None:
    """The checks of :class:`_MetadataVerifier` on a whole buffer."""
    if type(data) is not bytes:
        data = bytes(data)
    what = f"{objtype.value} object"
    if len(data) > MAX_METADATA_SIZE:
        raise InvalidObjectError(f"{what} larger than {MAX_METADATA_SIZE}")
    if objtype.is_hashed:
        actual = hashlib.sha256(data).hexdigest()
        if actual != checksum:
            raise ChecksumMismatchError(checksum, actual, what)
    if objtype is ObjectType.DIRTREE:
        check_dirtree(data)
        return
    obj = _PARSERS[objtype](data)
    if isinstance(obj, Tombstone) and obj.commit != checksum:
        raise ChecksumMismatchError(checksum, obj.commit, what)


class _WholeVerifier:
    """Keeps the chunks (no copy) and checks them with :func:`verify_bytes` at the end."""

    __slots__ = ("_checksum", "_chunks", "_objtype")

    def __init__(self, objtype: ObjectType, checksum: str) -> None:
        self._objtype = objtype
        self._checksum = checksum
        self._chunks: list[bytes | bytearray | memoryview] = []

    def update(self, chunk: bytes | bytearray | memoryview) -> None:
        self._chunks.append(chunk)

    def finish(self) -> None:
        chunks = self._chunks
        data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        verify_bytes(self._objtype, self._checksum, data)


def whole_verifier(objtype: ObjectType, checksum: str) -> Verifier:
    """A verifier for an object already held in memory (a batch write): it keeps what it
    is fed and checks it whole at :meth:`~Verifier.finish`, on the faster path of
    :func:`verify_bytes`, with the same verdicts as :func:`new_verifier`. Not for
    streams: it holds the whole object."""
    return _WholeVerifier(objtype, checksum)


def find_invalid(
    objects: Iterable[tuple[str, ObjectType, bytes | bytearray | memoryview]],
) -> list[int]:
    """Indexes of the ``(checksum, type, bytes)`` objects that fail verification: which
    objects of a refused batch write were bad."""
    bad = []
    for i, (checksum, objtype, data) in enumerate(objects):
        try:
            verify_bytes(objtype, checksum, data)
        except (InvalidObjectError, GVariantError):
            bad.append(i)
    return bad
