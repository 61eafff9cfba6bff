"""The default hooks together: each feature sees what the ones before it made."""

from __future__ import annotations

import uuid

import pytest

from ostree_repo.builder import commit_tree, tree_from_mapping
from ostree_repo.gvariant import dumps
from ostree_repo.objects import DeltaSuperblock, delta_name, delta_path
from ostree_repo.repository import RepositoryManager
from ostree_repo.repository.blobs import read_blob
from ostree_repo.signing import Ed25519Key, key_name

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_generated_deltas_carry_the_signed_commitmeta() -> None:
    """Commits are signed before deltas are made, so a delta's superblock embeds the
    detached metadata the version serves for its target (signatures included)."""
    key = Ed25519Key.generate()
    async with RepositoryManager.open(f"memory://{uuid.uuid4().hex}", keys=[key]) as m:
        settings = {"deltas": "parent", "signing": {"keys": [key_name(key)]}}
        await m.create_repository("r", settings=settings)
        made = []
        for i in range(2):
            tree = tree_from_mapping({"etc/os-release": b"VERSION=%d\n" % i})
            checksum, _ = await commit_tree(m, "r", tree, ref="main", timestamp=1_700_000_000 + i)
            made.append(checksum)
        record = await m.repository("r").version()
        info = record.commits[made[1]]
        assert info.commitmeta is not None
        served = await read_blob(m.store, info.commitmeta)
        delta = record.deltas[delta_name(made[0], made[1])]
        block = DeltaSuperblock.from_bytes(await read_blob(m.store, delta.superblock))
        embedded = block.metadata[delta_path(made[0], made[1], "commitmeta")]
        assert dumps("a{sv}", embedded.value) == served
