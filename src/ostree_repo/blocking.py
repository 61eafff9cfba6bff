"""A thin blocking facade over the async core, for scripts and test fixtures.

::

    from ostree_repo.blocking import Manager

    with Manager("./ostree-store") as manager:
        manager.import_directory("fedora", "/srv/ostree/repo")
        for version in manager.versions("fedora"):
            print(version.number, version.refs)

Every method runs the async implementation of the same name on an event loop in a
background thread (``anyio.from_thread.start_blocking_portal``) and returns its result.
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, Concatenate, Literal, ParamSpec, Self, TypeVar

from anyio.from_thread import BlockingPortal, start_blocking_portal

from ostree_repo.builder import commit_tree
from ostree_repo.export import export_version
from ostree_repo.importing import import_archive, import_directory
from ostree_repo.repair import open_repair_sources
from ostree_repo.repository import (
    FsckReport,
    PublishHook,
    ReclaimReport,
    RepositoryManager,
    UsageReport,
    VersionRecord,
    apply_retention,
    delete_deltas,
    generate_deltas,
    usage,
)
from ostree_repo.repository.manager import DEFAULT_GRACE_SECONDS
from ostree_repo.sync import sync_repository

if TYPE_CHECKING:
    from ostree_repo.repository.signing_policy import Verdict
    from ostree_repo.signing import SigningKey, SigningKeys, TrustedKeys

_T = TypeVar("_T")
_P = ParamSpec("_P")

__all__ = ["Manager"]


def _blocking(
    func: Callable[Concatenate[RepositoryManager, _P], Awaitable[_T]],
) -> Callable[Concatenate[Manager, _P], _T]:
    """A method of :class:`Manager` that runs ``await func(self.manager, ...)`` with the
    very signature (typed arguments, docstring) of ``func`` after its manager."""

    @functools.wraps(func)
    def method(self: Manager, /, *args: _P.args, **kwargs: _P.kwargs) -> _T:
        return self._portal.call(functools.partial(func, self.manager, *args, **kwargs))

    return method


class Manager:
    """Blocking access to the repositories of the store at ``url`` (``hooks``, ``keys``:
    as for :class:`~ostree_repo.repository.RepositoryManager`)."""

    def __init__(
        self,
        url: str,
        *,
        hooks: Sequence[PublishHook] | None = None,
        keys: SigningKeys | Iterable[SigningKey] | None = None,
        **store_options: Any,
    ) -> None:
        self._stack = contextlib.ExitStack()
        try:
            self._portal: BlockingPortal = self._stack.enter_context(start_blocking_portal())
            self.manager: RepositoryManager = self._stack.enter_context(
                self._portal.wrap_async_context_manager(
                    RepositoryManager.open(url, hooks=hooks, keys=keys, **store_options)
                )
            )
        except BaseException:
            self._stack.close()
            raise

    def run(self, func: Callable[..., Awaitable[_T]], *args: object) -> _T:
        """Run ``await func(*args)`` on this facade's event loop and return its result:
        the way to any async API of the library (``self.manager``, ``self.manager.store``)
        that the facade does not wrap."""
        return self._portal.call(func, *args)

    def close(self) -> None:
        """Close the store and stop the background event loop."""
        self._stack.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- repositories and versions ------------------------------------------------------

    def create_repository(
        self, name: str, *, exist_ok: bool = False, settings: Mapping[str, Any] | None = None
    ) -> None:
        """Create repository ``name`` (with ``settings``: see :meth:`configure`)."""
        self._portal.call(
            lambda: self.manager.create_repository(name, exist_ok=exist_ok, settings=settings)
        )

    def configure(self, name: str, settings: Mapping[str, Any]) -> VersionRecord | None:
        """Change the settings of ``name`` (sections; None removes one): a new version,
        or None when nothing changed."""
        return self._portal.call(lambda: self.manager.configure(name, settings))

    def repositories(self) -> list[str]:
        """The names of all repositories."""
        return self._portal.call(self.manager.repositories)

    def delete_repository(self, name: str) -> None:
        """Delete a repository and all its versions."""
        self._portal.call(self.manager.delete_repository, name)

    def versions(self, name: str) -> list[VersionRecord]:
        """Every existing version of ``name``, oldest first."""
        return self._portal.call(self.manager.repository(name).versions)

    def version(self, name: str, number: int | None = None) -> VersionRecord:
        """Version ``number`` of ``name`` (default: the latest)."""
        return self._portal.call(self.manager.repository(name).version, number)

    def delete_version(self, name: str, number: int) -> None:
        """Delete one version."""
        self._portal.call(self.manager.repository(name).delete_version, number)

    def version_size(self, name: str, number: int | None = None) -> int:
        """Bytes of objects the version reaches."""
        return self._portal.call(lambda: self._size(name, number))

    async def _size(self, name: str, number: int | None) -> int:
        return await self.manager.version_size(await self.manager.repository(name).version(number))

    # -- changes ------------------------------------------------------------------------

    def copy(
        self,
        source: str,
        destination: str,
        *,
        version: int | None = None,
        refs: Iterable[str] = (),
        commits: Iterable[str] = (),
        depth: int = 0,
        whole: bool = False,
        create: bool = False,
    ) -> VersionRecord | None:
        """See :meth:`RepositoryManager.copy`."""
        return self._portal.call(
            lambda: self.manager.copy(
                source,
                destination,
                version=version,
                refs=list(refs),
                commits=list(commits),
                depth=depth,
                whole=whole,
                create=create,
            )
        )

    def remove(
        self, name: str, *, refs: Iterable[str] = (), commits: Iterable[str] = ()
    ) -> VersionRecord | None:
        """See :meth:`RepositoryManager.remove`."""
        return self._portal.call(
            lambda: self.manager.remove(name, refs=list(refs), commits=list(commits))
        )

    def import_directory(self, name: str, path: str | os.PathLike[str]) -> VersionRecord | None:
        """Import an archive-mode OSTree repository directory into a new version."""
        return self._portal.call(import_directory, self.manager, name, path)

    def import_archive(
        self,
        name: str,
        archive: str | os.PathLike[str],
        *,
        repo_dir: str = "repo",
        ref: str | None = None,
    ) -> VersionRecord | None:
        """Import a commit archive (tarball holding an archive-mode repo) into a new version."""
        return self._portal.call(
            lambda: import_archive(self.manager, name, archive, repo_dir=repo_dir, ref=ref)
        )

    def sign(self, name: str, version: int | None = None) -> VersionRecord | None:
        """A new version of ``name`` with version ``version``'s content, signed with the
        repository's current keys (see :func:`~ostree_repo.repository.signing_policy.resign`)."""
        from ostree_repo.repository.signing_policy import resign

        return self._portal.call(lambda: resign(self.manager.repository(name), version))

    def verify(
        self, name: str, version: int | None = None, trusted: TrustedKeys | None = None
    ) -> list[Verdict]:
        """The signature checks of a version's summary and commits (default trust: the
        keys it signs with); see :func:`~ostree_repo.repository.signing_policy.verify_version`."""
        from ostree_repo.repository.signing_policy import verify_version

        repo = self.manager.repository(name)
        return self._portal.call(lambda: verify_version(repo, version, trusted))[1]

    def apply_retention(self, name: str) -> list[int]:
        """Delete the versions of ``name`` its retention policy no longer keeps (see
        :func:`~ostree_repo.repository.apply_retention`); the numbers deleted."""
        return self._portal.call(lambda: apply_retention(self.manager.repository(name)))

    def du(
        self, name: str, version: int | None = None, by: Literal["ref", "commit"] | None = None
    ) -> UsageReport:
        """The storage a version (default: the latest) uses and what only it uses, with
        ``by`` per ref or commit (see :func:`~ostree_repo.repository.usage`)."""
        return self._portal.call(lambda: usage(self.manager, name, version, by))

    def generate_deltas(
        self, name: str, pairs: Sequence[tuple[str | None, str]], **options: Any
    ) -> VersionRecord | None:
        """Make static deltas ``(from or None, to)`` in a new version of ``name`` (see
        :func:`~ostree_repo.repository.generate_deltas` for the options)."""
        return self._portal.call(lambda: generate_deltas(self.manager, name, pairs, **options))

    def delete_deltas(self, name: str, names: Sequence[str]) -> VersionRecord | None:
        """A new version of ``name`` without the static deltas ``names``."""
        return self._portal.call(lambda: delete_deltas(self.manager, name, names))

    #: :func:`~ostree_repo.sync.sync_repository`: sync ``name`` from an OSTree HTTP
    #: server (the same typed keyword arguments, e.g. ``depth=-1, timeout=60``)
    sync = _blocking(sync_repository)
    #: :func:`~ostree_repo.builder.commit_tree`: commit a tree into a new version
    commit = _blocking(commit_tree)

    def export(
        self, name: str, destination: str | os.PathLike[str], *, version: int | None = None
    ) -> VersionRecord:
        """Write a version as a standalone OSTree repository."""
        return self._portal.call(
            lambda: export_version(self.manager, name, destination, version=version)
        )

    # -- maintenance --------------------------------------------------------------------

    def fsck(
        self, name: str, version: int | None = None, *, repair_from: Sequence[str] | None = None
    ) -> FsckReport:
        """Verify every object and blob a version needs; with ``repair_from`` (OSTree
        HTTP URLs, store URLs or paths: see :mod:`ostree_repo.repair`), repair what is
        damaged from the first source that has it."""

        async def run() -> FsckReport:
            if repair_from is None:
                return await self.manager.fsck(name, version)
            async with open_repair_sources(repair_from) as sources:
                return await self.manager.fsck(name, version, repair_from=sources)

        return self._portal.call(run)

    def reclaim(
        self, *, grace_seconds: float = DEFAULT_GRACE_SECONDS, dry_run: bool = False
    ) -> ReclaimReport:
        """Delete storage no surviving version needs."""
        return self._portal.call(
            lambda: self.manager.reclaim(grace_seconds=grace_seconds, dry_run=dry_run)
        )
