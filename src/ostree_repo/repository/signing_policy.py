"""The ``signing`` setting: which keys sign a repository, and what its ingest requires.

Section ``signing`` of a repository's settings (see :mod:`.hooks`), in normal form::

    {
      "keys": ["ed25519:<public key, base64>", "gpg:<fingerprint>"],  # sign with these
      "certificates": {"<fingerprint>": "<armored public certificate>"},
      "gpg-verify": false,          # imported, synced, copied commits need a valid
      "sign-verify": false,         #   OpenPGP / ed25519 signature from a trusted key
      "gpg-verify-summary": false,  # a synced remote's summary.sig must verify
      "sign-verify-summary": false,
      "verification-ed25519-key": ["<public key, base64>"],   # trusted keys
      "gpg-keyring": ["<armored public certificate>"]
    }

Only public material is ever in the settings (so in the store): the private keys come
from the process (:class:`~ostree_repo.signing.SigningKeys`, given to
:class:`~ostree_repo.repository.RepositoryManager` as ``keys=``). The verification
options are libostree's remote options of the same names.

:class:`SigningPolicy` is the hook that applies the section: it signs every commit that
enters the repository, keeping the signatures it came with beside ours (and, when the
keys change, every commit of the version), and signs each version's summary
(``summary.sig``); when a synced mirror passes the remote's ``summary`` through, ours
are added beside the remote's signatures. It refuses commits (and remote summaries)
without a valid signature when the section requires one, before they are stored.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import attrs

from ostree_repo._tasks import task_group
from ostree_repo.errors import OstreeRepoError
from ostree_repo.objects import ObjectType
from ostree_repo.repository.blobs import put_blob, read_blob
from ostree_repo.repository.hooks import PublishHook, SettingsError
from ostree_repo.repository.records import CommitInfo, VersionRecord

if TYPE_CHECKING:
    from ostree_repo.repository.repository import Repository
    from ostree_repo.signing import SigningKey, SigningKeys, TrustedKeys

__all__ = [
    "MissingKeyError",
    "SigningPolicy",
    "UnsignedError",
    "Verdict",
    "requirement",
    "resign",
    "signing_settings",
    "verify_version",
]

SECTION = "signing"
#: libostree's remote options that this section knows, all booleans
VERIFY_OPTIONS = ("gpg-verify", "sign-verify", "gpg-verify-summary", "sign-verify-summary")
_FIELDS = {"keys", "certificates", "verification-ed25519-key", "gpg-keyring", *VERIFY_OPTIONS}
#: commits signed at once when a version's keys change
_CONCURRENCY = 16


class MissingKeyError(OstreeRepoError):
    """A repository signs with a key whose private part this process was not given."""


class UnsignedError(OstreeRepoError):
    """A commit or a remote summary lacks the valid signature its repository requires."""


def signing_settings(settings: Mapping[str, Any]) -> dict[str, Any]:
    """The ``signing`` section of ``settings`` with every field present."""
    section = settings.get(SECTION) or {}
    return {
        "keys": list(section.get("keys", [])),
        "certificates": dict(section.get("certificates", {})),
        "verification-ed25519-key": list(section.get("verification-ed25519-key", [])),
        "gpg-keyring": list(section.get("gpg-keyring", [])),
        **{option: bool(section.get(option, False)) for option in VERIFY_OPTIONS},
    }


def _trusted(section: Mapping[str, Any]) -> TrustedKeys:
    from ostree_repo.signing import TrustedKeys, load_trusted

    trusted = TrustedKeys()
    for key in section.get("verification-ed25519-key", []):
        trusted += load_trusted(key.encode())
    for cert in section.get("gpg-keyring", []):
        trusted += load_trusted(cert.encode())
    return trusted


def own_keys(section: Mapping[str, Any]) -> TrustedKeys:
    """The public keys a repository signs with (what its clients trust)."""
    from ostree_repo.signing import TrustedKeys, load_trusted, split_key_name

    trusted = TrustedKeys()
    for name in section.get("keys", []):
        kind, ident = split_key_name(name)
        if kind == "ed25519":
            trusted += load_trusted(ident.encode())
        else:
            trusted += load_trusted(section["certificates"][ident].encode())
    return trusted


def _kinds(section: Mapping[str, Any], suffix: str) -> list[str]:
    kinds = []
    if section.get(f"gpg-verify{suffix}"):
        kinds.append("gpg")
    if section.get(f"sign-verify{suffix}"):
        kinds.append("ed25519")
    return kinds


class SigningPolicy(PublishHook):
    """Signs commits and summaries with the keys section ``signing`` names, and refuses
    what arrives unsigned when it requires signatures. ``keys``: the private keys this
    process may sign with (none: a repository that signs cannot be changed)."""

    section = SECTION

    def __init__(self, keys: SigningKeys | Iterable[SigningKey] | None = None) -> None:
        #: the private keys, by key name (the crypto libraries load only when needed)
        self.keys: Mapping[str, SigningKey] = {}
        if keys is not None:
            from ostree_repo.signing import SigningKeys

            self.keys = keys if isinstance(keys, SigningKeys) else SigningKeys(keys)

    # -- settings ----------------------------------------------------------------------

    def validate(self, value: Any) -> Any:
        """Check the section; fields default to off/empty."""
        from ostree_repo.signing import (
            KeyFileError,
            SigningError,
            load_trusted,
            read_certificates,
            split_key_name,
        )

        if not isinstance(value, Mapping):
            raise SettingsError("setting 'signing' must be an object")
        unknown = set(value) - _FIELDS
        if unknown:
            raise SettingsError(
                f"unknown field(s) of setting 'signing': {', '.join(sorted(unknown))} "
                f"(known: {', '.join(sorted(_FIELDS))})"
            )
        section = signing_settings({SECTION: value})
        try:
            for option in VERIFY_OPTIONS:
                if not isinstance(value.get(option, False), bool):
                    raise SettingsError(f"signing.{option} must be true or false")
            certificates: dict[str, str] = {}
            for fingerprint, armored in section["certificates"].items():
                (cert,) = read_certificates(str(armored).encode())
                if cert.fingerprint != fingerprint:
                    raise SettingsError(f"signing.certificates: {fingerprint} holds another key")
                certificates[fingerprint] = armored
            names = []
            for name in section["keys"]:
                kind, ident = split_key_name(str(name))
                if kind == "ed25519":
                    load_trusted(ident.encode())
                elif ident not in certificates:
                    raise SettingsError(f"signing key {name}: its certificate is missing")
                if name not in names:
                    names.append(name)
            section["keys"] = names
            section["certificates"] = {f: c for f, c in certificates.items() if f"gpg:{f}" in names}
            trusted = _trusted(section)
        except (KeyFileError, ValueError) as e:
            raise SettingsError(f"setting 'signing': {e}") from None
        except SigningError as e:
            raise SettingsError(f"setting 'signing': {e}") from None
        if (section["gpg-verify"] or section["gpg-verify-summary"]) and not trusted.gpg:
            raise SettingsError("signing: gpg-verify needs a gpg-keyring")
        if (section["sign-verify"] or section["sign-verify-summary"]) and not trusted.ed25519:
            raise SettingsError("signing: sign-verify needs verification-ed25519-key")
        return {k: v for k, v in section.items() if v or k == "keys"}

    # -- admission -----------------------------------------------------------------------

    async def admit_commit(
        self,
        repo: Repository,
        settings: Mapping[str, Any],
        checksum: str,
        data: bytes,
        commitmeta: bytes | None,
    ) -> None:
        """Refuse a commit without the valid signatures the section requires."""
        section = signing_settings(settings)
        kinds = _kinds(section, "")
        if not kinds:
            return
        from ostree_repo.signing import SignatureError

        try:
            _trusted(section).verify(data, commitmeta, kinds, f"commit {checksum}")
        except SignatureError as e:
            raise UnsignedError(
                f"{e} (repository {repo.name} requires {' and '.join(kinds)} signatures)"
            ) from None

    async def admit_summary(
        self,
        repo: Repository,
        settings: Mapping[str, Any],
        summary: bytes | None,
        sig: bytes | None,
    ) -> None:
        """Refuse a remote summary without the valid signatures the section requires."""
        section = signing_settings(settings)
        kinds = _kinds(section, "-summary")
        if not kinds:
            return
        if summary is None:
            raise UnsignedError(
                f"the remote has no summary, and repository {repo.name} requires signed ones"
            )
        from ostree_repo.signing import SignatureError

        try:
            _trusted(section).verify(summary, sig, kinds, "the remote's summary")
        except SignatureError as e:
            raise UnsignedError(f"{e} (repository {repo.name} requires signed summaries)") from None

    # -- signing -------------------------------------------------------------------------

    def signers(self, repo: Repository, section: Mapping[str, Any]) -> list[SigningKey]:
        """The private keys for the section's key names; :class:`MissingKeyError` names
        one this process lacks."""
        signers = []
        for name in section["keys"]:
            key = self.keys.get(name)
            if key is None:
                raise MissingKeyError(
                    f"repository {repo.name} signs with {name}, but no private key for it "
                    "was given (--key-file, $OSTREE_REPO_KEYS or keys=)"
                )
            signers.append(key)
        return signers

    async def prepare(
        self, repo: Repository, base: VersionRecord, draft: VersionRecord
    ) -> VersionRecord:
        """Sign the commits that are new, or whose detached metadata changed (all of them
        when the keys changed)."""
        section = signing_settings(draft.settings)
        if not section["keys"]:
            return draft
        signers = self.signers(repo, section)
        rotated = section["keys"] != signing_settings(base.settings)["keys"]
        todo = [
            c
            for c, info in draft.commits.items()
            if rotated or c not in base.commits or base.commits[c].commitmeta != info.commitmeta
        ]
        return await sign_commits(repo, draft, todo, signers, base)

    async def seal(
        self, repo: Repository, base: VersionRecord, record: VersionRecord
    ) -> VersionRecord:
        """Sign the summary (beside the signatures of a passed-through one)."""
        section = signing_settings(record.settings)
        if not section["keys"] or record.summary is None:
            return record
        signers = self.signers(repo, section)
        summary = await read_blob(repo.store, record.summary)
        existing = await read_blob(repo.store, record.summary_sig) if record.summary_sig else None
        signed = _signed(summary, existing, signers, "summary.sig")
        if signed == existing:
            return record
        return attrs.evolve(record, summary_sig=await put_blob(repo.store, signed))


def _signed(data: bytes, existing: bytes | None, signers: list[SigningKey], what: str) -> bytes:
    """``existing`` signature dictionary with a signature of ``data`` by every signer
    that has none there yet (an ed25519 signature is the same bytes every time; an
    OpenPGP one is not, so one that verifies counts)."""
    from ostree_repo.signing import (
        SIGNATURE_KEYS,
        OpenPGPKey,
        SignatureError,
        add_signatures,
        dump_signatures,
        parse_signatures,
        signatures,
        verify_openpgp,
    )

    metadata = parse_signatures(existing, what)
    for key in signers:
        entry = SIGNATURE_KEYS[key.kind]
        if isinstance(key, OpenPGPKey):
            try:
                verify_openpgp(data, signatures(metadata, entry), [key.certificate])
                continue  # already signed by this key
            except SignatureError:
                pass
        metadata = add_signatures(metadata, entry, [key.sign(data)])
    result = dump_signatures(metadata)
    return existing if existing is not None and result == existing else result


def _merged(kept: bytes, new: bytes | None, what: str) -> bytes:
    """The signature dictionary ``kept`` with the entries and signatures of ``new``."""
    from ostree_repo.signing import SIGNATURE_KEYS, add_signatures, dump_signatures
    from ostree_repo.signing import parse_signatures as parse
    from ostree_repo.signing import signatures as sigs

    old, fresh = parse(kept, what), parse(new, what)
    entries = set(SIGNATURE_KEYS.values())
    metadata = {**old, **{k: v for k, v in fresh.items() if k not in entries}}
    for entry in sorted(entries):
        metadata = add_signatures(metadata, entry, sigs(fresh, entry))
    merged = dump_signatures(metadata)
    return kept if merged == kept else merged


async def sign_commits(
    repo: Repository,
    draft: VersionRecord,
    commits: Iterable[str],
    signers: list[SigningKey],
    base: VersionRecord | None = None,
) -> VersionRecord:
    """``draft`` with each of ``commits`` signed by every one of ``signers`` that has not
    signed it yet. Its other signatures are kept, also those the commit has in ``base``
    (a commit brought in again with fewer signatures loses none)."""
    updated: dict[str, CommitInfo] = {}
    store = repo.store
    before = base.commits if base is not None else {}

    async def one(checksum: str) -> None:
        info = draft.commits[checksum]
        what = f"detached metadata of commit {checksum}"
        data = await store.read_object(checksum, ObjectType.COMMIT)
        existing = await read_blob(store, info.commitmeta) if info.commitmeta else None
        old = before.get(checksum)
        if old is not None and old.commitmeta and old.commitmeta != info.commitmeta:
            existing = _merged(await read_blob(store, old.commitmeta), existing, what)
        signed = _signed(data, existing, signers, what)
        if hashlib.sha256(signed).hexdigest() != info.commitmeta:
            updated[checksum] = attrs.evolve(info, commitmeta=await put_blob(store, signed))

    todo = list(commits)
    for start in range(0, len(todo), _CONCURRENCY):
        async with task_group() as tg:
            for checksum in todo[start : start + _CONCURRENCY]:
                tg.start_soon(one, checksum)
    if not updated:
        return draft
    return attrs.evolve(draft, commits={**draft.commits, **updated})


# -- what the CLI and the embedding service use ------------------------------------------------


def requirement(trusted: TrustedKeys, *, summaries: bool = False) -> dict[str, Any]:
    """The fields of section ``signing`` that require signatures from ``trusted``:
    ``gpg-verify`` with its keyring when it holds OpenPGP certificates, ``sign-verify``
    with the keys when it holds ed25519 keys (and the ``-summary`` options with
    ``summaries``, for syncs)."""
    from ostree_repo.signing.ed25519 import public_key_id

    fields: dict[str, Any] = {}
    if trusted.gpg:
        fields["gpg-verify"] = True
        fields["gpg-keyring"] = [c.armored() for c in trusted.gpg]
        if summaries:
            fields["gpg-verify-summary"] = True
    if trusted.ed25519:
        fields["sign-verify"] = True
        fields["verification-ed25519-key"] = [public_key_id(k) for k in trusted.ed25519]
        if summaries:
            fields["sign-verify-summary"] = True
    if not fields:
        raise SettingsError("requiring signatures needs trusted keys (--trust-key FILE)")
    return fields


def with_keys(section: Mapping[str, Any], keys: Iterable[SigningKey]) -> dict[str, Any]:
    """``section`` (of the settings) signing also with ``keys``."""
    from ostree_repo.signing import OpenPGPKey, key_name

    updated = signing_settings({SECTION: section})
    for key in keys:
        if key_name(key) not in updated["keys"]:
            updated["keys"].append(key_name(key))
        if isinstance(key, OpenPGPKey):
            updated["certificates"][key.key_id] = key.certificate.armored()
    return updated


def without_keys(section: Mapping[str, Any], names: Iterable[str]) -> dict[str, Any]:
    """``section`` no longer signing with the keys ``names`` (:func:`key_name`)."""
    gone = set(names)
    updated = signing_settings({SECTION: section})
    missing = gone - set(updated["keys"])
    if missing:
        raise SettingsError(f"the repository does not sign with {', '.join(sorted(missing))}")
    updated["keys"] = [k for k in updated["keys"] if k not in gone]
    return updated


async def resign(repo: Repository, version: int | None = None) -> VersionRecord | None:
    """A new version holding what version ``version`` (default: latest) of ``repo``
    holds, every commit and the summary signed with the repository's current keys
    (signatures the commits have are kept). The settings stay the latest version's.
    None when the latest version already is exactly that (nothing to sign)."""
    source = await repo.version(version)

    async def change(base: VersionRecord) -> VersionRecord:
        section = signing_settings(base.settings)
        if not section["keys"]:
            raise SettingsError(f"repository {repo.name} has no signing keys (keys add)")
        policy = next((h for h in repo.hooks if isinstance(h, SigningPolicy)), None)
        if policy is None:
            raise SettingsError("this manager has no signing policy hook")
        draft = attrs.evolve(
            base,
            refs=dict(source.refs),
            collection_refs={c: dict(r) for c, r in source.collection_refs.items()},
            commits=dict(source.commits),
            deltas=dict(source.deltas),
            tombstones=source.tombstones,
            config=source.config,
            summary=None,  # regenerated, then signed
            summary_sig=None,
        )
        signers = policy.signers(repo, section)
        return await sign_commits(repo, draft, list(draft.commits), signers, base)

    return await repo.publish(change, {"kind": "sign", "source_version": source.number})


@attrs.frozen
class Verdict:
    """What checking one signed thing found: who signed it, or why it is refused."""

    what: str
    signed_by: dict[str, str] = attrs.field(factory=dict)
    error: str | None = None

    @property
    def ok(self) -> bool:
        """True when every required kind of signature is valid."""
        return self.error is None

    def to_json(self) -> dict[str, Any]:
        """``{"what", "ok", "signed_by", "error"}``."""
        return {"what": self.what, "ok": self.ok, "signed_by": self.signed_by, "error": self.error}


def check(trusted: TrustedKeys, what: str, data: bytes, sig: bytes | None) -> Verdict:
    """Check ``data``'s signature dictionary ``sig`` with every kind ``trusted`` has."""
    from ostree_repo.signing import SignatureError

    kinds = [k for k, present in (("gpg", trusted.gpg), ("ed25519", trusted.ed25519)) if present]
    try:
        return Verdict(what, trusted.verify(data, sig, kinds, what))
    except SignatureError as e:
        return Verdict(what, error=str(e))


async def verify_version(
    repo: Repository, version: int | None = None, trusted: TrustedKeys | None = None
) -> tuple[VersionRecord, list[Verdict]]:
    """Check the summary and every commit of a version against ``trusted`` (default: the
    public keys the version says the repository signs with)."""
    record = await repo.version(version)
    keys = own_keys(signing_settings(record.settings)) if trusted is None else trusted
    if not keys.names():
        raise SettingsError(
            f"{repo.name} version {record.number} names no signing keys: give --trust-key"
        )
    store = repo.store
    verdicts = []
    if record.summary is None:
        verdicts.append(Verdict("summary", error="the version has no summary"))
    else:
        summary = await read_blob(store, record.summary)
        sig = await read_blob(store, record.summary_sig) if record.summary_sig else None
        verdicts.append(check(keys, "summary", summary, sig))
    for checksum, info in sorted(record.commits.items()):
        data = await store.read_object(checksum, ObjectType.COMMIT)
        meta = await read_blob(store, info.commitmeta) if info.commitmeta else None
        verdicts.append(check(keys, f"commit {checksum}", data, meta))
    return record, verdicts
