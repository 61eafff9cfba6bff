"""ed25519 keys and signatures, as ``ostree sign --sign-type=ed25519`` makes and checks them.

A signature is the 64-byte ed25519 signature of the signed bytes. libostree's key files
are base64 text, one key a line: a secret key is the 32-byte seed followed by the 32-byte
public key (libsodium's layout), a public key is the 32 raw bytes. We also read PEM
(PKCS#8 ``PRIVATE KEY``, SPKI ``PUBLIC KEY``) as ``openssl genpkey -algorithm ed25519``
writes it. A key is named by its public key in base64, the form a client puts in
``verification-ed25519-key``.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable

from ostree_repo.signing.errors import KeyFileError, SignatureError, SigningUnavailableError

try:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519
except ImportError:  # pragma: no cover - the sign extra is missing
    ed25519 = None  # type: ignore[assignment]

__all__ = ["Ed25519Key", "verify_ed25519"]

PUBLIC_KEY_SIZE = 32
SEED_SIZE = 32
SIGNATURE_SIZE = 64


def _need() -> None:
    if ed25519 is None:  # pragma: no cover
        raise SigningUnavailableError(
            "ed25519 signing needs the 'cryptography' package: pip install 'ostree-repo[sign]'"
        )


def public_key_id(raw: bytes) -> str:
    """The name of a public key: its 32 bytes in base64."""
    return base64.b64encode(raw).decode("ascii")


def _b64(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise KeyFileError(f"{what}: not base64") from None


def _seed(key: ed25519.Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )


class Ed25519Key:
    """An ed25519 private key that signs."""

    kind = "ed25519"

    def __init__(self, seed: bytes) -> None:
        _need()
        if len(seed) != SEED_SIZE:
            raise KeyFileError(f"an ed25519 seed has {SEED_SIZE} bytes, not {len(seed)}")
        self._key = ed25519.Ed25519PrivateKey.from_private_bytes(seed)
        self.public = self._key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )

    @classmethod
    def generate(cls) -> Ed25519Key:
        """A new random key."""
        _need()
        return cls(_seed(ed25519.Ed25519PrivateKey.generate()))

    @classmethod
    def from_bytes(cls, data: bytes) -> Ed25519Key:
        """Read a key file: libostree's base64 secret key (seed + public key) or PEM."""
        _need()
        if data.lstrip().startswith(b"-----BEGIN"):
            try:
                key = serialization.load_pem_private_key(data, password=None)
            except (ValueError, TypeError) as e:
                raise KeyFileError(f"unreadable PEM private key: {e}") from None
            if not isinstance(key, ed25519.Ed25519PrivateKey):
                raise KeyFileError("the PEM private key is not an ed25519 key")
            return cls(_seed(key))
        lines = [line for line in data.decode("ascii", "replace").splitlines() if line.strip()]
        if len(lines) != 1:
            raise KeyFileError(f"an ed25519 secret key file holds one key, not {len(lines)}")
        raw = _b64(lines[0], "ed25519 secret key")
        if len(raw) != SEED_SIZE + PUBLIC_KEY_SIZE:
            raise KeyFileError(
                f"an ed25519 secret key has {SEED_SIZE + PUBLIC_KEY_SIZE} bytes, not {len(raw)}"
            )
        signer = cls(raw[:SEED_SIZE])
        if signer.public != raw[SEED_SIZE:]:
            raise KeyFileError("the ed25519 secret key's public half does not match its seed")
        return signer

    def to_bytes(self) -> bytes:
        """libostree's secret key file: base64 of seed + public key, and a newline."""
        seed = self._key.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
        return base64.b64encode(seed + self.public) + b"\n"

    @property
    def key_id(self) -> str:
        """The public key in base64 (``verification-ed25519-key``)."""
        return public_key_id(self.public)

    def public_bytes(self) -> bytes:
        """The public key file (base64 and a newline), as ``verification-ed25519-file``."""
        return self.key_id.encode() + b"\n"

    def sign(self, data: bytes) -> bytes:
        """The 64-byte signature of ``data`` (deterministic: the same bytes every time)."""
        return self._key.sign(data)

    def __repr__(self) -> str:
        return f"Ed25519Key({self.key_id})"


def read_public_keys(data: bytes) -> list[bytes]:
    """The public keys of a key file: base64 lines (libostree's ``trusted.ed25519``
    format) or one PEM ``PUBLIC KEY``."""
    _need()
    if data.lstrip().startswith(b"-----BEGIN"):
        try:
            key = serialization.load_pem_public_key(data)
        except ValueError as e:
            raise KeyFileError(f"unreadable PEM public key: {e}") from None
        if not isinstance(key, ed25519.Ed25519PublicKey):
            raise KeyFileError("the PEM public key is not an ed25519 key")
        return [key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)]
    keys = []
    for line in data.decode("ascii", "replace").splitlines():
        if line.strip():
            raw = _b64(line, "ed25519 public key")
            if len(raw) != PUBLIC_KEY_SIZE:
                raise KeyFileError(
                    f"an ed25519 public key has {PUBLIC_KEY_SIZE} bytes, not {len(raw)}"
                )
            keys.append(raw)
    if not keys:
        raise KeyFileError("no ed25519 public key in the file")
    return keys


def verify_ed25519(
    data: bytes, sigs: Iterable[bytes], trusted: Iterable[bytes], revoked: Iterable[bytes] = ()
) -> str:
    """The key (base64) of the first trusted, unrevoked key that made one of ``sigs``
    over ``data``; :class:`SignatureError` saying why when none did.

    As libostree: any one valid signature is enough; a signature that is not 64 bytes
    long fails the check.
    """
    _need()
    gone = set(revoked)
    keys = [k for k in dict.fromkeys(trusted) if k not in gone]
    sig_list = list(sigs)
    if not sig_list:
        raise SignatureError("no ed25519 signature")
    if not keys:
        raise SignatureError("no trusted ed25519 key")
    for sig in sig_list:
        if len(sig) != SIGNATURE_SIZE:
            raise SignatureError(f"invalid ed25519 signature: {len(sig)} bytes, not 64")
    for sig in sig_list:
        for raw in keys:
            try:
                ed25519.Ed25519PublicKey.from_public_bytes(raw).verify(sig, data)
            except InvalidSignature:
                continue
            return public_key_id(raw)
    names = ", ".join(public_key_id(k) for k in keys)
    raise SignatureError(
        f"none of {len(sig_list)} ed25519 signature(s) is valid for the trusted key(s) {names}"
    )
