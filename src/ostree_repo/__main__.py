"""``python -m ostree_repo``: the same as the ``ostree-repo`` command."""

import sys

from ostree_repo.cli import main

sys.exit(main())
