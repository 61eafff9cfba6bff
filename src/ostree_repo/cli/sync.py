"""The ``sync`` verb: sync a repository from a remote OSTree HTTP server.

Internal to ostree_repo: the CLI's interface is the command line (:func:`ostree_repo.cli.main`).
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from ostree_repo.cli._progress import sync_display
from ostree_repo.cli._verb import Output, Verb, run_with_manager
from ostree_repo.cli.signing import add_require_arguments, apply_requirement
from ostree_repo.repository import RepositoryManager

if TYPE_CHECKING:
    from ostree_repo.sync import RemoteOptions

__all__ = ["VERBS"]


def _header(text: str) -> tuple[str, str]:
    key, sep, value = text.partition(":")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY:VALUE, got {text!r}")
    return key.strip(), value.strip()


def _sync_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", metavar="NAME", help="repository name (created if needed)")
    parser.add_argument("url", metavar="URL", help="http(s) URL of the remote repository")
    add_require_arguments(parser)
    parser.add_argument(
        "--include-ref", action="append", default=[], metavar="GLOB",
        help="sync refs matching GLOB (repeatable; default: every ref)",
    )  # fmt: skip
    parser.add_argument(
        "--exclude-ref", action="append", default=[], metavar="GLOB",
        help="skip refs matching GLOB (applied after --include-ref; repeatable)",
    )  # fmt: skip
    parser.add_argument(
        "--depth", type=int, default=0, help="parents per head commit (0: none, -1: all)"
    )
    parser.add_argument("--no-deltas", action="store_true", help="do not sync static deltas")
    parser.add_argument(
        "--add", action="store_true",
        help="add to the latest version instead of mirroring the remote",
    )  # fmt: skip
    parser.add_argument("--concurrency", type=int, help="requests in flight (default 32)")
    parser.add_argument(
        "--connections", type=int,
        help="connections of the built-in HTTP/1.1 client (default 8; the requests in "
        "flight are pipelined over them)",
    )  # fmt: skip
    parser.add_argument(
        "--header", action="append", default=[], type=_header, metavar="KEY:VALUE",
        help="extra HTTP header on every request, e.g. an Authorization token (repeatable)",
    )  # fmt: skip
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds per request")
    parser.add_argument("--retries", type=int, default=5, help="retries per request")
    parser.add_argument(
        "--backoff", type=float, default=0.25,
        help="seconds before the first retry (doubled for each next one, up to 10 s)",
    )  # fmt: skip
    parser.add_argument("--ca-bundle", help="CA certificates to verify the server with")
    parser.add_argument("--insecure", action="store_true", help="do not verify TLS certificates")
    parser.add_argument("--client-cert", help="client certificate (PEM, may include the key)")
    parser.add_argument("--client-key", help="client certificate key (PEM)")
    parser.add_argument("--proxy", help="proxy URL")
    parser.add_argument(
        "--no-proxy-env", action="store_true",
        help="ignore the HTTP_PROXY/HTTPS_PROXY/ALL_PROXY/NO_PROXY environment variables",
    )  # fmt: skip
    parser.add_argument(
        "--http2", action=argparse.BooleanOptionalAction, default=None,
        help="use HTTP/2 for https:// (needs the h2 package) or never (default: the "
        "built-in HTTP/1.1 client where it applies, measured faster)",
    )  # fmt: skip
    parser.add_argument(
        "--httpx", action="store_true",
        help="send every request through httpx instead of the built-in HTTP/1.1 client",
    )  # fmt: skip


def _options(args: argparse.Namespace) -> RemoteOptions:
    from ostree_repo.sync import InvalidOptionsError, RemoteKeywords, RemoteOptions

    verify: bool | str = False if args.insecure else (args.ca_bundle or True)
    cert: str | tuple[str, str] | None = args.client_cert
    if args.client_cert and args.client_key:
        cert = (args.client_cert, args.client_key)
    options: RemoteKeywords = {
        "headers": dict(args.header), "timeout": args.timeout, "retries": args.retries,
        "backoff": args.backoff, "verify": verify, "cert": cert, "proxy": args.proxy,
        "trust_env": not args.no_proxy_env, "http2": args.http2, "lean": not args.httpx,
    }  # fmt: skip
    for flag in ("concurrency", "connections"):
        value = getattr(args, flag)
        if value is not None:
            if value < 1:
                raise InvalidOptionsError(f"--{flag} must be at least 1")
            options[flag] = value
    return RemoteOptions(**options)


def _sync(args: argparse.Namespace) -> Output:
    # imported here: only this verb needs the sync layer
    from ostree_repo.sync import sync_repository

    options = _options(args)
    progress = sync_display()

    async def body(m: RepositoryManager) -> Output:
        await apply_requirement(m, args.name, args, summaries=True)
        try:
            result = await sync_repository(
                m, args.name, args.url,
                include=args.include_ref, exclude=args.exclude_ref, depth=args.depth,
                deltas=not args.no_deltas, mirror=not args.add, options=options,
                progress=progress,
            )  # fmt: skip
        finally:
            if progress is not None:
                progress.done()
        doc = result.to_json()
        fetched = f"{result.objects_fetched} objects, {result.bytes_fetched / 1e6:.1f} MB fetched"
        if result.version is None:
            text = f"{args.name}: nothing changed, no new version ({fetched})"
        else:
            v = result.version
            text = (
                f"{args.name}: version {v.number} ({len(v.refs)} refs, {len(v.commits)} commits, "
                f"{len(v.deltas)} deltas; {fetched})"
            )
        if result.signed:
            text += "\nsummary and summary.sig passed through from the remote"
        text += "".join(f"\nnote: {n}" for n in result.notes)
        return doc, text

    return run_with_manager(args, body)


VERBS = [Verb("sync", "sync a repository from a remote OSTree server", _sync_args, _sync)]
