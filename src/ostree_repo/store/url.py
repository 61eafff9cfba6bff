"""Open a store from a URL: a path, ``file:///path``, ``s3://bucket/prefix``, ``memory://``."""

from __future__ import annotations

import os
import urllib.parse
from collections.abc import Mapping
from typing import Any

from ostree_repo._urls import url_scheme
from ostree_repo.errors import InvalidNameError
from ostree_repo.store._base import ObjectStore

__all__ = ["is_filesystem_url", "open_store"]


def is_filesystem_url(url: str) -> bool:
    """Whether :func:`open_store` makes a :class:`FilesystemStore` of ``url``: a plain
    path or a ``file://`` URL."""
    return url_scheme(url) in (None, "file")


def open_store(url: str, *, env: Mapping[str, str] | None = None, **options: Any) -> ObjectStore:
    """Make the store a URL names; enter it with ``async with`` before use.

    * ``/srv/repo``, ``./repo`` or ``file:///srv/repo``: :class:`FilesystemStore`
      (options: ``create``, ``fsync``, ``workers``, ``workers_after``).
    * ``s3://bucket`` or ``s3://bucket/prefix``: :class:`S3Store`, configured from
      ``AWS_ENDPOINT_URL``, ``AWS_REGION``, ``AWS_ACCESS_KEY_ID``,
      ``AWS_SECRET_ACCESS_KEY`` and ``AWS_SESSION_TOKEN`` in ``env`` (default
      ``os.environ``); ``options`` (``endpoint``, ``region``, ``max_retries``, ...) win.
    * ``memory://`` (a private store) or ``memory://NAME`` (shared by name in this
      process): :class:`MemoryStore`.

    Credentials in the URL itself are refused. Raises InvalidNameError for a bad URL.
    """
    if not isinstance(url, str) or not url:
        raise InvalidNameError("store URL must be a non-empty str")
    scheme = url_scheme(url)
    if scheme is None:
        from ostree_repo.store.filesystem import FilesystemStore

        return FilesystemStore(url, **options)
    parts = urllib.parse.urlsplit(url)
    if "@" in parts.netloc:
        raise InvalidNameError(
            f"store URLs must not carry credentials ({scheme}://<redacted>): use the environment"
        )
    if parts.query or parts.fragment:
        raise InvalidNameError(f"unexpected query or fragment in store URL {url!r}")
    path = urllib.parse.unquote(parts.path)
    if scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise InvalidNameError(f"file URL with a remote host: {url!r}")
        if not path.startswith("/"):
            raise InvalidNameError(f"file URL needs an absolute path: {url!r}")
        from ostree_repo.store.filesystem import FilesystemStore

        return FilesystemStore(path, **options)
    env = os.environ if env is None else env
    if scheme == "s3":  # a cloud store: its class reads the URL and its settings
        from ostree_repo.store.s3 import S3Store

        return S3Store.from_url(parts.netloc, path, env, **options)
    if scheme == "memory":
        from ostree_repo.store.memory import MemoryStore

        return MemoryStore(urllib.parse.unquote(parts.netloc) + path or None, **options)
    raise InvalidNameError(f"unsupported store URL scheme {scheme!r}")
