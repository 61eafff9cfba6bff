"""Signing and verifying what a repository serves, as libostree does.

ed25519 (``ostree sign``: ``ostree.sign.ed25519``, through ``cryptography``) and OpenPGP
(``ostree gpg-sign`` / ``ostree summary --gpg-sign``: ``ostree.gpgsigs``, through
pysequoia) signatures of commits (in their ``.commitmeta``) and of summaries (in
``summary.sig``). This layer knows keys, bytes and the signature dictionaries; which
repository signs with which key is the repository layer's policy
(:mod:`ostree_repo.repository.signing_policy`). Needs the ``sign`` extra.
"""

from ostree_repo.signing.ed25519 import Ed25519Key, verify_ed25519
from ostree_repo.signing.errors import (
    KeyFileError,
    SignatureError,
    SigningError,
    SigningUnavailableError,
)
from ostree_repo.signing.formats import (
    ED25519_KEY,
    GPG_KEY,
    SIGNATURE_KEYS,
    add_signatures,
    dump_signatures,
    parse_signatures,
    signatures,
)
from ostree_repo.signing.keys import (
    KEY_KINDS,
    SigningKey,
    SigningKeys,
    TrustedKeys,
    key_name,
    load_key,
    load_key_file,
    load_trusted,
    split_key_name,
)
from ostree_repo.signing.openpgp import Certificate, OpenPGPKey, read_certificates, verify_openpgp

__all__ = [
    "ED25519_KEY",
    "GPG_KEY",
    "KEY_KINDS",
    "SIGNATURE_KEYS",
    "Certificate",
    "Ed25519Key",
    "KeyFileError",
    "OpenPGPKey",
    "SignatureError",
    "SigningError",
    "SigningKey",
    "SigningKeys",
    "SigningUnavailableError",
    "TrustedKeys",
    "add_signatures",
    "dump_signatures",
    "key_name",
    "load_key",
    "load_key_file",
    "load_trusted",
    "parse_signatures",
    "read_certificates",
    "signatures",
    "split_key_name",
    "verify_ed25519",
    "verify_openpgp",
]
