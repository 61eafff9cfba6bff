"""Import an archive-mode OSTree repository directory (made by ``ostree`` or by us).

Every object is verified as it is stored; refs, ref aliases (symlinks under
``refs/heads``, see :mod:`.refs`), collection refs, detached metadata, tombstones and
static deltas come along; the result is one new repository version.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import anyio
import anyio.to_thread

from ostree_repo._tasks import for_each
from ostree_repo.errors import InvalidNameError
from ostree_repo.importing._config import parse_repo_config
from ostree_repo.importing._refs import RefTree
from ostree_repo.importing.errors import RepositoryConfigError
from ostree_repo.objects import ObjectType, parse_object_path
from ostree_repo.objects.metadata import Tombstone
from ostree_repo.repository.ingest import Ingest
from ostree_repo.repository.manager import RepositoryManager
from ostree_repo.repository.records import RepoConfig, VersionRecord
from ostree_repo.store import CHUNK_SIZE

__all__ = ["import_directory"]

#: A ref file holds a checksum and a newline; more than this is not a ref.
MAX_REF_FILE = 4096


def read_repo_config(path: Path) -> RepoConfig:
    """Read and check ``path/config``; refuse anything but an archive-mode repository."""
    config = path / "config"
    try:
        data = config.read_bytes()
    except FileNotFoundError:
        raise RepositoryConfigError(f"{path}: no config file, not an OSTree repo") from None
    return parse_repo_config(str(config), data)


def _chunks(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK_SIZE):
            yield chunk


def read_ref_tree(root: Path) -> RefTree:
    """What ``root/refs`` holds: files with their text, symlinks with their targets
    (never followed here), directories. Read relative to directory descriptors, as
    libostree does: a ref name may be 4084 bytes long, and its absolute path beyond
    PATH_MAX."""
    tree = RefTree(lambda parts: str(root.joinpath(*parts)))
    base = root / "refs"
    if not base.is_dir():
        return tree
    for directory, dirnames, filenames, fd in os.fwalk(base):
        rel = ("refs", *Path(directory).relative_to(base).parts)
        tree.add_dir(rel)
        for entry in (*dirnames, *filenames):
            if stat.S_ISLNK(os.stat(entry, dir_fd=fd, follow_symlinks=False).st_mode):
                tree.add_link((*rel, entry), os.readlink(entry, dir_fd=fd))
            elif entry in filenames:
                with open(os.open(entry, os.O_RDONLY, dir_fd=fd), "rb") as f:
                    data = f.read(MAX_REF_FILE + 1)
                if len(data) <= MAX_REF_FILE or rel[1:2] in (("heads",), ("mirrors",)):
                    tree.add_file((*rel, entry), data.decode("ascii", "replace"))
    return tree


async def import_directory(
    manager: RepositoryManager,
    name: str,
    path: str | os.PathLike[str],
    *,
    concurrency: int = 16,
) -> VersionRecord | None:
    """Import every ref, commit and object of the repository at ``path`` into a new
    version of repository ``name`` (created if needed). Returns the version, or None
    when the repository already held exactly this content."""
    root = Path(path)
    config = await anyio.to_thread.run_sync(read_repo_config, root)
    refs = (await anyio.to_thread.run_sync(read_ref_tree, root)).resolve()  # before any write
    await manager.create_repository(name, exist_ok=True)
    ingest = Ingest(manager, name, config=config)
    store = manager.store
    commitmeta: dict[str, bytes] = {}
    commits: list[tuple[str, Path]] = []

    async def store_object(item: tuple[str, ObjectType, Path]) -> None:
        checksum, objtype, file = item
        await store.write_object(checksum, objtype, _chunks(file))

    def objects() -> Iterator[tuple[str, ObjectType, Path]]:
        """The loose objects to store; commits and what belongs to them are kept aside."""
        for file in listing:
            try:
                checksum, objtype = parse_object_path(file.relative_to(root).as_posix())
            except InvalidNameError:
                continue  # not a loose object (temporary files, bare-repo .file, ...)
            if objtype is ObjectType.COMMIT:
                commits.append((checksum, file))
            elif objtype is ObjectType.COMMITMETA:
                commitmeta[checksum] = file.read_bytes()
            elif objtype is ObjectType.TOMBSTONE_COMMIT:
                Tombstone.from_bytes(file.read_bytes())
                ingest.tombstones.add(checksum)
            else:
                yield checksum, objtype, file

    objects_dir = root / "objects"
    listing = await anyio.to_thread.run_sync(lambda: sorted(objects_dir.glob("*/*")))
    await for_each(objects(), store_object, limit=concurrency)
    for checksum, file in commits:
        await ingest.add_commit(checksum, file.read_bytes(), commitmeta.get(checksum))

    for ref, commit in refs.heads.items():
        ingest.set_ref(ref, commit)
    for alias, target in refs.aliases.items():
        ingest.set_alias(alias, target)
    for (cid, ref), commit in refs.mirrors.items():
        ingest.set_ref(ref, commit, collection_id=cid)

    for superblock in sorted((root / "deltas").rglob("superblock")):
        parts = {
            int(p.name): p.read_bytes() for p in superblock.parent.iterdir() if p.name.isdigit()
        }
        await ingest.add_delta(superblock.read_bytes(), parts)

    return await ingest.publish({"kind": "import-directory", "path": str(root)}, replace=False)
