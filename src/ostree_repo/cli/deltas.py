"""The ``deltas`` verb: ``ostree-repo deltas generate|list|delete NAME ...``.

Internal to ostree_repo: the CLI's interface is the command line (:func:`ostree_repo.cli.main`).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, TextIO

from ostree_repo.cli._progress import _Display, on_terminal
from ostree_repo.cli._verb import Output, Verb, run_with_manager, write_result
from ostree_repo.deltas import DeltaOptions, DeltaProgress
from ostree_repo.errors import OstreeRepoError
from ostree_repo.objects import DeltaSuperblock, delta_name, is_checksum
from ostree_repo.repository import (
    DeltaPolicy,
    RepositoryManager,
    VersionRecord,
    delete_deltas,
    generate_deltas,
)
from ostree_repo.repository.blobs import read_blob

__all__ = ["VERBS", "DeltaDisplay", "delta_display"]


_PHASES = {"read": "reading objects", "diff": "diffing files", "write": "writing parts"}


class DeltaDisplay(_Display):
    """``deltas generate``: the phase (reading objects, diffing files, writing parts), a
    bar and how many of its steps are done."""

    def __init__(self, stream: TextIO) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, TextColumn

        super().__init__(
            stream,
            (TextColumn("{task.fields[phase]}"), BarColumn(), MofNCompleteColumn()),
            phase="starting",
        )

    def __call__(self, progress: DeltaProgress) -> None:
        self._update(
            completed=progress.done,
            total=progress.total,
            phase=_PHASES.get(progress.phase, progress.phase),
        )


def delta_display(stream: TextIO | None = None) -> DeltaDisplay | None:
    """A display on ``stream`` (stderr), or None when it is no terminal."""
    stream = sys.stderr if stream is None else stream
    return DeltaDisplay(stream) if on_terminal(stream) else None


def _commit(record: VersionRecord, text: str) -> str:
    """A commit of ``record`` named by checksum or ref."""
    if is_checksum(text):
        return text
    commit = record.resolve_ref(text)
    if commit is None:
        raise OstreeRepoError(f"{record.repository} has no ref {text!r}")
    return str(commit)


async def describe(m: RepositoryManager, record: VersionRecord) -> list[dict[str, Any]]:
    """Each delta of a version: name, ends, origin, parts, sizes (from its superblock)."""
    rows = []
    for name, info in sorted(record.deltas.items()):
        block = DeltaSuperblock.from_bytes(await read_blob(m.store, info.superblock))
        rows.append(
            {
                "name": name,
                "from": block.from_checksum,
                "to": block.to_checksum,
                "generated": info.generated or None,
                "parts": len(block.parts),
                "size": sum(p.size for p in block.parts),
                "usize": sum(p.usize for p in block.parts),
                "fallbacks": len(block.fallbacks),
                "fallback_size": sum(f.size for f in block.fallbacks),
            }
        )
    return rows


def _generate(args: argparse.Namespace) -> Output:
    if args.empty == bool(args.start):
        raise OstreeRepoError("give --from COMMIT or --empty (a delta from scratch)")
    options = DeltaOptions(
        compression=args.compression,
        inline=args.inline,
        min_fallback_size=args.min_fallback_size,
    )
    progress = delta_display()

    async def body(m: RepositoryManager) -> Output:
        latest = await m.repository(args.name).version()
        end = _commit(latest, args.end)
        start = None if args.empty else _commit(latest, args.start)
        try:
            version = await generate_deltas(
                m, args.name, [(start, end)], options=options,
                allow_unrelated=args.unrelated, processes=args.processes, progress=progress,
            )  # fmt: skip
        finally:
            if progress is not None:
                progress.done()
        name = delta_name(start, end)
        record = version or await m.repository(args.name).version()
        rows = [r for r in await describe(m, record) if r["name"] == name]
        doc, text = write_result(args.name, version, delta=rows[0] if rows else None)
        if rows:
            r = rows[0]
            text += (
                f"\ndelta {name}: {r['parts']} parts, {r['size'] / 1e6:.2f} MB "
                f"({r['usize'] / 1e6:.2f} MB of objects), {r['fallbacks']} fallbacks"
            )
        return doc, text

    return run_with_manager(args, body)


def _list(args: argparse.Namespace) -> Output:
    async def body(m: RepositoryManager) -> Output:
        record = await m.repository(args.name).version(args.version)
        rows = await describe(m, record)
        policy = DeltaPolicy.parse(record.settings.get("deltas", {}))
        lines = [f"{args.name} version {record.number}, policy {policy.describe()}"]
        for r in rows:
            origin = r["generated"] or "came in"
            lines.append(f"{r['name']}  {r['parts']} parts  {r['size'] / 1e6:.2f} MB  ({origin})")
        doc = {
            "repository": args.name,
            "version": record.number,
            "policy": policy.to_json(),
            "deltas": rows,
        }
        return doc, "\n".join(lines)

    return run_with_manager(args, body)


def _delete(args: argparse.Namespace) -> Output:
    async def body(m: RepositoryManager) -> Output:
        latest = await m.repository(args.name).version()
        missing = [n for n in args.deltas if n not in latest.deltas]
        if missing:
            raise OstreeRepoError(f"{args.name} has no delta {missing[0]}")
        version = await delete_deltas(m, args.name, args.deltas)
        return write_result(args.name, version, deleted=sorted(args.deltas))

    return run_with_manager(args, body)


def _arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    generate = actions.add_parser("generate", help="make a delta and publish it in a new version")
    generate.add_argument("name", metavar="NAME", help="repository name")
    generate.add_argument("--from", dest="start", metavar="COMMIT", help="from commit or ref")
    generate.add_argument("--empty", action="store_true", help="a delta from scratch")
    generate.add_argument(
        "--to", dest="end", metavar="COMMIT", required=True, help="to commit or ref"
    )
    generate.add_argument("--compression", choices=["xz", "none"], default="xz")
    generate.add_argument("--inline", action="store_true", help="parts inside the superblock")
    generate.add_argument(
        "--min-fallback-size", type=int, default=4_000_000, metavar="BYTES",
        help="new files bigger than this are fetched loose (0: never; default 4000000)",
    )  # fmt: skip
    generate.add_argument(
        "--unrelated", action="store_true", help="allow commits that share no history"
    )
    generate.add_argument(
        "--processes", type=int, metavar="N", help="worker processes (default: one per CPU)"
    )
    generate.set_defaults(run=_generate)
    listing = actions.add_parser("list", help="list a version's deltas")
    listing.add_argument("name", metavar="NAME", help="repository name")
    listing.add_argument("--version", type=int, help="version number (default: latest)")
    listing.set_defaults(run=_list)
    delete = actions.add_parser("delete", help="publish a version without some deltas")
    delete.add_argument("name", metavar="NAME", help="repository name")
    delete.add_argument("deltas", nargs="+", metavar="DELTA", help="delta names (FROM-TO or TO)")
    delete.set_defaults(run=_delete)
    for sub in (generate, listing, delete):
        sub.add_argument(
            "--json", action="store_true", default=argparse.SUPPRESS, help="print one JSON document"
        )


def _run(args: argparse.Namespace) -> Output:  # pragma: no cover - each action sets run
    raise OstreeRepoError("give an action: generate, list or delete")


VERBS = [Verb("deltas", "generate, list or delete static deltas", _arguments, _run)]
