"""The ``serve`` verb: serve the store's repositories to ``ostree pull`` clients.

Internal to ostree_repo: the CLI's interface is the command line (:func:`ostree_repo.cli.main`).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ostree_repo.cli._verb import Output, Verb
from ostree_repo.errors import OstreeRepoError
from ostree_repo.server.auth import parse_token_args
from ostree_repo.server.run import SERVERS, run_server

__all__ = ["VERBS"]


def _serve_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port to listen on (8000)")
    parser.add_argument(
        "--token",
        action="append",
        default=[],
        metavar="REPO=TOKEN",
        help="require TOKEN (bearer, or basic-auth password) for REPO; '*=TOKEN' for all "
        "repositories; repeatable (prefer --token-file: command lines are visible to others)",
    )
    parser.add_argument(
        "--token-file",
        action="append",
        default=[],
        metavar="FILE",
        help="read REPO=TOKEN lines from FILE ('#' comments and blank lines ignored)",
    )
    parser.add_argument(
        "--server", choices=SERVERS, default="granian", help="ASGI server (granian: fastest)"
    )
    parser.add_argument("--workers", type=int, default=1, help="worker processes (granian)")
    parser.add_argument("--access-log", action="store_true", help="log every request on stderr")


def _read_token_file(path: str) -> list[str]:
    lines = Path(path).read_text("utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


def _serve(args: argparse.Namespace) -> Output:
    values = list(args.token)
    for path in args.token_file:
        values += _read_token_file(path)
    try:
        tokens = parse_token_args(values)
    except ValueError:
        raise OstreeRepoError("--token and token files take REPO=TOKEN") from None
    if not 0 <= args.port <= 65535:
        raise OstreeRepoError(f"invalid port {args.port}")
    run_server(
        args.store,
        host=args.host,
        port=args.port,
        tokens=tokens,
        server=args.server,
        workers=args.workers,
        access_log=args.access_log,
    )
    return {"stopped": True}, "server stopped"


VERBS = [
    Verb("serve", "serve repository versions over HTTP to ostree clients", _serve_args, _serve),
]
