"""The ``import`` verb: a commit archive (a tarball holding an OSTree repository) becomes a
new repository version.

Internal to ostree_repo: the CLI's interface is the command line (:func:`ostree_repo.cli.main`).
"""

from __future__ import annotations

import argparse
import sys

from ostree_repo.cli._progress import import_display
from ostree_repo.cli._verb import Output, Verb, run_with_manager, write_result
from ostree_repo.cli.signing import add_require_arguments, apply_requirement
from ostree_repo.importing import ImportProgress, import_archive
from ostree_repo.repository import RepositoryManager, VersionRecord

__all__ = ["VERBS"]


def _import_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", metavar="NAME", help="repository name (created if missing)")
    add_require_arguments(parser)
    parser.add_argument(
        "archive",
        metavar="ARCHIVE",
        help="tar archive, plain or gzip/xz/bzip2/zstd compressed (told by its content); "
        "- reads standard input",
    )
    parser.add_argument(
        "--repository-name",
        metavar="DIR",
        default="repo",
        help="the repository's directory inside the archive (default: repo, as "
        "osbuild-composer writes; . for the archive's top)",
    )
    parser.add_argument(
        "--ref",
        help="the archive updates this ref: its commits must build on the ref's current head",
    )


def _import(args: argparse.Namespace) -> Output:
    bar = import_display()
    last = ImportProgress()

    def progress(state: ImportProgress) -> None:
        nonlocal last
        last = state
        if bar is not None:
            bar(state)

    async def body(m: RepositoryManager) -> Output:
        await apply_requirement(m, args.name, args)
        source = sys.stdin.buffer if args.archive == "-" else args.archive
        record: VersionRecord | None = await import_archive(
            m,
            args.name,
            source,
            repo_dir=args.repository_name,
            ref=args.ref,
            progress=progress,
        )
        return write_result(
            args.name,
            record,
            format=last.format,
            bytes_read=last.bytes_read,
            objects=last.objects,
            objects_new=last.objects_new,
        )

    try:
        return run_with_manager(args, body)
    finally:
        if bar is not None:
            bar.done()


VERBS = [
    Verb(
        "import",
        "import a commit archive (a tarball holding an OSTree repository) as a new version",
        _import_args,
        _import,
    ),
]
