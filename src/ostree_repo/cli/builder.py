"""``ostree-repo commit`` and ``archive``: commit a directory or a filesystem tarball into a
repository; write a commit as a commit archive (full, or an update on its parent).

Internal to ostree_repo: the CLI's interface is the command line (:func:`ostree_repo.cli.main`).
"""

from __future__ import annotations

import argparse
import calendar
import os
import tempfile
import time

from ostree_repo.builder import (
    AUTO,
    commit_tree,
    tree_from_directory,
    tree_from_tar,
    write_commit_archive,
)
from ostree_repo.cli._verb import Output, Verb, repository_argument, run_with_manager, write_result
from ostree_repo.errors import OstreeRepoError
from ostree_repo.gvariant import Variant
from ostree_repo.repository import RepositoryManager


def _arguments(parser: argparse.ArgumentParser) -> None:
    repository_argument(parser, existing=False, help="repository name (created if missing)")
    parser.add_argument("--tree", required=True, help="a directory or a filesystem tarball")
    parser.add_argument("--ref", help="the ref to move to the new commit")
    parser.add_argument("--subject", "-s", default="", help="one-line subject")
    parser.add_argument("--body", default="", help="full description")
    parser.add_argument(
        "--add-metadata",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="add a string metadata entry (repeatable)",
    )
    parser.add_argument("--timestamp", help="'YYYY-MM-DD HH:MM:SS' in UTC, or seconds")
    parser.add_argument("--parent", help="parent commit (default: the ref's current head)")
    parser.add_argument("--orphan", action="store_true", help="no parent, even if --ref exists")
    parser.add_argument("--owner-uid", type=int, help="owner uid of everything (--tree DIR)")
    parser.add_argument("--owner-gid", type=int, help="owner gid of everything (--tree DIR)")


def _timestamp(text: str | None) -> int | None:
    if text is None:
        return None
    if text.isdigit():
        return int(text)
    try:
        return calendar.timegm(time.strptime(text.removesuffix(" +0000"), "%Y-%m-%d %H:%M:%S"))
    except ValueError:
        raise OstreeRepoError(f"invalid --timestamp {text!r}") from None


def _run(args: argparse.Namespace) -> Output:
    metadata = {}
    for item in args.add_metadata:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise OstreeRepoError(f"--add-metadata wants KEY=VALUE, not {item!r}")
        metadata[key] = Variant("s", value)
    parent = None if args.orphan else (args.parent or AUTO)

    async def body(m: RepositoryManager) -> Output:
        with tempfile.TemporaryDirectory(prefix="ostree-repo-commit-") as spool:
            if os.path.isdir(args.tree):
                tree = tree_from_directory(args.tree, uid=args.owner_uid, gid=args.owner_gid)
            else:
                tree = tree_from_tar(args.tree, spool)
            checksum, record = await commit_tree(
                m,
                args.name,
                tree,
                ref=args.ref,
                subject=args.subject,
                body=args.body,
                metadata=metadata,
                parent=parent,
                timestamp=_timestamp(args.timestamp),
            )
        doc, text = write_result(args.name, record, commit=checksum, ref=args.ref)
        return doc, f"{checksum}\n{text}"

    return run_with_manager(args, body)


def _archive_arguments(parser: argparse.ArgumentParser) -> None:
    repository_argument(parser)
    parser.add_argument(
        "output", metavar="FILE", help="the archive to write (.tar, .tar.gz, .tar.xz, .tar.zst)"
    )
    parser.add_argument("--ref", help="the ref whose commit to archive (default: the only ref)")
    parser.add_argument("--version", type=int, help="version to read (default: the latest)")
    parser.add_argument(
        "--update",
        action="store_true",
        help="leave out the objects of the commit's parent (an update archive)",
    )


def _archive(args: argparse.Namespace) -> Output:
    async def body(m: RepositoryManager) -> Output:
        written = await write_commit_archive(
            m, args.name, args.output, ref=args.ref, version=args.version, update=args.update
        )
        doc = {
            "archive": str(written.path),
            "commit": written.commit,
            "ref": written.ref,
            "parent": written.parent,
            "objects": written.objects,
            "update": written.update,
        }
        kind = "update archive" if written.update else "commit archive"
        text = f"{written.path}: {kind} of {written.ref} at {written.commit}"
        text += f", {written.objects} objects"
        return doc, text

    return run_with_manager(args, body)


VERBS = [
    Verb("commit", "commit a directory or tarball into a new version", _arguments, _run),
    Verb(
        "archive",
        "write a commit as a commit archive (compose.json + repo/)",
        _archive_arguments,
        _archive,
    ),
]
