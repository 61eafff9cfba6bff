"""Running ``ostree-repo`` in the CLI tests: in-process (``main``), or the real console
script in a subprocess (what users run), against the test's store.

The store is the pytest plugin's (``ostree_store_url``); ``seeded`` fills repository
``os`` of it with three versions through the library, so a verb's test starts from content
it did not make itself.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sysconfig
from pathlib import Path
from typing import Any

import attrs
import pytest

from ostree_repo.cli import main
from ostree_repo.pytest_plugin import OstreeRepository

#: A verb may take this long in a subprocess before the test fails (generous: 2 shared cores).
SUBPROCESS_DEADLINE = 120.0


@attrs.frozen
class Ran:
    """What one run of ``ostree-repo`` did."""

    status: int
    out: str
    err: str

    def json(self) -> Any:
        """stdout as the one JSON document it must be."""
        return json.loads(self.out)


def check_error(ran: Ran, status: int = 1) -> str:
    """The run failed as the CLI conventions say: exit status ``status``, nothing on
    stdout, one line on stderr (``ostree-repo: error: ...``); returns that line."""
    assert ran.status == status, ran
    assert ran.out == "", ran
    assert ran.err.endswith("\n") and ran.err.count("\n") == 1, ran.err
    assert ran.err.startswith("ostree-repo"), ran.err
    assert "error: " in ran.err, ran.err
    return ran.err


def console_script() -> str:
    """The installed ``ostree-repo`` script of the interpreter running the tests."""
    scripts = Path(sysconfig.get_path("scripts")) / "ostree-repo"
    if scripts.exists():
        return str(scripts)
    found = shutil.which("ostree-repo")
    assert found, "the ostree-repo console script is not installed (pip install -e .)"
    return found


class Cli:
    """``ostree-repo --store STORE ...`` against one store."""

    def __init__(self, store: str, capsys: pytest.CaptureFixture[str]) -> None:
        self.store = store
        self._capsys = capsys

    def __call__(self, *argv: str) -> Ran:
        """Run in-process; ``SystemExit`` (a usage error) becomes the status."""
        self._capsys.readouterr()
        try:
            status = main(["--store", self.store, *argv])
        except SystemExit as e:
            status = e.code if isinstance(e.code, int) else 1
        out, err = self._capsys.readouterr()
        return Ran(status, out, err)

    def json(self, *argv: str) -> Any:
        """Run ``VERB --json ARGS`` in-process; it must succeed quietly; the document."""
        ran = self(argv[0], "--json", *argv[1:])
        assert ran.status == 0, ran
        assert ran.err == "", ran.err  # no progress and no chatter: stderr is no terminal
        return ran.json()

    def fails(self, *argv: str, status: int = 1) -> str:
        """Run in-process; it must fail per the conventions; the one stderr line."""
        return check_error(self(*argv), status)

    def script(
        self, *argv: str, stdin: Any = None, env: dict[str, str] | None = None, store: bool = True
    ) -> Ran:
        """Run the real console script in a subprocess (stdin from ``stdin``, else none)."""
        command = [console_script(), *(["--store", self.store] if store else []), *argv]
        done = subprocess.run(
            command,
            stdin=stdin if stdin is not None else subprocess.DEVNULL,
            capture_output=True,
            text=True,
            env={**os.environ, **(env or {})},
            timeout=SUBPROCESS_DEADLINE,
            check=False,
        )
        return Ran(done.returncode, done.stdout, done.stderr)


@pytest.fixture
def cli(ostree_store_url: str, capsys: pytest.CaptureFixture[str]) -> Cli:
    """``ostree-repo`` against the test's store."""
    return Cli(ostree_store_url, capsys)


@attrs.frozen
class Seeded:
    """Repository ``os``: version 1 has ``main`` at ``c1``; version 2 has ``main`` at
    ``c2`` (child of ``c1``); version 3 adds ``stable`` at ``c1``."""

    c1: str
    c2: str


@pytest.fixture
def seeded(ostree_manager: Any, tmp_path: Path) -> Seeded:
    """Fill repository ``os`` of the test's store (see :class:`Seeded`)."""
    os_repo = OstreeRepository(ostree_manager, "os", tmp_path / "spool")
    ostree_manager.create_repository("os")
    first = os_repo.commit(
        {"usr/bin/hello": b"#!/bin/sh\necho hello\n", "etc/os-release": b"ID=demo\n"},
        subject="first",
        timestamp=1_700_000_000,
    )
    second = os_repo.commit(
        {"usr/bin/hello": b"#!/bin/sh\necho hello, world\n", "etc/os-release": b"ID=demo\n"},
        subject="second",
        timestamp=1_700_000_100,
    )
    ostree_manager.run(lambda: _add_stable(ostree_manager, first.checksum))
    return Seeded(first.checksum, second.checksum)


async def _add_stable(manager: Any, commit: str) -> None:
    """A new version of ``os`` with ref ``stable`` -> ``commit`` added."""
    repo = manager.manager.repository("os")

    async def change(base: Any) -> Any:
        return attrs.evolve(base, refs={**base.refs, "stable": commit})

    await repo.publish(change, {"kind": "test"})
