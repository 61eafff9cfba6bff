"""The ``import`` verb: a commit archive (a tarball holding an OSTree repository) becomes a
new repository version.

Internal to ostree_repo: the CLI's interface is the command line (:func:`ostree_repo.cli.main`).
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import TextIO

from ostree_repo.cli._verb import Output, Verb, run_with_manager, write_result
from ostree_repo.cli.signing import add_require_arguments, apply_requirement
from ostree_repo.importing import ImportProgress, import_archive
from ostree_repo.repository import RepositoryManager, VersionRecord

__all__ = ["VERBS", "ProgressBar"]


class ProgressBar:
    """A one-line progress display (bytes read, objects stored) redrawn in place.

    Meant for a terminal: the CLI only uses it when stderr is a TTY. Redraws at most ten
    times a second; :meth:`close` erases the line.
    """

    WIDTH = 30

    def __init__(self, stream: TextIO, *, interval: float = 0.1) -> None:
        self.stream = stream
        self.interval = interval
        self._last = 0.0
        self._drawn = False

    def __call__(self, progress: ImportProgress) -> None:
        now = time.monotonic()
        if not progress.done and now - self._last < self.interval:
            return
        self._last = now
        self.stream.write("\r\033[K" + self.render(progress))
        self.stream.flush()
        self._drawn = True

    @classmethod
    def render(cls, progress: ImportProgress) -> str:
        """The line for ``progress`` (without the carriage return)."""
        read = f"{progress.bytes_read / 1e6:,.1f} MB"
        objects = f"{progress.objects:,} objects ({progress.objects_new:,} new)"
        total = progress.bytes_total
        if total:
            fraction = min(progress.bytes_read / total, 1.0)
            filled = int(fraction * cls.WIDTH)
            bar = "#" * filled + "." * (cls.WIDTH - filled)
            return f"[{bar}] {fraction:4.0%}  {read} of {total / 1e6:,.1f} MB  {objects}"
        return f"{read} read  {objects}"

    def close(self) -> None:
        """Erase the progress line."""
        if self._drawn:
            self.stream.write("\r\033[K")
            self.stream.flush()
            self._drawn = False


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
    bar = ProgressBar(sys.stderr) if sys.stderr.isatty() else None
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
            bar.close()


VERBS = [
    Verb(
        "import",
        "import a commit archive (a tarball holding an OSTree repository) as a new version",
        _import_args,
        _import,
    ),
]
