"""pytest plugin: OSTree stores, repositories, commits, commit archives and a live server.

Installed with the package (entry point ``pytest11``), so any test suite can ask for::

    ostree_store_url      a fresh, empty store for this test (filesystem, memory or S3)
    ostree_store_options  the options the store is opened with (override to set some)
    ostree_manager        the blocking facade over that store (ostree_repo.blocking.Manager)
    ostree_repository     repository "test" of that store, with helpers (OstreeRepository)
    ostree_commit         factory: tree description -> commit in a new version (CommitResult)
    ostree_archive        factory: tree description -> osbuild-style commit archive (tarball)
    ostree_server         our ASGI app serving the store on a loopback port (OstreeTestServer)

Which store: ``@pytest.mark.parametrize("ostree_store_url", [...], indirect=True)`` on a
test, else the ``--ostree-store`` option (repeatable: every test using the fixtures then
runs once per store), else ``$OSTREE_REPO_TEST_STORE``, else ``fs``. A store is ``fs`` (a
directory under ``tmp_path``), ``memory``, or ``s3://bucket/prefix`` (every test gets a
fresh prefix below it; credentials and endpoint come from the ``AWS_*`` environment, see
``docs/stores.md``). See ``docs/testing.md``.

Nothing is imported from the package until a fixture is used, so the plugin costs nothing
in test runs that do not use it.
"""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import pytest

if TYPE_CHECKING:
    from ostree_repo.blocking import Manager
    from ostree_repo.builder import CommitArchive
    from ostree_repo.builder.tree import Dir, Node
    from ostree_repo.repository import VersionRecord

__all__ = [
    "ArchiveFactory",
    "CommitFactory",
    "CommitResult",
    "OstreeRepository",
    "OstreeTestServer",
    "resolve_store_url",
]

#: Environment variable naming the default store of the fixtures (``fs``, ``memory``, S3 URL).
STORE_ENV = "OSTREE_REPO_TEST_STORE"
#: Name of the repository the ``ostree_repository`` fixture makes.
REPOSITORY = "test"
#: Seconds the server fixture waits for the server to come up or go down.
SERVER_DEADLINE = 30.0


def pytest_addoption(parser: pytest.Parser) -> None:
    """``--ostree-store``: the store(s) the ``ostree_*`` fixtures use."""
    group = parser.getgroup("ostree_repo", "ostree_repo fixtures")
    group.addoption(
        "--ostree-store",
        action="append",
        default=[],
        metavar="STORE",
        help="store for the ostree_* fixtures: fs (default), memory or s3://bucket/prefix; "
        f"repeat to run each test once per store (default: ${STORE_ENV}, else fs)",
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Run tests that use the store once per ``--ostree-store`` given (when several are)."""
    stores: list[str] = metafunc.config.getoption("ostree_store", default=[]) or []
    if len(stores) < 2 or "ostree_store_url" not in metafunc.fixturenames:
        return
    for mark in metafunc.definition.iter_markers("parametrize"):
        names = mark.args[0] if mark.args else mark.kwargs.get("argnames", "")
        if isinstance(names, str):
            names = [n.strip() for n in names.split(",")]
        if "ostree_store_url" in names:
            return  # the test chose its stores itself
    metafunc.parametrize("ostree_store_url", stores, indirect=True, ids=_store_id)


def _store_id(store: object) -> str:
    text = str(store)
    return "s3" if text.startswith("s3://") else text


def resolve_store_url(spec: str, tmp_path: Path) -> str:
    """The URL of a fresh store for ``spec``: ``fs``, ``memory``, a path, or an S3 URL.

    ``fs`` is a directory under ``tmp_path``; ``memory`` a private in-memory store; an
    ``s3://`` URL gets a unique prefix below the one it names; any other value is used as
    a filesystem path (which should not exist yet or be empty).
    """
    spec = spec.strip()
    if spec in ("", "fs", "file", "filesystem"):
        return str(tmp_path / "ostree-store")
    if spec == "memory":
        return f"memory://{uuid.uuid4().hex}"
    if spec.startswith("s3://"):
        return f"{spec.rstrip('/')}/pytest-{uuid.uuid4().hex[:16]}"
    return spec


@pytest.fixture
def ostree_store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of a fresh, empty store for this test (see the module docstring)."""
    spec = getattr(request, "param", None)
    if spec is None:
        stores: list[str] = request.config.getoption("ostree_store", default=[]) or []
        spec = stores[0] if stores else os.environ.get(STORE_ENV, "fs")
    return resolve_store_url(str(spec), tmp_path)


@pytest.fixture
def ostree_store_options() -> dict[str, Any]:
    """Options for :func:`~ostree_repo.store.open_store` (override this fixture to set
    some, e.g. ``{"env": {...}}`` for S3 settings not in ``os.environ``, or
    ``{"fsync": False}`` for a faster filesystem store)."""
    return {}


@pytest.fixture
def ostree_manager(
    ostree_store_url: str, ostree_store_options: dict[str, Any]
) -> Iterator[Manager]:
    """A :class:`ostree_repo.blocking.Manager` over the test's store (closed afterwards)."""
    from ostree_repo.blocking import Manager

    with Manager(ostree_store_url, **ostree_store_options) as manager:
        yield manager


# -- trees, commits and repositories ----------------------------------------------------------


def _tree(source: Any, spool: Path) -> Dir:
    """A builder tree from a mapping, a ``Dir``, or the path of a directory or tarball."""
    from ostree_repo.builder import Dir, tree_from_directory, tree_from_mapping, tree_from_tar

    if isinstance(source, Dir):
        return source
    if isinstance(source, Mapping):
        return tree_from_mapping(source)
    if isinstance(source, str | os.PathLike):
        if os.path.isdir(source):
            return tree_from_directory(source)
        spool.mkdir(parents=True, exist_ok=True)
        return tree_from_tar(source, spool)
    raise TypeError(f"not a tree description: {source!r}")


def _metadata(metadata: Mapping[str, Any] | None) -> dict[str, Any]:
    """Commit metadata: ``str`` values become ``s`` variants, Variants are kept."""
    from ostree_repo.gvariant import Variant

    out: dict[str, Any] = {}
    for key, value in (metadata or {}).items():
        out[key] = value if isinstance(value, Variant) else Variant("s", str(value))
    return out


class CommitResult:
    """A commit made by the ``ostree_commit`` factory."""

    def __init__(
        self, checksum: str, repository: str, ref: str | None, version: VersionRecord | None
    ) -> None:
        self.checksum = checksum
        """The commit checksum (what ``ostree commit`` prints)."""
        self.repository = repository
        """The repository it was committed to."""
        self.ref = ref
        """The ref moved to it (None for an orphan commit)."""
        self.version = version
        """The new version, or None if the repository already held exactly this."""

    def __repr__(self) -> str:
        number = None if self.version is None else self.version.number
        return f"CommitResult({self.checksum[:12]}…, {self.repository}, {self.ref}, v{number})"


class OstreeRepository:
    """One repository of the test's store, with helpers for tests."""

    def __init__(self, manager: Manager, name: str, spool: Path) -> None:
        self.manager = manager
        """The blocking manager of the store."""
        self.name = name
        """The repository's name."""
        self._spool = spool

    def version(self, number: int | None = None) -> VersionRecord:
        """Version ``number`` (default: the latest)."""
        return self.manager.version(self.name, number)

    def versions(self) -> list[VersionRecord]:
        """Every version, oldest first."""
        return self.manager.versions(self.name)

    @property
    def refs(self) -> dict[str, str]:
        """The refs of the latest version."""
        return dict(self.version().refs)

    def commit(
        self,
        tree: Any,
        *,
        ref: str | None = "main",
        subject: str = "",
        body: str = "",
        metadata: Mapping[str, Any] | None = None,
        parent: str | None = "auto",
        timestamp: int | None = None,
    ) -> CommitResult:
        """Commit ``tree`` into a new version, on ``ref``.

        ``tree``: ``{"path": bytes | str (a symlink target) | File | Symlink | Dir}`` (see
        :func:`~ostree_repo.builder.tree_from_mapping`), a ``Dir``, or the path of a
        directory or of a filesystem tarball (committed as ``ostree commit`` would).

        The parent is the ref's head unless given (``None``: a root commit); ``metadata``
        values that are not Variants are stored as strings (``a{sv}`` of ``s``).
        """
        checksum, record = self.manager.commit(
            self.name,
            _tree(tree, self._spool / uuid.uuid4().hex),
            ref=ref,
            subject=subject,
            body=body,
            metadata=_metadata(metadata),
            parent=parent,
            timestamp=timestamp,
        )
        return CommitResult(checksum, self.name, ref, record)

    def tree(self, commit: str) -> dict[str, Node]:
        """What ``commit`` (a checksum, or a ref of the latest version) holds:
        ``{"usr/bin/tool": File(...), "lib": Symlink(...), "usr": Dir(...), ...}``."""
        from ostree_repo.builder import flatten, tree_from_commit

        checksum = self.refs.get(commit, commit)
        store = self.manager.manager.store
        root = self.manager.run(tree_from_commit, store, checksum)
        return flatten(root)

    def read(self, commit: str, path: str) -> bytes:
        """The bytes of file ``path`` in ``commit`` (a checksum or a ref)."""
        from ostree_repo.builder import File

        node = self.tree(commit).get(path.strip("/"))
        if not isinstance(node, File) or node.data is None:
            raise KeyError(f"{path} is not a regular file of {commit}")
        return node.data

    def export(self, destination: str | os.PathLike[str], version: int | None = None) -> Path:
        """Write a version as a standalone archive-mode repository (``ostree fsck`` it)."""
        self.manager.export(self.name, destination, version=version)
        return Path(destination)


@pytest.fixture
def ostree_repository(ostree_manager: Manager, tmp_path: Path) -> OstreeRepository:
    """Repository ``test`` of the test's store (created, still without versions)."""
    ostree_manager.create_repository(REPOSITORY, exist_ok=True)
    return OstreeRepository(ostree_manager, REPOSITORY, tmp_path / "ostree-spool")


class CommitFactory(Protocol):
    """``ostree_commit(tree, ref="main", subject=..., metadata=..., parent=..., ...)``."""

    def __call__(
        self,
        tree: Any,
        *,
        ref: str | None = "main",
        subject: str = "",
        body: str = "",
        metadata: Mapping[str, Any] | None = None,
        parent: str | None = "auto",
        timestamp: int | None = None,
    ) -> CommitResult:
        """Commit ``tree`` into a new version of ``ostree_repository``."""


@pytest.fixture
def ostree_commit(ostree_repository: OstreeRepository) -> CommitFactory:
    """Factory committing a tree into a new version of ``ostree_repository``.

    ``ostree_commit({"usr/bin/tool": b"...", "lib": "usr/lib"}, ref="main")`` returns a
    :class:`CommitResult` (checksum, ref, new version); see :meth:`OstreeRepository.commit`.
    """
    return ostree_repository.commit


# -- commit archives ------------------------------------------------------------------------


class ArchiveFactory(Protocol):
    """``ostree_archive(tree, ref="main", parent=None, compression="tar", ...)``."""

    def __call__(
        self,
        tree: Any,
        *,
        ref: str = "main",
        parent: CommitArchive | str | None = None,
        subject: str = "",
        metadata: Mapping[str, Any] | None = None,
        timestamp: int | None = None,
        compression: str = "tar",
        compose: Mapping[str, Any] | None = None,
    ) -> CommitArchive:
        """Build a commit archive of ``tree`` (an update archive when ``parent`` is one)."""


@pytest.fixture
def ostree_archive(tmp_path: Path) -> Iterator[ArchiveFactory]:
    """Factory building osbuild-composer style commit archives with our builder.

    Each call commits ``tree`` in a private scratch store and writes
    ``compose.json`` + ``repo/`` as a tarball under ``tmp_path`` (``compression``:
    ``tar``, ``tar.gz``, ``tar.xz``, ``tar.bz2`` or ``tar.zst``), returning a
    :class:`~ostree_repo.builder.CommitArchive` (``path``, ``commit``, ``parent``, ...).
    With ``parent`` (an archive this factory made, or a commit checksum) the commit is
    its child; when the parent was made by this factory the archive is an **update
    archive** holding only the objects the parent lacks, otherwise it holds the whole tree.
    """
    from ostree_repo.blocking import Manager
    from ostree_repo.builder import CommitArchive, write_commit_archive

    base = tmp_path / "ostree-archives"
    base.mkdir(exist_ok=True)
    scratch = Manager(str(base / "store"), fsync=False)
    made: set[str] = set()

    def build(
        tree: Any,
        *,
        ref: str = "main",
        parent: CommitArchive | str | None = None,
        subject: str = "",
        metadata: Mapping[str, Any] | None = None,
        timestamp: int | None = None,
        compression: str = "tar",
        compose: Mapping[str, Any] | None = None,
    ) -> CommitArchive:
        parent_commit = parent.commit if isinstance(parent, CommitArchive) else parent
        name = f"a{len(made)}"
        checksum, _ = scratch.commit(
            name,
            _tree(tree, base / f"spool-{name}"),
            ref=ref,
            subject=subject,
            metadata=_metadata(metadata),
            parent=parent_commit,
            timestamp=timestamp,
        )
        update = parent_commit is not None and parent_commit in made
        made.add(checksum)
        suffix = compression if compression.startswith("tar") else f"tar.{compression}"
        path = base / f"{name}.{suffix}"
        return scratch.run(
            lambda: write_commit_archive(
                scratch.manager, name, path, ref=ref, update=update, compose=compose
            )
        )

    try:
        yield build
    finally:
        scratch.close()


# -- a live server --------------------------------------------------------------------------


class OstreeTestServer:
    """Our ASGI app serving a store on a loopback port (the ``ostree_server`` fixture)."""

    def __init__(self, url: str, store_url: str) -> None:
        self.url = url
        """Base URL, no trailing slash: ``http://127.0.0.1:PORT``."""
        self.store_url = store_url
        """The store it serves."""

    def repo_url(self, name: str = REPOSITORY, version: int | None = None) -> str:
        """The URL ``ostree remote add`` wants for repository ``name`` (latest or pinned)."""
        if version is None:
            return f"{self.url}/{name}/"
        return f"{self.url}/{name}/versions/{version}/"


@pytest.fixture
def ostree_server(
    ostree_store_url: str, ostree_store_options: dict[str, Any], ostree_manager: Manager
) -> Iterator[OstreeTestServer]:
    """Our server (:func:`~ostree_repo.server.create_app` under uvicorn, in a thread) on a
    kernel-chosen loopback port, serving the test's store; stopped after the test.

    It opens the store itself, so what the test writes through ``ostree_manager`` (or any
    other fixture) is served: ``ostree_server.repo_url("test")`` is a URL for
    ``ostree remote add``.
    """
    with _serve(ostree_store_url, ostree_store_options) as url:
        yield OstreeTestServer(url, ostree_store_url)


@contextlib.contextmanager
def _serve(store_url: str, options: dict[str, Any]) -> Iterator[str]:
    """uvicorn serving our app for ``store_url`` on a free loopback port, in a thread."""
    import asyncio
    import logging
    import socket
    import threading

    try:
        import uvicorn
    except ImportError:  # pragma: no cover - uvicorn comes with ostree-repo[test]
        pytest.fail("the ostree_server fixture needs uvicorn: pip install 'ostree-repo[pytest]'")
    from ostree_repo.server import create_app

    app = create_app(store_url, store_options=dict(options) or None)
    sock = socket.socket()
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    port: int = sock.getsockname()[1]
    # h11: libcurl offers "Upgrade: h2c" on its requests, which httptools stops parsing at
    config = uvicorn.Config(
        app, http="h11", lifespan="on", log_config=None, access_log=False, ws="none"
    )
    logging.getLogger("uvicorn.error").setLevel(logging.ERROR)  # a warning per h2c offer
    server = uvicorn.Server(config)
    failure: list[BaseException] = []

    def run() -> None:
        try:
            asyncio.run(server.serve(sockets=[sock]))
        except BaseException as e:  # reported below
            failure.append(e)

    thread = threading.Thread(target=run, daemon=True, name=f"ostree-server-{port}")
    thread.start()
    try:
        deadline = time.monotonic() + SERVER_DEADLINE
        pause = threading.Event()
        while not server.started and thread.is_alive() and time.monotonic() < deadline:
            pause.wait(0.01)  # readiness poll, bounded by the deadline
        if not server.started:
            pytest.fail(f"the ostree server did not start: {failure or 'timed out'}")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(SERVER_DEADLINE)
        sock.close()
