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


def add_refs(
    url: str, options: dict[str, Any], name: str, *, tag: str, commit: str, count: int
) -> list[int]:
    """Publish ``count`` versions of ``name``, each adding ref ``tag-i``; their numbers."""

    async def main() -> list[int]:
        async with RepositoryManager.open(url, **options) as manager:
            source = await manager.repository("src").version()
            info = source.commits[commit]
            numbers = []
            for i in range(count):
                ref = f"{tag}-{i}"

                async def change(base: VersionRecord, ref: str = ref) -> VersionRecord:
                    return attrs.evolve(
                        base,
                        refs={**base.refs, ref: commit},
                        commits={**base.commits, commit: info},
                    )

                record = await manager.repository(name).publish(change, {"kind": "test"})
                assert record is not None
                numbers.append(record.number)
            return numbers

    return anyio.run(main)


def configure_until_killed(
    url: str,
    options: dict[str, Any],
    name: str,
    *,
    settings: dict[str, Any],
    stop_at: int,
    conn: Any,
) -> None:
    """Configure ``name`` with ``settings``; once the version is stored, count the store
    writes and deletes its hooks make, and at the ``stop_at``-th tell ``conn`` "paused"
    and hang there (to be killed). Sends "done" if the hooks finish first."""
    import time

    from ostree_repo.repository.retention import RetentionHook

    async def main() -> None:
        async with RepositoryManager.open(url, **options) as manager:
            store = manager.store
            calls = [0]
            armed = [False]

            def counted(method: Any) -> Any:
                async def wrapper(*args: Any, **kwargs: Any) -> Any:
                    if armed[0]:
                        calls[0] += 1
                        if calls[0] == stop_at:
                            conn.send("paused")
                            time.sleep(3600)  # the whole process stops here until killed
                    return await method(*args, **kwargs)

                return wrapper

            for attr in ("create_named", "write_named", "replace_named", "delete_named"):
                setattr(store, attr, counted(getattr(store, attr)))
            original = RetentionHook.published

            async def published(self: RetentionHook, repo: Any, record: VersionRecord) -> None:
                conn.send(("stored", record.number))
                armed[0] = True
                await original(self, repo, record)

            RetentionHook.published = published  # type: ignore[method-assign]
            await manager.configure(name, settings)
            conn.send("done")

    anyio.run(main)
