"""A store in an S3 bucket (AWS, MinIO, SeaweedFS, R2, ...): S3's settings over
:class:`~.cloud.ObstoreStore`, which does the rest.

Requests are path-style (every S3-compatible server accepts them) and compare-and-swap
uses ``If-Match: <ETag>`` (obstore's ``conditional_put="etag"``). Settings come from the
arguments or, through :meth:`S3Store.from_env`, from the usual ``AWS_*`` variables.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

from obstore.store import S3Store as _ObstoreS3

from ostree_repo._urls import redact_url
from ostree_repo.errors import InvalidNameError
from ostree_repo.store.cloud import (
    PART_CONCURRENCY,
    PART_SIZE,
    ObstoreStore,
    check_key_prefix,
    client_options,
    retry_config,
)

__all__ = ["S3Store"]

_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


class S3Store(ObstoreStore):
    """An object store under ``prefix`` in S3 bucket ``bucket``.

    ``endpoint``: base URL of an S3-compatible server (default: AWS for ``region``);
    ``http://`` endpoints are allowed. Credentials not given here fall back to obstore's
    own lookup (``AWS_*`` environment variables, instance metadata, ...).
    ``max_retries``/``timeout`` tune the HTTP client; ``part_size``, ``part_concurrency``
    and ``native_async`` are :class:`~.cloud.ObstoreStore`'s.
    """

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint: str | None = None,
        region: str | None = None,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        session_token: str | None = None,
        max_retries: int = 10,
        timeout: str = "1h",
        part_size: int = PART_SIZE,
        part_concurrency: int = PART_CONCURRENCY,
        native_async: bool | None = None,
    ) -> None:
        prefix = prefix.strip("/")
        self.bucket = bucket
        self.prefix = prefix
        self.endpoint = redact_url(endpoint, keep_user=False) if endpoint else None
        super().__init__(
            f"s3://{bucket}/{prefix}" if prefix else f"s3://{bucket}",
            secrets=(access_key_id, secret_access_key, session_token),
            part_size=part_size,
            part_concurrency=part_concurrency,
            native_async=native_async,
        )
        config: dict[str, Any] = {"virtual_hosted_style_request": False, "conditional_put": "etag"}
        for key, value in (
            ("endpoint", endpoint),
            ("region", region),
            ("access_key_id", access_key_id),
            ("secret_access_key", secret_access_key),
            ("session_token", session_token),
        ):
            if value:
                config[key] = value
        client = client_options(
            timeout, allow_http=bool(endpoint and endpoint.startswith("http://"))
        )
        self._connect(
            lambda: _ObstoreS3(
                bucket,
                prefix=prefix or None,
                config=config,  # type: ignore[arg-type]
                client_options=client,  # type: ignore[arg-type]
                retry_config=retry_config(max_retries),  # type: ignore[arg-type]
            )
        )

    @classmethod
    def from_url(
        cls, netloc: str, path: str, env: Mapping[str, str] | None = None, **options: Any
    ) -> S3Store:
        """The store ``s3://NETLOC/PATH`` names (see :meth:`from_env` for ``env``)."""
        if _BUCKET.fullmatch(netloc) is None:
            raise InvalidNameError(f"invalid S3 bucket name {netloc!r}")
        return cls.from_env(netloc, check_key_prefix(path), env=env, **options)

    @classmethod
    def from_env(
        cls, bucket: str, prefix: str = "", env: Mapping[str, str] | None = None, **options: Any
    ) -> S3Store:
        """Configure from ``AWS_ENDPOINT_URL`` (or ``AWS_ENDPOINT_URL_S3``), ``AWS_REGION``
        (or ``AWS_DEFAULT_REGION``), ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY`` and
        ``AWS_SESSION_TOKEN`` in ``env`` (default: ``os.environ``); ``options`` win."""
        if env is None:
            env = os.environ
        settings: dict[str, Any] = {
            "endpoint": env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL"),
            "region": env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION"),
            "access_key_id": env.get("AWS_ACCESS_KEY_ID"),
            "secret_access_key": env.get("AWS_SECRET_ACCESS_KEY"),
            "session_token": env.get("AWS_SESSION_TOKEN"),
        }
        settings.update(options)
        return cls(bucket, prefix, **settings)

    def __repr__(self) -> str:
        if self.endpoint:
            return f"S3Store({self.url!r}, endpoint={self.endpoint!r})"
        return f"S3Store({self.url!r})"
