"""Verbs about repositories and versions: create, list, delete, versions, refs, commits,
show, diff, copy, remove, delete-version, fsck, reclaim, export, import-dir.

Internal to ostree_repo: the CLI's interface is the command line (:func:`ostree_repo.cli.main`).
"""

from __future__ import annotations

import argparse
from typing import Any

from ostree_repo.cli._verb import (
    Output,
    Verb,
    VerbFailed,
    repository_argument,
    run_with_manager,
    version_json,
    when,
    write_result,
)
from ostree_repo.cli.retention import add_policy_arguments, policy_settings
from ostree_repo.cli.signing import add_require_arguments, apply_requirement
from ostree_repo.errors import NotFoundError, OstreeRepoError, StoreError
from ostree_repo.export import export_tar, export_version
from ostree_repo.importing import import_directory
from ostree_repo.repository import FsckReport, RepairSource, RepositoryManager, diff
from ostree_repo.repository.records import VersionRecord


def _name(parser: argparse.ArgumentParser, existing: bool = True) -> None:
    repository_argument(parser, existing=existing)


def _new_name(parser: argparse.ArgumentParser) -> None:
    _name(parser, existing=False)


def _name_version(parser: argparse.ArgumentParser) -> None:
    _name(parser)
    parser.add_argument("--version", type=int, help="version number (default: latest)")


# -- repositories ----------------------------------------------------------------------------


def _create_args(parser: argparse.ArgumentParser) -> None:
    _new_name(parser)
    add_policy_arguments(parser)
    add_require_arguments(parser)
    parser.add_argument(
        "--deltas", metavar="POLICY",
        help="delta policy: none, parent, depth=N, versions=K, scratch (comma-separated; "
        "see docs/deltas.md)",
    )  # fmt: skip


def _create(args: argparse.Namespace) -> Output:
    settings = policy_settings(args)
    if args.deltas:
        settings = {**(settings or {}), "deltas": args.deltas}

    async def body(m: RepositoryManager) -> Output:
        await m.create_repository(args.name, settings=settings)
        await apply_requirement(m, args.name, args)
        number = (await m.repository(args.name).version()).number
        return {"repository": args.name, "version": number}, f"created repository {args.name}"

    return run_with_manager(args, body)


def _list(args: argparse.Namespace) -> Output:
    async def body(m: RepositoryManager) -> Output:
        rows = []
        for name in await m.repositories():
            latest = await m.repository(name).version()
            rows.append({"name": name, "latest_version": latest.number, "refs": len(latest.refs)})
        text = "\n".join(f"{r['name']}  (version {r['latest_version']})" for r in rows)
        return rows, text or "(no repositories)"

    return run_with_manager(args, body)


def _delete(args: argparse.Namespace) -> Output:
    async def body(m: RepositoryManager) -> Output:
        await m.delete_repository(args.name)
        doc = {"repository": args.name, "version": None, "deleted": True}
        return doc, f"deleted repository {args.name}"

    return run_with_manager(args, body)


# -- versions --------------------------------------------------------------------------------


def _versions(args: argparse.Namespace) -> Output:
    async def body(m: RepositoryManager) -> Output:
        records = await m.repository(args.name).versions()
        rows = [version_json(r) for r in records]
        text = "\n".join(
            f"{r.number:>5}  {when(r.created) if r.number else '-':20}  "
            f"{len(r.refs)} refs  {len(r.commits)} commits  {r.action.get('kind', '')}".rstrip()
            for r in records
        )
        return rows, text

    return run_with_manager(args, body)


def _refs_json(record: VersionRecord) -> list[dict[str, Any]]:
    """Refs and aliases (``alias_of``: the ref an alias names, else null), then collection
    refs."""
    rows: list[dict[str, Any]] = [
        {"name": n, "commit": c, "alias_of": record.aliases.get(n)}
        for n, c in record.resolved_refs().items()
    ]
    for cid, refs in record.collection_refs.items():
        rows += [
            {"name": n, "commit": c, "alias_of": None, "collection_id": cid}
            for n, c in refs.items()
        ]
    return rows


def _refs(args: argparse.Namespace) -> Output:
    async def body(m: RepositoryManager) -> Output:
        record = await m.repository(args.name).version(args.version)
        rows = _refs_json(record)
        text = "\n".join(
            f"{r['commit']}  {r['name']}"
            + (f" -> {r['alias_of']}" if r["alias_of"] else "")
            + (f"  ({r['collection_id']})" if "collection_id" in r else "")
            for r in rows
        )
        return rows, text or "(no refs)"

    return run_with_manager(args, body)


def _commits_json(record: VersionRecord) -> list[dict[str, Any]]:
    return [
        {
            "checksum": c,
            "parent": i.parent,
            "timestamp": i.timestamp,
            "subject": i.subject,
            "version": i.version,
            "size": i.size,
            "signed": i.commitmeta is not None,
        }
        for c, i in sorted(record.commits.items(), key=lambda kv: kv[1].timestamp)
    ]


def _commits(args: argparse.Namespace) -> Output:
    async def body(m: RepositoryManager) -> Output:
        record = await m.repository(args.name).version(args.version)
        rows = _commits_json(record)
        text = "\n".join(f"{r['checksum']}  {when(r['timestamp'])}  {r['subject']}" for r in rows)
        return rows, text or "(no commits)"

    return run_with_manager(args, body)


def _show(args: argparse.Namespace) -> Output:
    async def body(m: RepositoryManager) -> Output:
        record = await m.repository(args.name).version(args.version)
        size = await m.version_size(record)
        doc = version_json(record) | {
            "repository": args.name,
            "size": size,
            "refs": _refs_json(record),
            "commits": _commits_json(record),
            "deltas": sorted(record.deltas),
            "summary": record.summary,
            "signed_summary": record.summary_sig is not None,
        }
        text = "\n".join(
            [
                f"{args.name} version {record.number}",
                f"created: {when(record.created) if record.number else '-'}",
                f"made by: {record.action.get('kind', '-')}",
                f"size: {size} bytes",
                f"refs: {len(record.refs)}, commits: {len(record.commits)}, "
                f"deltas: {len(record.deltas)}",
            ]
            + [
                f"  ref {r['name']} -> {r['commit']}"
                + (f" (alias of {r['alias_of']})" if r["alias_of"] else "")
                for r in doc["refs"]
            ]
        )
        return doc, text

    return run_with_manager(args, body)


def _diff(args: argparse.Namespace) -> Output:
    async def body(m: RepositoryManager) -> Output:
        repo = m.repository(args.name)
        changes = diff(await repo.version(args.old), await repo.version(args.new))
        lines = [f"+ ref {n} -> {c}" for n, c in changes["refs_added"].items()]
        lines += [f"- ref {n} ({c})" for n, c in changes["refs_removed"].items()]
        lines += [f"~ ref {n}: {d['from']} -> {d['to']}" for n, d in changes["refs_moved"].items()]
        lines += [f"+ alias {n} -> {t}" for n, t in changes["aliases_added"].items()]
        lines += [f"- alias {n} (-> {t})" for n, t in changes["aliases_removed"].items()]
        lines += [
            f"~ alias {n}: -> {d['from']} now -> {d['to']}"
            for n, d in changes["aliases_moved"].items()
        ]
        lines += [f"+ commit {c}" for c in changes["commits_added"]]
        lines += [f"- commit {c}" for c in changes["commits_removed"]]
        return {"repository": args.name, "old": args.old, "new": args.new, **changes}, "\n".join(
            lines
        ) or "(no differences)"

    return run_with_manager(args, body)


def _diff_args(parser: argparse.ArgumentParser) -> None:
    _name(parser)
    parser.add_argument("old", type=int, help="older version number")
    parser.add_argument("new", type=int, help="newer version number")


# -- writes ----------------------------------------------------------------------------------


def _copy_args(parser: argparse.ArgumentParser) -> None:
    repository_argument(parser, "source", help="repository to copy from")
    parser.add_argument(
        "destination", help="repository to copy into (a new version; created if missing)"
    )
    parser.add_argument("--version", type=int, help="source version (default: latest)")
    parser.add_argument("--ref", action="append", default=[], help="copy this ref (repeatable)")
    parser.add_argument("--commit", action="append", default=[], help="copy this commit")
    parser.add_argument("--depth", type=int, default=0, help="parents to include (-1: all)")
    parser.add_argument("--all", action="store_true", help="copy the whole version")


def _copy(args: argparse.Namespace) -> Output:
    if not (args.ref or args.commit or args.all):
        raise OstreeRepoError("say what to copy: --ref, --commit or --all")

    async def body(m: RepositoryManager) -> Output:
        record = await m.copy(
            args.source,
            args.destination,
            version=args.version,
            refs=args.ref,
            commits=args.commit,
            depth=args.depth,
            whole=args.all,
            create=True,
        )
        return write_result(args.destination, record)

    return run_with_manager(args, body)


def _remove_args(parser: argparse.ArgumentParser) -> None:
    _name(parser)
    parser.add_argument("--ref", action="append", default=[], help="remove this ref")
    parser.add_argument("--commit", action="append", default=[], help="remove this commit")


def _remove(args: argparse.Namespace) -> Output:
    if not (args.ref or args.commit):
        raise OstreeRepoError("say what to remove: --ref or --commit")

    async def body(m: RepositoryManager) -> Output:
        return write_result(
            args.name, await m.remove(args.name, refs=args.ref, commits=args.commit)
        )

    return run_with_manager(args, body)


def _delete_version_args(parser: argparse.ArgumentParser) -> None:
    _name(parser)
    parser.add_argument("number", type=int, help="the version to delete")


def _delete_version(args: argparse.Namespace) -> Output:
    async def body(m: RepositoryManager) -> Output:
        await m.repository(args.name).delete_version(args.number)
        doc = {"repository": args.name, "version": None, "deleted_version": args.number}
        return doc, f"{args.name}: deleted version {args.number}"

    return run_with_manager(args, body)


FSCK_DAMAGE = 4
"""``fsck`` exit status: damage found (missing or corrupt objects, blobs or closures) and
not repaired."""
FSCK_UNCHECKED = 8
"""``fsck`` exit status: something could not be checked (an I/O error); 12 = both."""

_FSCK_EPILOG = """\
exit status: 0 everything checked and sound (or repaired); 4 damage found and not
repaired (missing or corrupt objects, blobs or closures); 8 something could not be
checked (an I/O error: EMFILE, EIO, a lost S3 connection; not damage); 12 both;
1 fsck could not run (no such repository or version, bad arguments).

--repair SOURCE fetches each damaged object or blob from SOURCE, verifies it, and only
then lets it replace the damaged copy; SOURCE is an OSTree HTTP(S) URL, or a store URL
or path (another store, or an archive-mode OSTree repository directory). Repeat it to
try several sources in order. Damaged closures are computed again from the objects."""


def _fsck_args(parser: argparse.ArgumentParser) -> None:
    _name_version(parser)
    parser.add_argument(
        "--repair",
        metavar="SOURCE",
        action="append",
        default=None,
        help="refetch damaged objects and blobs from SOURCE (repeatable; see below)",
    )
    parser.epilog = _FSCK_EPILOG
    parser.formatter_class = argparse.RawDescriptionHelpFormatter


def _fsck_text(report: FsckReport) -> str:
    head = f"{report.repository} version {report.version}: "
    if report.ok and not report.repaired:
        blobs = f"{report.blobs} blob" + ("" if report.blobs == 1 else "s")
        return head + f"{report.objects} objects and {blobs} OK"
    lines = [
        head + f"{report.objects} objects, {report.blobs} blobs: "
        f"{len(report.missing)} missing, {len(report.corrupt)} corrupt, "
        f"{len(report.unreadable)} unreadable, {len(report.repaired)} repaired"
        + (f", {report.unchecked} not checked" if report.unchecked else "")
    ]
    fixed = set(report.repaired)
    for kind, labels in (
        ("missing", report.missing),
        ("corrupt", report.corrupt),
        ("unreadable", report.unreadable),
    ):
        for label in labels:
            state = "repaired" if label in fixed else kind
            lines.append(f"  {state}: {label}: {report.errors.get(label, '')}".rstrip(": "))
    return "\n".join(lines)


async def _check(
    m: RepositoryManager, args: argparse.Namespace, sources: list[RepairSource] | None
) -> FsckReport:
    """fsck the version (an I/O error before any object is checked: could not check)."""
    try:
        return await m.fsck(
            args.name, args.version, repair_from=sources, processes=getattr(args, "workers", None)
        )
    except NotFoundError:
        raise
    except StoreError as e:  # e.g. the version record cannot be read
        raise VerbFailed(None, f"could not check: {e}", FSCK_UNCHECKED) from None


def _fsck(args: argparse.Namespace) -> Output:
    async def body(m: RepositoryManager) -> Output:
        if args.repair is None:
            report = await _check(m, args, None)
        else:
            from ostree_repo.repair import open_repair_sources  # (the sync layer: only here)

            async with open_repair_sources(args.repair) as sources:
                report = await _check(m, args, sources)
        output = (report.to_json(), _fsck_text(report))
        status = (FSCK_DAMAGE if report.damaged else 0) | (0 if report.complete else FSCK_UNCHECKED)
        if status:
            problems = []
            if report.damaged:
                problems.append(f"{len(report.damage)} damaged")
            if not report.complete:
                problems.append(f"{len(report.unreadable) + report.unchecked} could not be checked")
            message = f"{report.repository} version {report.version}: " + ", ".join(problems)
            raise VerbFailed(output, message, status)
        return output

    return run_with_manager(args, body)


def _reclaim_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dry-run", action="store_true", help="only report what would go")
    parser.add_argument(
        "--grace", type=float, default=3600.0, help="keep anything younger (seconds; 3600)"
    )
    parser.add_argument(
        "--list", action="store_true", help="list every object and file, with its bytes"
    )


def _reclaim(args: argparse.Namespace) -> Output:
    async def body(m: RepositoryManager) -> Output:
        report = await m.reclaim(grace_seconds=args.grace, dry_run=args.dry_run, listing=args.list)
        verb = "would free" if report.dry_run else "freed"
        lines = [f"{size:>12}  {path}" for path, size in report.items]
        lines.append(
            f"{verb} {report.objects} objects ({report.object_bytes} bytes) and "
            f"{report.files} files ({report.file_bytes} bytes)"
            + (f"; collected {report.records} version records" if report.records else "")
        )
        return report.to_json(), "\n".join(lines)

    return run_with_manager(args, body)


def _export_args(parser: argparse.ArgumentParser) -> None:
    _name_version(parser)
    parser.add_argument(
        "directory", nargs="?", help="where to write the repository (must not exist)"
    )
    parser.add_argument("--tar", metavar="FILE", help="write a tarball instead (must not exist)")
    parser.add_argument(
        "--prefix", default="repo", help="top-level directory in the tarball ('repo'; '' for none)"
    )
    parser.add_argument(
        "--no-link", action="store_true", help="copy files from a filesystem store, never hard-link"
    )


def _export(args: argparse.Namespace) -> Output:
    if (args.directory is None) == (args.tar is None):
        raise OstreeRepoError("give either a DIRECTORY or --tar FILE")

    async def body(m: RepositoryManager) -> Output:
        if args.tar is not None:
            record = await export_tar(
                m, args.name, args.tar, version=args.version, prefix=args.prefix
            )
            doc = {"repository": args.name, "version": record.number, "tar": args.tar}
            return doc, f"exported {args.name} version {record.number} to {args.tar}"
        record = await export_version(
            m, args.name, args.directory, version=args.version, link=not args.no_link
        )
        doc = {"repository": args.name, "version": record.number, "directory": args.directory}
        return doc, f"exported {args.name} version {record.number} to {args.directory}"

    return run_with_manager(args, body)


def _import_dir_args(parser: argparse.ArgumentParser) -> None:
    _name(parser, existing=False)
    parser.add_argument("directory", help="an archive-mode OSTree repository directory")


def _import_dir(args: argparse.Namespace) -> Output:
    async def body(m: RepositoryManager) -> Output:
        return write_result(args.name, await import_directory(m, args.name, args.directory))

    return run_with_manager(args, body)


VERBS = [
    Verb("create", "create a repository", _create_args, _create),
    Verb("list", "list repositories", lambda p: None, _list),
    Verb("delete", "delete a repository and all its versions", _name, _delete),
    Verb("versions", "list a repository's versions", _name, _versions),
    Verb("refs", "list the refs of a version", _name_version, _refs),
    Verb("commits", "list the commits of a version", _name_version, _commits),
    Verb("show", "describe a version", _name_version, _show),
    Verb("diff", "compare two versions", _diff_args, _diff),
    Verb("copy", "copy refs, commits or a version into another repository", _copy_args, _copy),
    Verb("remove", "make a version without some refs or commits", _remove_args, _remove),
    Verb("delete-version", "delete one version", _delete_version_args, _delete_version),
    Verb("fsck", "verify every object a version needs (--repair: and mend it)", _fsck_args, _fsck),
    Verb("reclaim", "delete storage no version needs", _reclaim_args, _reclaim),
    Verb("export", "write a version as a standalone OSTree repository", _export_args, _export),
    Verb("import-dir", "import an OSTree repository directory", _import_dir_args, _import_dir),
]
