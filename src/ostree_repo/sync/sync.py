"""Syncing a repository from a remote OSTree HTTP server into a new version.

:func:`sync_repository` reads the remote's ``summary`` (or, without one, the
``refs/heads/REF`` files of refs named explicitly), picks refs by glob, fetches each
head commit with ``depth`` parents and every object their trees reach that the store
lacks, passes the remote's static deltas through, and publishes one version. When the
version ends up holding exactly what the remote's summary describes, the remote's
``summary`` and ``summary.sig`` are passed through byte for byte, so clients can verify
the signature against our server.
"""

from __future__ import annotations

import configparser
import fnmatch
import hashlib
import time
from collections.abc import Callable, Iterable
from typing import Any, Unpack

import anyio
import attrs

from ostree_repo._tasks import task_group
from ostree_repo.errors import ChecksumMismatchError, InvalidNameError, InvalidObjectError
from ostree_repo.objects import (
    DeltaSuperblock,
    DetachedMetadata,
    ObjectType,
    Summary,
    Tombstone,
    delta_path,
    object_path,
    parse_delta_name,
    validate_checksum,
    validate_ref,
)
from ostree_repo.objects.summary import STATIC_DELTAS
from ostree_repo.repository.blobs import put_blob, read_blob
from ostree_repo.repository.closure import Key, compute_closure, load_closure, save_closure
from ostree_repo.repository.ingest import Ingest
from ostree_repo.repository.manager import RepositoryManager
from ostree_repo.repository.records import DeltaInfo, RepoConfig, VersionRecord
from ostree_repo.signing.formats import SIGNATURE_KEYS, parse_signatures, signatures
from ostree_repo.sync.errors import RemoteError, SyncError, UnsupportedRemoteError
from ostree_repo.sync.options import RemoteKeywords, RemoteOptions
from ostree_repo.sync.remote import Remote, check_url
from ostree_repo.sync.walk import WalkStats, fetch_trees

__all__ = ["SyncProgress", "SyncResult", "sync_repository"]

ARCHIVE_MODES = ("archive", "archive-z2")
_GLOB_CHARS = frozenset("*?[")


@attrs.frozen
class SyncProgress:
    """Where a running sync is: its phase and what it fetched so far."""

    phase: str
    objects_fetched: int = 0
    bytes_fetched: int = 0
    commits: int = 0


@attrs.frozen
class SyncResult:
    """What one sync did. ``version`` is None when nothing changed (no version made)."""

    repository: str
    url: str
    version: VersionRecord | None
    refs: dict[str, str]
    collection_refs: dict[str, dict[str, str]]
    commits: int
    objects_fetched: int
    objects_present: int
    bytes_fetched: int
    requests: int
    retries: int
    deltas: int
    summary_passed_through: bool
    signed: bool
    truncated: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        """``{"repository", "version", "objects_fetched", "bytes_fetched", ...}``."""
        return {
            "repository": self.repository,
            "version": None if self.version is None else self.version.number,
            "url": self.url,
            "refs": len(self.refs) + sum(len(r) for r in self.collection_refs.values()),
            "commits": self.commits,
            "objects_fetched": self.objects_fetched,
            "objects_present": self.objects_present,
            "bytes_fetched": self.bytes_fetched,
            "requests": self.requests,
            "retries": self.retries,
            "deltas": self.deltas,
            "summary_passed_through": self.summary_passed_through,
            "signed": self.signed,
            "truncated": list(self.truncated),
            "notes": list(self.notes),
            "seconds": round(self.seconds, 3),
        }


def select_refs(names: Iterable[str], include: Iterable[str], exclude: Iterable[str]) -> list[str]:
    """The names matching any ``include`` glob (all when there is none) and no ``exclude``."""
    inc, exc = list(include), list(exclude)
    return [
        n
        for n in names
        if (not inc or any(fnmatch.fnmatchcase(n, p) for p in inc))
        and not any(fnmatch.fnmatchcase(n, p) for p in exc)
    ]


def _parse_config(data: bytes) -> configparser.SectionProxy | None:
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    try:
        parser.read_string(data.decode("utf-8"))
    except (configparser.Error, UnicodeDecodeError) as e:
        raise UnsupportedRemoteError(f"the remote's config is unreadable: {e}") from None
    return parser["core"] if parser.has_section("core") else None


@attrs.define
class _Run:
    manager: RepositoryManager
    name: str
    remote: Remote
    ingest: Ingest
    depth: int
    concurrency: int
    progress: Callable[[SyncProgress], None] | None
    tombstones_advertised: bool = False
    commit_sizes: dict[str, int] = attrs.field(factory=dict)
    budget: dict[str, float] = attrs.field(factory=dict)
    truncated: set[str] = attrs.field(factory=set)
    notes: list[str] = attrs.field(factory=list)
    fetched: int = 0
    present: int = 0
    fetched_bytes: int = 0
    sizes: dict[Key, int] = attrs.field(factory=dict)

    def report(self, phase: str) -> None:
        if self.progress is not None:
            self.progress(
                SyncProgress(phase, self.fetched, self.fetched_bytes, len(self.ingest.commits))
            )

    async def commit_bytes(self, checksum: str, required: bool) -> bytes | None:
        store = self.manager.store
        if await store.has_object(checksum, ObjectType.COMMIT):
            self.present += 1
            return await store.read_object(checksum, ObjectType.COMMIT)
        data = await self.remote.get_metadata(
            checksum,
            ObjectType.COMMIT,
            optional=not required,
            limit=self.commit_sizes.get(checksum, 0),
        )
        if data is not None:
            self.fetched += 1
            self.fetched_bytes += len(data)
        return data

    async def chain(self, head: str) -> None:
        """The head commit and its parents, ``depth`` deep."""
        current: str | None = head
        remaining: float = math_inf if self.depth < 0 else self.depth
        child: str | None = None
        while current is not None:
            if self.budget.get(current, -1) >= remaining:
                return  # walked (or being walked) at least this deep already
            self.budget[current] = remaining
            data, meta = await self._commit_and_meta(current, required=child is None)
            if data is None:
                assert child is not None
                self.truncated.add(child)
                await self.tombstone(current)
                return
            commit = await self.ingest.add_commit(current, data, meta)
            self.report("commits")
            if remaining <= 0:
                return
            child, current, remaining = current, commit.parent, remaining - 1

    async def _commit_and_meta(
        self, checksum: str, *, required: bool
    ) -> tuple[bytes | None, bytes | None]:
        result: dict[str, bytes | None] = {}

        async def meta() -> None:
            result["meta"] = await self.remote.get_bytes(
                object_path(checksum, ObjectType.COMMITMETA),
                optional=True,
                check=DetachedMetadata.from_bytes,
                what=f"commitmeta of {checksum}",
            )

        async with task_group() as tg:
            tg.start_soon(meta)
            result["commit"] = await self.commit_bytes(checksum, required)
        return result["commit"], result["meta"] if result["commit"] is not None else None

    async def tombstone(self, checksum: str) -> None:
        if not self.tombstones_advertised:
            return
        data = await self.remote.get_bytes(
            object_path(checksum, ObjectType.TOMBSTONE_COMMIT),
            optional=True,
            check=Tombstone.from_bytes,
            what=f"tombstone of {checksum}",
        )
        if data is not None:
            await self.manager.store.write_object(checksum, ObjectType.TOMBSTONE_COMMIT, data)
            self.ingest.tombstones.add(checksum)

    async def trees(self) -> None:
        known: set[Key] = set()
        roots: list[tuple[str, str]] = []
        for checksum, info in self.ingest.commits.items():
            try:
                closure = await self.manager.closure(checksum)
            except KeyError:  # NotFoundError: no closure yet, walk it
                roots.append((info.root_tree, info.root_meta))
            else:
                known.update(closure.sizes)
        base_fetched, base_bytes = self.fetched, self.fetched_bytes

        def on_object(stats: WalkStats) -> None:
            self.fetched, self.fetched_bytes = (
                base_fetched + stats.fetched,
                base_bytes + stats.fetched_bytes,
            )
            self.report("objects")

        stats = await fetch_trees(
            self.remote,
            self.manager.store,
            roots,
            known,
            concurrency=self.concurrency,
            progress=on_object,
        )
        self.present += stats.present
        self.sizes = stats.sizes

    async def delta(self, name: str, digest: str, base: VersionRecord) -> None:
        start, end = parse_delta_name(name)
        previous = base.deltas.get(name)
        if previous is not None and previous.superblock == digest:
            self.ingest.deltas[name] = previous
            return

        def check_digest(data: bytes) -> None:
            actual = hashlib.sha256(data).hexdigest()
            if actual != digest:
                raise ChecksumMismatchError(digest, actual, f"delta {name} superblock")

        superblock = await self.remote.get_bytes(
            delta_path(start, end, "superblock"),
            optional=True,
            check=check_digest,
            what=f"superblock of delta {name}",
        )
        if superblock is None:
            self.notes.append(f"delta {name} is listed in the summary but absent; skipped")
            return
        block = DeltaSuperblock.from_bytes(superblock)
        if (block.from_checksum, block.to_checksum) != (start, end):
            raise InvalidObjectError(f"superblock of delta {name} is for another delta")
        parts: list[str | None] = []
        for index, header in enumerate(block.parts):
            if block.inline_part(index) is not None:
                parts.append(None)
                continue
            try:
                parts.append(
                    await self.remote.store_blob(
                        self.manager.store,
                        delta_path(start, end, str(index)),
                        header.checksum,
                        f"part {index} of delta {name}",
                    )
                )
            except RemoteError as e:
                if e.status is None:
                    raise
                self.notes.append(f"delta {name}: part {index} unavailable ({e.status}); skipped")
                return
            self.fetched += 1
            self.fetched_bytes += header.size
        self.fetched_bytes += len(superblock)
        self.ingest.deltas[name] = DeltaInfo(
            await put_blob(self.manager.store, superblock), tuple(parts)
        )


math_inf = float("inf")


def _summary_matches(record: VersionRecord, summary: Summary) -> bool:
    """True when ``summary`` describes exactly the refs (aliases included, as libostree
    lists them) and deltas of ``record``."""
    if {r.name: r.checksum for r in summary.refs} != record.resolved_refs():
        return False
    if any(record.commits[r.checksum].size != r.commit_size for r in summary.refs):
        return False
    cmap = {cid: {r.name: r.checksum for r in refs} for cid, refs in summary.collection_map.items()}
    if cmap != record.collection_refs:
        return False
    if summary.static_deltas != {n: d.superblock for n, d in record.deltas.items()}:
        return False
    return summary.collection_id == record.config.collection_id


def _keeps(ours: bytes | None, theirs: bytes | None) -> bool:
    """True when the signature dictionary ``ours`` holds every signature of ``theirs``."""
    if ours is None or theirs is None:
        return ours == theirs
    mine, remote = parse_signatures(ours, "summary.sig"), parse_signatures(theirs, "summary.sig")
    return all(
        set(signatures(remote, key)) <= set(signatures(mine, key))
        for key in SIGNATURE_KEYS.values()
    ) and all(k in SIGNATURE_KEYS.values() or mine.get(k) == v for k, v in remote.items())


def _same_content(a: VersionRecord, b: VersionRecord) -> bool:
    fields = ("refs", "aliases", "collection_refs", "commits", "deltas", "tombstones", "config")
    return all(getattr(a, f) == getattr(b, f) for f in fields)


async def sync_repository(
    manager: RepositoryManager,
    name: str,
    url: str,
    *,
    include: Iterable[str] = (),
    exclude: Iterable[str] = (),
    depth: int = 0,
    deltas: bool = True,
    mirror: bool = True,
    options: RemoteOptions | None = None,
    progress: Callable[[SyncProgress], None] | None = None,
    **remote: Unpack[RemoteKeywords],
) -> SyncResult:
    """Sync repository ``name`` (created if needed) from the OSTree server at ``url``.

    Refs come from the remote's summary, filtered by ``include`` globs (all refs when
    empty) and then ``exclude`` globs (``fnmatch``, on ref names; also applied to the
    collection refs of the summary's collection map). A remote without a summary needs
    its refs named in ``include`` without glob characters. Each head commit comes with
    ``depth`` parents (0: none, -1: all); a parent the remote lacks truncates the
    history there. Static deltas between synced commits are passed through unless
    ``deltas`` is False.

    With ``mirror`` (the default) the new version holds exactly what was synced;
    otherwise it adds to the latest version. Returns a :class:`SyncResult`; its
    ``version`` is None when nothing changed. On any failure no version is made; the
    objects already stored stay, so running the sync again fetches only what is missing.

    How to talk to the remote: ``options`` (a :class:`~ostree_repo.sync.RemoteOptions`),
    and/or its fields as keyword arguments (:class:`~ostree_repo.sync.RemoteKeywords`:
    ``headers``, ``timeout``, ``retries``, ``backoff``, ``max_backoff``, ``verify``,
    ``cert``, ``proxy``, ``http2``, ``trust_env``, ``lean``, ``concurrency``,
    ``connections``), which override the fields of ``options``. ``progress`` is called
    as objects arrive.
    """
    started = time.monotonic()
    check_url(url)
    include, exclude = list(include), list(exclude)
    options = attrs.evolve(options or RemoteOptions(), **remote)
    async with Remote(url, options) as client:
        return await _sync(
            manager, name, client, include, exclude, depth, deltas, mirror,
            options.concurrency, progress, started,
        )  # fmt: skip


async def _sync(  # noqa: PLR0917
    manager: RepositoryManager,
    name: str,
    remote: Remote,
    include: list[str],
    exclude: list[str],
    depth: int,
    want_deltas: bool,
    mirror: bool,
    concurrency: int,
    progress: Callable[[SyncProgress], None] | None,
    started: float,
) -> SyncResult:
    summary_bytes = await remote.get_bytes(
        "summary", optional=True, check=Summary.from_bytes, what="summary"
    )
    summary = Summary.from_bytes(summary_bytes) if summary_bytes is not None else None
    sig_bytes = None
    if summary_bytes is not None:
        sig_bytes = await remote.get_bytes(
            "summary.sig",
            optional=True,
            check=DetachedMetadata.from_bytes,
            what="summary.sig",
        )
    repo = manager.repository(name)
    settings = (await repo.version()).settings
    for hook in manager.hooks:  # e.g. a signing policy that requires signed summaries
        await hook.admit_summary(repo, settings, summary_bytes, sig_bytes)
    config_bytes = await remote.get_bytes("config", optional=True, what="config")
    core = _parse_config(config_bytes) if config_bytes is not None else None

    mode = "archive-z2"
    collection_id: str | None = None
    tombstones = False
    if core is not None:
        mode = core.get("mode", "bare")
        collection_id = core.get("collection-id") or None
        tombstones = core.get("tombstone-commits", "false").lower() == "true"
    if summary is not None:
        value = summary.metadata.get("ostree.summary.mode")
        if value is not None and value.signature == "s":
            mode = str(value.value)
        value = summary.metadata.get("ostree.summary.tombstone-commits")
        if value is not None and value.signature == "b":
            tombstones = tombstones or bool(value.value)
        collection_id = summary.collection_id or collection_id
    if mode not in ARCHIVE_MODES:
        raise UnsupportedRemoteError(f"{remote.url('')}: mode {mode!r}; only archive repos sync")

    heads: dict[str, str] = {}
    collection_heads: dict[str, dict[str, str]] = {}
    sizes: dict[str, int] = {}
    if summary is not None:
        available = {r.name: r for r in summary.refs}
        for ref in select_refs(available, include, exclude):
            heads[ref] = available[ref].checksum
            sizes[available[ref].checksum] = available[ref].commit_size
        for cid, refs in summary.collection_map.items():
            by_name = {r.name: r for r in refs}
            for ref in select_refs(by_name, include, exclude):
                collection_heads.setdefault(cid, {})[ref] = by_name[ref].checksum
                sizes[by_name[ref].checksum] = by_name[ref].commit_size
    else:
        explicit = [p for p in include if not _GLOB_CHARS & set(p)]
        if not explicit:
            raise SyncError(
                f"{remote.url('')} has no summary: name the refs to sync (include, "
                "without glob characters)"
            )
        for ref in select_refs(explicit, (), exclude):
            validate_ref(ref)
            text = await remote.get_bytes(f"refs/heads/{ref}", limit=4096, what=f"ref {ref}")
            assert text is not None
            try:
                heads[ref] = validate_checksum(text.decode("ascii", "replace").strip())
            except InvalidNameError:
                raise InvalidObjectError(
                    f"{remote.url('refs/heads/' + ref)}: not a checksum"
                ) from None
    if not heads and not collection_heads:
        raise SyncError(f"no ref of {remote.url('')} matches the include/exclude patterns")

    config = RepoConfig(mode=mode, collection_id=collection_id)
    ingest = Ingest(manager, name, config=config)
    run = _Run(manager, name, remote, ingest, depth, concurrency, progress, tombstones, sizes)

    # 1. commits (with detached metadata and parents)
    async with task_group() as tg:
        for head in {*heads.values(), *(c for r in collection_heads.values() for c in r.values())}:
            tg.start_soon(run.chain, head)
    for ref, commit in heads.items():
        ingest.set_ref(ref, commit)
    for cid, cid_heads in collection_heads.items():
        for ref, commit in cid_heads.items():
            ingest.set_ref(ref, commit, collection_id=cid)

    # 2. every object the new commits' trees reach
    await run.trees()

    # 3. static deltas between synced commits
    base = await manager.repository(name).version()
    if want_deltas and summary is not None and summary.static_deltas:
        wanted = {}
        for delta, digest in summary.static_deltas.items():
            start, end = parse_delta_name(delta)
            if end in ingest.commits and (start is None or start in ingest.commits):
                wanted[delta] = digest
        limiter = anyio.CapacityLimiter(2)  # as libostree: few large parts in flight

        async def one(delta: str, digest: str) -> None:
            async with limiter:
                await run.delta(delta, digest, base)
                run.report("deltas")

        async with task_group() as tg:
            for delta, digest in sorted(wanted.items()):
                tg.start_soon(one, delta, digest)
    elif not want_deltas and summary is not None and STATIC_DELTAS in summary.metadata:
        run.notes.append("static deltas not synced (deltas=False)")

    # 4. closures (proving every object is stored), then the version
    for checksum in sorted(ingest.commits, key=lambda c: ingest.commits[c].timestamp):
        if await load_closure(manager.store, checksum) is None:
            # sizes learnt while fetching save a lookup per object; the walk still reads
            # every dirtree and fails on any missing object
            parent = ingest.commits[checksum].parent
            known = dict(run.sizes)
            if parent is not None and (parent_closure := await load_closure(manager.store, parent)):
                known.update(parent_closure.sizes)
            await save_closure(manager.store, await compute_closure(manager.store, checksum, known))
        await manager.ensure_closure(checksum, ingest.commits[checksum].parent)
    summary_blob = await put_blob(manager.store, summary_bytes) if summary_bytes else None
    sig_blob = await put_blob(manager.store, sig_bytes) if sig_bytes else None
    outcome: dict[str, bool] = {}

    ingest.config = config

    async def change(base: VersionRecord) -> VersionRecord:
        draft = ingest.draft(base, replace=mirror)
        outcome.clear()
        base_sig = await read_blob(manager.store, base.summary_sig) if base.summary_sig else None
        if summary is not None and summary_blob is not None and _summary_matches(draft, summary):
            if summary_blob != base.summary:
                draft = attrs.evolve(draft, summary=summary_blob, summary_sig=sig_blob)
                outcome["passed"] = True
            elif _same_content(draft, base) and (
                base.summary_sig == sig_blob or _keeps(base_sig, sig_bytes)
            ):
                # nothing changed (the signatures signing added beside the remote's stay)
                draft = attrs.evolve(draft, summary_sig=base.summary_sig)
                outcome["passed"] = True
            else:
                # the store would regenerate a summary equal to the base's: not signable
                outcome["regenerated"] = True
        return draft

    # Created only now, once everything the version needs is stored (as import does): a
    # sync refused on the way (no summary, a bad object, a refused signature) makes no
    # repository.
    await manager.create_repository(name, exist_ok=True)
    record = await manager.repository(name).publish(
        change,
        {
            "kind": "sync",
            "url": remote.url(""),
            "include": include,
            "exclude": exclude,
            "depth": depth,
            "deltas": want_deltas,
            "mirror": mirror,
        },
    )
    passed = outcome.get("passed", False)
    if summary is None:
        run.notes.append("the remote has no summary; ours is generated")
    elif record is None:
        pass  # nothing changed (also when signing had added to what the remote sent)
    elif outcome.get("regenerated"):
        run.notes.append("summary regenerated (content changed under an unchanged summary)")
    elif not passed:
        run.notes.append(
            "the synced content differs from the remote's summary (refs, depth or deltas): "
            "summary regenerated" + (", summary.sig dropped" if sig_bytes else "")
        )
    stats = remote.stats
    return SyncResult(
        repository=name,
        url=remote.url(""),
        version=record,
        refs=dict(ingest.refs),
        collection_refs={c: dict(r) for c, r in ingest.collection_refs.items()},
        commits=len(ingest.commits),
        objects_fetched=run.fetched,
        objects_present=run.present,
        bytes_fetched=stats.bytes,
        requests=stats.requests,
        retries=stats.retries,
        deltas=len(ingest.deltas),
        summary_passed_through=passed,
        signed=passed and sig_blob is not None,
        truncated=tuple(sorted(run.truncated)),
        notes=tuple(run.notes),
        seconds=time.monotonic() - started,
    )
