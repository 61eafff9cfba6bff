"""The main job end to end, on the default filesystem store (``./ostree-store``).

Runs in ``demo-output/`` (recreated each time) so it never touches a store of yours:

1. builds a sample OSTree repository with two commits and a static delta (with the real
   ``ostree`` CLI, until our own commit builder lands);
2. imports it into repository ``fedora`` of the default store (version 1);
3. copies the ``main`` ref with its parent into repository ``prod``;
4. lists versions, refs and commits, and diffs two versions;
5. commits an update with our own builder (``ostree-repo commit``, no libostree);
6. exports ``prod`` as a commit archive (tarball with ``repo/``) and imports it elsewhere;
7. exports ``prod`` and checks it with the real ``ostree fsck`` and ``ostree summary --view``;
8. serves the store over HTTP and syncs ``mirror`` from it; the real ``ostree pull`` too;
9. removes a ref, deletes a version, reclaims storage and runs our fsck.

Every step is a real ``ostree-repo`` command; its output is printed as it goes.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

WORK = Path(__file__).resolve().parent.parent / "demo-output"


def step(title: str) -> None:
    print(f"\n== {title}", flush=True)


def run(*args: str, show: bool = True) -> str:
    """Run a command, print it and its output, fail loudly on error."""
    print("$ " + " ".join(args), flush=True)
    result = subprocess.run(args, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        sys.stderr.write(result.stdout + result.stderr)
        raise SystemExit(f"demo failed at: {' '.join(args)}")
    if show and result.stdout.strip():
        print(result.stdout.rstrip())
    return result.stdout


def cli(*args: str, show: bool = True) -> str:
    return run("ostree-repo", *args, show=show)


def cli_json(*args: str) -> Any:
    return json.loads(cli(*args, "--json", show=False))


def build_sample(repo: Path, tree: Path) -> None:
    run("ostree", "init", f"--repo={repo}", "--mode=archive")
    (tree / "usr/bin").mkdir(parents=True)
    (tree / "etc").mkdir()
    (tree / "usr/bin/hello").write_text("#!/bin/sh\necho hello\n")
    (tree / "usr/bin/hello").chmod(0o755)
    (tree / "etc/os-release").write_text("NAME=Demo OS\nVERSION_ID=1\n")
    (tree / "usr/lib").mkdir()
    (tree / "usr/lib/os-release").symlink_to("../../etc/os-release")
    (tree / "usr/lib/data.bin").write_bytes(os.urandom(200_000))
    common = [f"--repo={repo}", "-b", "main", f"--tree=dir={tree}"]
    run(
        "ostree",
        "commit",
        *common,
        "-s",
        "Demo OS 1",
        "--add-metadata-string=version=1",
        show=False,
    )
    (tree / "etc/os-release").write_text("NAME=Demo OS\nVERSION_ID=2\n")
    (tree / "usr/bin/goodbye").write_text("#!/bin/sh\necho bye\n")
    run(
        "ostree",
        "commit",
        *common,
        "-s",
        "Demo OS 2",
        "--add-metadata-string=version=2",
        show=False,
    )
    run("ostree", "static-delta", "generate", f"--repo={repo}", "main", show=False)
    run("ostree", "summary", "-u", f"--repo={repo}")
    run("ostree", "log", f"--repo={repo}", "main")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for(url: str, seconds: float = 30.0) -> None:
    """Poll ``url`` until the server answers (bounded by ``seconds``)."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise SystemExit(f"the server did not come up at {url}") from None
            time.sleep(0.1)


def main() -> None:
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir()
    os.chdir(WORK)
    os.environ.pop("OSTREE_REPO_STORE", None)  # the default store: ./ostree-store

    step("Build a sample OSTree repository (two commits, one static delta)")
    build_sample(WORK / "sample-repo", WORK / "sample-tree")

    step("Import it into repository 'fedora' of the default store")
    imported = cli_json("import-dir", "fedora", "sample-repo")
    print(json.dumps(imported))
    assert imported["version"] == 1
    again = cli_json("import-dir", "fedora", "sample-repo")
    print(f"importing the same repository again: version {again['version']} (nothing changed)")

    step("Refs and commits of fedora")
    cli("refs", "fedora")
    cli("commits", "fedora")

    step("Copy ref 'main' with one parent into repository 'prod'")
    cli("copy", "fedora", "prod", "--ref", "main")
    cli("copy", "fedora", "prod", "--ref", "main", "--depth", "1")
    cli("versions", "prod")
    cli("diff", "prod", "1", "2")
    cli("show", "prod")

    step("Commit an update to fedora with our own builder (no libostree)")
    tree = WORK / "sample-tree"
    (tree / "etc/os-release").write_text("NAME=Demo OS\nVERSION_ID=3\n")
    cli(
        "commit",
        "fedora",
        "--tree",
        str(tree),
        "--ref",
        "main",
        "--subject",
        "Demo OS 3",
        "--add-metadata",
        "version=3",
    )
    cli("commits", "fedora")

    step("Export prod as a commit archive and import it into 'restored'")
    cli("export", "prod", "--tar", "prod.tar")
    cli("import", "restored", "prod.tar")
    cli("refs", "restored")

    step("Export prod and check it with the real ostree")
    cli("export", "prod", "prod-export")
    run("ostree", "fsck", "--repo=prod-export")
    run("ostree", "summary", "--view", "--repo=prod-export")

    step("Serve the store over HTTP; sync 'mirror' from it; pull with the real ostree")
    port = _free_port()
    server = subprocess.Popen(
        ["ostree-repo", "serve", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        url = f"http://127.0.0.1:{port}/fedora/"
        _wait_for(url + "config")
        print(f"serving {WORK / 'ostree-store'} at http://127.0.0.1:{port}/")
        cli("sync", "mirror", url, "--depth", "-1")
        cli("refs", "mirror")
        run("ostree", "init", "--repo=client", "--mode=archive")
        run("ostree", "remote", "add", "--repo=client", "--no-gpg-verify", "origin", url)
        run("ostree", "pull", "--repo=client", "--mirror", "origin", "main")
        run("ostree", "fsck", "--repo=client")
    finally:
        server.terminate()
        server.wait(timeout=30)

    step("Remove ref 'main' from fedora, delete prod's version 1, reclaim storage")
    cli("remove", "fedora", "--ref", "main")
    cli("delete-version", "prod", "1")
    cli("versions", "prod")
    cli("reclaim", "--dry-run", "--grace", "0")
    cli("reclaim", "--grace", "0")
    cli("fsck", "prod")
    cli("list")

    step("Done")
    print(f"The store is in {WORK / 'ostree-store'}; every step above used it.")


if __name__ == "__main__":
    main()
