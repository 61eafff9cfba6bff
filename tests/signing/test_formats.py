"""The crypto core against libostree: byte-identical ed25519 signatures, OpenPGP
signatures each side accepts from the other, and what verification refuses."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from oracle.glib_oracle import GLibOracle
from oracle.ostree_cli import GpgKey, OstreeCommandError, ostree
from ostree_repo.gvariant import Variant
from ostree_repo.signing import (
    ED25519_KEY,
    GPG_KEY,
    Ed25519Key,
    KeyFileError,
    OpenPGPKey,
    SignatureError,
    TrustedKeys,
    add_signatures,
    dump_signatures,
    load_key,
    load_trusted,
    parse_signatures,
    signatures,
)

from .conftest import Small, export_secret


def _ostree_has_ed25519() -> bool:
    """Debian 12's libostree 2022.7 is built without ed25519 (no ``sign-ed25519`` in
    ``ostree --version``): there libsodium, the library libostree signs with, and GLib
    are the oracles."""
    return "sign-ed25519" in ostree("--version")


def _libsodium_sign(key: Ed25519Key, data: bytes) -> bytes:
    import nacl.signing

    # libostree's secret key file is libsodium's secret key: seed + public key
    seed = base64.b64decode(key.to_bytes())[:32]
    return bytes(nacl.signing.SigningKey(seed).sign(data).signature)


def test_ed25519_commit_signature_is_what_libostree_writes(small: Small, glib: GLibOracle) -> None:
    key = Ed25519Key.generate()
    commit = small.object("commit").read_bytes()
    sig = key.sign(commit)
    assert sig == _libsodium_sign(key, commit)  # crypto_sign_detached, byte for byte
    import nacl.signing

    nacl.signing.VerifyKey(key.public).verify(commit, sig)
    ours = dump_signatures(add_signatures({}, ED25519_KEY, [sig]))
    assert glib.is_normal("a{sv}", ours)
    # GLib builds the same bytes from the text form (compared as bytes: GLib prints an ``ay``
    # that happens to end in one NUL as a b'' string, so printed forms are not stable).
    text = f"{{'{ED25519_KEY}': <[{_glib_ay(sig)}]>}}"
    assert glib.parse(text, "a{sv}") == ("a{sv}", ours)
    if _ostree_has_ed25519():  # pragma: no cover - not on Debian 12
        ostree("sign", small.commit, key.to_bytes().decode().strip(), repo=small.path)
        assert small.object("commitmeta").read_bytes() == ours
    else:
        with pytest.raises(OstreeCommandError, match="not implemented"):
            ostree("sign", small.commit, key.to_bytes().decode().strip(), repo=small.path)


def _glib_ay(data: bytes) -> str:
    return (
        "["
        + ", ".join(f"byte 0x{b:02x}" if i == 0 else f"0x{b:02x}" for i, b in enumerate(data))
        + "]"
    )


def test_signing_again_keeps_other_signatures(
    small: Small, gpg_key: GpgKey, glib: GLibOracle
) -> None:
    ostree(
        "gpg-sign", f"--gpg-homedir={gpg_key.homedir}", small.commit, gpg_key.fingerprint,
        repo=small.path,
    )  # fmt: skip
    existing = small.object("commitmeta").read_bytes()
    key = Ed25519Key.generate()
    commit = small.object("commit").read_bytes()
    metadata = add_signatures(parse_signatures(existing, "x"), ED25519_KEY, [key.sign(commit)])
    both = dump_signatures(metadata)
    assert glib.is_normal("a{sv}", both)
    assert signatures(metadata, GPG_KEY) == signatures(parse_signatures(existing, "x"), GPG_KEY)
    # libostree still verifies the GPG signature in the merged dictionary
    small.object("commitmeta").write_bytes(both)
    shown = ostree("show", f"--gpg-homedir={gpg_key.homedir}", small.commit, repo=small.path)
    assert "Good signature" in shown, shown
    # adding a signature that is already there changes nothing (idempotent)
    assert add_signatures(metadata, ED25519_KEY, [key.sign(commit)]) == metadata


def test_ed25519_summary_sig(small: Small, glib: GLibOracle) -> None:
    keys = [Ed25519Key.generate(), Ed25519Key.generate()]
    summary = (small.path / "summary").read_bytes()
    ours = dump_signatures(add_signatures({}, ED25519_KEY, [k.sign(summary) for k in keys]))
    assert glib.is_normal("a{sv}", ours)
    parsed = signatures(parse_signatures(ours, "summary.sig"), ED25519_KEY)
    assert parsed == [_libsodium_sign(k, summary) for k in keys]


def test_ed25519_key_files(tmp_path: Path) -> None:
    key = Ed25519Key.generate()
    again = load_key(key.to_bytes())
    assert isinstance(again, Ed25519Key) and again.key_id == key.key_id
    assert load_trusted(key.public_bytes() * 2).ed25519 == (key.public, key.public)
    bad = base64.b64encode(b"x" * 64) + b"\n"  # seed and public half do not match
    with pytest.raises(KeyFileError, match="does not match"):
        load_key(bad)
    with pytest.raises(KeyFileError, match="64 bytes, not 10"):
        load_key(base64.b64encode(b"x" * 10))
    with pytest.raises(KeyFileError, match="not base64"):
        load_trusted(b"not base64 !!\n")


def test_ed25519_verification_refuses_what_libostree_refuses() -> None:
    key, other = Ed25519Key.generate(), Ed25519Key.generate()
    data = b"summary bytes"
    good = key.sign(data)
    trusted = TrustedKeys(ed25519=(key.public,))

    def check(sig_bytes: bytes | None, trust: TrustedKeys = trusted) -> dict[str, str]:
        return trust.verify(data, sig_bytes, ["ed25519"], "summary.sig")

    meta = dump_signatures(add_signatures({}, ED25519_KEY, [other.sign(data), good]))
    assert check(meta) == {"ed25519": f"ed25519:{key.key_id}"}  # one valid is enough
    with pytest.raises(SignatureError, match=r"summary.sig: none of 1 ed25519"):
        check(dump_signatures(add_signatures({}, ED25519_KEY, [other.sign(data)])))
    with pytest.raises(SignatureError, match="no ed25519 signature"):
        check(None)
    with pytest.raises(SignatureError, match="not a valid signature dictionary"):
        check(meta[:-3])  # truncated
    with pytest.raises(SignatureError, match="31 bytes, not 64"):
        check(dump_signatures({ED25519_KEY: Variant("aay", [good[:31], good])}))
    revoked = TrustedKeys(ed25519=(key.public,), revoked=(key.public,))
    with pytest.raises(SignatureError, match="no trusted ed25519 key"):
        check(meta, revoked)
    with pytest.raises(SignatureError, match="none of"):
        trusted.verify(data + b"!", meta, ["ed25519"], "summary.sig")


def test_openpgp_signature_verified_by_libostree(small: Small, gpg_key: GpgKey) -> None:
    key = load_key(export_secret(gpg_key))
    assert isinstance(key, OpenPGPKey) and key.key_id == gpg_key.fingerprint
    commit = small.object("commit").read_bytes()
    small.object("commitmeta").write_bytes(
        dump_signatures(add_signatures({}, GPG_KEY, [key.sign(commit)]))
    )
    shown = ostree("show", f"--gpg-homedir={gpg_key.homedir}", small.commit, repo=small.path)
    assert "Good signature" in shown, shown
    assert gpg_key.fingerprint[-16:] in shown.replace(" ", "")


def test_libostree_gpg_signature_verified_by_us(small: Small, gpg_key: GpgKey) -> None:
    ostree(
        "gpg-sign", f"--gpg-homedir={gpg_key.homedir}", small.commit, gpg_key.fingerprint,
        repo=small.path,
    )  # fmt: skip
    ostree(
        "summary", "-u", f"--gpg-homedir={gpg_key.homedir}", f"--gpg-sign={gpg_key.fingerprint}",
        repo=small.path,
    )  # fmt: skip
    trusted = load_trusted(gpg_key.public_keyring.read_bytes())
    assert trusted.names() == [f"gpg:{gpg_key.fingerprint}"]
    commit = small.object("commit").read_bytes()
    meta = small.object("commitmeta").read_bytes()
    assert trusted.verify(commit, meta, ["gpg"], "c") == {"gpg": f"gpg:{gpg_key.fingerprint}"}
    summary = (small.path / "summary").read_bytes()
    sig = (small.path / "summary.sig").read_bytes()
    assert trusted.verify(summary, sig, ["gpg"], "s") == {"gpg": f"gpg:{gpg_key.fingerprint}"}
    with pytest.raises(SignatureError, match="not valid for these bytes"):
        trusted.verify(summary + b"x", sig, ["gpg"], "s")
    with pytest.raises(SignatureError, match="key not in the keyring"):
        TrustedKeys(gpg=load_trusted(_other_keyring()).gpg).verify(summary, sig, ["gpg"], "s")
    with pytest.raises(SignatureError, match="no GPG signature"):
        trusted.verify(summary, None, ["gpg"], "s")


_OTHER: list[bytes] = []


def _other_keyring() -> bytes:
    if not _OTHER:
        import pysequoia

        _OTHER.append(bytes(pysequoia.Tsk.generate("Other <o@example.com>").extract_certificate()))
    return _OTHER[0]


def test_expired_and_revoked_keys_are_refused(tmp_path: Path) -> None:
    import datetime

    import pysequoia

    data = b"commit bytes"
    tsk = pysequoia.Tsk.generate("Soon <s@example.com>", validity_seconds=86400)
    key = OpenPGPKey(tsk)
    sig = dump_signatures(add_signatures({}, GPG_KEY, [key.sign(data)]))
    cert = tsk.extract_certificate()
    trusted = load_trusted(bytes(cert))
    assert trusted.verify(data, sig, ["gpg"], "c")
    later = datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=2)
    with pytest.raises(SignatureError, match="expired on"):
        from ostree_repo.signing import verify_openpgp

        verify_openpgp(data, signatures(parse_signatures(sig, "c"), GPG_KEY), trusted.gpg, later)
    revocation = cert.revoke(tsk.certifier())
    revoked = pysequoia.Cert.from_bytes(bytes(cert) + bytes(revocation))
    assert revoked.is_revoked
    with pytest.raises(SignatureError, match="is revoked"):
        load_trusted(bytes(revoked)).verify(data, sig, ["gpg"], "c")
    with pytest.raises(OstreeCommandError):
        raise OstreeCommandError(["x"], 1, "", "")  # the oracle's error type is importable
