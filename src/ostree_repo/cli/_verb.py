"""How a CLI verb is declared, and the helpers verbs share."""

from __future__ import annotations

import argparse
import datetime
import os
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

import anyio
import attrs

from ostree_repo.errors import NotFoundError
from ostree_repo.repository import RepositoryManager, VersionRecord
from ostree_repo.store import is_filesystem_url

if TYPE_CHECKING:
    from ostree_repo.signing import SigningKeys

__all__ = [
    "Verb",
    "VerbFailed",
    "repository_argument",
    "run_with_manager",
    "signing_keys",
    "store_options",
    "version_json",
    "when",
    "write_result",
]

Output = tuple[Any, str]


@attrs.frozen
class Verb:
    """A verb: its name, one-line help, argument setup and implementation.

    ``run`` returns (JSON document, text for people).
    """

    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], Output]


class VerbFailed(Exception):  # noqa: N818 - a verb's outcome, not a library error
    """A verb that ran and found something wrong: its output (if any) is still printed
    (the JSON document or the text), then ``message`` on stderr, and the command exits
    with ``status`` (a verb documents its own statuses)."""

    def __init__(self, output: Output | None, message: str, status: int) -> None:
        super().__init__(message)
        self.output = output
        self.status = status


def repository_argument(
    parser: argparse.ArgumentParser,
    dest: str = "name",
    *,
    existing: bool = True,
    help: str = "repository name",
) -> None:
    """Add the positional repository argument ``dest`` (shown as NAME).

    With ``existing`` (the default: every verb that reads a repository), the verb fails
    with "repository NAME does not exist" before it runs when there is no such
    repository, instead of showing an empty version 0 for a mistyped name.
    """
    parser.add_argument(dest, metavar="NAME" if dest == "name" else dest.upper(), help=help)
    if existing:
        parser.set_defaults(existing=(*(parser.get_default("existing") or ()), dest))


def run_with_manager(
    args: argparse.Namespace,
    body: Callable[[RepositoryManager], Awaitable[Output]],
    *,
    key_files: Sequence[str] = (),
) -> Output:
    """Open the store named by ``--store`` and run ``body`` with a manager for it (that
    signs with the keys of ``--key-file``, ``$OSTREE_REPO_KEYS`` and ``key_files``), once
    the repositories the verb needs are known to exist (see :func:`repository_argument`)."""

    options = store_options(args)
    keys = signing_keys(args, *key_files)

    async def main() -> Output:
        async with RepositoryManager.open(args.store, keys=keys, **options) as manager:
            for dest in getattr(args, "existing", None) or ():
                name = getattr(args, dest)
                if not await manager.repository(name).exists():
                    raise NotFoundError(f"repository {name} does not exist")
            return await body(manager)

    return anyio.run(main)


def signing_keys(args: argparse.Namespace, *extra: str) -> SigningKeys | None:
    """The private keys of ``--key-file``, ``$OSTREE_REPO_KEYS`` and ``extra`` (None when
    there are none: the crypto libraries are then not even loaded)."""
    paths = [*os.environ.get("OSTREE_REPO_KEYS", "").split(os.pathsep)]
    paths += [*getattr(args, "key_file", []), *extra]
    paths = [p for p in paths if p]
    if not paths:
        return None
    from ostree_repo.signing import SigningKeys

    return SigningKeys.from_files(paths)


def store_options(args: argparse.Namespace) -> dict[str, Any]:
    """The ``open_store`` options that the global arguments ask for: ``--workers`` (or
    ``$OSTREE_REPO_WORKERS``), for a filesystem store; other stores have no writer
    processes, so it means nothing to them."""
    workers = getattr(args, "workers", None)
    if workers is None:
        return {}
    if not is_filesystem_url(args.store):
        return {}
    return {"workers": workers}


def when(seconds: float) -> str:
    """A UTC timestamp for people."""
    try:
        moment = datetime.datetime.fromtimestamp(seconds, datetime.UTC)
    except (OverflowError, OSError, ValueError):
        return str(seconds)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def version_json(record: VersionRecord) -> dict[str, Any]:
    """A version as listed: ``{"number", "created", "action", "refs", "commits", ...}``."""
    return {
        "number": record.number,
        "created": record.created,
        "base": record.base,
        "action": record.action,
        "refs": len(record.refs),
        "commits": len(record.commits),
        "deltas": len(record.deltas),
    }


def write_result(name: str, record: VersionRecord | None, **extra: Any) -> Output:
    """The output of a verb that writes: ``{"repository", "version", ...}``."""
    doc: dict[str, Any] = {"repository": name, "version": None if record is None else record.number}
    doc.update(extra)
    if record is None:
        text = f"{name}: nothing changed, no new version"
    else:
        counts = f"{len(record.refs)} refs, {len(record.commits)} commits"
        text = f"{name}: version {record.number} ({counts})"
    return doc, text
