"""pytest plugin: session-scoped oracle fixtures.

Registered from ``tests/conftest.py`` (``pytest_plugins``).  Fixtures:

* ``glib`` -- a running :class:`~oracle.glib_oracle.GLibOracle`
  (``/usr/bin/python3`` + PyGObject), shared by the session;
* ``rich_repo`` -- :class:`~oracle.ostree_cli.RepoInfo` of the repo built by
  :func:`~oracle.ostree_cli.build_rich_repo` (once per session, 6-10 s);
* ``collection_repo`` -- :func:`~oracle.ostree_cli.build_collection_repo`;
* ``large_repo_small`` -- ``benchmarks/_repos.py``'s synthetic repo scaled
  down to 2 000 files (for tests of code paths the benchmarks use).

Repos are shared: never modify them in place, copy with
:func:`~oracle.ostree_cli.copy_repo` first.

When the ``ostree`` CLI or the system Python's ``gi`` is missing the fixtures
fail (``scripts/install-deps.sh`` installs both), unless
``OSTREE_REPO_ALLOW_MISSING_ORACLES=1`` is set, in which case they skip.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from .glib_oracle import GLibOracle, glib_available
from .ostree_cli import RepoInfo, build_collection_repo, build_rich_repo, ostree_available

ALLOW_ENV = "OSTREE_REPO_ALLOW_MISSING_ORACLES"
BENCHMARKS_DIR = Path(__file__).resolve().parents[2] / "benchmarks"


def _unavailable(reason: str) -> None:
    """A missing oracle fails the test: scripts/install-deps.sh installs every one.

    Set OSTREE_REPO_ALLOW_MISSING_ORACLES=1 to skip instead, on a machine without apt.
    """
    if os.environ.get(ALLOW_ENV, "") not in ("", "0"):
        pytest.skip(f"{reason} ({ALLOW_ENV} is set)")
    pytest.fail(f"{reason}: run scripts/install-deps.sh", pytrace=False)


def load_benchmark_module(name: str) -> ModuleType:
    """Import ``benchmarks/<name>.py`` by path (``benchmarks`` is not a package)."""
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, BENCHMARKS_DIR / f"{name}.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[name]
            raise
    return sys.modules[name]


@pytest.fixture(scope="session")
def ostree_cli() -> None:
    """Skip (or fail under CI) when the ``ostree`` binary is missing."""
    if not ostree_available():
        _unavailable("the ostree CLI is not installed")


@pytest.fixture(scope="session")
def glib() -> Iterator[GLibOracle]:
    """The GLib GVariant oracle server, started once per session."""
    if not glib_available():
        _unavailable("/usr/bin/python3 with PyGObject (gi) is not available")
    with GLibOracle() as oracle:
        yield oracle


@pytest.fixture(scope="session")
def rich_repo(ostree_cli: None, tmp_path_factory: pytest.TempPathFactory) -> RepoInfo:
    """The rich archive repo (built once per session; read-only)."""
    return build_rich_repo(tmp_path_factory.mktemp("rich_repo"))


@pytest.fixture(scope="session")
def collection_repo(ostree_cli: None, tmp_path_factory: pytest.TempPathFactory) -> RepoInfo:
    """An archive repo with a collection ID and a refs/mirrors ref (read-only)."""
    return build_collection_repo(tmp_path_factory.mktemp("collection_repo"))


@pytest.fixture(scope="session")
def large_repo_small(ostree_cli: None, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """``benchmarks/_repos.build_large_repo`` with 2 000 files (read-only)."""
    repos = load_benchmark_module("_repos")
    return repos.build_large_repo(tmp_path_factory.mktemp("large_repo"), nfiles=2000)
