"""Verbs about signatures: ``keys add|list|remove``, ``sign``, ``verify``; and the
``--require-signatures`` options of ``create``, ``import`` and ``sync``.

Internal to ostree_repo: the CLI's interface is the command line (:func:`ostree_repo.cli.main`).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from ostree_repo.cli._verb import Output, Verb, run_with_manager, write_result
from ostree_repo.errors import NotFoundError, OstreeRepoError
from ostree_repo.objects import ObjectType, Summary, object_path
from ostree_repo.repository import RepositoryManager
from ostree_repo.repository.signing_policy import (
    SECTION,
    Verdict,
    check,
    requirement,
    resign,
    signing_settings,
    verify_version,
    with_keys,
    without_keys,
)

__all__ = ["VERBS", "add_require_arguments", "apply_requirement"]


# -- --require-signatures ----------------------------------------------------------------------


def _trust_key(parser: argparse.ArgumentParser, text: str) -> None:
    parser.add_argument("--trust-key", action="append", default=[], metavar="FILE", help=text)


def add_require_arguments(parser: argparse.ArgumentParser) -> None:
    """``--require-signatures`` and ``--trust-key FILE`` (for create, import, sync)."""
    parser.add_argument(
        "--require-signatures",
        action="store_true",
        help="refuse commits (and, for sync, remote summaries) without a valid signature "
        "from a --trust-key key (sets the repository's signing policy)",
    )
    _trust_key(
        parser,
        "a trusted public key: an OpenPGP keyring (gpg --export) or ed25519 "
        "public keys (base64 lines, as libostree's trusted.ed25519, or PEM); repeatable",
    )


def _trusted(files: list[str]) -> Any:
    from ostree_repo.signing import TrustedKeys, load_trusted

    trusted = TrustedKeys()
    for path in files:
        try:
            data = Path(path).read_bytes()
        except OSError as e:
            raise OstreeRepoError(f"cannot read key file {path}: {e.strerror}") from None
        trusted += load_trusted(data)
    return trusted


async def apply_requirement(
    manager: RepositoryManager, name: str, args: argparse.Namespace, *, summaries: bool = False
) -> None:
    """Make ``name`` (created if needed) require what ``--require-signatures`` asks."""
    if not getattr(args, "require_signatures", False):
        if getattr(args, "trust_key", []):
            raise OstreeRepoError("--trust-key needs --require-signatures")
        return
    fields = requirement(_trusted(args.trust_key), summaries=summaries)
    await manager.create_repository(name, exist_ok=True)
    section = (await manager.repository(name).version()).settings.get(SECTION) or {}
    await manager.configure(name, {SECTION: {**section, **fields}})


# -- keys ----------------------------------------------------------------------------------------


def _keys_args(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    add = sub.add_parser("add", help="sign the repository with these keys too (a version)")
    add.add_argument("name", metavar="NAME", help="repository name")
    add.add_argument("files", metavar="KEY-FILE", nargs="+", help="private key files")
    show = sub.add_parser("list", help="the keys a repository signs with and trusts")
    show.add_argument("name", metavar="NAME", help="repository name")
    show.add_argument("--version", type=int, help="version number (default: latest)")
    remove = sub.add_parser("remove", help="stop signing with these keys (a version)")
    remove.add_argument("name", metavar="NAME", help="repository name")
    remove.add_argument("keys", metavar="KEY", nargs="+", help="ed25519:BASE64 or gpg:FINGERPRINT")
    for p in (add, show, remove):
        p.add_argument(
            "--json", action="store_true", default=argparse.SUPPRESS, help="print one JSON document"
        )


def _key_rows(section: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for name in section["keys"]:
        kind, ident = name.split(":", 1)
        public = ident if kind == "ed25519" else section["certificates"].get(ident, "")
        rows.append({"name": name, "kind": kind, "public": public})
    return rows


def _keys(args: argparse.Namespace) -> Output:
    if args.action == "add":
        from ostree_repo.signing import load_key_file

        added = [load_key_file(p) for p in args.files]

        async def add(m: RepositoryManager) -> Output:
            section = (await m.repository(args.name).version()).settings.get(SECTION) or {}
            record = await m.configure(args.name, {SECTION: with_keys(section, added)})
            from ostree_repo.signing import key_name

            return write_result(args.name, record, keys=[key_name(k) for k in added])

        return run_with_manager(args, add, key_files=args.files)
    if args.action == "remove":

        async def remove(m: RepositoryManager) -> Output:
            section = (await m.repository(args.name).version()).settings.get(SECTION) or {}
            record = await m.configure(args.name, {SECTION: without_keys(section, args.keys)})
            return write_result(args.name, record, removed=list(args.keys))

        return run_with_manager(args, remove)

    async def show(m: RepositoryManager) -> Output:
        record = await m.repository(args.name).version(args.version)
        section = signing_settings(record.settings)
        rows = _key_rows(section)
        requires = {k: v for k, v in section.items() if k.endswith(("-verify", "-summary")) and v}
        doc = {
            "repository": args.name,
            "version": record.number,
            "keys": rows,
            "requires": sorted(requires),
            "trusted": {
                "ed25519": section["verification-ed25519-key"],
                "gpg": section["gpg-keyring"],
            },
        }
        text = "\n".join(r["name"] for r in rows) or f"{args.name}: no signing keys"
        return doc, text

    return run_with_manager(args, show)


# -- sign ------------------------------------------------------------------------------------------


def _sign_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", metavar="NAME", help="repository name")
    parser.add_argument("--version", type=int, help="version to re-sign (default: latest)")


def _sign(args: argparse.Namespace) -> Output:
    async def body(m: RepositoryManager) -> Output:
        return write_result(args.name, await resign(m.repository(args.name), args.version))

    return run_with_manager(args, body)


# -- verify ----------------------------------------------------------------------------------------


def _verify_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "target",
        metavar="NAME|URL|DIR",
        help="a repository of the store, or a served repository (http(s) URL, file:// URL "
        "or directory, e.g. an export), as a client would see it",
    )
    parser.add_argument("--version", type=int, help="version number (default: latest)")
    _trust_key(parser, "trusted public keys (default for a repository: the keys it signs with)")


class _Served:
    """Reads the files of a served repository: over HTTP, or from a directory."""

    def __init__(self, target: str) -> None:
        import httpx  # here: httpx costs ~0.1 s of start-up, which only this verb needs

        self.target = target.rstrip("/") + "/"
        self.client = httpx.Client(timeout=30.0) if "://" in target[:8] else None
        if target.startswith("file://"):
            self.client, self.target = None, target.removeprefix("file://").rstrip("/") + "/"

    def get(self, path: str) -> bytes | None:
        if self.client is None:
            try:
                return Path(self.target, path).read_bytes()
            except FileNotFoundError:
                return None
        response = self.client.get(self.target + path)
        if response.status_code == 404:
            return None
        response.raise_for_status()
        return response.content


def _verify_served(target: str, trusted: Any) -> tuple[dict[str, Any], list[Verdict]]:
    import httpx

    served = _Served(target)
    try:
        summary = served.get("summary")
        if summary is None:
            raise NotFoundError(f"{target} has no summary")
        verdicts = [check(trusted, "summary", summary, served.get("summary.sig"))]
        parsed = Summary.from_bytes(summary)
        heads = sorted({r.checksum for r in parsed.refs})
        for commit in heads:
            data = served.get(object_path(commit, ObjectType.COMMIT))
            if data is None:
                verdicts.append(Verdict(f"commit {commit}", error="the commit is missing"))
                continue
            meta = served.get(object_path(commit, ObjectType.COMMITMETA))
            verdicts.append(check(trusted, f"commit {commit}", data, meta))
    except httpx.HTTPError as e:
        raise OstreeRepoError(f"{target}: {e}") from None
    finally:
        if served.client is not None:
            served.client.close()
    return {"url": target, "version": None}, verdicts


def _verify(args: argparse.Namespace) -> Output:
    trusted = _trusted(args.trust_key) if args.trust_key else None
    served = "://" in args.target or os.sep in args.target or args.target.startswith(".")

    def report(head: dict[str, Any], verdicts: list[Verdict]) -> Output:
        bad = [v for v in verdicts if not v.ok]
        doc = {**head, "ok": not bad, "checked": [v.to_json() for v in verdicts]}
        if bad:
            more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
            raise OstreeRepoError(f"{bad[0].error}{more}")
        return doc, f"{len(verdicts)} signed item(s) verified: " + ", ".join(
            sorted({n for v in verdicts for n in v.signed_by.values()})
        )

    if served:
        if trusted is None:
            raise OstreeRepoError("verifying a served repository needs --trust-key")
        return report(*_verify_served(args.target, trusted))

    async def body(m: RepositoryManager) -> Output:
        record, verdicts = await verify_version(m.repository(args.target), args.version, trusted)
        return report({"repository": args.target, "version": record.number}, verdicts)

    return run_with_manager(args, body)


VERBS = [
    Verb("keys", "the keys a repository signs with: add, list, remove", _keys_args, _keys),
    Verb("sign", "re-sign a version with the repository's current keys", _sign_args, _sign),
    Verb("verify", "check the signatures of a version or of a served repository",
         _verify_args, _verify),
]  # fmt: skip
