"""ostree_repo: manage OSTree repositories in pure Python.

Layers, each using only the ones below it: :mod:`ostree_repo.gvariant` (GVariant codec),
:mod:`ostree_repo.objects` (OSTree object codec), :mod:`ostree_repo.store` (object stores),
then repositories and versions, import, sync, copy, and the server, CLI and pytest plugin.
"""

from ostree_repo.errors import (
    ChecksumMismatchError,
    ConflictError,
    GVariantError,
    InvalidNameError,
    InvalidObjectError,
    NotFoundError,
    OstreeRepoError,
    StoreError,
)

__version__ = "0.1.0"

__all__ = [
    "ChecksumMismatchError",
    "ConflictError",
    "GVariantError",
    "InvalidNameError",
    "InvalidObjectError",
    "NotFoundError",
    "OstreeRepoError",
    "StoreError",
    "__version__",
]
