"""Install the package the way users get it, then use it (run by ``scripts/test.sh``).

Builds the wheel, installs it into a brand-new venv (no system site packages, no dev extras,
only what ``pyproject.toml`` declares for the core and the ``s3``, ``server`` and ``pytest``
extras) and runs, from a directory outside the checkout:

- ``ostree-repo --help`` and ``python -c 'import ostree_repo.sync, ...'``;
- ``ostree-repo commit`` + ``archive`` (a small commit archive), ``import`` of it, again
  with stderr on a pseudo-terminal (the progress line, drawn by rich);
- ``ostree-repo completion bash`` (shtab), checked by ``bash -n``;
- ``ostree-repo keys add`` (an ed25519 key) to sign it;
- ``ostree-repo serve`` (granian) + one GET of the imported ref, then a ``sync`` from it
  that requires signatures, and ``verify`` of the mirror (ed25519 and OpenPGP load).

``--lowest`` installs the lowest versions ``pyproject.toml`` allows (a constraints file of
every declared ``>=`` minimum), so the lower bounds stay true.
"""

from __future__ import annotations

import argparse
import json
import os
import pty
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import tomllib
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
EXTRAS = ("s3", "server", "pytest", "sign")
_MINIMUM = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[[^\]]*\])?\s*>=\s*([^,;\s]+)")


def lowest_constraints(pyproject: Path, extras: tuple[str, ...] = EXTRAS) -> list[str]:
    """``name==minimum`` for every requirement of the core and of ``extras`` that has a
    ``>=`` bound (markers are kept, so a platform-only requirement stays platform-only)."""
    project = tomllib.loads(pyproject.read_text())["project"]
    requirements = list(project["dependencies"])
    for extra in extras:
        requirements += project["optional-dependencies"][extra]
    lines = []
    for requirement in requirements:
        match = _MINIMUM.match(requirement)
        if match is None:
            raise SystemExit(f"no lower bound in requirement {requirement!r}")
        marker = requirement.partition(";")[2].strip()
        lines.append(f"{match[1]}=={match[2]}" + (f"; {marker}" if marker else ""))
    return sorted(set(lines))


def run(*args: str | Path, cwd: Path, env: dict[str, str], **kwargs: object) -> str:
    command = [str(a) for a in args]
    print("$ " + " ".join(command), flush=True)
    result = subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, check=False, **kwargs
    )
    if result.returncode != 0:
        sys.stderr.write(result.stdout + result.stderr)
        raise SystemExit(f"smoke test failed at: {' '.join(command)}")
    return result.stdout


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get(url: str, seconds: float = 60.0) -> bytes:
    """GET ``url``, retrying while the server is still starting (bounded by ``seconds``)."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return bytes(response.read())
        except urllib.error.HTTPError:
            raise
        except OSError:  # not listening yet
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def on_terminal(*args: str | Path, cwd: Path, env: dict[str, str]) -> str:
    """Run a command with stderr on a pseudo-terminal; what the terminal showed."""
    command = [str(a) for a in args]
    print("$ " + " ".join(command) + "  # stderr on a terminal", flush=True)
    leader, follower = pty.openpty()
    try:
        done = subprocess.run(
            command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=follower, check=False
        )
        os.close(follower)
        follower = -1
        shown = b""
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: the other end is closed
                break
            if not chunk:
                break
            shown += chunk
    finally:
        if follower >= 0:
            os.close(follower)
        os.close(leader)
    if done.returncode != 0:
        raise SystemExit(f"smoke test failed at: {' '.join(command)}")
    return shown.decode(errors="replace")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lowest", action="store_true", help="install the declared minimums")
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="ostree-repo-smoke-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "OSTREE_REPO_"))}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    try:
        run(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", work / "dist", ROOT,
            cwd=work, env=env)  # fmt: skip
        (wheel,) = (work / "dist").glob("ostree_repo-*.whl")
        venv = work / "venv"
        run(sys.executable, "-m", "venv", venv, cwd=work, env=env)
        bin_dir = venv / "bin"
        install = [bin_dir / "python", "-m", "pip", "install", "-q", f"{wheel}[{','.join(EXTRAS)}]"]
        if args.lowest:
            constraints = work / "lowest.txt"
            constraints.write_text("\n".join(lowest_constraints(ROOT / "pyproject.toml")) + "\n")
            print(constraints.read_text(), end="")
            install += ["-c", constraints]
        run(*install, cwd=work, env=env)
        run(bin_dir / "python", "-m", "pip", "check", cwd=work, env=env)
        print(run(bin_dir / "python", "-m", "pip", "freeze", cwd=work, env=env), end="")
        env["PATH"] = f"{bin_dir}{os.pathsep}{env['PATH']}"
        cli = bin_dir / "ostree-repo"

        def ostree_repo(*args: str | Path) -> str:
            return run(cli, *args, cwd=work, env=env)

        def ostree_repo_json(*args: str | Path) -> Any:
            return json.loads(ostree_repo(*args, "--json"))

        ostree_repo("--help")
        modules = "ostree_repo.sync, ostree_repo.server, ostree_repo.pytest_plugin"
        run(bin_dir / "python", "-c", f"import {modules}", cwd=work, env=env)

        tree = work / "tree"
        (tree / "usr/bin").mkdir(parents=True)
        (tree / "usr/bin/hello").write_text("#!/bin/sh\necho hello\n")
        (tree / "usr/bin/hello").chmod(0o755)
        (tree / "etc").mkdir()
        (tree / "etc/os-release").write_text("NAME=Smoke\n")
        build = ("--store", "build")
        built = ostree_repo_json(*build, "commit", "sample", "--tree", tree, "--ref", "main")
        commit = built["commit"]
        ostree_repo(*build, "archive", "sample", "commit.tar")
        imported = ostree_repo_json("import", "fedora", "commit.tar")
        assert imported["version"] == 1, imported
        shown = on_terminal(cli, "import", "again", "commit.tar", cwd=work, env=env)
        assert "importing" in shown and "objects" in shown, shown
        (work / "completion.bash").write_text(ostree_repo("completion", "bash"))
        run("bash", "-n", work / "completion.bash", cwd=work, env=env)
        make_key = (
            "import pysequoia; from ostree_repo.signing import Ed25519Key; "
            "k = Ed25519Key.generate(); open('ed.key', 'wb').write(k.to_bytes()); "
            "open('ed.pub', 'wb').write(k.public_bytes())"
        )
        run(bin_dir / "python", "-c", make_key, cwd=work, env=env)
        keyed = ostree_repo_json("--key-file", "ed.key", "keys", "add", "fedora", "ed.key")
        assert keyed["version"] == 2, keyed

        port = free_port()
        print(f"$ {cli} serve --port {port} &", flush=True)
        server = subprocess.Popen([cli, "serve", "--port", str(port)], cwd=work, env=env)
        try:
            base = f"http://127.0.0.1:{port}/fedora"
            served = get(f"{base}/refs/heads/main").decode().strip()
            assert served == commit, (served, commit)
            trust = ("--require-signatures", "--trust-key", "ed.pub")
            synced = ostree_repo_json("sync", "mirror", base, *trust)
            assert synced["version"] == 2 and synced["signed"], synced  # 1: the policy
        finally:
            server.terminate()
            server.wait(timeout=30)
        refs = ostree_repo_json("refs", "mirror")
        assert [(r["name"], r["commit"]) for r in refs] == [("main", commit)], refs
        verified = ostree_repo_json("verify", "mirror", "--trust-key", "ed.pub")
        assert verified["ok"], verified
        print(f"smoke test passed ({'lowest' if args.lowest else 'latest'} versions)")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
