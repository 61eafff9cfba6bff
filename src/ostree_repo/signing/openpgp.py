"""OpenPGP keys and signatures, as ``ostree gpg-sign`` and ``ostree summary --gpg-sign``
make them and ``ostree pull`` with ``gpg-verify`` checks them (through pysequoia).

A signature is one binary detached OpenPGP signature packet over the signed bytes. A key
is named by its primary key's fingerprint (40 upper-case hex digits, as gpg prints it).

Validity follows libostree (``ostree-gpg-verify-result.c``, through GnuPG): a signature
counts when it verifies against a certificate of the keyring and that certificate is
neither revoked nor expired *at the time of the check*, and the signature itself has not
expired; one such signature is enough.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from typing import Any

from ostree_repo.signing.errors import KeyFileError, SignatureError, SigningUnavailableError

try:
    import pysequoia
except ImportError:  # pragma: no cover - the sign extra is missing
    pysequoia = None  # type: ignore[assignment]

__all__ = ["Certificate", "OpenPGPKey", "read_certificates", "verify_openpgp"]


def _need() -> Any:
    if pysequoia is None:  # pragma: no cover
        raise SigningUnavailableError(
            "OpenPGP signing needs the 'pysequoia' package: pip install 'ostree-repo[sign]'"
        )
    return pysequoia


def _reason(e: Exception) -> str:
    """The first line of a pysequoia error (the rest is a Rust backtrace)."""
    return (str(e).strip().splitlines() or ["unknown error"])[0]


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


class Certificate:
    """A public OpenPGP certificate (a keyring entry)."""

    def __init__(self, cert: Any) -> None:
        self._cert = cert
        #: the fingerprints of its primary key and subkeys (a signature names one)
        self.key_fingerprints = frozenset(
            str(p.fingerprint).upper()
            for p in pysequoia.packet.PacketPile.from_bytes(bytes(cert))
            if p.fingerprint is not None
        )

    def made(self, issuer: str) -> bool:
        """True when ``issuer`` (a fingerprint or 16-digit key ID) is one of its keys."""
        return any(f == issuer or f.endswith(issuer) for f in self.key_fingerprints)

    @property
    def fingerprint(self) -> str:
        """The primary key's fingerprint (upper-case hex)."""
        return str(self._cert.fingerprint).upper()

    def armored(self) -> str:
        """The certificate, ASCII-armored (``gpg --export --armor``)."""
        return str(self._cert)

    def to_bytes(self) -> bytes:
        """The certificate, binary (``gpg --export``): a keyring ``ostree pull`` reads."""
        return bytes(self._cert)

    def problem(self, now: datetime.datetime | None = None) -> str | None:
        """Why the certificate does not count now (revoked, expired), or None."""
        if self._cert.is_revoked:
            return f"key {self.fingerprint} is revoked"
        expires = self._cert.expiration
        if expires is not None and expires <= (now or _now()):
            return f"key {self.fingerprint} expired on {expires:%Y-%m-%d}"
        return None

    def __repr__(self) -> str:
        return f"Certificate({self.fingerprint})"


def read_certificates(data: bytes) -> list[Certificate]:
    """Every certificate of a keyring file, armored or binary."""
    ps = _need()
    try:
        certs = ps.Cert.split_bytes(data)
    except Exception as e:  # pysequoia raises plain exceptions
        raise KeyFileError(f"unreadable OpenPGP keyring: {_reason(e)}") from None
    if not certs:
        raise KeyFileError("no OpenPGP certificate in the file")
    return [Certificate(c) for c in certs]


class OpenPGPKey:
    """An OpenPGP secret key (transferable secret key) that signs."""

    kind = "gpg"

    def __init__(self, tsk: Any, passphrase: str | None = None) -> None:
        self._tsk = tsk
        try:
            self._signer = tsk.signer(passphrase)
        except Exception as e:
            raise KeyFileError(f"OpenPGP key cannot sign: {_reason(e)}") from None
        self.certificate = Certificate(tsk.extract_certificate())

    @classmethod
    def from_bytes(cls, data: bytes, passphrase: str | None = None) -> OpenPGPKey:
        """Read a secret key, armored or binary (``gpg --export-secret-keys``)."""
        ps = _need()
        try:
            tsk = ps.Tsk.from_bytes(data)
        except Exception as e:
            raise KeyFileError(f"unreadable OpenPGP secret key: {_reason(e)}") from None
        return cls(tsk, passphrase)

    @property
    def key_id(self) -> str:
        """The fingerprint of the primary key."""
        return self.certificate.fingerprint

    def public_bytes(self) -> bytes:
        """The public certificate, armored."""
        return self.certificate.armored().encode()

    def sign(self, data: bytes) -> bytes:
        """A binary detached signature of ``data``."""
        ps = _need()
        try:
            return bytes(ps.sign(self._signer, data, mode=ps.SignatureMode.DETACHED, armor=False))
        except Exception as e:
            raise SignatureError(f"signing with {self.key_id} failed: {_reason(e)}") from None

    def __repr__(self) -> str:
        return f"OpenPGPKey({self.key_id})"


def signer_of(sig: bytes) -> str | None:
    """The fingerprint of the key that made ``sig`` (from its issuer subpacket), or None."""
    ps = _need()
    try:
        parsed = ps.Sig.from_bytes(sig)
    except Exception:
        return None
    fingerprint = parsed.issuer_fingerprint
    return None if fingerprint is None else str(fingerprint).upper()


def verify_openpgp(
    data: bytes,
    sigs: Iterable[bytes],
    keyring: Iterable[Certificate],
    now: datetime.datetime | None = None,
) -> str:
    """The fingerprint of the first keyring certificate with a valid signature among
    ``sigs`` over ``data``; :class:`SignatureError` with every signature's reason when
    none is valid."""
    ps = _need()
    certs = list(keyring)
    when = now or _now()
    reasons: list[str] = []
    sig_list = list(sigs)
    if not sig_list:
        raise SignatureError("no GPG signature")
    by_fingerprint = {c.fingerprint: c for c in certs}

    def signer(issuer: str) -> Certificate | None:
        return next((c for c in certs if c.made(issuer)), None)

    for raw in sig_list:
        try:
            sig = ps.Sig.from_bytes(raw)
        except Exception as e:
            reasons.append(f"malformed signature ({_reason(e)})")
            continue
        issuer = str(sig.issuer_fingerprint or sig.issuer_key_id or "an unknown key").upper()
        try:
            result = ps.verify(
                bytes=data, store=lambda _ids: [c._cert for c in certs], signature=sig
            )
        except Exception:
            # pysequoia refuses signatures of revoked keys itself: say so when we can tell
            known = signer(issuer)
            if known is None:
                reasons.append(f"signature by {issuer}: key not in the keyring")
            else:
                why = known.problem(when) or "not valid for these bytes"
                reasons.append(f"signature by {known.fingerprint}: {why}")
            continue
        cert = by_fingerprint[str(result.valid_sigs[0].certificate).upper()]
        problem = cert.problem(when)
        if problem is not None:
            reasons.append(f"signature by {cert.fingerprint}: {problem}")
            continue
        expires = sig.expiration
        if expires is not None and expires <= when:
            reasons.append(f"signature by {cert.fingerprint} expired on {expires:%Y-%m-%d}")
            continue
        return cert.fingerprint
    raise SignatureError("no valid GPG signature: " + "; ".join(reasons))
