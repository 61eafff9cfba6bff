"""The matrix's session fixtures: every feature's repository built once, imported once (from
its directory and from a tarball) into one store, a static web server over the built
repositories and our server over the store.

A feature whose build or import fails makes only its own tests fail: the failure is kept
and raised by the tests that need it.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import anyio
import pytest

from ostree_repo.importing import import_archive, import_directory
from ostree_repo.repository import RepositoryManager, VersionRecord
from ostree_repo.server import create_app
from server._servers import ThreadedServer
from sync.servers import http_server

from .features import FEATURES


@dataclass
class Built:
    """Every feature's source repository (``root/NAME/repo``) and import results."""

    root: Path
    store: Path
    repos: dict[str, Path] = field(default_factory=dict)
    failures: dict[str, BaseException] = field(default_factory=dict)
    imported: dict[tuple[str, str], VersionRecord | BaseException | None] = field(
        default_factory=dict
    )

    def repo(self, name: str) -> Path:
        """The feature's source repository (its build's error if it failed)."""
        if name in self.failures:
            raise self.failures[name]
        return self.repos[name]

    def version(self, name: str, route: str) -> VersionRecord:
        """The version an import (``dir`` or ``tar``) made."""
        self.repo(name)
        result = self.imported[(name, route)]
        if isinstance(result, BaseException):
            raise result
        assert result is not None, f"{route} import of {name} made no version"
        return result


def _tar(repo: Path, out: Path) -> Path:
    """The real ``tar`` of the repository, as ``repo/`` (symlinks kept)."""
    subprocess.run(["tar", "-C", str(repo.parent), "-cf", str(out), repo.name], check=True)
    return out


async def _import_all(built: Built) -> None:
    async with RepositoryManager.open(str(built.store), workers=0) as manager:
        for name, repo in built.repos.items():
            for route in ("dir", "tar"):
                try:
                    if route == "dir":
                        result = await import_directory(manager, name, repo)
                    else:
                        archive = _tar(repo, repo.parent / "repo.tar")
                        result = await import_archive(manager, f"{name}-tar", archive)
                except Exception as e:
                    built.imported[(name, route)] = e
                else:
                    built.imported[(name, route)] = result


@pytest.fixture(scope="session")
def built(ostree_cli: None, tmp_path_factory: pytest.TempPathFactory) -> Built:
    root = tmp_path_factory.mktemp("matrix")
    result = Built(root / "repos", root / "store")
    for feature in FEATURES:
        where = result.root / feature.name
        where.mkdir(parents=True)
        try:
            feature.build(where)
        except Exception as e:
            result.failures[feature.name] = e
            shutil.rmtree(where, ignore_errors=True)
        else:
            result.repos[feature.name] = where / "repo"
    anyio.run(_import_all, result)
    return result


@pytest.fixture(scope="session")
def static_url(built: Built) -> Iterator[str]:
    """``python3 -m http.server`` over the built repositories (``URL/NAME/repo/``)."""
    with http_server(built.root) as url:
        yield url


@pytest.fixture(scope="session")
def our_url(built: Built) -> Iterator[str]:
    """Our server over the store (``URL/NAME/`` serves the directory import)."""
    with ThreadedServer(create_app(str(built.store))) as running:
        yield running.url
