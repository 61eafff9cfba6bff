"""Object-store throughput against the raw operations underneath it, in the same run.

    python benchmarks/bench_store.py [--quick] [--backends fs,s3] [--concurrency 32]

For each backend, N small objects (1-4 KB dirmeta objects) and M large ones (50 MB FILE
objects) are written and then read back by ``concurrency`` tasks, through the store and
through the raw layer below it:

* fs: the store against plain ``open().write()``/``read()`` in worker threads. Two pairs:
  ``store(nofsync)`` vs ``raw`` (no durability: the store's software overhead), and
  ``store`` vs ``raw+fsync`` (temp file, fsync, rename, directory fsync: the same
  durability as the store, without verification).
* s3: the store against the very same obstore client's plain ``put``/``get``, on a
  SeaweedFS ``weed mini`` started here.

Each measurement is repeated (``--repeat``, fresh directories and prefixes each time, the
order of variants rotated) and the median is reported. Ratios are store time / raw time:
1.10 means the store adds 10%. ``cpu`` is this process's CPU time, store / raw (the server's
is not counted). Results go to ``benchmarks/results/`` as JSON and Markdown.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))

import obstore  # noqa: E402
from _repos import scratch_dir  # noqa: E402
from _seaweedfs import SeaweedFS  # noqa: E402

from ostree_repo.objects.names import object_path  # noqa: E402
from ostree_repo.objects.objtype import ObjectType  # noqa: E402
from ostree_repo.objects.verify import new_verifier  # noqa: E402
from ostree_repo.store import CHUNK_SIZE, ObjectStore, open_store  # noqa: E402
from store.objfactory import file_object, padded_dirmeta  # noqa: E402

Obj = tuple[str, bytes]
KINDS = {"small": ObjectType.DIRMETA, "large": ObjectType.FILE}


def make_workload(small: int, large: int, large_size: int) -> dict[str, list[Obj]]:
    """Objects held in memory, so that generating them is not measured."""
    smalls = []
    for i in range(small):
        obj = padded_dirmeta(10_000 + i, 1024 + (i * 3079) % 3072)  # 1-4 KB
        smalls.append((obj.checksum, obj.data))
    larges = []
    for i in range(large):
        big = file_object(large_size, seed=i)
        larges.append((big.checksum, big.filez()))
    return {"small": smalls, "large": larges}


async def slices(data: bytes) -> AsyncIterator[bytes]:
    """The chunks a streaming caller would hand over (1 MiB views, no copies)."""
    view = memoryview(data)
    for start in range(0, len(view), CHUNK_SIZE):
        yield view[start : start + CHUNK_SIZE]  # type: ignore[misc]


async def run_concurrently(
    items: Sequence[Obj], work: Callable[[Obj], Awaitable[object]], concurrency: int
) -> tuple[float, float]:
    """(wall seconds, process CPU seconds) to run ``work`` on every item."""
    it = iter(items)

    async def worker() -> None:
        for item in it:
            await work(item)

    start, cpu = time.perf_counter(), time.process_time()
    async with anyio.create_task_group() as tg:
        for _ in range(concurrency):
            tg.start_soon(worker)
    return time.perf_counter() - start, time.process_time() - cpu


class Variant:
    """One way of writing and reading objects; ``setup`` gives it a fresh location."""

    name = ""

    async def setup(self, rep: int) -> None:
        """Point at an empty location for repetition ``rep``."""

    async def teardown(self) -> None:
        """Release what setup opened."""

    async def write(self, kind: str, obj: Obj) -> None:
        raise NotImplementedError

    async def read(self, kind: str, obj: Obj) -> None:
        raise NotImplementedError


class StoreVariant(Variant):
    """Objects through an ObjectStore opened from a URL template."""

    def __init__(self, name: str, url: str, **options: Any) -> None:
        self.name, self._url, self._options = name, url, options
        self.store: ObjectStore | None = None

    async def setup(self, rep: int) -> None:
        self.store = open_store(self._url.format(rep=rep), **self._options)
        await self.store.__aenter__()

    async def teardown(self) -> None:
        assert self.store is not None
        await self.store.aclose()
        root = getattr(self.store, "root", None)
        if root is not None:  # a filesystem store: free the disk space
            await anyio.to_thread.run_sync(shutil.rmtree, root)

    async def write(self, kind: str, obj: Obj) -> None:
        assert self.store is not None
        data = obj[1] if kind == "small" else slices(obj[1])
        await self.store.write_object(obj[0], KINDS[kind], data)

    async def read(self, kind: str, obj: Obj) -> None:
        assert self.store is not None
        if kind == "small":
            await self.store.read_object(obj[0], KINDS[kind])
            return
        async with self.store.open_object(obj[0], KINDS[kind]) as stream:
            async for _ in stream:
                pass


def _raw_write(path: str, data: bytes, durable: bool) -> None:
    if not durable:
        with open(path, "wb") as f:
            f.write(data)
        return
    temp = path + ".tmp"
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.rename(temp, path)
    dfd = os.open(os.path.dirname(path), os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def _raw_read(path: str) -> bytes:
    with open(path, "rb", buffering=0) as f:
        return f.readall()


def _raw_stream(path: str) -> int:
    """Read a file in 1 MiB chunks, like a streaming consumer, in one thread call."""
    total = 0
    with open(path, "rb", buffering=0) as f:
        while chunk := f.read(CHUNK_SIZE):
            total += len(chunk)
    return total


class RawFiles(Variant):
    """Plain files in worker threads, one thread call per object (the store's paths)."""

    def __init__(self, name: str, root: Path, durable: bool) -> None:
        self.name, self._root, self._durable = name, root, durable
        self._dir = str(root)

    async def setup(self, rep: int) -> None:
        self._dir = f"{self._root}/{self.name}-{rep}"
        for i in range(256):
            os.makedirs(f"{self._dir}/objects/{i:02x}", exist_ok=True)

    async def teardown(self) -> None:
        await anyio.to_thread.run_sync(shutil.rmtree, self._dir)

    def _path(self, kind: str, checksum: str) -> str:
        return f"{self._dir}/{object_path(checksum, KINDS[kind])}"

    async def write(self, kind: str, obj: Obj) -> None:
        path = self._path(kind, obj[0])
        await anyio.to_thread.run_sync(_raw_write, path, obj[1], self._durable)

    async def read(self, kind: str, obj: Obj) -> None:
        reader = _raw_read if kind == "small" else _raw_stream
        await anyio.to_thread.run_sync(reader, self._path(kind, obj[0]))


class RawObstore(Variant):
    """The S3 store's own obstore client, used directly: plain PUT and GET."""

    def __init__(self, name: str, server: SeaweedFS) -> None:
        self.name, self._server = name, server
        self._store: ObjectStore | None = None
        self._prefix = ""

    async def setup(self, rep: int) -> None:
        self._store = open_store(f"s3://{self._server.bucket}/raw", env=self._server.env)
        await self._store.__aenter__()
        self._prefix = f"rep{rep}"

    async def teardown(self) -> None:
        assert self._store is not None
        await self._store.aclose()

    def _client(self) -> Any:
        return self._store._store  # type: ignore[union-attr]

    async def write(self, kind: str, obj: Obj) -> None:
        key = f"{self._prefix}/{obj[0]}"
        if kind == "small":
            await obstore.put_async(self._client(), key, obj[1])
            return
        store = self._store
        await obstore.put_async(
            self._client(),
            key,
            slices(obj[1]),
            chunk_size=store._part_size,  # type: ignore[union-attr]
            max_concurrency=store._part_concurrency,  # type: ignore[union-attr]
        )

    async def read(self, kind: str, obj: Obj) -> None:
        result = await obstore.get_async(self._client(), f"{self._prefix}/{obj[0]}")
        if kind == "small":
            bytes(await result.bytes_async())
            return
        async for _ in result.stream(min_chunk_size=CHUNK_SIZE):
            pass


@dataclass
class Measure:
    """Medians over the repetitions for one (variant, kind, operation)."""

    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)

    @property
    def median_wall(self) -> float:
        return statistics.median(self.wall)

    @property
    def median_cpu(self) -> float:
        return statistics.median(self.cpu)


async def measure(
    variants: list[Variant], work: dict[str, list[Obj]], concurrency: int, repeat: int
) -> dict[tuple[str, str, str], Measure]:
    results: dict[tuple[str, str, str], Measure] = {}
    for rep in range(repeat):
        rotated = variants[rep % len(variants) :] + variants[: rep % len(variants)]
        for kind, objs in work.items():
            for variant in rotated:
                await variant.setup(rep * 10 + len(kind))
                try:
                    for op in ("write", "read"):
                        fn = getattr(variant, op)
                        wall, cpu = await run_concurrently(
                            objs, lambda o, f=fn, k=kind: f(k, o), concurrency
                        )
                        m = results.setdefault((variant.name, kind, op), Measure())
                        m.wall.append(wall)
                        m.cpu.append(cpu)
                finally:
                    await variant.teardown()
    return results


def report(
    backend: str,
    results: dict[tuple[str, str, str], Measure],
    work: dict[str, list[Obj]],
    pairs: list[tuple[str, str]],
) -> list[dict[str, Any]]:
    rows = []
    for kind, objs in work.items():
        nbytes = sum(len(d) for _, d in objs)
        for op in ("write", "read"):
            for store_name, raw_name in pairs:
                s, r = results[(store_name, kind, op)], results[(raw_name, kind, op)]
                rows.append(
                    {
                        "backend": backend,
                        "objects": f"{len(objs):,} {kind}",
                        "op": op,
                        "store": store_name,
                        "raw": raw_name,
                        "store_rate": rate(kind, len(objs), nbytes, s.median_wall),
                        "raw_rate": rate(kind, len(objs), nbytes, r.median_wall),
                        "ratio": s.median_wall / r.median_wall,
                        "cpu_ratio": s.median_cpu / r.median_cpu if r.median_cpu else 0.0,
                        "store_wall": s.wall,
                        "raw_wall": r.wall,
                    }
                )
    return rows


def verification_cost(work: dict[str, list[Obj]]) -> str:
    """What verifying the workload costs on one core, for attributing the store's overhead."""
    lines = []
    for kind, objs in work.items():
        start = time.process_time()
        for checksum, data in objs:
            verifier = new_verifier(KINDS[kind], checksum)
            for i in range(0, len(data), CHUNK_SIZE):
                verifier.update(data[i : i + CHUNK_SIZE])
            verifier.finish()
        cpu = time.process_time() - start
        nbytes = sum(len(d) for _, d in objs)
        lines.append(
            f"verifying {len(objs):,} {kind} objects: {cpu / len(objs) * 1e6:,.0f} us each, "
            f"{nbytes / cpu / 1e6:,.0f} MB/s (one core)"
        )
    return "\n".join(lines)


def rate(kind: str, count: int, nbytes: int, seconds: float) -> str:
    if kind == "small":
        return f"{count / seconds:,.0f} ops/s"
    return f"{nbytes / seconds / 1e6:,.0f} MB/s"


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| backend | objects | op | store | raw | store rate | raw rate | time ratio | cpu ratio |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['backend']} | {r['objects']} | {r['op']} | {r['store']} | {r['raw']} "
            f"| {r['store_rate']} | {r['raw_rate']} | {r['ratio']:.2f} | {r['cpu_ratio']:.2f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1,000 small, 4 large, 1 repeat")
    parser.add_argument("--backends", default="fs,s3")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--large-mb", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=None, help="default 3 (1 with --quick)")
    args = parser.parse_args(argv)
    small, large = (1000, 4) if args.quick else (10_000, 20)
    repeat = args.repeat or (1 if args.quick else 3)
    backends = args.backends.split(",")

    print(f"generating {small:,} small and {large} x {args.large_mb} MB objects ...", flush=True)
    work = make_workload(small, large, args.large_mb << 20)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-store-", dir=scratch_dir()) as tmp:
        root = Path(tmp)
        if "fs" in backends:
            print("fs ...", flush=True)
            variants: list[Variant] = [
                RawFiles("raw", root, durable=False),
                StoreVariant("store(nofsync)", f"{root}/store-nofsync-{{rep}}", fsync=False),
                RawFiles("raw+fsync", root, durable=True),
                StoreVariant("store", f"{root}/store-{{rep}}"),
            ]
            results = anyio.run(measure, variants, work, args.concurrency, repeat)
            rows += report("fs", results, work, [("store(nofsync)", "raw"), ("store", "raw+fsync")])
            for path in root.iterdir():
                shutil.rmtree(path)
        if "s3" in backends:
            print("s3 (starting SeaweedFS) ...", flush=True)
            with SeaweedFS(root / "seaweedfs", memory_limit="2GiB") as server:
                variants = [
                    RawObstore("raw", server),
                    StoreVariant("store", f"s3://{server.bucket}/store-{{rep}}", env=server.env),
                ]
                results = anyio.run(measure, variants, work, args.concurrency, repeat)
                rows += report("s3", results, work, [("store", "raw")])

    text = table(rows) + "\n\n" + verification_cost(work)
    print(text)
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    meta = {
        "when": stamp,
        "concurrency": args.concurrency,
        "small": small,
        "large": large,
        "large_mb": args.large_mb,
        "repeat": repeat,
        "machine": f"{platform.machine()}, {os.cpu_count()} cpus",
        "python": platform.python_version(),
    }
    (out / f"bench_store-{stamp}.json").write_text(
        json.dumps({"meta": meta, "rows": rows}, indent=2)
    )
    (out / f"bench_store-{stamp}.md").write_text(f"{json.dumps(meta)}\n\n{text}\n")
    print(f"results: {out}/bench_store-{stamp}.md")


if __name__ == "__main__":
    main()
