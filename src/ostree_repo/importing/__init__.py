"""Importing OSTree repositories into repository versions: from a directory
(:func:`import_directory`) or from a tar archive, plain or compressed (:func:`import_archive`).
"""

from ostree_repo.importing.archive import ArchiveLimits, ImportProgress, import_archive
from ostree_repo.importing.directory import import_directory

__all__ = ["ArchiveLimits", "ImportProgress", "import_archive", "import_directory"]
