"""open_store: which backend a URL names, and what it refuses."""

from __future__ import annotations

from pathlib import Path

import pytest

from ostree_repo._urls import redact_url
from ostree_repo.errors import InvalidNameError
from ostree_repo.store import FilesystemStore, MemoryStore, S3Store, is_filesystem_url, open_store

pytestmark = pytest.mark.anyio

ENV = {
    "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
    "AWS_REGION": "eu-west-3",
    "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE0001",
    "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
}


def test_paths_and_file_urls(tmp_path: Path) -> None:
    for url in (str(tmp_path), f"file://{tmp_path}", f"file://localhost{tmp_path}"):
        store = open_store(url)
        assert isinstance(store, FilesystemStore)
        assert store.root == str(tmp_path)
        assert store.url == f"file://{tmp_path}"
    relative = open_store("some/dir")
    assert isinstance(relative, FilesystemStore)
    assert relative.root == str(Path.cwd() / "some" / "dir")
    spaced = open_store("file:///srv/my%20repo")
    assert isinstance(spaced, FilesystemStore) and spaced.root == "/srv/my repo"
    assert open_store(spaced.url).root == "/srv/my repo"  # type: ignore[attr-defined]


def test_which_urls_name_a_filesystem_store(tmp_path: Path) -> None:
    for url in (str(tmp_path), "rel/dir", "file:///srv/x", "FILE:///srv/x", "odd:name"):
        assert is_filesystem_url(url), url
        assert isinstance(open_store(url, create=False), FilesystemStore)
    for url in ("s3://bucket", "S3://bucket/p", "memory://", "gs://bucket"):
        assert not is_filesystem_url(url), url


def test_urls_are_shown_without_passwords() -> None:
    assert redact_url("https://u:s3cret@h:8443/r/") == "https://u:***@h:8443/r/"
    assert redact_url("https://u:s3cret@h/r/", keep_user=False) == "https://h/r/"
    assert redact_url("https://u@h/r/") == "https://u@h/r/"
    assert redact_url("https://u@h/r/", keep_user=False) == "https://h/r/"
    assert redact_url("http://h:1/x") == "http://h:1/x"


def test_filesystem_options_pass_through(tmp_path: Path) -> None:
    store = open_store(str(tmp_path), fsync=False, create=False)
    assert isinstance(store, FilesystemStore)
    assert store._fsync is False and store._create is False


def test_s3_urls_take_settings_from_the_environment() -> None:
    store = open_store("s3://my-bucket/some/prefix/", env=ENV)
    assert isinstance(store, S3Store)
    assert (store.bucket, store.prefix, store.url) == (
        "my-bucket",
        "some/prefix",
        "s3://my-bucket/some/prefix",
    )
    assert store.endpoint == "http://127.0.0.1:9"
    bare = open_store("s3://my-bucket", env=ENV)
    assert isinstance(bare, S3Store) and bare.prefix == "" and bare.url == "s3://my-bucket"
    override = open_store("s3://my-bucket", env=ENV, endpoint="https://s3.example.com")
    assert override.endpoint == "https://s3.example.com"  # type: ignore[attr-defined]
    specific = open_store("s3://my-bucket", env={**ENV, "AWS_ENDPOINT_URL_S3": "http://s3:1"})
    assert specific.endpoint == "http://s3:1"  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "url",
    [
        "",
        "s3://",
        "s3://a",  # bucket names have 3 to 63 characters
        "s3://Upper-Case",
        "s3://bucket_underscore",
        "s3://bucket/a/../b",
        "s3://bucket/a//b",
        "s3://bucket/x?versionId=1",
        "file://otherhost/srv/repo",
        "ftp://host/repo",
        "http://example.com/repo",
    ],
)
def test_bad_urls(url: str) -> None:
    with pytest.raises(InvalidNameError):
        open_store(url, env=ENV)


def test_credentials_in_urls_are_refused_without_echoing_them() -> None:
    with pytest.raises(InvalidNameError) as caught:
        open_store("s3://AKIDSECRETKEY:sup3rs3cret@bucket/prefix", env=ENV)
    assert "sup3rs3cret" not in str(caught.value)
    assert "AKIDSECRETKEY" not in str(caught.value)


async def test_memory_urls() -> None:
    private_a, private_b = open_store("memory://"), open_store("memory://")
    assert isinstance(private_a, MemoryStore)
    async with private_a, private_b:
        await private_a.write_named("x", b"1")
        assert [p async for p in private_b.list_named()] == []
    async with open_store("memory://shared-test") as one:
        await one.write_named("x", b"1")
    async with open_store("memory://shared-test") as two:
        assert (await two.read_named("x")).data == b"1"
    MemoryStore.discard("shared-test")
    async with open_store("memory://shared-test") as three:
        assert [p async for p in three.list_named()] == []
