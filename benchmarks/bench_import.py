"""Archive import beside the libostree route and the physical floor, in the same run.

    python benchmarks/bench_import.py [--quick] [--nfiles N] [--compression tar|tar.zst|...]

On the synthetic archive repository made by the real ``ostree`` CLI (~20,000 files, two
commits, one static delta; cached in ``benchmarks/.cache/``, see ``_repos.py``) packed as
osbuild-composer packs a commit (``compose.json`` beside ``repo/``, ``tar`` then the
compressor), each variant runs in a fresh directory:

* **libostree route**: ``tar -x`` of the archive, then ``ostree init --mode=archive`` and
  ``ostree pull-local --untrusted --depth=-1`` (every object verified; fsync as ostree
  does by default; with ``--disable-fsync`` for the no-fsync pair).
* **ours**: ``import_archive`` into a fresh filesystem store (fsync on, the default, and
  off), each in a child process whose peak RSS (``ru_maxrss`` from ``wait4``) is reported,
  with the peak of its writer processes (``RUSAGE_CHILDREN``) and the peak memory of all
  of them together, sampled every 20 ms (``_repos.TreeMemory``: PSS, which counts shared
  library pages once, and RSS).
  The same import into a memory store shows the pipeline without filesystem costs.
* **store ceiling**: the same objects, already in memory, written through a
  ``store.staging()`` in batches of 128 by the same number of tasks: what the store
  alone costs.
* **physical floor**: raw DEFLATE inflate + SHA-256 of every ``.filez`` (one core), the
  least any verifying import must do; and our verifier (``verify_bytes``, as the store
  runs it) on the same.

Each figure is the median of ``--repeat`` runs (variants interleaved). Ratios above 1 are
better for us: ``speedup`` = libostree time / our time; ``vs floor`` = floor time / our
time (the goal is at least 0.5). Goals printed at the end: faster than the libostree route,
at least half the physical floor, peak memory under 150 MB (the importing process's RSS,
and the PSS of it and its writers together); the exit status is 0 either way
unless an import failed. ``--quick``: one repetition, fsync-off variants only. Results go to
``benchmarks/results/import.json``.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import resource
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _repos import (  # noqa: E402
    TreeMemory,
    cached_large_repo,
    compile_package,
    machine_info,
    save_results,
    scratch_dir,
)

RESULTS = HERE / "results" / "import.json"
OSTREE = shutil.which("ostree") or "/usr/bin/ostree"
MB = 1e6
COMPRESS = {
    "tar": [],
    "tar.gz": ["gzip", "-c", "-1"],
    "tar.xz": ["xz", "-c", "-0", "-T0"],
    "tar.bz2": ["bzip2", "-c", "-1"],
    "tar.zst": ["zstd", "-q", "-c", "-T0"],
}
TAR_DECOMPRESS = {
    "tar": [],
    "tar.gz": ["-z"],
    "tar.xz": ["-J"],
    "tar.bz2": ["-j"],
    "tar.zst": ["--zstd"],
}


# -- the child: one import, measured --------------------------------------------------------------


def _peak_rss_mb() -> float:
    """This process's peak RSS (``VmHWM``: unlike ``ru_maxrss``, not inherited from the
    parent across ``exec``)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def child(args: argparse.Namespace) -> int:
    """Run one import, store ceiling or floor and print a JSON line with our peak RSS."""
    if args.child == "floor":
        print(json.dumps({**physical_floor(Path(args.archive)), "peak_rss_mb": _peak_rss_mb()}))
        return 0
    import anyio

    from ostree_repo.importing import import_archive
    from ostree_repo.repository import RepositoryManager

    options: dict[str, Any] = {} if args.store.startswith("memory") else {"fsync": args.fsync}

    async def main() -> dict[str, Any]:
        async with RepositoryManager.open(args.store, **options) as manager:
            if args.child == "ceiling":
                return await ceiling(manager, Path(args.archive), args.concurrency)
            last: list[Any] = []
            started = time.perf_counter()
            cpu = time.process_time()
            record = await import_archive(
                manager,
                "bench",
                args.archive,
                progress=last.append,
                concurrency=args.concurrency,
            )
            return {
                "seconds": time.perf_counter() - started,
                "cpu_seconds": time.process_time() - cpu,
                "version": None if record is None else record.number,
                "commits": 0 if record is None else len(record.commits),
                "deltas": 0 if record is None else len(record.deltas),
                "objects": last[-1].objects if last else 0,
            }

    result = anyio.run(main)
    # the store's writer processes have been reaped when it closed: the largest one's peak
    writers = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(json.dumps({**result, "peak_rss_mb": _peak_rss_mb(), "writer_peak_rss_mb": writers}))
    return 0


async def ceiling(manager: Any, repo: Path, concurrency: int) -> dict[str, Any]:
    """Every loose object of ``repo`` from memory into the store, as the import writes
    them: batches of up to 128 through one staging, ``concurrency`` tasks."""
    import anyio

    from ostree_repo.objects import parse_object_path

    objects = []
    for path in sorted((repo / "objects").glob("*/*")):
        checksum, objtype = parse_object_path(path.relative_to(repo).as_posix())
        objects.append((checksum, objtype, path.read_bytes()))
    started = time.perf_counter()

    batches = [objects[i : i + 128] for i in range(0, len(objects), 128)]
    iterator = iter(batches)

    async def worker(staging: Any) -> None:
        for batch in iterator:
            await staging.write_objects(batch)

    async with manager.store.staging() as staging, anyio.create_task_group() as tg:
        for _ in range(concurrency):
            tg.start_soon(worker, staging)
    return {"seconds": time.perf_counter() - started, "objects": len(objects)}


def run_child(argv: list[str]) -> dict[str, Any]:
    """Run this script as a child; its JSON result plus peak RSS in MB."""
    proc = subprocess.Popen([sys.executable, __file__, *argv], stdout=subprocess.PIPE, text=True)
    memory = TreeMemory(proc.pid)
    assert proc.stdout is not None
    out = proc.stdout.read()
    memory.stop()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"child {argv} failed with status {proc.returncode}")
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    result["peak_rss_mb"] = usage.ru_maxrss / 1024  # kilobytes on Linux
    result["tree_peak_pss_mb"] = memory.peak_pss_mb  # with the writer processes
    result["tree_peak_rss_mb"] = memory.peak_rss_mb
    return result


# -- the references ------------------------------------------------------------------------------


def libostree_route(archive: Path, work: Path, compression: str, fsync: bool) -> dict[str, Any]:
    """``tar -x`` + ``ostree init`` + ``ostree pull-local --untrusted --depth=-1``."""
    extracted, dest = work / "x", work / "dest"
    extracted.mkdir()
    started = time.perf_counter()
    subprocess.run(
        ["tar", *TAR_DECOMPRESS[compression], "-xf", str(archive), "-C", str(extracted)],
        check=True,
    )
    untarred = time.perf_counter()
    subprocess.run([OSTREE, "init", "--mode=archive", f"--repo={dest}"], check=True)
    pull = [OSTREE, "pull-local", "--untrusted", "--depth=-1", f"--repo={dest}"]
    if not fsync:
        pull.append("--disable-fsync")
    proc = subprocess.Popen([*pull, str(extracted / "repo"), "main"], stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError("ostree pull-local failed")
    done = time.perf_counter()
    return {
        "seconds": done - started,
        "tar_seconds": untarred - started,
        "pull_seconds": done - untarred,
        # ru_maxrss: the larger of ostree's peak and this (small) process's RSS at fork
        "pull_peak_rss_mb": usage.ru_maxrss / 1024,
    }


def physical_floor(repo: Path) -> dict[str, Any]:
    """Inflate + SHA-256 of every ``.filez`` (in memory, one core), and our verifier."""
    from ostree_repo.objects import ObjectType, verify_bytes

    filez = []
    for path in sorted((repo / "objects").glob("*/*.filez")):
        filez.append((path.parent.name + path.name.split(".")[0], path.read_bytes()))
    compressed = sum(len(d) for _, d in filez)
    started = time.perf_counter()
    content = 0
    for _, data in filez:
        (length,) = struct.unpack_from(">I", data)
        sha = hashlib.sha256(data[: 8 + length])  # as many header bytes as the real prefix
        body = zlib.decompressobj(-15).decompress(data[8 + length :])
        sha.update(body)
        content += len(body)
    floor = time.perf_counter() - started
    started = time.perf_counter()
    for checksum, data in filez:
        verify_bytes(ObjectType.FILE, checksum, data)
    verify = time.perf_counter() - started
    return {
        "objects": len(filez),
        "compressed_bytes": compressed,
        "content_bytes": content,
        "floor_seconds": floor,
        "verifier_seconds": verify,
    }


def pack(repo: Path, out: Path, compression: str) -> Path:
    """osbuild-composer's layout: ``./compose.json`` and ``./repo/``, tarred and compressed."""
    staging = out.parent / "staging"
    staging.mkdir()
    (staging / "compose.json").write_text(json.dumps({"ref": "main"}))
    os.symlink(repo, staging / "repo")
    tar = subprocess.Popen(
        ["tar", "-C", str(staging), "-h", "-cf", "-", "./compose.json", "./repo"],
        stdout=subprocess.PIPE,
    )
    assert tar.stdout is not None
    with open(out, "wb") as f:
        if COMPRESS[compression]:
            subprocess.run(COMPRESS[compression], stdin=tar.stdout, stdout=f, check=True)
        else:
            shutil.copyfileobj(tar.stdout, f, 1 << 20)
    tar.stdout.close()
    if tar.wait() != 0:
        raise RuntimeError("tar failed")
    return out


# -- the run ---------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one run, fsync-off variants only")
    parser.add_argument("--nfiles", type=int, default=20000, help="files in the synthetic repo")
    parser.add_argument("--compression", default="tar", choices=sorted(COMPRESS))
    parser.add_argument("--repeat", type=int, help="runs per variant (default 3; quick 1)")
    parser.add_argument("--concurrency", type=int, default=4, help="import writer tasks")
    parser.add_argument(
        "--workdir", help="where to unpack and store (default: _repos.scratch_dir())"
    )
    parser.add_argument("--child", choices=["import", "ceiling", "floor"], help=argparse.SUPPRESS)
    parser.add_argument("--store", help=argparse.SUPPRESS)
    parser.add_argument("--archive", help=argparse.SUPPRESS)
    parser.add_argument("--fsync", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child(args)
    compile_package()

    started = time.perf_counter()
    repeat = args.repeat or (1 if args.quick else 3)
    print(f"building or loading the {args.nfiles}-file repo ...", flush=True)
    large = cached_large_repo(args.nfiles)
    base = Path(tempfile.mkdtemp(prefix="bench-import-", dir=args.workdir or scratch_dir()))
    try:
        archive = pack(large.path, base / f"commit.{args.compression}", args.compression)
        size = archive.stat().st_size
        print(f"archive: {args.compression}, {size / MB:.1f} MB", flush=True)
        floor = run_child(["--child", "floor", "--archive", str(large.path)])

        fsyncs = [False] if args.quick else [False, True]
        variants: list[tuple[str, Any]] = []
        for fsync in fsyncs:
            tag = "fsync" if fsync else "nofsync"
            variants.append((f"libostree/{tag}", ("libostree", fsync)))
            variants.append((f"ours-fs/{tag}", ("import", fsync)))
        variants.append(("ours-memory", ("memory", False)))
        variants.append(("store-ceiling/nofsync", ("ceiling", False)))
        runs: dict[str, list[dict[str, Any]]] = {name: [] for name, _ in variants}
        for r in range(repeat):
            order = variants[r % len(variants) :] + variants[: r % len(variants)]
            for name, (kind, fsync) in order:
                work = base / f"run-{r}-{name.replace('/', '-')}"
                work.mkdir()
                print(f"  run {r + 1}/{repeat}: {name} ...", flush=True)
                if kind == "libostree":
                    result = libostree_route(archive, work, args.compression, fsync)
                else:
                    store = "memory://" if kind == "memory" else str(work / "store")
                    target = str(large.path) if kind == "ceiling" else str(archive)
                    result = run_child(
                        [
                            "--child",
                            "ceiling" if kind == "ceiling" else "import",
                            "--store",
                            store,
                            "--archive",
                            target,
                            "--fsync",
                            str(int(fsync)),
                            "--concurrency",
                            str(args.concurrency),
                        ]
                    )
                    if kind != "ceiling" and (
                        result["version"] != 1 or result["commits"] != len(large.commits)
                    ):
                        raise RuntimeError(f"{name}: unexpected import result {result}")
                runs[name].append(result)
                # deleted only at the end: on the development VM, deleting tens of
                # thousands of files was seen to slow file creation for minutes after
                # (ext4 mounted with ``discard``, the likely cause), which would
                # penalise whichever variant runs next
                os.sync()  # nor may it pay for this one's writeback
    finally:
        shutil.rmtree(base, ignore_errors=True)

    def med(name: str, key: str = "seconds") -> float:
        return statistics.median(r[key] for r in runs[name])

    figures: dict[str, Any] = {}
    for name, _ in variants:
        row: dict[str, Any] = {"seconds": med(name), "archive_mb_per_s": size / MB / med(name)}
        if "peak_rss_mb" in runs[name][0]:
            row["peak_rss_mb"] = max(r["peak_rss_mb"] for r in runs[name])
        if runs[name][0].get("writer_peak_rss_mb"):
            row["writer_peak_rss_mb"] = max(r["writer_peak_rss_mb"] for r in runs[name])
        if "tree_peak_pss_mb" in runs[name][0]:
            row["tree_peak_pss_mb"] = max(r["tree_peak_pss_mb"] for r in runs[name])
            row["tree_peak_rss_mb"] = max(r["tree_peak_rss_mb"] for r in runs[name])
        if name.startswith("libostree"):
            row["tar_seconds"] = med(name, "tar_seconds")
            row["pull_seconds"] = med(name, "pull_seconds")
        if name.startswith("ours"):
            row["cpu_seconds"] = med(name, "cpu_seconds")
            row["vs_floor"] = floor["floor_seconds"] / med(name)
        figures[name] = row
    for fsync in fsyncs:
        tag = "fsync" if fsync else "nofsync"
        figures[f"ours-fs/{tag}"]["speedup_vs_libostree"] = (
            figures[f"libostree/{tag}"]["seconds"] / figures[f"ours-fs/{tag}"]["seconds"]
        )
    figures["ours-memory"]["speedup_vs_libostree"] = (
        figures["libostree/nofsync"]["seconds"] / figures["ours-memory"]["seconds"]
    )
    verifier_vs_floor = floor["floor_seconds"] / floor["verifier_seconds"]

    print(f"\n{'variant':24}{'seconds':>9}{'MB/s':>8}{'speedup':>9}{'vs floor':>10}{'RSS MB':>8}")
    for name, row in figures.items():
        print(
            f"{name:24}{row['seconds']:>9.2f}{row['archive_mb_per_s']:>8.1f}"
            f"{row.get('speedup_vs_libostree', float('nan')):>9.2f}"
            f"{row.get('vs_floor', float('nan')):>10.3f}"
            f"{row.get('peak_rss_mb', float('nan')):>8.0f}"
            + (
                f"  (writers: up to {row['writer_peak_rss_mb']:.0f} MB each; all processes: "
                f"{row['tree_peak_pss_mb']:.0f} MB PSS, {row['tree_peak_rss_mb']:.0f} MB RSS)"
                if "writer_peak_rss_mb" in row
                else ""
            )
        )
    print(
        f"physical floor (inflate+sha256 of {floor['objects']} .filez, "
        f"{floor['compressed_bytes'] / MB:.0f} -> {floor['content_bytes'] / MB:.0f} MB): "
        f"{floor['floor_seconds']:.2f} s; our verifier {floor['verifier_seconds']:.2f} s "
        f"({verifier_vs_floor:.2f}x the floor's speed)"
    )
    fs = figures["ours-fs/nofsync"]
    # the importing process and its writers together (PSS: shared pages counted once)
    rss = max(
        max(row.get("tree_peak_pss_mb", 0.0), row.get("peak_rss_mb", 0.0))
        for name, row in figures.items()
        if name.startswith("ours-fs")
    )
    goals = {
        "faster_than_libostree": all(
            figures[f"ours-fs/{'fsync' if f else 'nofsync'}"]["speedup_vs_libostree"] > 1
            for f in fsyncs
        ),
        "half_the_floor_fs": fs["vs_floor"] >= 0.5,
        "half_the_floor_memory": figures["ours-memory"]["vs_floor"] >= 0.5,
        "peak_rss_under_150_mb": rss < 150,
    }
    for goal, ok in goals.items():
        print(f"goal {goal}: {'PASS' if ok else 'FAIL'}")

    results = {
        "benchmark": "import",
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "quick": args.quick,
        "machine": machine_info(),
        "repo": {"nfiles": large.nfiles, "commits": len(large.commits), "deltas": large.deltas},
        "archive": {"compression": args.compression, "bytes": size},
        "repeat": repeat,
        "concurrency": args.concurrency,
        "floor": {**floor, "verifier_vs_floor": verifier_vs_floor},
        "figures": figures,
        "runs": runs,
        "goals": goals,
        "seconds_total": time.perf_counter() - started,
    }
    save_results(RESULTS, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
