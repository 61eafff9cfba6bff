"""The proof: the real ``ostree pull`` (libostree 2022.7, through GnuPG) verifies the
signatures we make, from our server and from an export, and refuses what it must.

libostree 2022.7 as Debian 12 builds it has no ed25519 (``sign-ed25519`` is not among
``ostree --version``'s features, ``ostree sign`` answers "Requested signature type is not
implemented"), so ``sign-verify`` cannot be exercised by a real client here; ed25519 is
checked against libsodium and GLib in ``test_formats.py``.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import anyio
import attrs
import pytest

from oracle.ostree_cli import OstreeCommandError, fsck, ostree, rev_parse
from ostree_repo.builder import commit_tree, tree_from_mapping
from ostree_repo.cli import main
from ostree_repo.export import export_version
from ostree_repo.repository import RepositoryManager
from ostree_repo.server import create_app
from ostree_repo.signing import Ed25519Key, OpenPGPKey, key_name, load_key
from server._servers import ThreadedServer


def gpg(home: Path, *args: str) -> bytes:
    out = subprocess.run(
        ["gpg", "--batch", "--pinentry-mode", "loopback", "--passphrase", "", *args],
        env={**os.environ, "GNUPGHOME": str(home)},
        capture_output=True,
        check=True,
    )
    return out.stdout


@attrs.frozen
class Keys:
    """A GPG key made in 2020 (so an expiry can be set in the past later), the keyrings
    a client may hold for it, and an unrelated key."""

    signing: OpenPGPKey
    fingerprint: str
    keyring: Path  # the public key, as the fleet has it
    expired: Path  # the same key, since expired
    revoked: Path  # the same key, revoked
    other: Path  # another key altogether


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Keys:
    d = tmp_path_factory.mktemp("keys")
    home = Path(os.environ.get("TMPDIR", "/tmp")) / f"gh-sign-{os.getpid()}"
    home.mkdir(mode=0o700, exist_ok=True)
    old = ["--faked-system-time", "20200101T000000"]
    gpg(home, *old, "--quick-gen-key", "Fleet <fleet@example.com>", "ed25519", "sign", "never")
    listing = gpg(home, "--with-colons", "--list-keys").decode()
    fpr = next(line.split(":")[9] for line in listing.splitlines() if line.startswith("fpr:"))
    signing = load_key(gpg(home, "--export-secret-keys", fpr))
    assert isinstance(signing, OpenPGPKey)
    (d / "keyring.gpg").write_bytes(gpg(home, "--export", fpr))
    gpg(home, "--faked-system-time", "20200101T000100", "--quick-set-expire", fpr, "1d")
    (d / "expired.gpg").write_bytes(gpg(home, "--export", fpr))
    gpg(home, "--quick-set-expire", fpr, "0")  # never again, then revoke it
    rev = (home / "openpgp-revocs.d" / f"{fpr}.rev").read_text().replace(":-----", "-----")
    (d / "rev.asc").write_text(rev)
    gpg(home, "--import", str(d / "rev.asc"))
    (d / "revoked.gpg").write_bytes(gpg(home, "--export", fpr))
    other = d / "other"
    other.mkdir(mode=0o700)
    gpg(other, "--quick-gen-key", "Other <other@example.com>", "ed25519", "sign", "never")
    (d / "other.gpg").write_bytes(gpg(other, "--export"))
    subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "all"], check=False)
    subprocess.run(["gpgconf", "--homedir", str(other), "--kill", "all"], check=False)
    return Keys(
        signing, fpr, d / "keyring.gpg", d / "expired.gpg", d / "revoked.gpg", d / "other.gpg"
    )


@attrs.frozen
class Signed:
    store: Path
    export: Path
    commits: tuple[str, str]


@pytest.fixture(scope="module")
def signed(keys: Keys, tmp_path_factory: pytest.TempPathFactory) -> Signed:
    """Repository ``os`` signed by the GPG key and an ed25519 key: two commits on ``main``
    (one imported from an upstream that GPG-signed it with another key), exported."""
    d = tmp_path_factory.mktemp("signed")
    ed = Ed25519Key.generate()
    settings = {
        "signing": {
            "keys": [key_name(keys.signing), key_name(ed)],
            "certificates": {keys.fingerprint: keys.signing.certificate.armored()},
        }
    }

    async def build() -> tuple[str, str]:
        async with RepositoryManager.open(str(d / "store"), keys=[keys.signing, ed]) as m:
            await m.create_repository("os", settings=settings)
            tree = tree_from_mapping({"usr/bin/tool": b"v1", "etc/os-release": b"ID=x\n"})
            one, _ = await commit_tree(m, "os", tree, ref="main", subject="one")
            tree = tree_from_mapping({"usr/bin/tool": b"v2", "etc/os-release": b"ID=x\n"})
            two, _ = await commit_tree(m, "os", tree, ref="main", subject="two")
            await export_version(m, "os", d / "export")
            return one, two

    commits = anyio.run(build)
    return Signed(d / "store", d / "export", commits)


@pytest.fixture(scope="module")
def server(signed: Signed) -> Iterator[ThreadedServer]:
    with ThreadedServer(create_app(str(signed.store))) as running:
        yield running


def client(tmp_path: Path, url: str, keyring: Path, name: str = "client") -> Path:
    repo = tmp_path / name
    ostree("init", "--mode=archive", repo=repo)
    ostree(
        "remote", "add", "--set=gpg-verify=true", "--set=gpg-verify-summary=true",
        f"--gpg-import={keyring}", "origin", url, repo=repo,
    )  # fmt: skip
    return repo


def pull(repo: Path) -> None:
    ostree("pull", "--depth=-1", "origin", "main", repo=repo)


def test_ostree_pull_verifies_our_server(
    server: ThreadedServer, signed: Signed, keys: Keys, tmp_path: Path
) -> None:
    repo = client(tmp_path, f"{server.url}/os/", keys.keyring)
    pull(repo)
    fsck(repo)
    assert rev_parse(repo, "main") == signed.commits[1]
    shown = ostree("show", "origin:main", repo=repo)
    assert "Good signature" in shown, shown
    assert verify(f"{server.url}/os/", keys.keyring) == 0


def test_ostree_pull_verifies_an_export(signed: Signed, keys: Keys, tmp_path: Path) -> None:
    repo = client(tmp_path, f"file://{signed.export}", keys.keyring)
    pull(repo)
    assert rev_parse(repo, "main") == signed.commits[1]
    assert verify(str(signed.export), keys.keyring) == 0
    assert verify(f"file://{signed.export}", keys.keyring) == 0


_ERR: list[str] = []

#: what our verify says where ostree pull refuses
OUR_REASONS = {
    "other": "key not in the keyring",
    "expired": "expired on 2020-01-02",
    "revoked": "is revoked",
    "summary": "not valid for these bytes",
    "summary.sig": "not a valid signature dictionary",
}


def verify(target: str, keyring: Path) -> int:
    """``ostree-repo verify TARGET --trust-key KEYRING``; its stderr goes to _ERR."""
    import contextlib
    import io

    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        status = main(["verify", target, "--trust-key", str(keyring)])
    _ERR[:] = [err.getvalue()]
    return status


def capsys_err() -> str:
    return _ERR[0]


@pytest.mark.parametrize(
    ("keyring", "reason"),
    [
        ("other", "public key not found"),
        ("expired", "Key expired Thu Jan"),
        ("revoked", "Key revoked"),
    ],
)
def test_ostree_pull_refuses_a_key_it_must_not_trust(
    server: ThreadedServer, keys: Keys, tmp_path: Path, keyring: str, reason: str
) -> None:
    repo = client(tmp_path, f"{server.url}/os/", getattr(keys, keyring))
    with pytest.raises(OstreeCommandError) as refused:
        pull(repo)
    assert reason in refused.value.stderr
    # and our verify refuses it too, for the same reason
    assert verify(f"{server.url}/os/", getattr(keys, keyring)) == 1
    assert OUR_REASONS[keyring] in capsys_err()


def _tampered(signed: Signed, tmp_path: Path, what: str) -> Path:
    copy = tmp_path / "export"
    subprocess.run(["cp", "-a", str(signed.export), str(copy)], check=True)
    if what == "summary":
        summary = bytearray((copy / "summary").read_bytes())
        head = bytes.fromhex(signed.commits[1])
        at = summary.index(head)
        summary[at] ^= 0x01  # still a well-formed summary, naming another commit
        (copy / "summary").write_bytes(bytes(summary))
    else:
        sig = (copy / "summary.sig").read_bytes()
        (copy / "summary.sig").write_bytes(sig[: len(sig) // 2])
    return copy


@pytest.mark.parametrize(
    ("what", "reason"),
    [("summary", "BAD signature"), ("summary.sig", "no signatures found")],
)
def test_ostree_pull_refuses_a_tampered_export(
    signed: Signed, keys: Keys, tmp_path: Path, what: str, reason: str
) -> None:
    copy = _tampered(signed, tmp_path, what)
    repo = client(tmp_path, f"file://{copy}", keys.keyring)
    with pytest.raises(OstreeCommandError) as refused:
        pull(repo)
    assert reason in refused.value.stderr
    assert verify(str(copy), keys.keyring) == 1
    assert OUR_REASONS[what] in capsys_err()
