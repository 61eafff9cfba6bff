"""Importing OSTree repositories into repository versions."""

from ostree_repo.importing.directory import import_directory

__all__ = ["import_directory"]
