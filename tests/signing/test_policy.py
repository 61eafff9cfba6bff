"""The signing setting end to end in the library: what is signed, rotation, refusals."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ostree_repo.builder import commit_tree, tree_from_mapping
from ostree_repo.builder.archive import write_commit_archive
from ostree_repo.importing.archive import import_archive
from ostree_repo.objects import ObjectType
from ostree_repo.repository import RepositoryManager, SettingsError, VersionRecord
from ostree_repo.repository.blobs import read_blob
from ostree_repo.repository.signing_policy import MissingKeyError, SigningPolicy, UnsignedError
from ostree_repo.signing import (
    ED25519_KEY,
    GPG_KEY,
    Ed25519Key,
    OpenPGPKey,
    TrustedKeys,
    key_name,
    parse_signatures,
    signatures,
)

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def ed_keys() -> list[Ed25519Key]:
    return [Ed25519Key.generate(), Ed25519Key.generate()]


@pytest.fixture(scope="module")
def gpg() -> OpenPGPKey:
    import pysequoia

    return OpenPGPKey(pysequoia.Tsk.generate("Repo <repo@example.com>"))


@pytest.fixture
async def manager(ed_keys: list[Ed25519Key], gpg: OpenPGPKey) -> AsyncIterator[RepositoryManager]:
    keys = [*ed_keys, gpg]
    async with RepositoryManager.open(f"memory://{uuid.uuid4().hex}", keys=keys) as m:
        yield m


def signing(*keys: Ed25519Key | OpenPGPKey, **options: object) -> dict[str, object]:
    section: dict[str, object] = {"keys": [key_name(k) for k in keys], **options}
    certs = {k.key_id: k.certificate.armored() for k in keys if isinstance(k, OpenPGPKey)}
    if certs:
        section["certificates"] = certs
    return {"signing": section}


async def _commit(manager: RepositoryManager, name: str, content: bytes) -> str:
    checksum, _ = await commit_tree(
        manager, name, tree_from_mapping({"etc/file": content}), ref="main", subject="s"
    )
    return checksum


async def signed_by(
    manager: RepositoryManager, record: VersionRecord, trusted: TrustedKeys, kinds: list[str]
) -> None:
    """Every commit and the summary carry a valid signature of each kind."""
    store = manager.store
    assert record.summary is not None and record.summary_sig is not None
    summary = await read_blob(store, record.summary)
    trusted.verify(summary, await read_blob(store, record.summary_sig), kinds, "summary")
    for checksum, info in record.commits.items():
        assert info.commitmeta is not None, checksum
        data = await store.read_object(checksum, ObjectType.COMMIT)
        trusted.verify(data, await read_blob(store, info.commitmeta), kinds, checksum)


async def test_commits_and_summaries_are_signed_and_keys_rotate(
    manager: RepositoryManager, ed_keys: list[Ed25519Key], gpg: OpenPGPKey
) -> None:
    old, new = ed_keys
    await manager.create_repository("r", settings=signing(old))
    await _commit(manager, "r", b"one")
    record = await manager.repository("r").version()
    await signed_by(manager, record, TrustedKeys(ed25519=(old.public,)), ["ed25519"])

    # rotation: a new version in which every commit and the summary carry the new keys
    rotated = await manager.configure("r", signing(old, new, gpg))
    assert rotated is not None
    both = TrustedKeys(ed25519=(new.public,), gpg=(gpg.certificate,))
    await signed_by(manager, rotated, both, ["ed25519", "gpg"])
    await signed_by(manager, rotated, TrustedKeys(ed25519=(old.public,)), ["ed25519"])
    # the old key goes: the summary is signed by the new ones only; commits keep theirs
    retired = await manager.configure("r", signing(new, gpg))
    assert retired is not None and retired.summary_sig is not None
    summary_sig = parse_signatures(await read_blob(manager.store, retired.summary_sig), "s")
    assert len(signatures(summary_sig, ED25519_KEY)) == 1
    assert len(signatures(summary_sig, GPG_KEY)) == 1
    await signed_by(manager, retired, both, ["ed25519", "gpg"])
    # a commit already signed by every key is not signed again (idempotent)
    await _commit(manager, "r", b"two")
    latest = await manager.repository("r").version()
    for info in latest.commits.values():
        assert info.commitmeta is not None
        meta = parse_signatures(await read_blob(manager.store, info.commitmeta), "c")
        assert len(signatures(meta, GPG_KEY)) == 1


async def test_signing_again_is_idempotent(
    manager: RepositoryManager, ed_keys: list[Ed25519Key], gpg: OpenPGPKey
) -> None:
    await manager.create_repository("r", settings=signing(ed_keys[0], gpg))
    await _commit(manager, "r", b"one")
    repo = manager.repository("r")
    base = await repo.version()
    hook = next(h for h in manager.hooks if isinstance(h, SigningPolicy))
    # a lost race re-applies prepare to a draft whose commits are signed already
    again = await hook.prepare(repo, await repo.version(0), base)
    assert again.commits == base.commits
    sealed = await hook.seal(repo, base, base)
    assert sealed.summary_sig == base.summary_sig


async def test_a_repository_that_signs_needs_its_private_keys(
    manager: RepositoryManager, ed_keys: list[Ed25519Key]
) -> None:
    await manager.create_repository("r", settings=signing(ed_keys[0]))
    bare = RepositoryManager(manager.store)  # no keys given
    with pytest.raises(MissingKeyError, match=r"signs with ed25519:.*no private key"):
        await _commit(bare, "r", b"one")
    assert (await manager.repository("r").version()).commits == {}


async def test_no_change_makes_no_version(
    manager: RepositoryManager, ed_keys: list[Ed25519Key], tmp_path: Path
) -> None:
    await _commit(manager, "src", b"one")
    await write_commit_archive(manager, "src", tmp_path / "a.tar", ref="main")
    await manager.create_repository("r", settings=signing(ed_keys[0]))
    first = await import_archive(manager, "r", tmp_path / "a.tar")
    assert first is not None
    assert await import_archive(manager, "r", tmp_path / "a.tar") is None
    assert await manager.copy("src", "r", refs=["main"]) is None


async def test_unsigned_commits_are_refused_before_they_are_stored(
    manager: RepositoryManager, ed_keys: list[Ed25519Key], tmp_path: Path
) -> None:
    trusted = ed_keys[1].key_id
    await manager.create_repository("src")
    commit = await _commit(manager, "src", b"unsigned")
    await write_commit_archive(manager, "src", tmp_path / "a.tar", ref="main")
    settings = {"signing": {"sign-verify": True, "verification-ed25519-key": [trusted]}}
    await manager.create_repository("r", settings=settings)
    async with RepositoryManager.open(f"memory://{uuid.uuid4().hex}", keys=ed_keys) as other:
        await other.create_repository("r", settings=settings)
        with pytest.raises(UnsignedError, match=f"commit {commit}: no ed25519 signature"):
            await import_archive(other, "r", tmp_path / "a.tar")
        assert not await other.store.has_object(commit, ObjectType.COMMIT)  # refused early
        assert (await other.repository("r").version()).commits == {}
    with pytest.raises(UnsignedError, match=f"commit {commit}"):
        await manager.copy("src", "r", refs=["main"])
    # signed by the trusted key, the same commit is welcome (and keeps its signature)
    await manager.configure("src", signing(ed_keys[1]))
    copied = await manager.copy("src", "r", refs=["main"])
    assert copied is not None and copied.commits[commit].commitmeta is not None
    # signed by another key, it is not
    await manager.create_repository("strict", settings={
        "signing": {"sign-verify": True, "verification-ed25519-key": [ed_keys[0].key_id]}
    })  # fmt: skip
    with pytest.raises(UnsignedError, match="none of 1 ed25519 signature"):
        await manager.copy("src", "strict", refs=["main"])


def test_settings_are_checked(ed_keys: list[Ed25519Key], gpg: OpenPGPKey) -> None:
    hook = SigningPolicy()
    assert hook.validate({"keys": [key_name(ed_keys[0])]}) == {"keys": [key_name(ed_keys[0])]}
    with pytest.raises(SettingsError, match="unknown field"):
        hook.validate({"key": []})
    with pytest.raises(SettingsError, match="certificate is missing"):
        hook.validate({"keys": [key_name(gpg)]})
    with pytest.raises(SettingsError, match="needs verification-ed25519-key"):
        hook.validate({"sign-verify": True})
    with pytest.raises(SettingsError, match="needs a gpg-keyring"):
        hook.validate({"gpg-verify-summary": True})
    with pytest.raises(SettingsError, match="must be true or false"):
        hook.validate({"gpg-verify": "yes"})
    with pytest.raises(SettingsError, match="not a key name"):
        hook.validate({"keys": ["rsa:xyz"]})


def test_blocking_facade_signs_and_verifies(tmp_path: Path, ed_keys: list[Ed25519Key]) -> None:
    from ostree_repo.blocking import Manager

    with Manager(str(tmp_path / "store"), keys=ed_keys[:1]) as m:
        m.create_repository("r", settings=signing(ed_keys[0]))
        m.commit("r", tree_from_mapping({"etc/x": b"x"}), ref="main")
        assert all(v.ok for v in m.verify("r"))
        assert m.sign("r") is None  # signed already: nothing changes
        m.commit("r", tree_from_mapping({"etc/x": b"y"}), ref="main")
        again = m.sign("r", 2)  # the content of version 2 again, signed
        assert again is not None and again.action == {"kind": "sign", "source_version": 2}
        assert again.refs == m.version("r", 2).refs
        other = TrustedKeys(ed25519=(ed_keys[1].public,))
        assert not any(v.ok for v in m.verify("r", trusted=other))
