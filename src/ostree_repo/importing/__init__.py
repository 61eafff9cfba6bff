"""Importing OSTree repositories into repository versions: from a directory
(:func:`import_directory`) or from a tar archive, plain or compressed (:func:`import_archive`).

Every refusal is an :class:`ArchiveError` or an :class:`UnsupportedRepositoryError` (both
:class:`~ostree_repo.errors.OstreeRepoError`); the hierarchy is in
:mod:`ostree_repo.importing.errors`, and every class of it is importable from here.
"""

from ostree_repo.importing.archive import (
    ArchiveLimits,
    ImportProgress,
    ProgressCallback,
    Readable,
    import_archive,
)
from ostree_repo.importing.directory import import_directory
from ostree_repo.importing.errors import (
    ArchiveError,
    ArchiveLimitError,
    BareRepositoryError,
    BrokenAliasError,
    CorruptArchiveError,
    CorruptObjectError,
    DuplicateMemberError,
    IncompleteArchiveError,
    InvalidRefError,
    MissingParentError,
    NoRepositoryError,
    NotAnArchiveError,
    RepositoryConfigError,
    TruncatedArchiveError,
    UnsafeArchiveError,
    UnsupportedMemberError,
    UnsupportedRepositoryError,
    UpdateConflictError,
)

__all__ = [
    "ArchiveError",
    "ArchiveLimitError",
    "ArchiveLimits",
    "BareRepositoryError",
    "BrokenAliasError",
    "CorruptArchiveError",
    "CorruptObjectError",
    "DuplicateMemberError",
    "ImportProgress",
    "IncompleteArchiveError",
    "InvalidRefError",
    "MissingParentError",
    "NoRepositoryError",
    "NotAnArchiveError",
    "ProgressCallback",
    "Readable",
    "RepositoryConfigError",
    "TruncatedArchiveError",
    "UnsafeArchiveError",
    "UnsupportedMemberError",
    "UnsupportedRepositoryError",
    "UpdateConflictError",
    "import_archive",
    "import_directory",
]
