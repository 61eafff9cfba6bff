"""Syncing repositories from remote OSTree HTTP servers (see ``docs/sync.md``).

::

    from ostree_repo.sync import sync_repository

    result = await sync_repository(manager, "fedora", "https://example.org/repo", depth=-1)
    print(result.version.number if result.version else "nothing changed")
"""

from ostree_repo.sync.errors import (
    InvalidOptionsError,
    RemoteChecksumError,
    RemoteError,
    SyncError,
    UnsupportedRemoteError,
)
from ostree_repo.sync.options import RemoteKeywords, RemoteOptions
from ostree_repo.sync.remote import Remote, RemoteStats
from ostree_repo.sync.sync import SyncProgress, SyncResult, select_refs, sync_repository

__all__ = [
    "InvalidOptionsError",
    "Remote",
    "RemoteChecksumError",
    "RemoteError",
    "RemoteKeywords",
    "RemoteOptions",
    "RemoteStats",
    "SyncError",
    "SyncProgress",
    "SyncResult",
    "UnsupportedRemoteError",
    "select_refs",
    "sync_repository",
]
