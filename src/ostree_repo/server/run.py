"""Run the server under a real ASGI server: granian (the default) or uvicorn.

granian was chosen by measurement (``benchmarks/bench_serve.py``, ``docs/serving.md``):
its HTTP layer is written in Rust, and with our raw ASGI app it serves small objects
markedly faster than uvicorn; hypercorn was far slower in earlier measurements and is not
offered. Both are optional dependencies (``pip install 'ostree-repo[server]'``).
"""

from __future__ import annotations

import contextlib
import copy
import functools
import logging
from collections.abc import Collection, Mapping
from typing import Any

from ostree_repo.errors import OstreeRepoError
from ostree_repo.server.app import OstreeServer, create_app

__all__ = ["SERVERS", "run_server"]

#: The ASGI servers :func:`run_server` can run the app on (granian is the fastest).
SERVERS = ("granian", "uvicorn")

_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def _logging_config(base: Mapping[str, Any], access_log: bool) -> dict[str, Any]:
    """``base`` (the ASGI server's dictConfig) plus our loggers, writing to stderr."""
    config = copy.deepcopy(dict(base))
    config["disable_existing_loggers"] = False
    for handler in config.get("handlers", {}).values():  # granian's log to stdout
        if handler.get("stream") == "ext://sys.stdout":
            handler["stream"] = "ext://sys.stderr"
    config.setdefault("formatters", {})["ostree_repo"] = {"format": _FORMAT}
    config.setdefault("handlers", {})["ostree_repo"] = {
        "class": "logging.StreamHandler",
        "stream": "ext://sys.stderr",
        "formatter": "ostree_repo",
    }
    loggers = config.setdefault("loggers", {})
    loggers["ostree_repo"] = {"handlers": ["ostree_repo"], "level": "INFO", "propagate": False}
    loggers["ostree_repo.server.access"] = {"level": "INFO" if access_log else "WARNING"}
    return config


def _load_app(store_url: str, options: dict[str, Any]) -> OstreeServer:
    """Make the app inside a server worker (the store is opened on lifespan startup)."""
    return create_app(store_url, **options)


def run_server(
    store_url: str,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    tokens: Mapping[str, str | Collection[str]] | None = None,
    server: str = "granian",
    workers: int = 1,
    access_log: bool = False,
    **app_options: Any,
) -> None:
    """Serve the store at ``store_url`` on ``host:port`` until interrupted (blocking).

    ``tokens``: per-repository tokens (see :mod:`ostree_repo.server.auth`). ``server``:
    ``granian`` or ``uvicorn``. ``workers``: server processes (granian only); each
    opens the store and keeps its own caches. ``access_log``: log every request on
    stderr (method, path, status, bytes; never credentials). Other options go to
    :func:`~ostree_repo.server.create_app`.
    """
    options = dict(app_options, tokens=dict(tokens) if tokens else None)
    if server == "granian":
        _run_granian(store_url, options, host, port, workers=workers, access_log=access_log)
    elif server == "uvicorn":
        if workers != 1:
            raise OstreeRepoError("--workers is only supported with granian")
        _run_uvicorn(store_url, options, host, port, access_log)
    else:
        raise OstreeRepoError(f"unknown server {server!r}; choose one of {', '.join(SERVERS)}")


def _run_granian(
    store_url: str,
    options: dict[str, Any],
    host: str,
    port: int,
    *,
    workers: int,
    access_log: bool,
) -> None:
    try:
        from granian.constants import Interfaces
        from granian.log import LOGGING_CONFIG
        from granian.server import Server
    except ImportError:
        raise OstreeRepoError(
            "granian is not installed: pip install 'ostree-repo[server]'"
        ) from None
    granian = Server(
        "ostree_repo.server:create_app",  # for display only: the loader below makes the app
        address=host,
        port=port,
        interface=Interfaces.ASGI,
        workers=workers,
        log_dictconfig=_logging_config(LOGGING_CONFIG, access_log),
        log_access=False,
        websockets=False,
    )
    granian.serve(target_loader=functools.partial(_load_app, store_url, options), wrap_loader=False)


def _run_uvicorn(
    store_url: str, options: dict[str, Any], host: str, port: int, access_log: bool
) -> None:
    try:
        import uvicorn
        from uvicorn.config import LOGGING_CONFIG
    except ImportError:
        raise OstreeRepoError(
            "uvicorn is not installed: pip install 'ostree-repo[uvicorn]'"
        ) from None
    app = _load_app(store_url, options)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        lifespan="on",
        access_log=False,
        log_config=_logging_config(LOGGING_CONFIG, access_log),
        server_header=False,
    )
    # uvicorn re-raises the Ctrl-C it stopped on: a normal stop, as it is with granian
    with contextlib.suppress(KeyboardInterrupt):
        uvicorn.Server(config).run()
    logging.getLogger("ostree_repo.server").info("server stopped")
