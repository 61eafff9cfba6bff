"""Errors of static-delta generation (all :class:`~ostree_repo.errors.OstreeRepoError`)."""

from __future__ import annotations

from ostree_repo.errors import NotFoundError, OstreeRepoError

__all__ = ["CommitNotFoundError", "DeltaError", "DeltaWorkerError", "UnrelatedCommitsError"]


class DeltaError(OstreeRepoError):
    """A static delta cannot be made as asked."""


class CommitNotFoundError(NotFoundError, DeltaError):
    """An end of a requested delta is not a commit of the store (or of the version)."""


class UnrelatedCommitsError(DeltaError):
    """The two ends of a requested delta share no history."""


class DeltaWorkerError(DeltaError):
    """A worker process that generates deltas failed (it died, or could not start)."""
