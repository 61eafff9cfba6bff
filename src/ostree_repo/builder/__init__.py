"""Building OSTree commits in pure Python, checksum-identical to ``ostree commit``."""

from ostree_repo.builder.build import AUTO, commit_tree, write_tree
from ostree_repo.builder.tree import (
    Dir,
    File,
    Symlink,
    tree_from_directory,
    tree_from_mapping,
    tree_from_tar,
)

__all__ = [
    "AUTO",
    "Dir",
    "File",
    "Symlink",
    "commit_tree",
    "tree_from_directory",
    "tree_from_mapping",
    "tree_from_tar",
    "write_tree",
]
