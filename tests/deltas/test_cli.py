"""``ostree-repo create --deltas`` and ``ostree-repo deltas generate|list|delete``: output,
JSON, errors, and the progress line on a terminal."""

from __future__ import annotations

import io
import json
import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest

from ostree_repo.cli import main
from ostree_repo.cli.deltas import delta_display
from ostree_repo.objects import delta_name


def run(capsys: pytest.CaptureFixture[str], store: Path, *args: str) -> tuple[int, str, str]:
    code = main(["--store", str(store), *args])
    out, err = capsys.readouterr()
    return code, out, err


def commit(capsys: pytest.CaptureFixture[str], store: Path, tmp_path: Path, n: int) -> str:
    tree = tmp_path / f"tree{n}"
    (tree / "usr").mkdir(parents=True)
    (tree / "usr" / "data.txt").write_bytes(
        b"".join(b"row %d\n" % i for i in range(3000)) + b"v%d" % n
    )
    (tree / f"new{n}").write_bytes(b"x" * n)
    code, out, _ = run(capsys, store, "commit", "--json", "r", "--tree", str(tree), "--ref", "main")
    assert code == 0, out
    return str(json.loads(out)["commit"])


def test_create_generate_list_delete(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    store = tmp_path / "store"
    code, out, _ = run(capsys, store, "create", "--json", "r", "--deltas", "parent")
    assert code == 0 and json.loads(out) == {"repository": "r", "version": 1}
    c1 = commit(capsys, store, tmp_path, 1)
    c2 = commit(capsys, store, tmp_path, 2)
    code, out, _ = run(capsys, store, "deltas", "list", "r", "--json")
    doc = json.loads(out)
    assert doc["policy"]["depth"] == 1
    assert [(d["name"], d["generated"]) for d in doc["deltas"]] == [(delta_name(c1, c2), "policy")]
    assert doc["deltas"][0]["parts"] >= 1 and doc["deltas"][0]["size"] > 0

    code, out, _ = run(
        capsys, store, "deltas", "generate", "r", "--empty", "--to", "main", "--json"
    )
    assert code == 0
    doc = json.loads(out)
    assert doc["version"] is not None and doc["delta"]["name"] == c2
    assert doc["delta"]["generated"] == "manual"
    code, out, _ = run(capsys, store, "deltas", "generate", "r", "--empty", "--to", c2, "--json")
    assert json.loads(out)["version"] is None  # it has it
    code, out, _ = run(capsys, store, "deltas", "list", "r")
    assert "(manual)" in out and "(policy)" in out and "policy parent" in out

    code, out, _ = run(capsys, store, "deltas", "delete", "r", c2, "--json")
    assert code == 0 and json.loads(out)["deleted"] == [c2]
    code, out, _ = run(capsys, store, "deltas", "list", "r", "--json")
    assert [d["name"] for d in json.loads(out)["deltas"]] == [delta_name(c1, c2)]


def test_errors(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    store = tmp_path / "store"
    code, _, err = run(capsys, store, "create", "r", "--deltas", "sometimes")
    assert code == 1 and err.count("\n") == 1 and "delta policy" in err
    run(capsys, store, "create", "r")
    c1 = commit(capsys, store, tmp_path, 1)
    code, _, err = run(capsys, store, "deltas", "generate", "r", "--from", "ab" * 32, "--to", c1)
    assert code == 1 and "is not in version" in err and err.count("\n") == 1
    code, _, err = run(capsys, store, "deltas", "generate", "r", "--to", c1)
    assert code == 1 and "--empty" in err
    code, _, err = run(capsys, store, "deltas", "delete", "r", c1)
    assert code == 1 and "has no delta" in err


def test_progress_on_a_terminal(tmp_path: Path) -> None:
    """On a terminal the generation shows a progress line on stderr (and nothing there
    otherwise: see the tests above, whose stderr is empty on success)."""
    store = tmp_path / "store"
    assert main(["--store", str(store), "create", "r"]) == 0
    tree = tmp_path / "tree"
    tree.mkdir()
    for i in range(50):
        (tree / f"f{i}").write_bytes(os.urandom(1000))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    cli = [sys.executable, "-m", "ostree_repo", "--store", str(store)]
    subprocess.run(
        [*cli, "commit", "r", "--tree", str(tree), "--ref", "main"],
        check=True,
        env=env,
        capture_output=True,
    )
    primary, secondary = pty.openpty()
    proc = subprocess.run(
        [*cli, "deltas", "generate", "r", "--empty", "--to", "main"],
        stderr=secondary, stdout=subprocess.PIPE, env=env, check=False,
    )  # fmt: skip
    os.close(secondary)
    shown = b""
    while True:
        try:
            piece = os.read(primary, 65536)
        except OSError:
            break
        if not piece:
            break
        shown += piece
    os.close(primary)
    assert proc.returncode == 0
    assert b"writing parts" in shown and b"1/1" in shown


def test_no_display_off_a_terminal() -> None:
    assert delta_display(io.StringIO()) is None
