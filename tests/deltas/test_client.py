"""Deltas we generate, applied by the real ``ostree`` client (``static-delta
apply-offline`` into a bare-user repo, then ``fsck``) and read by ``static-delta show``,
for the rich repo's commits: modified, added, deleted and renamed files, symlinks,
xattrs, mode and owner changes, empty files, a 5 MB file, and from scratch."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from oracle.ostree_cli import OstreeCommandError, RepoInfo, ostree
from ostree_repo.deltas import DeltaOptions, XzSettings
from ostree_repo.objects import DeltaSuperblock, ObjectType, delta_path

from ._helpers import check_with_python, make_delta

PAIRS = [
    (None, "C1"),
    ("C1", "C2"),
    ("C2", "C3"),
    ("C3", "C4"),
    ("C4", "C5"),
    ("C1", "C5"),
    ("C3", "S1"),  # every file re-owned 1234:5678
    ("C5", "C1"),  # backwards: what was deleted comes back
]
NO_FALLBACKS = DeltaOptions(min_fallback_size=0)  # apply-offline refuses fallbacks


def client_with(tmp_path: Path, source: Path, commit: str | None) -> Path:
    """A fresh bare-user repo holding ``commit`` (pulled from ``source``)."""
    client = tmp_path / "client"
    ostree("init", "--mode=bare-user", repo=client)
    if commit is not None:
        ostree("pull-local", str(source), commit, repo=client)
    return client


def tree_listing(repo: Path, commit: str) -> str:
    """Every path of ``commit`` with its mode, owner, xattrs and content checksum."""
    return ostree("ls", "-R", "-X", "-C", commit, repo=repo)


def check_applies(
    tmp_path: Path, repo: Path, start: str | None, end: str, *, show: bool = True
) -> str:
    """``show`` reads the delta, ``apply-offline`` rebuilds ``end`` in a bare-user repo,
    ``fsck`` passes and the client's tree is the source's. Returns ``show``'s output
    (``show=False``: inline deltas, which ``static-delta show`` of libostree 2022.7
    cannot show, its own neither: it opens part files that are not there)."""
    name = end if start is None else f"{start}-{end}"
    shown = ostree("static-delta", "show", name, repo=repo) if show else ""
    client = client_with(tmp_path, repo, start)
    superblock = repo / delta_path(start, end, "superblock")
    ostree("static-delta", "apply-offline", str(superblock), repo=client)
    ostree("fsck", repo=client)
    assert tree_listing(client, end) == tree_listing(repo, end)
    return shown


def ops_of(shown: str) -> dict[str, int]:
    """The opcode counts ``static-delta show`` prints, summed over the parts."""
    totals: dict[str, int] = {}
    for line in shown.splitlines():
        if line.startswith("PartPayloadOps"):
            for key, value in re.findall(r"(\w+)=(\d+)", line):
                totals[key] = totals.get(key, 0) + int(value)
    return totals


@pytest.mark.parametrize(("start", "end"), PAIRS, ids=[f"{a}-{b}" for a, b in PAIRS])
def test_client_applies(
    tmp_path: Path, rich_repo: RepoInfo, rich_copy: Path, start: str | None, end: str
) -> None:
    origin = rich_repo.labels[start] if start else None
    target = rich_repo.labels[end]
    delta = make_delta(rich_copy, origin, target, NO_FALLBACKS)
    shown = check_applies(tmp_path, rich_copy, origin, target)
    assert f"To: {target}" in shown
    assert f"Number of parts: {delta.stats.parts}" in shown
    assert f"Total Part Uncompressed Size: {delta.stats.usize} " in shown
    check_with_python(rich_copy, delta)


def test_bsdiff_and_rollsum_as_libostree(
    tmp_path: Path, rich_repo: RepoInfo, rich_copy: Path
) -> None:
    """C2 -> C3 changes blobs/patch.bin (scattered edits: bsdiff) and blobs/roll.bin (an
    insertion: rollsum matches), and our delta is libostree's size."""
    c2, c3 = rich_repo.labels["C2"], rich_repo.labels["C3"]
    delta = make_delta(rich_copy, c2, c3)
    assert (delta.stats.bsdiff, delta.stats.rollsum) == (1, 1)
    ops = ops_of(check_applies(tmp_path, rich_copy, c2, c3))
    assert ops["bspatch"] == 1
    assert ops["setread"] == ops["unsetread"] >= 2
    assert ops["write"] > 2
    theirs = rich_repo.deltas[f"{c2}-{c3}"].superblock.parent / "0"
    assert delta.stats.size <= theirs.stat().st_size * 1.05


def test_fallback(tmp_path: Path, rich_repo: RepoInfo, rich_copy: Path) -> None:
    """The 5 MB file of C5 is a fallback (the client fetches it loose), with libostree's
    sizes; ``apply-offline`` refuses such a delta, as it refuses libostree's."""
    c4, c5 = rich_repo.labels["C4"], rich_repo.labels["C5"]
    delta = make_delta(rich_copy, c4, c5)
    block = DeltaSuperblock.from_bytes(delta.superblock)
    assert [(f.objtype, f.usize) for f in block.fallbacks] == [(ObjectType.FILE, 5_000_000)]
    stored = rich_copy / "objects" / block.fallbacks[0].checksum[:2]
    assert (
        block.fallbacks[0].size
        == (stored / f"{block.fallbacks[0].checksum[2:]}.filez").stat().st_size
    )
    assert "Number of fallback entries: 1" in ostree(
        "static-delta", "show", f"{c4}-{c5}", repo=rich_copy
    )
    client = client_with(tmp_path, rich_copy, c4)
    with pytest.raises(OstreeCommandError, match="fallback"):
        ostree(
            "static-delta",
            "apply-offline",
            str(rich_copy / delta_path(c4, c5, "superblock")),
            repo=client,
        )


@pytest.mark.parametrize(
    "options",
    [
        DeltaOptions(min_fallback_size=0, inline=True),
        # libostree reads an uncompressed part file of more than 16 KiB with mmap at
        # offset 1, which fails (EINVAL): the client applies uncompressed parts inline
        DeltaOptions(min_fallback_size=0, compression="none", inline=True),
        DeltaOptions(min_fallback_size=0, big_endian=True),
        DeltaOptions(min_fallback_size=0, max_part_size=200_000),
        DeltaOptions(min_fallback_size=0, bsdiff=False, rollsum=False),
        DeltaOptions(min_fallback_size=0, xz=XzSettings(preset=1, dict_size=1 << 16)),
    ],
    ids=["inline", "uncompressed-inline", "big-endian", "small-parts", "no-diffs", "xz-preset-1"],
)
def test_options(
    tmp_path: Path, rich_repo: RepoInfo, rich_copy: Path, options: DeltaOptions
) -> None:
    c1, c5 = rich_repo.labels["C1"], rich_repo.labels["C5"]
    delta = make_delta(rich_copy, c1, c5, options)
    shown = check_applies(tmp_path, rich_copy, c1, c5, show=not options.inline)
    if options.big_endian:
        assert "Endianness: big" in shown
    if options.max_part_size < 1_000_000:
        assert delta.stats.parts >= 2
    if options.inline:
        assert not (rich_copy / delta_path(c1, c5, "0")).exists()
        assert delta.parts == (None,) * delta.stats.parts
    if not (options.bsdiff or options.rollsum):
        assert delta.stats.bsdiff == delta.stats.rollsum == 0
    check_with_python(rich_copy, delta)


def test_workers(tmp_path: Path, rich_repo: RepoInfo, rich_copy: Path) -> None:
    """Worker processes make a delta the client applies, cut so each compresses a part."""
    c1, c5 = rich_repo.labels["C1"], rich_repo.labels["C5"]
    delta = make_delta(rich_copy, c1, c5, NO_FALLBACKS, processes=2)
    assert delta.stats.parts >= 2
    check_applies(tmp_path, rich_copy, c1, c5)
    check_with_python(rich_copy, delta)
