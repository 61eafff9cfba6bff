"""Reading a repository's ``config``: what the importers accept."""

from __future__ import annotations

import configparser

from ostree_repo.errors import InvalidNameError
from ostree_repo.importing.errors import BareRepositoryError, RepositoryConfigError
from ostree_repo.objects.names import validate_collection_id
from ostree_repo.repository.records import RepoConfig

__all__ = ["ARCHIVE_MODES", "parse_repo_config"]

ARCHIVE_MODES = ("archive", "archive-z2")


def parse_repo_config(member: str, data: bytes) -> RepoConfig:
    """Parse a repository ``config`` (read from ``member``); refuse all but archive mode.

    Read as GLib's key files are: keys are case-sensitive, a key or group given twice is
    not an error (the last value wins), only ``=`` separates and only ``#`` comments.
    """
    parser = configparser.ConfigParser(
        interpolation=None, strict=False, delimiters=("=",), comment_prefixes=("#",)
    )
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    try:
        parser.read_string(data.decode("utf-8"))
    except (configparser.Error, UnicodeDecodeError) as e:
        raise RepositoryConfigError(f"{member}: unreadable repository config ({e})") from None
    core = parser["core"] if parser.has_section("core") else {}
    if core.get("repo_version") != "1":
        raise RepositoryConfigError(f"{member}: repo_version is not 1")
    mode = core.get("mode", "bare")
    if mode not in ARCHIVE_MODES:
        raise BareRepositoryError(
            f"{member}: a {mode}-mode repository; only archive-mode repositories import"
        )
    collection_id = core.get("collection-id") or None
    if collection_id is not None:
        try:
            validate_collection_id(collection_id)
        except InvalidNameError as e:
            raise RepositoryConfigError(f"{member}: {e}") from None
    return RepoConfig(mode=mode, collection_id=collection_id)  # either name, kept as given
