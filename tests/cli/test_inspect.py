"""``ostree-repo inspect``: kinds guessed from names and bytes, JSON output, errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ostree_repo.cli import main
from ostree_repo.gvariant import Variant
from ostree_repo.objects import (
    Commit,
    DirMeta,
    DirTree,
    FileHeader,
    ObjectType,
    TreeFile,
    content_checksum,
    encode_filez,
    object_path,
)

ZERO = "0" * 64


def _write(root: Path, rel: str, data: bytes) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


@pytest.fixture
def objects(tmp_path: Path) -> dict[str, Path]:
    header = FileHeader(mode=0o100755)
    payload = b"#!/bin/sh\necho hi\n"
    file_checksum = content_checksum(header, payload)
    filez = b"".join(encode_filez(header, len(payload), [payload]))
    meta = DirMeta()
    tree = DirTree((TreeFile("run.sh", file_checksum),), ())
    commit = Commit(
        root_tree=tree.checksum(),
        root_meta=meta.checksum(),
        subject="first commit",
        timestamp=1704164645,
        metadata={"version": Variant("s", "1.0")},
    )
    return {
        "commit": _write(
            tmp_path, object_path(commit.checksum(), ObjectType.COMMIT), commit.to_bytes()
        ),
        "dirtree": _write(
            tmp_path, object_path(tree.checksum(), ObjectType.DIRTREE), tree.to_bytes()
        ),
        "dirmeta": _write(
            tmp_path, object_path(meta.checksum(), ObjectType.DIRMETA), meta.to_bytes()
        ),
        "file": _write(tmp_path, object_path(file_checksum, ObjectType.FILE), filez),
        "unnamed-commit": _write(tmp_path, "some-file", commit.to_bytes()),
        "renamed": _write(tmp_path, object_path(ZERO, ObjectType.DIRMETA), meta.to_bytes()),
    }


def _run_json(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, object]:
    assert main(["inspect", "--json", *args]) == 0
    out = capsys.readouterr().out
    document = json.loads(out)
    assert isinstance(document, dict)
    return document


@pytest.mark.parametrize("kind", ["commit", "dirtree", "dirmeta", "file"])
def test_objects_are_recognised_and_verified(
    objects: dict[str, Path], capsys: pytest.CaptureFixture[str], kind: str
) -> None:
    doc = _run_json(capsys, str(objects[kind]))
    assert doc["kind"] == kind
    assert doc["name_matches"] is True
    assert doc["checksum"] == doc["named"]


def test_commit_fields(objects: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    doc = _run_json(capsys, str(objects["commit"]))
    value = doc["value"]
    assert isinstance(value, dict)
    assert value["subject"] == "first commit"
    assert value["timestamp"] == 1704164645
    assert value["parent"] is None
    assert value["metadata"] == {"version": {"signature": "s", "value": "1.0"}}


def test_kind_guessed_from_bytes(
    objects: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    doc = _run_json(capsys, str(objects["unnamed-commit"]))
    assert doc["kind"] == "commit"
    assert "named" not in doc


def test_file_contents(objects: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    value = _run_json(capsys, str(objects["file"]))["value"]
    assert isinstance(value, dict)
    assert value["size"] == 18 and value["mode"] == 0o100755 and value["symlink_target"] is None


def test_mismatched_name_is_reported(
    objects: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    doc = _run_json(capsys, str(objects["renamed"]))
    assert doc["name_matches"] is False
    assert main(["inspect", str(objects["renamed"])]) == 0
    assert "MISMATCH" in capsys.readouterr().out


def test_text_output(objects: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["inspect", str(objects["commit"])]) == 0
    out = capsys.readouterr().out
    assert out.startswith("commit ")
    assert "date: 2024-01-02T03:04:05Z" in out
    assert "version: <'1.0'>" in out


def test_garbage_is_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    junk = _write(tmp_path, "junk", b"\x01\x02not an object")
    assert main(["inspect", str(junk)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not a recognised" in err


def test_wrong_kind_is_an_error(
    objects: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["inspect", "--kind", "dirtree", str(objects["dirmeta"])]) == 1
    assert "not a valid dirtree" in capsys.readouterr().err


def test_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["inspect", str(tmp_path / "nope")]) == 1
    assert "No such file" in capsys.readouterr().err


def test_console_script_and_module(objects: dict[str, Path]) -> None:
    for cmd in (["ostree-repo"], [sys.executable, "-m", "ostree_repo"]):
        out = subprocess.run(
            [*cmd, "inspect", "--json", str(objects["dirmeta"])],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        assert json.loads(out)["kind"] == "dirmeta"
