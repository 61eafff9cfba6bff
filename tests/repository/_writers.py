"""Worker processes for the concurrency tests (importable by multiprocessing's spawn)."""

from __future__ import annotations

from typing import Any

import anyio
import attrs

from ostree_repo.repository import RepositoryManager, VersionRecord


def add_ref_once(url: str, options: dict[str, Any], name: str, ref: str, commit: str) -> int:
    """Publish one version of ``name`` that adds ``ref`` -> ``commit``; return its number."""

    async def main() -> int:
        async with RepositoryManager.open(url, **options) as manager:
            source = await manager.repository("src").version()
            info = source.commits[commit]

            async def change(base: VersionRecord) -> VersionRecord:
                return attrs.evolve(
                    base, refs={**base.refs, ref: commit}, commits={**base.commits, commit: info}
                )

            record = await manager.repository(name).publish(change, {"kind": "test", "ref": ref})
            assert record is not None
            return record.number

    return anyio.run(main)


def publish_forever(url: str, options: dict[str, Any], name: str, tag: str, commit: str) -> None:
    """Keep publishing versions that move ref ``tag`` (until killed)."""

    async def main() -> None:
        async with RepositoryManager.open(url, **options) as manager:
            source = await manager.repository("src").version()
            info = source.commits[commit]
            i = 0
            while True:
                i += 1
                ref = f"{tag}-{i % 5}"

                async def change(base: VersionRecord, ref: str = ref) -> VersionRecord:
                    refs = {k: v for k, v in base.refs.items() if not k.startswith(tag)}
                    refs[ref] = commit
                    return attrs.evolve(base, refs=refs, commits={**base.commits, commit: info})

                await manager.repository(name).publish(change, {"kind": "test"})

    anyio.run(main)
