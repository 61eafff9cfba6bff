"""``ostree-repo create --keep-…``, ``retain`` (policies set, shown, applied, refused) and
``du``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio
import pytest

from oracle.ostree_cli import RepoInfo
from ostree_repo.cli import main
from ostree_repo.repository import RepositoryManager
from ostree_repo.repository.accounting import usage


def _run(capsys: pytest.CaptureFixture[str], store: str, *args: str) -> Any:
    assert main(["--store", store, *args, "--json"]) == 0, capsys.readouterr().err
    return json.loads(capsys.readouterr().out)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    path = tmp_path / "tree"
    path.mkdir()
    return path


def _commit(capsys: pytest.CaptureFixture[str], store: str, tree: Path, text: str) -> None:
    (tree / "file").write_text(text)
    _run(capsys, store, "commit", "r", "--tree", str(tree), "--ref", "main", "-s", text)


def test_create_with_a_policy_then_retain(
    tmp_path: Path, tree: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = str(tmp_path / "store")
    made = _run(capsys, store, "create", "r", "--keep-versions", "2", "--depth", "0")
    assert made == {"repository": "r", "version": 1}
    for i in range(3):
        _commit(capsys, store, tree, f"v{i}")
    versions = _run(capsys, store, "versions", "r")
    assert [v["number"] for v in versions] == [0, 3, 4]
    assert [v["commits"] for v in versions] == [0, 1, 1]
    shown = _run(capsys, store, "retain", "r")
    assert shown == {
        "repository": "r",
        "version": None,
        "retention": {"versions": 2, "depth": 0},
        "deleted_versions": [],
    }
    changed = _run(capsys, store, "retain", "r", "--keep-versions", "1")
    assert changed == {
        "repository": "r",
        "version": 5,
        "retention": {"versions": 1},
        "deleted_versions": [],
    }
    versions = _run(capsys, store, "versions", "r")
    assert [v["number"] for v in versions] == [0, 5]
    removed = _run(capsys, store, "retain", "r", "--none", "--apply")
    assert removed == {
        "repository": "r",
        "version": 6,
        "retention": None,
        "deleted_versions": [],
    }
    assert main(["--store", store, "retain", "r"]) == 0
    assert capsys.readouterr().out == "r: no retention policy\n"


def test_retain_apply_deletes_what_aged_out(
    tmp_path: Path, tree: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = str(tmp_path / "store")
    _run(capsys, store, "create", "r")
    for i in range(3):
        _commit(capsys, store, tree, f"v{i}")
    # every version is younger than a week: nothing goes but what the count drops
    done = _run(capsys, store, "retain", "r", "--keep-younger-than", "1w", "--apply")
    assert done["version"] == 4 and done["deleted_versions"] == []
    done = _run(capsys, store, "retain", "r", "--keep-versions", "1", "--apply")
    assert done["deleted_versions"] == []  # the new version did it
    versions = _run(capsys, store, "versions", "r")
    assert [v["number"] for v in versions] == [0, 5]


def test_bad_policies_are_refused_and_change_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = str(tmp_path / "store")
    assert main(["--store", store, "create", "r", "--keep-versions", "0"]) == 1
    assert "versions must be a whole number >= 1" in capsys.readouterr().err
    assert main(["--store", store, "list", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []
    _run(capsys, store, "create", "r")
    assert main(["--store", store, "retain", "r", "--depth", "-1"]) == 1
    assert capsys.readouterr().err == (
        "ostree-repo: error: retention depth must be a whole number >= 0, not -1\n"
    )
    assert main(["--store", store, "retain", "r", "--none", "--depth", "1"]) == 1
    assert "give it alone" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--store", store, "retain", "r", "--keep-younger-than", "soon"])
    assert "not a duration" in capsys.readouterr().err
    versions = _run(capsys, store, "versions", "r")
    assert [v["number"] for v in versions] == [0]


def test_du_prints_one_json_document(
    rich_repo: RepoInfo, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = str(tmp_path / "store")
    _run(capsys, store, "import-dir", "rich", str(rich_repo.path))

    async def expected() -> dict[str, Any]:
        async with RepositoryManager.open(store) as manager:
            return (await usage(manager, "rich", by="commit")).to_json()

    doc = _run(capsys, store, "du", "rich", "--by", "commit")
    assert doc == anyio.run(expected)
    assert doc["repository"] == "rich" and doc["version"] == 1 and doc["by"] == "commit"
    assert {row["commit"] for row in doc["items"]} == set(rich_repo.commits)
    assert doc["bytes"] == doc["unique_bytes"] == doc["live_bytes"]  # nothing else holds it
    assert main(["--store", store, "du", "rich", "--by", "ref"]) == 0
    text = capsys.readouterr().out.splitlines()
    assert text[0].split() == ["uses", "only", "it", "objects"]
    assert "rich version 1" in text[1] and text[-1].startswith("store: ")
    assert any(line.endswith("  (commits no ref reaches)") for line in text)
    assert main(["--store", store, "du", "rich", "--version", "7"]) == 1
    assert "has no version 7" in capsys.readouterr().err
