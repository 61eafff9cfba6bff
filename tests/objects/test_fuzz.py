"""Fuzzing every object decoder with mutated real objects and random bytes.

Whatever the input, a decoder returns an object that re-encodes to exactly the input, or
raises one of our errors: never IndexError, struct.error, UnicodeError, RecursionError,
zlib.error, or a hang.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from oracle.ostree_cli import RepoInfo
from ostree_repo.errors import OstreeRepoError
from ostree_repo.objects import (
    Commit,
    DeltaIndex,
    DeltaSuperblock,
    DetachedMetadata,
    DirMeta,
    DirTree,
    FileHeader,
    FilezReader,
    ObjectType,
    Summary,
    Tombstone,
    new_verifier,
)
from ostree_repo.objects.delta import DeltaPart

from ._mutate import mutate

DECODERS: dict[str, Callable[[bytes], Any]] = {
    "commit": Commit.from_bytes,
    "dirtree": DirTree.from_bytes,
    "dirmeta": DirMeta.from_bytes,
    "commitmeta": DetachedMetadata.from_bytes,
    "tombstone-commit": Tombstone.from_bytes,
    "summary": Summary.from_bytes,
    "superblock": DeltaSuperblock.from_bytes,
    "index": DeltaIndex.from_bytes,
    "file-header": FileHeader.from_bytes,
}
SETTINGS = settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))


@pytest.fixture(scope="module")
def samples(rich_repo: RepoInfo) -> dict[str, list[bytes]]:
    found: dict[str, list[bytes]] = {k: [] for k in DECODERS}
    found["filez"] = []
    found["part"] = []
    for _, ext, path in rich_repo.objects():
        if ext in found and len(found[ext]) < 30:
            found[ext].append(path.read_bytes())
    assert rich_repo.summary is not None
    found["summary"].append(rich_repo.summary.read_bytes())
    for delta in rich_repo.deltas.values():
        found["superblock"].append(delta.superblock.read_bytes())
        found["part"].extend(p.read_bytes() for p in delta.parts)
    found["index"] = [p.read_bytes() for p in (rich_repo.path / "delta-indexes").rglob("*.index")]
    found["file-header"] = [
        FileHeader().to_bytes(),
        FileHeader(mode=0o120777, symlink_target="x").to_bytes(),
    ]
    return {k: v for k, v in found.items() if v}


def _decode_or_our_error(kind: str, data: bytes) -> None:
    try:
        obj = DECODERS[kind](data)
    except OstreeRepoError:
        return
    assert obj.to_bytes() == data


@given(st.data())
@SETTINGS
def test_mutated_real_metadata(samples: dict[str, list[bytes]], data: st.DataObject) -> None:
    kind = data.draw(st.sampled_from(sorted(k for k in samples if k in DECODERS)))
    original = data.draw(st.sampled_from(samples[kind]))
    _decode_or_our_error(kind, mutate(original, data))


@given(st.sampled_from(sorted(DECODERS)), st.binary(max_size=200))
@SETTINGS
def test_random_bytes(kind: str, data: bytes) -> None:
    _decode_or_our_error(kind, data)


@given(st.data())
@SETTINGS
def test_mutated_filez(samples: dict[str, list[bytes]], data: st.DataObject) -> None:
    original = data.draw(st.sampled_from(samples["filez"]))
    mutated = mutate(original, data)
    reader = FilezReader()
    try:
        split = data.draw(st.integers(0, len(mutated)))
        reader.feed(mutated[:split])
        reader.feed(mutated[split:])
        reader.finish()
    except OstreeRepoError:
        return
    verifier = new_verifier(ObjectType.FILE, reader.checksum())
    verifier.update(mutated)
    verifier.finish()


@given(st.data())
@SETTINGS
def test_mutated_delta_parts(samples: dict[str, list[bytes]], data: st.DataObject) -> None:
    if "part" not in samples:
        pytest.skip("no separate delta parts")
    original = data.draw(st.sampled_from(samples["part"]))
    with contextlib.suppress(OstreeRepoError):
        DeltaPart.from_bytes(mutate(original, data))


# A .commitmeta is named after its commit, not hashed: any valid a{sv} (even b"") verifies.
@given(
    st.sampled_from([t for t in ObjectType if t is not ObjectType.COMMITMETA]),
    st.binary(max_size=300),
)
@SETTINGS
def test_verifiers_raise_only_our_errors(objtype: ObjectType, data: bytes) -> None:
    verifier = new_verifier(objtype, "0" * 64)
    try:
        verifier.update(data)
        verifier.finish()
    except OstreeRepoError:
        return
    pytest.fail("random bytes verified as an object named 000…")
