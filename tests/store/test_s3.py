"""S3-specific behaviour: credential redaction and the conditional-write probe."""

from __future__ import annotations

import logging
import traceback
from typing import Any

import pytest

from ostree_repo.errors import ConflictError, NotFoundError, StoreError
from ostree_repo.store import MemoryStore, ObjectStore, S3Store, open_store
from ostree_repo.store._base import PutMode
from ostree_repo.store._chunks import Source, Verifier

from .conftest import StoreSpec

pytestmark = pytest.mark.anyio


def everything_said_about(error: BaseException) -> str:
    """All the text an error could show: message, repr, traceback with its chain."""
    return "\n".join([str(error), repr(error), *traceback.format_exception(error)])


@pytest.mark.parametrize("native_async", [True, False])
async def test_credentials_never_appear_in_errors_reprs_or_logs(
    seaweedfs: Any, s3_url: str, caplog: pytest.LogCaptureFixture, native_async: bool
) -> None:
    caplog.set_level(logging.DEBUG)
    secret = "Wr0ngSecretKeyValue/abcdefghijklmnop"
    bad_key = "AKIDNOTAREALKEY0042"
    cases = [
        {**seaweedfs.env, "AWS_SECRET_ACCESS_KEY": secret},  # SignatureDoesNotMatch
        {**seaweedfs.env, "AWS_ACCESS_KEY_ID": bad_key},  # InvalidAccessKeyId
    ]
    secrets = [secret, bad_key, seaweedfs.env["AWS_ACCESS_KEY_ID"]]
    seen = []
    for env in cases:
        store = open_store(s3_url, env=env, max_retries=0, native_async=native_async)
        seen.append(repr(store))
        async with store:
            for operation in (
                store.write_named("refs/heads/main", b"x"),
                store.read_named("refs/heads/main"),
                store.create_named("versions/1", b"x"),
            ):
                with pytest.raises(StoreError) as caught:
                    await operation
                assert not isinstance(caught.value, ConflictError | NotFoundError)
                assert caught.value.__context__ is None and caught.value.__cause__ is None
                seen.append(everything_said_about(caught.value))
    good = open_store(s3_url, env=seaweedfs.env, native_async=native_async)
    async with good:
        await good.write_named("a", b"1")
        with pytest.raises(NotFoundError) as missing:
            await good.read_named("b")
        seen.append(everything_said_about(missing.value))
    seen += [repr(good), str(good), caplog.text]
    text = "\n".join(seen)
    assert "403" in text or "Forbidden" in text or "privileges" in text  # errors do say why
    for value in [*secrets, seaweedfs.env["AWS_SECRET_ACCESS_KEY"]]:
        assert value not in text


def test_redaction_of_server_responses() -> None:
    store = S3Store(
        "bucket",
        endpoint="http://user:pa55word@127.0.0.1:9000",
        access_key_id="AKIDEXAMPLE",
        secret_access_key="s3cr3t/KEY+value",
        session_token="FwoGZXIvYXdzEBYaDSESSIONTOKEN",
    )
    assert repr(store) == "S3Store('s3://bucket', endpoint='http://127.0.0.1:9000')"
    response = (
        "403 Forbidden: <Error><Code>SignatureDoesNotMatch</Code>"
        "<AWSAccessKeyId>AKIDEXAMPLE</AWSAccessKeyId>"
        "<StringToSign>AWS4-HMAC-SHA256\n20240101T000000Z\nscope\nhash</StringToSign>"
        "<SignatureProvided>abcdef0123</SignatureProvided>"
        "<CanonicalRequest>PUT\n/bucket/key\nX-Amz-Security-Token=FwoGZXIvYXdzEBYaDSESSIONTOKEN"
        "</CanonicalRequest></Error> for http://h/k?X-Amz-Credential=AKIDEXAMPLE%2F2024"
        "&X-Amz-Signature=deadbeef&other=1 secret s3cr3t/KEY+value"
        "\n\nDebug source: Generic { body: AKIDEXAMPLE }"
    )
    clean = store._redact(response)
    for value in (
        "AKIDEXAMPLE",
        "s3cr3t/KEY+value",
        "FwoGZXIvYXdzEBYaDSESSIONTOKEN",
        "deadbeef",
        "abcdef0123",
        "20240101T000000Z",
        "Debug source",
    ):
        assert value not in clean
    assert "SignatureDoesNotMatch" in clean and "other=1" in clean


async def test_conditional_write_probe_passes_on_real_backends(spec: StoreSpec) -> None:
    async with spec.open() as store:
        await store.check_conditional_writes()
        assert [p async for p in store.list_named()] in ([], ["config"])


class IgnoresConditions(MemoryStore):
    """A backend that behaves like servers which ignore If-None-Match and If-Match."""

    async def _put(
        self, path: str, data: Source, verifier: Verifier | None, mode: PutMode, *, want_token: bool
    ) -> str | None:
        return await super()._put(path, data, verifier, PutMode.OVERWRITE, want_token=want_token)

    async def _replace(self, path: str, data: bytes, token: str) -> str:
        return await super()._put(path, data, None, PutMode.OVERWRITE, want_token=True) or ""


async def test_conditional_write_probe_detects_servers_that_ignore_conditions() -> None:
    store: ObjectStore = IgnoresConditions()
    async with store:
        with pytest.raises(StoreError, match="does not enforce conditional writes"):
            await store.check_conditional_writes()
        assert [p async for p in store.list_named()] == []
