"""Errors of the sync layer. None of them ever carries request headers (tokens)."""

from __future__ import annotations

from ostree_repo.errors import ChecksumMismatchError, OstreeRepoError

__all__ = [
    "InvalidOptionsError",
    "RemoteChecksumError",
    "RemoteError",
    "SyncError",
    "UnsupportedRemoteError",
]


class SyncError(OstreeRepoError):
    """A sync could not be completed (no version was made)."""


class InvalidOptionsError(SyncError, ValueError):
    """Options that cannot work (a concurrency below 1, a negative timeout)."""


class UnsupportedRemoteError(SyncError):
    """The URL or the remote repository cannot be synced (not http(s), not archive mode)."""


class RemoteError(SyncError):
    """A request to the remote failed for good (after retries).

    ``status`` is the HTTP status (None for a network error), ``url`` the URL requested.
    """

    def __init__(self, message: str, *, url: str, status: int | None = None) -> None:
        super().__init__(message)
        self.url = url
        self.status = status


class RemoteChecksumError(ChecksumMismatchError, SyncError):
    """The remote kept serving bytes that are not the object they are named after."""

    def __init__(self, expected: str, actual: str, url: str, what: str) -> None:
        super().__init__(expected, actual, f"{what} from {url}")
        self.url = url
