"""Ref aliases in versions: records, copy, remove, diff and the CLI's ``refs``, on a
repository with aliases made by the real ``ostree`` CLI."""

from __future__ import annotations

import json
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import attrs
import pytest

from importing._aliases import ALIASES, build_alias_repo, libostree_refs
from oracle.ostree_cli import copy_repo, ostree
from ostree_repo.cli import main
from ostree_repo.errors import InvalidObjectError, OstreeRepoError
from ostree_repo.importing import import_directory
from ostree_repo.repository import AliasError, RepositoryManager, VersionRecord, diff
from ostree_repo.repository._aliases import alias_link, resolve_alias

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="session")
def alias_repo(ostree_cli: None, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_alias_repo(tmp_path_factory.mktemp("alias_repo"))


@pytest.fixture
async def manager(tmp_path: Path, alias_repo: Path) -> AsyncIterator[RepositoryManager]:
    """A store whose repository ``src`` holds ``alias_repo``."""
    async with RepositoryManager.open(str(tmp_path / "store"), workers=0) as opened:
        await import_directory(opened, "src", alias_repo)
        yield opened


def test_records_without_aliases_still_read() -> None:
    """Records written before aliases existed have no ``aliases`` key: none."""
    record = VersionRecord("r", 1, 1.0, aliases={"a": "b"})
    doc = json.loads(record.to_bytes())
    del doc["aliases"]
    assert VersionRecord.from_bytes(json.dumps(doc).encode()).aliases == {}


@pytest.mark.parametrize(
    ("refs", "aliases", "match"),
    [
        ({}, {"a": "main"}, "points at ref main, which does not exist"),
        ({}, {"a": "b", "b": "c"}, r"points at ref c \(through b\)"),
        ({}, {"a": "b", "b": "a"}, "loops"),
        ({"a": "0" * 64}, {"a": "a"}, "both a ref and an alias"),
        ({}, {"bad name": "main"}, "invalid ref name"),
    ],
)
def test_a_record_with_a_broken_alias_is_refused(
    refs: dict[str, str], aliases: dict[str, str], match: str
) -> None:
    commits = {}
    if refs:
        from ostree_repo.repository import CommitInfo

        commits = {"0" * 64: CommitInfo(None, 0, "", 1, "1" * 64, "2" * 64)}
    record = VersionRecord("r", 1, 1.0, refs=refs, aliases=aliases, commits=commits)
    with pytest.raises((InvalidObjectError, OstreeRepoError), match=match):
        record.check()


def test_chains_resolve_up_to_forty_links() -> None:
    aliases = {f"a{i}": f"a{i + 1}" for i in range(40)} | {"a40": "main"}
    assert resolve_alias("a1", {"main": "c"}, aliases) == "c"
    with pytest.raises(AliasError, match="loops"):
        resolve_alias("a0", {"main": "c"}, aliases)  # 41 links
    assert alias_link("x/y/nested", "main") == "../../main"
    assert alias_link("latest", "release/stable") == "release/stable"


async def test_copy_an_alias_brings_its_chain(manager: RepositoryManager) -> None:
    src = await manager.repository("src").version()
    await manager.create_repository("dst")
    record = await manager.copy("src", "dst", refs=["chain"])
    assert record is not None
    assert record.aliases == {"chain": "latest", "latest": "main"}
    assert record.refs == {"main": src.refs["main"]}
    assert record.resolve_ref("chain") == src.refs["main"]
    # copying a plain ref brings no alias
    await manager.create_repository("plain")
    record = await manager.copy("src", "plain", refs=["release/stable"])
    assert record is not None and record.aliases == {}
    # a whole version: everything
    await manager.create_repository("all")
    record = await manager.copy("src", "all", whole=True)
    assert record is not None and record.aliases == ALIASES


async def test_an_alias_replaces_a_ref_of_its_name_and_back(
    manager: RepositoryManager, alias_repo: Path, tmp_path: Path
) -> None:
    """As writing ``refs/heads/NAME`` replaces whatever was there."""
    plain = copy_repo(alias_repo, tmp_path / "plain")
    for name in ("chain", "latest"):
        (plain / "refs" / "heads" / name).unlink()
        shutil.copy(
            plain / "refs" / "heads" / "release" / "stable", plain / "refs" / "heads" / name
        )
    stable = (await manager.repository("src").version()).refs["release/stable"]
    record = await import_directory(manager, "dst", plain)
    assert record is not None and record.refs["latest"] == stable
    assert "latest" not in record.aliases
    record = await manager.copy("src", "dst", refs=["chain"])  # chain -> latest -> main
    assert record is not None
    assert record.aliases["chain"] == "latest" and record.aliases["latest"] == "main"
    assert "latest" not in record.refs and "chain" not in record.refs
    record = await import_directory(manager, "dst", plain)  # and back
    assert record is not None and record.refs["latest"] == record.refs["chain"] == stable
    assert set(record.aliases) == {"x/y/nested", "stable-alias"}


async def test_remove_refuses_a_ref_with_an_active_alias(
    manager: RepositoryManager, alias_repo: Path
) -> None:
    """As ``ostree refs --delete`` does: remove the aliases first (or with it)."""
    with pytest.raises(OstreeRepoError, match="ref main has an active alias: latest"):
        await manager.remove("src", refs=["main"])
    with pytest.raises(OstreeRepoError, match="ref latest has an active alias: chain"):
        await manager.remove("src", refs=["latest"])
    record = await manager.remove("src", refs=["chain", "latest"])
    assert record is not None
    assert record.aliases == {"x/y/nested": "main", "stable-alias": "release/stable"}
    assert record.refs == (await manager.repository("src").version(1)).refs
    record = await manager.remove("src", refs=["x/y/nested", "main"])
    assert record is not None and set(record.resolved_refs()) == {"release/stable", "stable-alias"}
    changes = diff(await manager.repository("src").version(1), record)
    assert changes["aliases_removed"] == {
        "chain": "latest",
        "latest": "main",
        "x/y/nested": "main",
    }
    assert changes["refs_removed"] == {"main": libostree_refs(alias_repo)["main"]}
    assert not changes["aliases_added"] and not changes["aliases_moved"]


async def test_diff_shows_an_alias_pointed_elsewhere(manager: RepositoryManager) -> None:
    await manager.create_repository("dst")
    first = await manager.copy("src", "dst", refs=["latest", "release/stable"])
    assert first is not None
    moved = attrs.evolve(first, aliases={"latest": "release/stable"})
    changes = diff(first, moved)
    assert changes["aliases_moved"] == {"latest": {"from": "main", "to": "release/stable"}}
    assert not changes["refs_moved"] and not changes["aliases_added"]


def test_cli_refs_lists_aliases(
    alias_repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = str(tmp_path / "cli-store")
    assert main(["--store", store, "import-dir", "r", str(alias_repo)]) == 0
    capsys.readouterr()
    assert main(["--store", store, "refs", "--json", "r"]) == 0
    rows = json.loads(capsys.readouterr().out)
    commits = libostree_refs(alias_repo)
    assert rows == [
        {"name": name, "commit": commits[name], "alias_of": ALIASES.get(name)}
        for name in sorted(commits, key=str.encode)
    ]
    assert main(["--store", store, "refs", "r"]) == 0
    text = capsys.readouterr().out
    assert f"{commits['main']}  chain -> latest\n" in text
    assert f"{commits['main']}  main\n" in text


async def test_committing_onto_an_alias_replaces_it(
    manager: RepositoryManager, alias_repo: Path, tmp_path: Path
) -> None:
    """As ``ostree commit -b ALIAS``: the parent is the alias's commit, and the new commit
    is written over the symlink (a plain ref from then on)."""
    from ostree_repo.builder import commit_tree, tree_from_mapping

    main = (await manager.repository("src").version()).refs["main"]
    commit, record = await commit_tree(
        manager, "src", tree_from_mapping({"f": b"new\n"}), ref="latest", timestamp=1
    )
    assert record is not None
    assert record.commits[commit].parent == main
    assert record.refs["latest"] == commit and "latest" not in record.aliases
    assert record.resolve_ref("chain") == commit  # chain -> latest follows it
    # the same with libostree
    repo = copy_repo(alias_repo, tmp_path / "repo")
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "f").write_text("new\n")
    theirs = ostree("commit", "-b", "latest", str(tree), repo=repo).strip()
    assert not (repo / "refs" / "heads" / "latest").is_symlink()
    assert ostree("log", "latest", repo=repo).count("commit ") == 2
    assert libostree_refs(repo)["chain"] == theirs
