"""The ``ostree-repo`` command line: ``ostree-repo [--store URL] VERB ...``.

Every verb takes ``--json`` (before or after the verb) and then prints exactly one JSON
document on stdout. Every error prints one line on stderr: errors from the library (and
I/O errors) exit with status 1, usage errors with 2, an interrupt with 130, a bug with 70.
A verb that ran and found a problem (``fsck``) prints its result, then one line on
stderr, and exits with a status of its own (fsck: 4 damage, 8 could not check).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from ostree_repo import __version__
from ostree_repo.cli import (
    builder,
    completion,
    deltas,
    importing,
    inspect,
    repos,
    retention,
    serve,
    signing,
    sync,
)
from ostree_repo.cli._verb import Verb, VerbFailed
from ostree_repo.errors import OstreeRepoError

__all__ = ["build_parser", "main", "run"]

DEFAULT_STORE = "./ostree-store"

_VERBS: list[Verb] = [
    *inspect.VERBS,
    *repos.VERBS,
    *retention.VERBS,
    *builder.VERBS,
    *importing.VERBS,
    *sync.VERBS,
    *deltas.VERBS,
    *serve.VERBS,
    *signing.VERBS,
    *completion.VERBS,
]


class _Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line on stderr (exit status 2)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {_one_line(message)} (see {self.prog} --help)\n")


def _workers(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"not a number of processes: {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every verb registered."""
    parser = _Parser(
        prog="ostree-repo", description="Manage OSTree repositories without libostree."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "--json", dest="json_all", action="store_true", help="print one JSON document"
    )
    parser.add_argument(
        "--store",
        default=os.environ.get("OSTREE_REPO_STORE", DEFAULT_STORE),
        help="store URL or path (default: $OSTREE_REPO_STORE, else ./ostree-store)",
    )
    parser.add_argument(
        "--workers",
        type=_workers,
        default=os.environ.get("OSTREE_REPO_WORKERS") or None,
        help="writer processes of a filesystem store for big imports, syncs and commits "
        "(0: none; default: $OSTREE_REPO_WORKERS, else one per CPU up to 4; other stores "
        "have none)",
    )
    parser.add_argument(
        "--key-file",
        action="append",
        default=[],
        metavar="PATH",
        help="a private key to sign with (repeatable; also $OSTREE_REPO_KEYS, paths "
        "separated by ':'): an OpenPGP secret key or an ed25519 key (libostree's base64 "
        "or PEM); never stored",
    )
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", required=True)
    for verb in _VERBS:
        sub = verbs.add_parser(verb.name, help=verb.help, description=verb.help)
        sub.add_argument("--json", action="store_true", help="print one JSON document")
        verb.add_arguments(sub)
        sub.set_defaults(run=verb.run)
    return parser


def emit(args: argparse.Namespace, document: Any, text: str) -> None:
    """Print ``document`` as JSON when ``--json`` was given, else ``text``."""
    if args.json or args.json_all:
        json.dump(document, sys.stdout, indent=2, ensure_ascii=False)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
    sys.stdout.flush()


def _one_line(message: object) -> str:
    """``message`` on one line: an error is one line on stderr, whatever it holds."""
    return " ".join(str(message).split())


def _fail(message: str) -> None:
    print(f"ostree-repo: {_one_line(message)}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        document, text = args.run(args)
    except VerbFailed as e:
        if e.output is not None:
            emit(args, *e.output)
        _fail(f"error: {e}")
        return e.status
    except OstreeRepoError as e:
        _fail(f"error: {e}")
        return 1
    except OSError as e:
        _fail(f"error: {e.strerror or e}: {e.filename or ''}".rstrip(": "))
        return 1
    except KeyboardInterrupt:
        _fail("error: interrupted")
        return 130
    except Exception as e:  # a bug: still one line, with the traceback on request
        if os.environ.get("OSTREE_REPO_DEBUG"):
            raise
        _fail(f"internal error: {type(e).__name__}: {e} (set OSTREE_REPO_DEBUG=1 for a traceback)")
        return 70
    try:
        emit(args, document, text)
    except BrokenPipeError:
        # the reader went away (``ostree-repo refs os | head -1``): no traceback, and no
        # second failure when the interpreter flushes stdout on the way out
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return 1
    return 0


def run() -> NoReturn:
    """The ``ostree-repo`` command: :func:`main`, then exit without finalizing the
    interpreter.

    A native client library's threads (obstore's tokio runtime, for S3) may still be
    handing a finished request back to Python when the main thread returns; on Python
    before 3.14 such a thread that takes the GIL while the interpreter finalizes is
    stopped with ``pthread_exit``, which aborts the process (SIGABRT) after the command
    has succeeded. The command's work is complete here (stores closed, writer processes
    joined), so it flushes its output and leaves with ``os._exit``.
    """
    status = main()
    try:
        sys.stdout.flush()
    except (BrokenPipeError, ValueError):
        status = status or 1
    with contextlib.suppress(Exception):
        sys.stderr.flush()
    logging.shutdown()
    os._exit(status)
