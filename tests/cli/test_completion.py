"""``ostree-repo completion bash|zsh|tcsh``: the scripts complete verbs, options, choices,
paths and repository names in a real bash (and load in a real zsh), and loading them runs
no ``ostree-repo``."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from ostree_repo.cli import build_parser

from .conftest import Cli, Seeded, check_error, console_script

VERBS = sorted(build_parser()._subparsers._group_actions[0].choices)  # type: ignore[union-attr]


@pytest.fixture
def bin_dir(tmp_path: Path) -> Path:
    """A PATH directory whose ``ostree-repo`` runs the real one and logs each run."""
    directory = tmp_path / "bin"
    directory.mkdir()
    wrapper = directory / "ostree-repo"
    log = tmp_path / "runs.log"
    wrapper.write_text(f'#!/bin/sh\necho "$*" >> {log}\nexec {console_script()} "$@"\n')
    wrapper.chmod(0o755)
    return directory


def runs(bin_dir: Path) -> list[str]:
    log = bin_dir.parent / "runs.log"
    return log.read_text().splitlines() if log.exists() else []


def bash_complete(script: str, bin_dir: Path, store: str, *words: str) -> list[str]:
    """What bash offers for the last of ``words`` (``ostree-repo`` first), via the script."""
    driver = (
        f"source {script}\n"
        'COMP_WORDS=("$@"); COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))\n'
        'COMP_LINE="${COMP_WORDS[*]}"; COMP_POINT=${#COMP_LINE}\n'
        "_shtab_ostree_repo\n"
        'printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    done = subprocess.run(
        ["bash", "--norc", "--noprofile", "-c", driver, "bash", *words],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
        cwd=Path(store).parent,
        env={**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "OSTREE_REPO_STORE": store},
    )
    return sorted(line for line in done.stdout.splitlines() if line)


def test_bash(cli: Cli, seeded: Seeded, bin_dir: Path, tmp_path: Path) -> None:
    ran = cli.script("completion", "bash", store=False)
    assert ran.status == 0 and ran.err == ""
    script = tmp_path / "ostree-repo.bash"
    script.write_text(ran.out)
    subprocess.run(["bash", "-n", str(script)], check=True)
    store = cli.store
    complete = lambda *words: bash_complete(str(script), bin_dir, store, "ostree-repo", *words)  # noqa: E731
    assert complete("") == VERBS
    assert complete("de") == ["delete", "delete-version", "deltas"]
    assert {"--json", "--version", "--help"} <= set(complete("refs", "--"))
    assert complete("completion", "") == ["bash", "tcsh", "zsh"]
    assert complete("serve", "--server", "") == ["granian", "uvicorn"]
    assert runs(bin_dir) == []  # nothing above ran ostree-repo
    assert complete("refs", "") == ["os"]  # a repository name: asks the store
    assert runs(bin_dir) == ["completion --repositories"]
    assert complete("copy", "os", "") == ["os"]
    # paths: files and directories for --tree, only directories for import-dir's
    (tmp_path / "tree-dir").mkdir()
    (tmp_path / "tree.tar").write_bytes(b"")
    assert complete("commit", "os", "--tree", "tree") == ["tree-dir", "tree.tar"]
    assert complete("import-dir", "os", "tree") == ["tree-dir"]


def test_zsh(cli: Cli, seeded: Seeded, bin_dir: Path, tmp_path: Path) -> None:
    zsh = shutil.which("zsh")
    assert zsh, "zsh is installed by scripts/install-deps.sh"
    script = tmp_path / "_ostree-repo"
    script.write_text(cli.json("completion", "zsh")["script"])
    subprocess.run([zsh, "-n", str(script)], check=True)
    # eval'd as the docs say, it defines the completion and runs nothing; the repository
    # name function asks the store (compadd stubbed: it only works inside a completion)
    driver = (
        "autoload -Uz compinit && compinit -u -d $TMPDIR/zcompdump\n"
        f'eval "$(cat {script})"\n'
        "print -r -- loaded ${+functions[_shtab_ostree_repo]}\n"
        "compadd() { print -r -- offered $@ }\n"
        "_ostree_repo_repositories\n"
    )
    done = subprocess.run(
        [zsh, "-f", "-c", driver],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env={
            **os.environ,
            "PATH": f"{bin_dir}:{os.environ['PATH']}",
            "OSTREE_REPO_STORE": cli.store,
            "TMPDIR": str(tmp_path),
        },
    )
    assert done.stdout.splitlines() == ["loaded 1", "offered -- os"]
    assert runs(bin_dir) == ["completion --repositories"]  # once, on completion


def test_tcsh_and_json(cli: Cli) -> None:
    doc = cli.json("completion", "tcsh")
    assert doc["shell"] == "tcsh" and "complete ostree-repo" in doc["script"]
    assert cli("completion", "bash").out.rstrip("\n") == cli.json("completion", "bash")["script"]


def test_repository_names_and_refusals(cli: Cli, seeded: Seeded) -> None:
    assert cli("completion", "--repositories").out == "os\n"
    assert cli.json("completion", "--repositories") == ["os"]
    assert "name the shell" in cli.fails("completion")
    assert "invalid choice" in cli.fails("completion", "fish", status=2)
    check_error(cli.script("completion", "powershell", store=False), status=2)
