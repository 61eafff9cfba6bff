"""The conventions every verb keeps (README, "CLI conventions"):

``ostree-repo [--store URL] VERB ... [--json]``; ``--json`` prints one JSON document; every
failure is one line on stderr with a non-zero status (1: an error; 2: a usage error; 130:
interrupted; 70: a bug); progress only on a terminal. Also: each verb is tested by a module
of this directory.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ostree_repo import __version__
from ostree_repo.cli import build_parser, main

from .conftest import Cli, Seeded, check_error, console_script


def _verbs() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    (action,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(action.choices)


VERBS = _verbs()


def test_every_verb_takes_json() -> None:
    for name, sub in VERBS.items():
        assert "--json" in sub._option_string_actions, name


def test_every_verb_is_tested() -> None:
    """Each verb has tests in tests/cli, or in its area's tests/AREA/test_cli.py (a new verb
    comes with its tests)."""
    here = Path(__file__).parent
    modules = [*here.glob("test_*.py"), *here.parent.glob("*/test_cli.py")]
    text = "\n".join(p.read_text() for p in modules if p.name != Path(__file__).name)
    untested = [name for name in VERBS if f'"{name}"' not in text]
    assert not untested


@pytest.mark.parametrize("verb", sorted(VERBS))
def test_usage_errors_are_one_line(verb: str, cli: Cli) -> None:
    sub = VERBS[verb]
    required = [a for a in sub._actions if a.required or (not a.option_strings and a.nargs is None)]
    err = check_error(cli(verb, "--no-such-option"), status=2)
    assert err.rstrip().endswith(" --help)")
    if required:
        err = check_error(cli(verb), status=2)
        assert err.startswith(f"ostree-repo {verb}: error: the following arguments are required")
        assert err.rstrip().endswith(f"(see ostree-repo {verb} --help)")
    help_ran = cli(verb, "--help")
    assert help_ran.status == 0 and help_ran.out.startswith("usage: ostree-repo ")


def test_program_level_usage(cli: Cli) -> None:
    check_error(cli(), status=2)  # no verb
    check_error(cli("frobnicate"), status=2)
    assert cli("--version").out == f"ostree-repo {__version__}\n"


def test_json_before_or_after_the_verb(cli: Cli, seeded: Seeded) -> None:
    after = cli("refs", "--json", "os")
    before = cli("--json", "refs", "os")
    assert after.status == before.status == 0
    assert before.out == after.out and isinstance(before.json(), list)


def test_errors_are_one_line_whatever_they_hold(cli: Cli, tmp_path: Path) -> None:
    odd = tmp_path / "two\nlines"
    err = cli.fails("inspect", str(odd))
    assert "No such file or directory" in err and "two lines" in err


def test_statuses_for_bugs_and_interrupts(
    cli: Cli, seeded: Seeded, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ostree_repo.repository import Repository

    async def bug(self: Any, number: int | None = None) -> Any:
        raise RuntimeError("a bug\nover two lines")

    monkeypatch.setattr(Repository, "version", bug)
    err = cli.fails("refs", "os", status=70)
    assert err == (
        "ostree-repo: internal error: RuntimeError: a bug over two lines "
        "(set OSTREE_REPO_DEBUG=1 for a traceback)\n"
    )
    monkeypatch.setenv("OSTREE_REPO_DEBUG", "1")
    with pytest.raises(RuntimeError):
        main(["--store", cli.store, "refs", "os"])

    async def interrupted(self: Any, number: int | None = None) -> Any:
        raise KeyboardInterrupt

    monkeypatch.setattr(Repository, "version", interrupted)
    assert cli.fails("refs", "os", status=130) == "ostree-repo: error: interrupted\n"


def test_io_errors_are_reported_as_such(cli: Cli, tmp_path: Path) -> None:
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the store's directory would be")
    err = check_error(Cli(str(blocked), cli._capsys)("create", "a"))
    assert re.match(r"ostree-repo: error: .*(directory|exists|Not a directory)", err), err


def test_a_closed_pipe_is_no_traceback(cli: Cli, seeded: Seeded) -> None:
    """``ostree-repo refs os | head -0``: the reader is gone before the output comes."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        done = subprocess.run(
            [console_script(), "--store", cli.store, "versions", "--json", "os"],
            stdin=subprocess.DEVNULL,
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
            check=False,
        )
    finally:
        os.close(write_end)
    assert done.returncode == 1
    assert done.stderr == ""  # nothing to say: whoever wanted the output left


def test_start_up_imports_only_what_every_verb_needs() -> None:
    """``import ostree_repo.cli`` (what every run pays first, ~0.18 s) leaves the heavy
    layers to the verbs that use them: the HTTP client, crypto, servers, rich, shtab."""
    heavy = ("httpx", "rich", "shtab", "cryptography", "pysequoia", "granian", "uvicorn", "obstore")
    code = f"import sys, ostree_repo.cli; print([m for m in {heavy!r} if m in sys.modules])"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert done.stdout.strip() == "[]"
