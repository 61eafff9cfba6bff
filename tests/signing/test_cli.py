"""``ostree-repo keys``, ``sign``, ``verify``, ``--key-file``/``$OSTREE_REPO_KEYS`` and
``--require-signatures`` on create, import and sync."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ostree_repo.cli import main
from ostree_repo.server import create_app
from ostree_repo.signing import Ed25519Key
from server._servers import ThreadedServer


class Cli:
    def __init__(self, store: Path, capsys: pytest.CaptureFixture[str]) -> None:
        self.store, self.capsys = store, capsys

    def __call__(self, *args: str, status: int = 0) -> Any:
        code = main(["--store", str(self.store), *args, "--json"])
        out, err = self.capsys.readouterr()
        assert code == status, err
        self.err = err
        return json.loads(out) if out else {}


@pytest.fixture
def cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Cli:
    return Cli(tmp_path / "store", capsys)


@pytest.fixture
def key(tmp_path: Path) -> tuple[Ed25519Key, Path, Path]:
    k = Ed25519Key.generate()
    (tmp_path / "ed.key").write_bytes(k.to_bytes())
    (tmp_path / "ed.pub").write_bytes(k.public_bytes())
    return k, tmp_path / "ed.key", tmp_path / "ed.pub"


def tree(tmp_path: Path, content: str) -> str:
    d = tmp_path / f"tree-{content}"
    (d / "etc").mkdir(parents=True, exist_ok=True)
    (d / "etc" / "file").write_text(content)
    return str(d)


def test_keys_sign_verify(
    cli: Cli, key: tuple[Ed25519Key, Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    k, secret, public = key
    assert cli("create", "r")["version"] == 0
    cli("commit", "r", "--tree", tree(tmp_path, "one"), "--ref", "main")
    added = cli("keys", "add", "r", str(secret))
    assert added == {"repository": "r", "version": 2, "keys": [f"ed25519:{k.key_id}"]}
    listed = cli("keys", "list", "r")
    assert listed["keys"] == [
        {"name": f"ed25519:{k.key_id}", "kind": "ed25519", "public": k.key_id}
    ]
    checked = cli("verify", "r")
    assert checked["ok"] and len(checked["checked"]) == 2  # the summary and the commit
    assert cli("verify", "r", "--trust-key", str(public))["ok"]
    # without the private key the repository cannot change; with it (a flag or the
    # environment) it can, and every version is signed
    cli("commit", "r", "--tree", tree(tmp_path, "two"), "--ref", "main", status=1)
    assert "no private key for it" in cli.err
    cli("--key-file", str(secret), "commit", "r", "--tree", tree(tmp_path, "two"), "--ref", "main")
    monkeypatch.setenv("OSTREE_REPO_KEYS", str(secret))
    signed = cli("sign", "r", "--version", "2")
    assert signed["version"] == 4
    assert cli("refs", "r")  # the content of version 2 again
    assert cli("verify", "r")["ok"]
    other = Ed25519Key.generate()
    (tmp_path / "other.pub").write_bytes(other.public_bytes())
    cli("verify", "r", "--trust-key", str(tmp_path / "other.pub"), status=1)
    assert "none of 1 ed25519 signature(s) is valid" in cli.err
    removed = cli("keys", "remove", "r", f"ed25519:{k.key_id}")
    assert removed["version"] == 5
    assert cli("keys", "list", "r")["keys"] == []
    cli("keys", "remove", "r", f"ed25519:{k.key_id}", status=1)


def test_import_requires_signatures(
    cli: Cli, key: tuple[Ed25519Key, Path, Path], tmp_path: Path
) -> None:
    _, secret, public = key
    cli("commit", "src", "--tree", tree(tmp_path, "one"), "--ref", "main")
    cli("archive", "src", str(tmp_path / "a.tar"), "--ref", "main")
    cli("import", "dst", str(tmp_path / "a.tar"), "--require-signatures",
        "--trust-key", str(public), status=1)  # fmt: skip
    assert "no ed25519 signature (repository dst requires ed25519 signatures)" in cli.err
    assert cli("commits", "dst") == []  # nothing of it entered a version
    # signed at the source, the archive is welcome
    cli("--key-file", str(secret), "keys", "add", "src", str(secret))
    cli("archive", "src", str(tmp_path / "b.tar"), "--ref", "main")
    assert cli("import", "dst", str(tmp_path / "b.tar"))["version"] is not None
    created = cli("create", "strict", "--require-signatures", "--trust-key", str(public))
    assert created["version"] == 1


@pytest.fixture
def served(tmp_path: Path, cli: Cli, key: tuple[Ed25519Key, Path, Path]) -> Iterator[str]:
    _, secret, _ = key
    cli("create", "up")
    cli("--key-file", str(secret), "keys", "add", "up", str(secret))
    cli("--key-file", str(secret), "commit", "up", "--tree", tree(tmp_path, "x"), "--ref", "main")
    # latest_ttl=0: the server sees a new version at once
    with ThreadedServer(create_app(str(cli.store), latest_ttl=0)) as running:
        yield f"{running.url}/up/"


def test_sync_requires_signatures(
    cli: Cli, served: str, key: tuple[Ed25519Key, Path, Path], tmp_path: Path
) -> None:
    _, secret, public = key
    other = Ed25519Key.generate()
    (tmp_path / "other.pub").write_bytes(other.public_bytes())
    cli("sync", "bad", served, "--require-signatures", "--trust-key",
        str(tmp_path / "other.pub"), status=1)  # fmt: skip
    assert "the remote's summary" in cli.err
    synced = cli("sync", "good", served, "--require-signatures", "--trust-key", str(public))
    assert synced["version"] is not None and synced["summary_passed_through"]
    assert cli("verify", "good", "--trust-key", str(public))["ok"]
    # a mirror that signs with its own key: the remote's summary, signed by both
    mine = Ed25519Key.generate()
    (tmp_path / "mine.key").write_bytes(mine.to_bytes())
    (tmp_path / "mine.pub").write_bytes(mine.public_bytes())
    own = ("--key-file", str(tmp_path / "mine.key"))
    cli(*own, "keys", "add", "good", str(tmp_path / "mine.key"))
    # (a new upstream commit: a summary that ours, regenerated within the same second,
    # cannot equal byte for byte)
    up = ("--key-file", str(secret), "commit", "up", "--ref", "main")
    cli(*up, "--tree", tree(tmp_path, "y"))
    again = cli(*own, "sync", "good", served)
    assert again["version"] is not None and again["summary_passed_through"]
    for trusted in (public, tmp_path / "mine.pub"):
        assert cli("verify", "good", "--trust-key", str(trusted))["ok"]
    assert cli(*own, "sync", "good", served)["version"] is None  # unchanged: no version


def test_sync_refuses_unsigned_commits_before_their_trees(
    cli: Cli, key: tuple[Ed25519Key, Path, Path], tmp_path: Path
) -> None:
    from ostree_repo.repository import RepositoryManager, UnsignedError
    from ostree_repo.sync import sync_repository

    _, _, public = key
    commit = cli("commit", "plain", "--tree", tree(tmp_path, "unsigned"), "--ref", "main")["commit"]
    settings = {"signing": {"sign-verify": True, "verification-ed25519-key": [
        public.read_text().strip()
    ]}}  # fmt: skip

    async def run(url: str) -> None:
        async with RepositoryManager.open(str(tmp_path / "mirror")) as m:
            await m.create_repository("m", settings=settings)
            with pytest.raises(UnsignedError, match=f"commit {commit}: no ed25519 signature"):
                await sync_repository(m, "m", url)
            assert [o async for o in m.store.list_objects()] == []  # not even the commit
            assert (await m.repository("m").version()).commits == {}

    import anyio

    with ThreadedServer(create_app(str(cli.store))) as running:
        anyio.run(run, f"{running.url}/plain/")
