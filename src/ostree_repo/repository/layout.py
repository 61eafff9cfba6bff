"""Where the repository layer keeps its named files in a store.

::

    repos/NAME.json                  the repository exists (create-if-absent)
    versions/NAME/0000000042.json    version record 42 of NAME (create-if-absent, immutable)
    deleted/NAME/0000000042          version 42 was deleted (its number is never reused);
                                     "collected" once its record is gone
    collected/NAME.json              {"through": N}: every number up to N was used, its
                                     version deleted and collected (record and marker)
    closures/AB/CDEF….closure        objects reachable from commit ABCDEF… (with sizes)
    blobs/AB/CDEF…                   content-addressed bytes: commitmeta, delta superblocks
                                     and parts, summaries and their signatures

Objects themselves live in the store's object space, shared by every repository.

Internal to ostree_repo: the layout is the repository layer's (docs/versions.md).
"""

from __future__ import annotations

import re

from ostree_repo.errors import InvalidNameError

__all__ = [
    "blob_path",
    "closure_path",
    "collected_path",
    "deleted_path",
    "parse_version_path",
    "repo_path",
    "validate_repository_name",
    "version_path",
]

_REPO_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_NUMBER_WIDTH = 10


def validate_repository_name(name: str) -> str:
    """Letters, digits, ``.``, ``_`` and ``-``; starting with a letter or digit; ≤ 128."""
    if not isinstance(name, str) or not _REPO_NAME.fullmatch(name) or name.endswith(".json"):
        raise InvalidNameError(f"invalid repository name {name!r}")
    return name


def repo_path(name: str) -> str:
    """The marker file that says repository ``name`` exists."""
    return f"repos/{validate_repository_name(name)}.json"


def version_path(name: str, number: int) -> str:
    """The record of version ``number`` of repository ``name``."""
    return f"versions/{validate_repository_name(name)}/{number:0{_NUMBER_WIDTH}d}.json"


def deleted_path(name: str, number: int) -> str:
    """The marker that version ``number`` of ``name`` was deleted."""
    return f"deleted/{validate_repository_name(name)}/{number:0{_NUMBER_WIDTH}d}"


def collected_path(name: str) -> str:
    """The mark of how far the version log of ``name`` was collected."""
    return f"collected/{validate_repository_name(name)}.json"


def parse_version_path(path: str) -> int | None:
    """The version number in a record or marker path, or None if it is not one."""
    base = path.rsplit("/", 1)[-1].removesuffix(".json")
    return int(base) if base.isdigit() and len(base) == _NUMBER_WIDTH else None


def closure_path(commit: str) -> str:
    """The closure file of ``commit``."""
    return f"closures/{commit[:2]}/{commit[2:]}.closure"


def blob_path(digest: str) -> str:
    """A content-addressed blob."""
    return f"blobs/{digest[:2]}/{digest[2:]}"
