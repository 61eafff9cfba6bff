"""URL facts every layer shares: a URL's scheme, and a URL fit to show (no password)."""

from __future__ import annotations

import re
import urllib.parse

__all__ = ["redact_url", "url_scheme"]

_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://")


def url_scheme(text: str) -> str | None:
    """The lowercased scheme of ``text`` if it starts like a URL (``s3://...``), else
    None (a plain path)."""
    match = _SCHEME.match(text)
    return match.group(1).lower() if match else None


def redact_url(url: str, *, keep_user: bool = True) -> str:
    """``url`` fit for messages and reprs: its password replaced by ``***``, or, with
    ``keep_user=False``, its whole ``user:password@`` part removed."""
    parts = urllib.parse.urlsplit(url)
    if parts.password is None and (keep_user or parts.username is None):
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host += f":{parts.port}"
    if keep_user:
        host = f"{parts.username}:***@{host}"
    return urllib.parse.urlunsplit(parts._replace(netloc=host))
