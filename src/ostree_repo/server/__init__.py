"""Serve repository versions over HTTP to real ``ostree pull`` clients (ASGI).

::

    from ostree_repo.server import create_app

    app = create_app("./ostree-store", tokens={"private-repo": "s3cret"})
    # run it with any ASGI server, or mount it in Starlette/FastAPI under any prefix

``/NAME/`` serves the latest version of repository NAME, ``/NAME/versions/N/`` version N;
see ``docs/serving.md`` for the URL layout, caching and access control, and
:func:`run_server` (``ostree-repo serve``) to run it.
"""

from ostree_repo.server.app import OstreeServer, create_app
from ostree_repo.server.auth import Accepted, TokenSource
from ostree_repo.server.run import SERVERS, run_server

__all__ = ["SERVERS", "Accepted", "OstreeServer", "TokenSource", "create_app", "run_server"]
