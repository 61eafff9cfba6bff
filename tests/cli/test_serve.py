"""``ostree-repo serve``, run as users run it (the console script, in a process): real
``ostree pull`` clients are served; Ctrl-C stops it cleanly; bad options are refused."""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from oracle.ostree_cli import fsck, ostree, rev_parse
from server._servers import READY_DEADLINE, free_port, port_open, wait_until

from .conftest import Cli, Seeded, console_script


@contextlib.contextmanager
def serving(cli: Cli, tmp_path: Path, *args: str) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """``ostree-repo --store STORE serve --port P ARGS`` until the block ends (then SIGINT)."""
    port = free_port()
    command = [console_script(), "--store", cli.store, "serve", "--port", str(port), *args]
    err = open(tmp_path / f"serve-{port}.err", "w+")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err, text=True
    )
    try:
        wait_until(lambda: proc.poll() is not None or port_open(port), "ostree-repo serve")
        assert proc.poll() is None, err.seek(0) or err.read()
        yield f"http://127.0.0.1:{port}", proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(READY_DEADLINE)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        err.close()


@pytest.mark.parametrize("server", ["granian", "uvicorn"])
def test_serve_to_ostree_pull_then_stop(
    cli: Cli, seeded: Seeded, tmp_path: Path, server: str
) -> None:
    with serving(cli, tmp_path, "--json", "--server", server) as (url, proc):
        client = tmp_path / "client"
        ostree("init", "--mode=archive", repo=client)
        ostree("remote", "add", "--no-gpg-verify", "origin", f"{url}/os/", repo=client)
        ostree("pull", "origin", "main", repo=client)
        fsck(client)
        assert rev_parse(client, "origin:main") == seeded.c2
        # an older version, pinned by its number
        ostree("remote", "add", "--no-gpg-verify", "v1", f"{url}/os/versions/1/", repo=client)
        ostree("pull", "v1", "main", repo=client)
        assert rev_parse(client, "v1:main") == seeded.c1
        proc.send_signal(signal.SIGINT)  # Ctrl-C
        out, _ = proc.communicate(timeout=READY_DEADLINE)
    assert proc.returncode == 0
    assert json.loads(out) == {"stopped": True}


def test_serve_refusals(cli: Cli, tmp_path: Path) -> None:
    assert "invalid port 99999" in cli.fails("serve", "--port", "99999")
    assert "REPO=TOKEN" in cli.fails("serve", "--token", "no-equals-sign")
    assert "No such file or directory" in cli.fails("serve", "--token-file", str(tmp_path / "x"))
    assert "invalid choice" in cli.fails("serve", "--server", "gunicorn", status=2)
    ran = cli.script("serve", "--port", "-1")
    assert ran.status == 1 and ran.out == "" and ran.err.count("\n") == 1
