"""Signing keys and trusted keys: reading key files, naming keys, checking signatures.

A private key comes from a file or from the embedding service, never from the store: a
:class:`SigningKeys` holds the private keys a process may sign with, and a repository's
settings name the ones it signs with by their public identity (:func:`key_name`:
``ed25519:<public key in base64>`` or ``gpg:<fingerprint>``). :class:`TrustedKeys` are
public keys a signature is checked against.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping

import attrs

from ostree_repo.signing.ed25519 import Ed25519Key, public_key_id, read_public_keys, verify_ed25519
from ostree_repo.signing.errors import KeyFileError, SignatureError
from ostree_repo.signing.formats import ED25519_KEY, GPG_KEY, parse_signatures, signatures
from ostree_repo.signing.openpgp import Certificate, OpenPGPKey, read_certificates, verify_openpgp

__all__ = [
    "KEY_KINDS",
    "SigningKey",
    "SigningKeys",
    "TrustedKeys",
    "key_name",
    "load_key",
    "load_key_file",
    "load_trusted",
    "split_key_name",
]

#: the kinds of key: ed25519 (``ostree sign``) and gpg (``ostree gpg-sign``)
KEY_KINDS = ("ed25519", "gpg")

SigningKey = Ed25519Key | OpenPGPKey

_PGP_SECRET_TAGS = {0x95, 0x94, 0x97, 0xC5}  # secret-key packet, old and new headers
_PGP_PUBLIC_TAGS = {0x99, 0x98, 0xC6}


def key_name(key: SigningKey) -> str:
    """``ed25519:<public key, base64>`` or ``gpg:<fingerprint>``."""
    return f"{key.kind}:{key.key_id}"


def split_key_name(name: str) -> tuple[str, str]:
    """(kind, identity) of a key name; :class:`KeyFileError` if it is not one."""
    kind, sep, ident = name.partition(":")
    if not sep or kind not in KEY_KINDS or not ident:
        raise KeyFileError(f"not a key name (ed25519:BASE64 or gpg:FINGERPRINT): {name!r}")
    return kind, ident


def _is_pgp(data: bytes, armor: bytes, tags: set[int]) -> bool:
    head = data.lstrip()
    return head.startswith(armor) or (bool(data) and data[0] in tags)


def load_key(data: bytes, passphrase: str | None = None) -> SigningKey:
    """A private key from a key file's bytes: an OpenPGP secret key (armored or
    binary), libostree's ed25519 secret key (base64 of seed + public key) or a PEM
    ed25519 private key."""
    if _is_pgp(data, b"-----BEGIN PGP PRIVATE KEY BLOCK-----", _PGP_SECRET_TAGS):
        return OpenPGPKey.from_bytes(data, passphrase)
    return Ed25519Key.from_bytes(data)


def load_key_file(path: str | os.PathLike[str], passphrase: str | None = None) -> SigningKey:
    """:func:`load_key` of a file; the file is named in errors, its content never."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise KeyFileError(f"cannot read key file {os.fspath(path)}: {e.strerror}") from None
    try:
        return load_key(data, passphrase)
    except KeyFileError as e:
        raise KeyFileError(f"{os.fspath(path)}: {e}") from None


class SigningKeys(Mapping[str, SigningKey]):
    """The private keys a process may sign with, by :func:`key_name`."""

    def __init__(self, keys: Iterable[SigningKey] = ()) -> None:
        self._keys = {key_name(k): k for k in keys}

    @classmethod
    def from_files(
        cls, paths: Iterable[str | os.PathLike[str]], passphrase: str | None = None
    ) -> SigningKeys:
        """Keys read from files (see :func:`load_key`)."""
        return cls(load_key_file(p, passphrase) for p in paths)

    @classmethod
    def from_env(cls, value: str | None = None) -> SigningKeys:
        """Keys named by ``$OSTREE_REPO_KEYS`` (or ``value``): key file paths separated by
        ``os.pathsep``."""
        text = os.environ.get("OSTREE_REPO_KEYS", "") if value is None else value
        return cls.from_files(p for p in text.split(os.pathsep) if p)

    def __getitem__(self, name: str) -> SigningKey:
        return self._keys[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)

    def __repr__(self) -> str:
        return f"SigningKeys({sorted(self._keys)})"


@attrs.frozen
class TrustedKeys:
    """Public keys signatures are checked against (a client's view)."""

    ed25519: tuple[bytes, ...] = ()
    gpg: tuple[Certificate, ...] = ()
    #: ed25519 keys whose signatures never count (libostree's ``revoked.ed25519``)
    revoked: tuple[bytes, ...] = ()

    def __add__(self, other: TrustedKeys) -> TrustedKeys:
        return TrustedKeys(
            self.ed25519 + other.ed25519, self.gpg + other.gpg, self.revoked + other.revoked
        )

    def names(self) -> list[str]:
        """The key names, ed25519 first."""
        return [f"ed25519:{public_key_id(k)}" for k in self.ed25519] + [
            f"gpg:{c.fingerprint}" for c in self.gpg
        ]

    def verify(
        self, data: bytes, signature_bytes: bytes | None, kinds: Iterable[str], what: str
    ) -> dict[str, str]:
        """Check the signatures of ``data`` (a ``.commitmeta`` or ``summary.sig``) for each
        of ``kinds``: {kind: name of the key that signed}, or :class:`SignatureError`
        naming ``what`` and the reason."""
        metadata = parse_signatures(signature_bytes, what)
        found: dict[str, str] = {}
        for kind in kinds:
            try:
                if kind == "ed25519":
                    sigs = signatures(metadata, ED25519_KEY)
                    found[kind] = "ed25519:" + verify_ed25519(
                        data, sigs, self.ed25519, self.revoked
                    )
                elif kind == "gpg":
                    sigs = signatures(metadata, GPG_KEY)
                    found[kind] = "gpg:" + verify_openpgp(data, sigs, self.gpg)
                else:
                    raise KeyFileError(f"unknown signature kind {kind!r}")
            except SignatureError as e:
                raise SignatureError(f"{what}: {e}") from None
        return found


def load_trusted(data: bytes) -> TrustedKeys:
    """Trusted public keys from a file's bytes: an OpenPGP keyring (armored or binary),
    libostree's ed25519 key file (base64 lines) or a PEM ed25519 public key."""
    if _is_pgp(data, b"-----BEGIN PGP PUBLIC KEY BLOCK-----", _PGP_PUBLIC_TAGS):
        return TrustedKeys(gpg=tuple(read_certificates(data)))
    if _is_pgp(data, b"-----BEGIN PGP PRIVATE KEY BLOCK-----", _PGP_SECRET_TAGS):
        raise KeyFileError("this is a secret key: give the public key (gpg --export)")
    return TrustedKeys(ed25519=tuple(read_public_keys(data)))
