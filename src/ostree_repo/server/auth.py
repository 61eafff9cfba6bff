"""Optional per-repository access tokens.

A repository is *protected* when a token source names tokens for it. A request for a
protected repository must present one of them, either as a bearer token
(``Authorization: Bearer TOKEN``) or as the password of HTTP basic authentication (any
user name), which is what ``ostree remote add … http://user:TOKEN@host/NAME/`` sends.
A missing token is answered with 401 and ``WWW-Authenticate``, a wrong one with 403.

Tokens are compared in constant time and never logged.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import inspect
from collections.abc import Awaitable, Callable, Collection, Mapping
from typing import TypeAlias

__all__ = ["Accepted", "TokenSource"]

#: The tokens accepted for one repository: one, several, or None (the repository is public).
Accepted: TypeAlias = str | Collection[str] | None

TokenSource: TypeAlias = (
    Mapping[str, str | Collection[str]] | Callable[[str], Accepted | Awaitable[Accepted]]
)
"""Where tokens come from: a mapping from repository name to its token(s) (the key
``"*"`` applies to every repository not listed), or a callable given the repository name
and returning its accepted token(s), or None when the repository is public (an empty
collection locks it). The callable
may be async; it is called on every request, so cache in it if looking up is costly."""

WILDCARD = "*"


async def accepted_tokens(source: TokenSource | None, repository: str) -> frozenset[str] | None:
    """The tokens that open ``repository``; None when it is public.

    An empty collection protects the repository with no valid token: every request is
    refused.
    """
    if source is None:
        return None
    found: Accepted
    if isinstance(source, Mapping):
        found = source.get(repository, source.get(WILDCARD))
    else:
        result = source(repository)
        found = await result if inspect.isawaitable(result) else result
    if found is None:
        return None
    if isinstance(found, str):
        return frozenset((found,))
    return frozenset(found)


def presented_token(authorization: str | None) -> str | None:
    """The token in an ``Authorization`` header (bearer, or the basic-auth password)."""
    if not authorization:
        return None
    scheme, _, value = authorization.strip().partition(" ")
    scheme = scheme.lower()
    value = value.strip()
    if scheme == "bearer":
        return value or None
    if scheme == "basic":
        try:
            decoded = base64.b64decode(value, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        _, sep, password = decoded.partition(":")
        return password if sep and password else None
    return None


def token_ok(presented: str, accepted: frozenset[str]) -> bool:
    """Constant-time membership test (every candidate is compared)."""
    given = presented.encode()
    ok = False
    for token in accepted:
        ok |= hmac.compare_digest(given, token.encode())
    return ok


def parse_token_args(values: list[str]) -> dict[str, list[str]]:
    """``REPO=TOKEN`` strings (command line, token files) as a token mapping.

    A repository may be given several tokens; ``*=TOKEN`` protects every repository.
    """
    tokens: dict[str, list[str]] = {}
    for value in values:
        repo, sep, token = value.partition("=")
        if not sep or not repo or not token:
            raise ValueError("expected REPO=TOKEN")  # never echo the value: it is a secret
        tokens.setdefault(repo, []).append(token)
    return tokens
