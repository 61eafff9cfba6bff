"""Why an archive import was refused.

Every error here is an :class:`~ostree_repo.errors.OstreeRepoError` through
:class:`ArchiveError`; when one is raised, no repository version was made (objects already
stored stay unreferenced until ``reclaim``). The hierarchy::

    ArchiveError
    ├── NotAnArchiveError          not a tar, nor a gzip/xz/bzip2/zstd-compressed tar
    ├── CorruptArchiveError        damaged compressed stream or tar header
    │   └── TruncatedArchiveError  ends early (also exactly between two members)
    ├── UnsafeArchiveError         absolute or ``..`` paths, escaping links, devices, fifos
    │   └── DuplicateMemberError   the same path twice
    ├── UnsupportedMemberError     a link or special member inside the repository
    ├── ArchiveLimitError          a limit of :class:`~.archive.ArchiveLimits` exceeded
    ├── NoRepositoryError          nothing at the repository directory
    ├── RepositoryConfigError      ``config`` missing or not an archive repository
    │   └── BareRepositoryError    a bare-mode repository (``.file`` objects)
    ├── CorruptObjectError         an object, detached metadata, tombstone or delta is bad
    ├── InvalidRefError            a ref holds garbage or names a commit nobody has
    │   └── BrokenAliasError       a ref symlink (alias) that libostree could not list
    ├── IncompleteArchiveError     an object a new commit needs is nowhere
    │   └── MissingParentError     ... and the commit's parent is not in the repository
    └── UpdateConflictError        ``ref=``: the archive does not build on the ref's head
"""

from __future__ import annotations

from ostree_repo.errors import InvalidObjectError, OstreeRepoError


class UnsupportedRepositoryError(OstreeRepoError):
    """The directory or archive does not hold an importable (archive-mode) OSTree repository."""


__all__ = [
    "ArchiveError",
    "ArchiveLimitError",
    "BareRepositoryError",
    "BrokenAliasError",
    "CorruptArchiveError",
    "CorruptObjectError",
    "DuplicateMemberError",
    "IncompleteArchiveError",
    "InvalidRefError",
    "MissingParentError",
    "NoRepositoryError",
    "NotAnArchiveError",
    "RepositoryConfigError",
    "TruncatedArchiveError",
    "UnsafeArchiveError",
    "UnsupportedMemberError",
    "UnsupportedRepositoryError",
    "UpdateConflictError",
]


class ArchiveError(OstreeRepoError):
    """An archive could not be imported; nothing was published."""


class NotAnArchiveError(ArchiveError):
    """The input is not a tar archive (plain or gzip, xz, bzip2, zstd compressed), or empty."""


class CorruptArchiveError(ArchiveError):
    """The compressed stream or a tar header is damaged."""


class TruncatedArchiveError(CorruptArchiveError):
    """The archive ends early: inside a member, inside the compressed stream, or without
    the two zero blocks that end every tar stream (an archive cut between members)."""


class UnsafeArchiveError(ArchiveError):
    """A member that extracting tools would write outside the target: an absolute path, a
    ``..`` component, a symlink or hardlink leading out of the repository directory, a
    device node or a fifo. Refused wherever it is in the archive."""


class DuplicateMemberError(UnsafeArchiveError):
    """The same path appears twice (a later copy would silently replace the first)."""


class UnsupportedMemberError(ArchiveError):
    """A member of the repository that an OSTree repository never holds and that we do not
    follow: a symlink or hardlink staying inside the repository, or an exotic tar type."""


class ArchiveLimitError(ArchiveError):
    """A sanity limit was exceeded (member count, path depth or length, a member's size,
    expanded size or compression ratio); see :class:`.ArchiveLimits`."""


class NoRepositoryError(ArchiveError):
    """Nothing was found at the repository directory inside the archive."""


class RepositoryConfigError(ArchiveError, UnsupportedRepositoryError):
    """The repository's ``config`` is missing, unreadable, or not ``repo_version=1``."""


class BareRepositoryError(RepositoryConfigError):
    """The repository is in bare mode (``config`` says so, or it holds ``.file`` objects);
    only archive-mode repositories (``.filez``) can be imported."""


class CorruptObjectError(ArchiveError, InvalidObjectError):
    """An object (or ``.commitmeta``, tombstone, delta superblock or part) is corrupt,
    empty, or not what its name says. ``member`` is its path in the archive."""

    def __init__(self, member: str, reason: str) -> None:
        super().__init__(f"{member}: {reason}")
        self.member = member


class InvalidRefError(ArchiveError):
    """A ref file is not a checksum, has an invalid name, or names a commit that is neither
    in the archive nor in the repository."""


class BrokenAliasError(InvalidRefError):
    """A symlink under ``refs/`` (a ref alias) that libostree could not list: its target
    is missing or a directory, its chain of links loops; or one that leaves ``refs/``, the
    repository, or is absolute (libostree would read a file that is no ref)."""


class IncompleteArchiveError(ArchiveError):
    """An object that a commit of the archive needs is neither in the archive nor already
    in the store."""


class MissingParentError(IncompleteArchiveError):
    """An update archive (a commit whose parent is not in the archive) whose parent is not
    in the repository either, and which lacks objects that the parent would have held."""


class UpdateConflictError(ArchiveError):
    """With ``ref=``: the archive has no such ref, or its commits do not build on the
    ref's current head in the repository."""
