"""``python -m ostree_repo``: the same as the ``ostree-repo`` command."""

from ostree_repo.cli import run

run()
