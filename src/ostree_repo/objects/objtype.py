"""The kinds of OSTree objects and how each is named on disk."""

from __future__ import annotations

import enum

__all__ = ["ObjectType"]


class ObjectType(enum.Enum):
    """An OSTree object type; the value is libostree's name, which is also the file extension.

    Content objects (``FILE``) are stored compressed as ``.filez`` in archive repositories,
    which is the only layout this library writes.
    """

    FILE = "file"
    DIRTREE = "dirtree"
    DIRMETA = "dirmeta"
    COMMIT = "commit"
    TOMBSTONE_COMMIT = "tombstone-commit"
    COMMITMETA = "commitmeta"

    @property
    def is_meta(self) -> bool:
        """True for metadata objects (everything but content)."""
        return self is not ObjectType.FILE

    @property
    def is_hashed(self) -> bool:
        """True when the object's name is a hash of its bytes or content.

        ``.commitmeta`` and ``.tombstone-commit`` are named after the commit they belong to.
        """
        return self not in (ObjectType.COMMITMETA, ObjectType.TOMBSTONE_COMMIT)

    @property
    def extension(self) -> str:
        """The loose-object file extension in an archive repository (``filez`` for content)."""
        return "filez" if self is ObjectType.FILE else self.value

    @classmethod
    def from_extension(cls, ext: str) -> ObjectType:
        """Map a loose-object extension (``filez``, ``file``, ``dirtree``, ...) to its type."""
        if ext == "filez":
            return cls.FILE
        try:
            return cls(ext)
        except ValueError:
            from ostree_repo.errors import InvalidNameError

            raise InvalidNameError(f"unknown object extension {ext!r}") from None
