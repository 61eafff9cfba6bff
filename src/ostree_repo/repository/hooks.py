"""Repository settings, and the features that act whenever a repository makes a version.

A repository's *settings* are part of its versions (:attr:`VersionRecord.settings
<ostree_repo.repository.records.VersionRecord.settings>`): a JSON object of *sections*,
each owned by one feature (its policy: which deltas to generate, what to retain, how to
sign). Settings are carried from version to version like refs, so every version records
the policy it was made with, and changing a policy (:meth:`Repository.configure
<ostree_repo.repository.repository.Repository.configure>`) is itself a new version.

A feature is a :class:`PublishHook`. :meth:`Repository.publish
<ostree_repo.repository.repository.Repository.publish>` runs every hook of its manager, in
order, on each attempt to make a version (an attempt that loses the race for its number is
re-applied to the new latest version, hooks included, so a hook must be idempotent):

1. :meth:`~PublishHook.prepare` on the draft, once the change said what the version holds
   and before its summary is generated (drop history, sign commits, add deltas);
2. the summary is generated (unless the draft carries one it can vouch for);
3. :meth:`~PublishHook.seal` on the record that will be stored (sign the summary);
4. the record is stored; then :meth:`~PublishHook.published` (delete versions a
   retention policy no longer keeps). An error there does not undo the version.

A change that leaves the content as it was makes no version, and then no hook runs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from ostree_repo.errors import OstreeRepoError

if TYPE_CHECKING:
    from ostree_repo.repository.records import VersionRecord
    from ostree_repo.repository.repository import Repository
    from ostree_repo.signing import SigningKey, SigningKeys

__all__ = ["PublishHook", "SettingsError", "default_hooks"]


class SettingsError(OstreeRepoError):
    """A repository setting is unknown, or its value is not valid for its section."""


class PublishHook:
    """A feature that acts whenever a repository makes a version (a no-op by default).

    Subclasses that own a settings section name it in :attr:`section` and check its
    values in :meth:`validate`.
    """

    #: The settings section this hook owns, or None.
    section: ClassVar[str | None] = None

    def validate(self, value: Any) -> Any:
        """The normal form of a value for :attr:`section` (JSON-ready); raise
        :class:`SettingsError` if it is not valid."""
        return value

    async def prepare(
        self, repo: Repository, base: VersionRecord, draft: VersionRecord
    ) -> VersionRecord:
        """The draft of the next version, as this feature wants it (before its summary)."""
        return draft

    async def seal(
        self, repo: Repository, base: VersionRecord, record: VersionRecord
    ) -> VersionRecord:
        """The record as it will be stored, its summary generated."""
        return record

    async def published(self, repo: Repository, record: VersionRecord) -> None:
        """Called once ``record`` is stored (the version exists whatever this does)."""

    async def admit_commit(
        self,
        repo: Repository,
        settings: Mapping[str, Any],
        checksum: str,
        data: bytes,
        commitmeta: bytes | None,
    ) -> None:
        """Called for each commit that import, sync or copy brings in (``data``: the
        commit object, ``commitmeta``: its detached metadata), before it is stored, with
        the settings of the repository's latest version; raise to refuse it."""

    async def admit_summary(
        self,
        repo: Repository,
        settings: Mapping[str, Any],
        summary: bytes | None,
        sig: bytes | None,
    ) -> None:
        """Called with a remote's ``summary`` and ``summary.sig`` (None: absent) before a
        sync uses them; raise to refuse them."""


def check_settings(hooks: tuple[PublishHook, ...], settings: Mapping[str, Any]) -> dict[str, Any]:
    """``settings`` in normal form, each section checked by the hook that owns it;
    :class:`SettingsError` names a section no hook owns."""
    owners = {hook.section: hook for hook in hooks if hook.section is not None}
    checked: dict[str, Any] = {}
    for section, value in sorted(settings.items()):
        owner = owners.get(section)
        if owner is None:
            known = ", ".join(sorted(owners)) or "none"
            raise SettingsError(f"unknown repository setting {section!r} (known: {known})")
        checked[section] = owner.validate(value)
    return checked


def default_hooks(
    *, keys: SigningKeys | Iterable[SigningKey] | None = None
) -> tuple[PublishHook, ...]:
    """The hooks a :class:`~ostree_repo.repository.RepositoryManager` runs unless it is
    given others, in the order they run (each lane appends its feature here).

    ``keys``: the private keys signing may use (see :mod:`.signing_policy`).
    """
    from ostree_repo.repository._delta_policy import DeltaPolicyHook
    from ostree_repo.repository.retention import RetentionHook
    from ostree_repo.repository.signing_policy import SigningPolicy

    # Retention first: what it drops from a version is neither signed nor given deltas.
    # Signing before deltas: a generated delta's superblock embeds its target's detached
    # metadata, so the commits must be signed by then (the summary is signed in seal,
    # after every hook's prepare, so it lists the deltas too).
    return (RetentionHook(), SigningPolicy(keys), DeltaPolicyHook())
