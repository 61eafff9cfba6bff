"""The main job end to end, on the default filesystem store (``./ostree-store``).

Runs in ``demo-output/`` (recreated each time) so it never touches a store of yours:

1. builds a sample commit archive with our own builder, no libostree (``ostree-repo
   commit`` into a scratch store, then ``ostree-repo archive``: ``compose.json`` +
   ``repo/``, as osbuild-composer makes them) and checks it with the real ``ostree fsck``;
2. imports it into repository ``fedora`` of the default store (version 1);
3. builds an update archive (a child commit, without its parent's objects) and imports
   it on top (version 2);
4. lists versions, refs and commits, and diffs the two versions;
5. copies the ``main`` ref with its parent into repository ``prod``;
6. commits another update straight into ``fedora`` with our builder;
7. exports ``prod`` as a commit archive (tarball with ``repo/``) and imports it elsewhere;
8. exports ``prod`` and checks it with the real ``ostree fsck`` and ``ostree summary --view``;
9. serves the store over HTTP and syncs ``mirror`` from it; the real ``ostree pull`` too;
10. removes a ref, deletes a version, reclaims storage and runs our fsck.

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


def write_tree(tree: Path, version: int) -> None:
    """The sample OS tree, as of ``version`` (1: first release, 2: an update)."""
    (tree / "usr/bin").mkdir(parents=True, exist_ok=True)
    (tree / "usr/lib").mkdir(exist_ok=True)
    (tree / "etc").mkdir(exist_ok=True)
    (tree / "usr/bin/hello").write_text("#!/bin/sh\necho hello\n")
    (tree / "usr/bin/hello").chmod(0o755)
    (tree / "etc/os-release").write_text(f"NAME=Demo OS\nVERSION_ID={version}\n")
    if not (tree / "usr/lib/os-release").is_symlink():
        (tree / "usr/lib/os-release").symlink_to("../../etc/os-release")
    if not (tree / "usr/lib/data.bin").exists():
        (tree / "usr/lib/data.bin").write_bytes(os.urandom(200_000))
    if version >= 2:
        (tree / "usr/bin/goodbye").write_text("#!/bin/sh\necho bye\n")


def build_archive(tree: Path, version: int, output: str, *, update: bool) -> None:
    """Commit the sample tree with our builder into the scratch store ``build-store``
    and write that commit as a commit archive (an update archive with ``update``)."""
    write_tree(tree, version)
    cli(
        "--store",
        "build-store",
        "commit",
        "sample",
        "--tree",
        str(tree),
        "--ref",
        "main",
        "--subject",
        f"Demo OS {version}",
        "--add-metadata",
        f"version={version}",
    )
    cli("--store", "build-store", "archive", "sample", output, *(["--update"] if update else []))


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

    tree = WORK / "sample-tree"
    step("Build a commit archive with our own builder (no libostree); check it with ostree")
    build_archive(tree, 1, "commit-1.tar", update=False)
    run("tar", "-tf", "commit-1.tar", show=False)
    (WORK / "extracted").mkdir()
    run("tar", "-xf", "commit-1.tar", "-C", "extracted")
    run("ostree", "fsck", "--repo=extracted/repo")
    run("ostree", "log", "--repo=extracted/repo", "main")

    step("Import it into repository 'fedora' of the default store")
    imported = cli_json("import", "fedora", "commit-1.tar")
    print(json.dumps(imported))
    assert imported["version"] == 1
    again = cli_json("import", "fedora", "commit-1.tar")
    print(f"importing the same archive again: version {again['version']} (nothing changed)")

    step("Build an update archive (a child commit, without its parent's objects); import it")
    build_archive(tree, 2, "update-2.tar.zst", update=True)
    cli("import", "fedora", "update-2.tar.zst")

    step("Versions, refs and commits of fedora; what the update changed")
    cli("versions", "fedora")
    cli("refs", "fedora")
    cli("commits", "fedora")
    cli("diff", "fedora", "1", "2")

    step("Copy ref 'main' into repository 'prod', then with one parent")
    cli("copy", "fedora", "prod", "--ref", "main", "--version", "1")
    cli("copy", "fedora", "prod", "--ref", "main", "--depth", "1")
    cli("versions", "prod")
    cli("show", "prod")

    step("Commit another update straight into fedora with our own builder")
    write_tree(tree, 3)
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
