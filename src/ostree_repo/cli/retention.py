"""Verbs about what a repository keeps and what its storage costs: retain, du.

Internal to ostree_repo: the CLI's interface is the command line (:func:`ostree_repo.cli.main`).
"""

from __future__ import annotations

import argparse
from typing import Any

from ostree_repo.cli._verb import Output, Verb, repository_argument, run_with_manager, write_result
from ostree_repo.errors import OstreeRepoError
from ostree_repo.repository import RepositoryManager
from ostree_repo.repository.accounting import Usage, usage
from ostree_repo.repository.retention import (
    SECTION,
    RetentionPolicy,
    apply_retention,
    parse_duration,
)

__all__ = ["VERBS", "add_policy_arguments", "policy_settings"]


def _duration(text: str) -> float:
    try:
        return parse_duration(text)
    except OstreeRepoError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def add_policy_arguments(parser: argparse.ArgumentParser) -> None:
    """The options that say a retention policy (for ``retain`` and ``create``)."""
    group = parser.add_argument_group("retention policy")
    group.add_argument(
        "--keep-versions", type=int, metavar="N", help="keep the last N versions (older go)"
    )
    group.add_argument(
        "--keep-younger-than",
        type=_duration,
        metavar="AGE",
        help="keep versions younger than AGE (seconds, or 90m, 12h, 30d, 2w)",
    )
    group.add_argument(
        "--depth", type=int, metavar="D", help="keep per ref its commit and at most D parents"
    )


def policy_settings(args: argparse.Namespace) -> dict[str, Any] | None:
    """The settings the policy options ask for (checked), or None when none was given."""
    doc = {
        "versions": args.keep_versions,
        "younger_than": args.keep_younger_than,
        "depth": args.depth,
    }
    doc = {k: v for k, v in doc.items() if v is not None}
    return {SECTION: RetentionPolicy.from_json(doc).to_json()} if doc else None


def _retain_args(parser: argparse.ArgumentParser) -> None:
    repository_argument(parser)
    add_policy_arguments(parser)
    parser.add_argument("--none", action="store_true", help="remove the retention policy")
    parser.add_argument(
        "--apply",
        action="store_true",
        help="delete now the versions the policy no longer keeps (say, grown too old)",
    )


def _policy_text(policy: dict[str, Any] | None) -> str:
    if not policy:
        return "no retention policy"
    parts = []
    if "versions" in policy:
        parts.append(f"the last {policy['versions']} versions")
    if "younger_than" in policy:
        parts.append(f"versions younger than {policy['younger_than']:g} s")
    keep = f"keep {' and '.join(parts)}" if parts else "keep every version"
    if "depth" in policy:
        keep += f", {policy['depth']} parent commit(s) per ref"
    return keep


def _retain(args: argparse.Namespace) -> Output:
    settings = policy_settings(args)
    if settings is not None and args.none:
        raise OstreeRepoError("--none removes the policy: give it alone")
    if args.none:
        settings = {SECTION: None}

    async def body(m: RepositoryManager) -> Output:
        repo = m.repository(args.name)
        record = await m.configure(args.name, settings) if settings is not None else None
        deleted = await apply_retention(repo) if args.apply else []
        policy = (await repo.version()).settings.get(SECTION)
        doc, text = write_result(args.name, record, retention=policy, deleted_versions=deleted)
        if settings is None:
            text = f"{args.name}: {_policy_text(policy)}"
        else:
            text += f"; {_policy_text(policy)}"
        if args.apply:
            gone = ", ".join(map(str, deleted)) or "none"
            text += f"\ndeleted versions: {gone}"
        return doc, text

    return run_with_manager(args, body)


def human(size: int) -> str:
    """``size`` bytes for people: ``512 B``, ``1.5 KiB``, ``20.3 MiB``."""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{size} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def _du_args(parser: argparse.ArgumentParser) -> None:
    repository_argument(parser)
    parser.add_argument("--version", type=int, help="version number (default: latest)")
    parser.add_argument(
        "--by", choices=("ref", "commit"), help="also show what each ref or commit uses"
    )


def _usage_row(label: str, use: Usage) -> str:
    return f"{human(use.bytes):>10}  {human(use.unique_bytes):>10}  {use.objects:>8}  {label}"


def _du(args: argparse.Namespace) -> Output:
    async def body(m: RepositoryManager) -> Output:
        report = await usage(m, args.name, args.version, args.by)
        lines = [
            f"{'uses':>10}  {'only it':>10}  {'objects':>8}",
            _usage_row(f"{args.name} version {report.version}", report.total),
        ]
        for item, use in report.items.items():
            if item is None:
                label = "(commits no ref reaches)"
            elif isinstance(item, tuple):
                label = f"{item[1]} ({item[0]})"
            else:
                label = str(item)
            lines.append(_usage_row(f"  {label}", use))
        lines.append(f"store: {human(report.live_bytes)} used by every surviving version")
        return report.to_json(), "\n".join(lines)

    return run_with_manager(args, body)


VERBS = [
    Verb("retain", "show or set what a repository keeps", _retain_args, _retain),
    Verb("du", "what a version (its refs, its commits) uses, and only it", _du_args, _du),
]
