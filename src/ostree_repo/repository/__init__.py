"""Repositories and their immutable, numbered versions, kept in an object store.

A store holds any number of named repositories. Each has a log of versions (0 is empty);
a version holds refs and commits, and through the commits' closures every object their
trees reach, plus detached metadata, static deltas and a generated summary.
"""

from ostree_repo.repository._aliases import AliasError
from ostree_repo.repository._content import diff
from ostree_repo.repository._delta_policy import (
    DeltaPolicy,
    DeltaPolicyHook,
    delete_deltas,
    generate_deltas,
)
from ostree_repo.repository._fence import ReclaimConflictError
from ostree_repo.repository.accounting import Usage, UsageReport, usage
from ostree_repo.repository.closure import Closure, MissingObjectError
from ostree_repo.repository.fsck import RepairSource, StoreSource
from ostree_repo.repository.hooks import PublishHook, SettingsError, default_hooks
from ostree_repo.repository.manager import FsckReport, ReclaimReport, RepositoryManager
from ostree_repo.repository.records import CommitInfo, DeltaInfo, RepoConfig, VersionRecord
from ostree_repo.repository.repository import Change, Repository, VersionNotFoundError
from ostree_repo.repository.retention import RetentionHook, RetentionPolicy, apply_retention
from ostree_repo.repository.signing_policy import (
    MissingKeyError,
    SigningPolicy,
    UnsignedError,
    Verdict,
    requirement,
    resign,
    signing_settings,
    verify_version,
)

__all__ = [
    "AliasError",
    "Change",
    "Closure",
    "CommitInfo",
    "DeltaInfo",
    "DeltaPolicy",
    "DeltaPolicyHook",
    "FsckReport",
    "MissingKeyError",
    "MissingObjectError",
    "PublishHook",
    "ReclaimConflictError",
    "ReclaimReport",
    "RepairSource",
    "RepoConfig",
    "Repository",
    "RepositoryManager",
    "RetentionHook",
    "RetentionPolicy",
    "SettingsError",
    "SigningPolicy",
    "StoreSource",
    "UnsignedError",
    "Usage",
    "UsageReport",
    "Verdict",
    "VersionNotFoundError",
    "VersionRecord",
    "apply_retention",
    "default_hooks",
    "delete_deltas",
    "diff",
    "generate_deltas",
    "requirement",
    "resign",
    "signing_settings",
    "usage",
    "verify_version",
]
