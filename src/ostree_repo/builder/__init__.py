"""Building OSTree commits in pure Python, checksum-identical to ``ostree commit``."""

from ostree_repo.builder.archive import CommitArchive, write_commit_archive
from ostree_repo.builder.build import AUTO, commit_tree, write_tree
from ostree_repo.builder.read import flatten, tree_from_commit
from ostree_repo.builder.tree import (
    Dir,
    File,
    Node,
    Symlink,
    Xattrs,
    tree_from_directory,
    tree_from_mapping,
    tree_from_tar,
)

__all__ = [
    "AUTO",
    "CommitArchive",
    "Dir",
    "File",
    "Node",
    "Symlink",
    "Xattrs",
    "commit_tree",
    "flatten",
    "tree_from_commit",
    "tree_from_directory",
    "tree_from_mapping",
    "tree_from_tar",
    "write_commit_archive",
    "write_tree",
]
