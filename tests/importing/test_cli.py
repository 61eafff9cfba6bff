"""``ostree-repo import``: output, JSON, standard input, errors, and the progress bar."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest

from ostree_repo.cli import main
from ostree_repo.cli.importing import ProgressBar
from ostree_repo.importing import ImportProgress

from ._archives import pack, stage
from .conftest import SmallRepo


@pytest.fixture
def archive(small_repo: SmallRepo, tmp_path: Path) -> Path:
    return pack(stage(small_repo.path, tmp_path / "s"), tmp_path / "commit.tar.zst", "tar.zst")


def test_import_prints_the_new_version(
    archive: Path, small_repo: SmallRepo, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = str(tmp_path / "store")
    assert main(["--store", store, "import", "--json", "os", str(archive)]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["repository"] == "os" and doc["version"] == 1
    assert doc["format"] == "tar.zst" and doc["objects"] == doc["objects_new"] > 5
    assert main(["--store", store, "import", "--json", "os", str(archive)]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["version"] is None and doc["objects_new"] == 0
    assert main(["--store", store, "refs", "--json", "os"]) == 0
    assert json.loads(capsys.readouterr().out) == [
        {"name": "main", "commit": small_repo.c2, "alias_of": None}
    ]


def test_ref_and_repository_name_options(
    small_repo: SmallRepo, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    top = pack(small_repo.path, tmp_path / "top.tar")  # the repository at the top
    store = str(tmp_path / "store")
    args = ["--store", store, "import", "os", str(top), "--repository-name", ".", "--ref", "main"]
    assert main(args) == 0
    assert capsys.readouterr().out == "os: version 1 (1 refs, 2 commits)\n"
    assert main(["--store", store, "import", "os", str(top), "--ref", "main"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("ostree-repo: error: no OSTree repository at repo")
    assert (
        main(
            ["--store", store, "import", "os", str(top), "--repository-name", ".", "--ref", "other"]
        )
        == 1
    )
    assert "no ref other" in capsys.readouterr().err


def test_standard_input_and_no_progress_without_a_terminal(archive: Path, tmp_path: Path) -> None:
    with open(archive, "rb") as stdin:
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "ostree_repo",
                "--store",
                str(tmp_path / "store"),
                "import",
                "os",
                "-",
            ],
            stdin=stdin,
            capture_output=True,
            text=True,
            check=False,
        )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("os: version 1 ")
    assert done.stderr == ""  # stderr is not a terminal: no progress bar


def test_progress_bar_on_a_terminal(archive: Path, tmp_path: Path) -> None:
    leader, follower = pty.openpty()
    try:
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "ostree_repo",
                "--store",
                str(tmp_path / "store"),
                "import",
                "os",
                str(archive),
            ],
            stderr=follower,
            stdout=subprocess.PIPE,
            text=True,
            check=False,
        )
        os.close(follower)
        follower = -1
        shown = b""
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: the terminal's other end is closed
                break
            if not chunk:
                break
            shown += chunk
    finally:
        if follower >= 0:
            os.close(follower)
        os.close(leader)
    assert done.returncode == 0
    assert done.stdout.startswith("os: version 1 ")
    text = shown.decode()
    assert "100%" in text and "objects" in text and "\r" in text
    assert text.endswith("\r\x1b[K")  # the line is erased at the end


def test_progress_bar_rendering() -> None:
    state = ImportProgress(
        bytes_read=50_000_000, bytes_total=100_000_000, objects=1234, objects_new=1000
    )
    line = ProgressBar.render(state)
    assert line.startswith("[" + "#" * 15 + "." * 15 + "]  50%")
    assert "1,234 objects (1,000 new)" in line
    assert ProgressBar.render(ImportProgress(bytes_read=2_000_000)).startswith("2.0 MB read")


def test_workers_option(
    archive: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from ostree_repo.cli import build_parser
    from ostree_repo.cli._verb import store_options

    store = str(tmp_path / "store")
    assert main(["--store", store, "--workers", "0", "import", "--json", "os", str(archive)]) == 0
    assert json.loads(capsys.readouterr().out)["version"] == 1
    parse = build_parser().parse_args
    assert store_options(parse(["--store", store, "--workers", "2", "refs", "os"])) == {
        "workers": 2
    }
    assert store_options(parse(["--store", "file:///srv/r", "refs", "os"])) == {}
    monkeypatch.setenv("OSTREE_REPO_WORKERS", "0")  # read when the parser is made
    assert store_options(build_parser().parse_args(["--store", store, "refs", "os"])) == {
        "workers": 0
    }
    assert store_options(parse(["--store", "s3://bucket/r", "--workers", "2", "refs", "os"])) == {}
    with pytest.raises(SystemExit):
        parse(["--workers", "-1", "refs", "os"])
