"""The one exception hierarchy of ostree_repo.

Every error this library raises on purpose is an :class:`OstreeRepoError`. Callers that
only want to know "did the operation fail because of its input or its storage" catch that;
callers that care about the reason catch a subclass.
"""

from __future__ import annotations

__all__ = [
    "ChecksumMismatchError",
    "ConflictError",
    "GVariantError",
    "InvalidNameError",
    "InvalidObjectError",
    "NotFoundError",
    "OstreeRepoError",
    "StoreError",
]


class OstreeRepoError(Exception):
    """Root of every error raised by ostree_repo."""


class GVariantError(OstreeRepoError):
    """Bytes are not a normal-form GVariant of the expected type, or a value cannot be encoded."""


class InvalidObjectError(OstreeRepoError):
    """An OSTree object is malformed: wrong structure, bad field values, or not normal form."""


class ChecksumMismatchError(InvalidObjectError):
    """An object's bytes do not hash to the checksum it is stored or announced under."""

    def __init__(self, expected: str, actual: str, what: str = "object") -> None:
        super().__init__(f"{what} checksum mismatch: expected {expected}, got {actual}")
        self.expected = expected
        self.actual = actual


class InvalidNameError(OstreeRepoError, ValueError):
    """A checksum, ref name, repository name or other identifier is not valid."""


class StoreError(OstreeRepoError):
    """The object store failed to read or write."""


class NotFoundError(StoreError, KeyError):
    """The requested object or file does not exist in the store."""

    def __str__(self) -> str:  # KeyError quotes its argument; we want plain text
        return str(self.args[0]) if self.args else "not found"


class ConflictError(StoreError):
    """A conditional write lost: the file existed, or changed since it was read."""
