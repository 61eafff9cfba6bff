"""docs/tutorial.md is true: every ``console`` block's commands run, in order, in one bash
in an empty directory, and print what the page says they print.

Only what differs from run to run is normalised, on both sides: the times versions were
made (``2026-12-02T14:33:14Z``) and the seconds ``ostree pull`` says it took. The server's
port on the page (8080) is replaced by a free one. A command the page runs in the
background (``... &``) is waited for until its port answers (polled, for at most 30 s).
"""

from __future__ import annotations

import os
import re
import subprocess
import sysconfig
from pathlib import Path

from cli.conftest import console_script
from server._servers import free_port

TUTORIAL = Path(__file__).resolve().parent.parent / "docs" / "tutorial.md"
PAGE_PORT = "8080"
_BLOCK = re.compile(r"^```console\n(.*?)^```", re.MULTILINE | re.DOTALL)
_VOLATILE = [
    (re.compile(r"\b20\d\d-\d\d-\d\dT\d\d:\d\d:\d\dZ\b"), "<time>"),
    (re.compile(r"transferred in \d+ seconds"), "transferred in <n> seconds"),
]
_MARK = "@@ostree-repo-tutorial@@"


def steps(text: str) -> list[tuple[str, list[str]]]:
    """``(command, expected output lines)`` for every ``$ `` line of the console blocks."""
    found: list[tuple[str, list[str]]] = []
    for block in _BLOCK.findall(text):
        for line in block.splitlines():
            if line.startswith("$ "):
                found.append((line[2:], []))
            else:
                assert found, f"output before any command: {line!r}"
                found[-1][1].append(line)
    return found


def normalised(lines: list[str]) -> list[str]:
    out = []
    for line in lines:
        shown = line
        for pattern, replacement in _VOLATILE:
            shown = pattern.sub(replacement, shown)
        out.append(shown.rstrip())
    return out


def test_the_tutorial_prints_what_it_says(tmp_path: Path) -> None:
    page = steps(TUTORIAL.read_text())
    assert len(page) > 20
    port = str(free_port())
    script = ["umask 022", f"export PATH={Path(console_script()).parent}:$PATH"]
    for number, (shown, _) in enumerate(page):
        command = shown.replace(PAGE_PORT, port)
        script.append(f"echo {_MARK}{number}")
        script.append(f"{command} 2>&1" if not command.endswith("&") else command)
        if command.endswith("&"):  # a server: wait until it answers (at most 30 s)
            script.append(
                "for _ in $(seq 300); do "
                f"(exec 3<>/dev/tcp/127.0.0.1/{port}) 2>/dev/null && break; "
                "sleep 0.05; done"
            )
        if command.startswith("kill %"):
            script.append("wait 2>/dev/null || true")
    env = {k: v for k, v in os.environ.items() if not k.startswith("OSTREE_REPO_")}
    env["PATH"] = f"{sysconfig.get_path('scripts')}:{env['PATH']}"
    done = subprocess.run(
        ["bash", "--norc", "--noprofile", "-c", "\n".join(script)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    chunks = done.stdout.split(_MARK)[1:]
    assert len(chunks) == len(page), done.stdout + done.stderr
    for (command, expected), chunk in zip(page, chunks, strict=True):
        number, _, shown = chunk.partition("\n")
        got = normalised(shown.splitlines())
        want = normalised(expected)
        assert got == want, f"step {number}: $ {command}\n" + "\n".join(got)
