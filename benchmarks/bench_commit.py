"""The commit builder beside ``ostree commit``, on the same ~20 000-file tree, in one run.

    python benchmarks/bench_commit.py [--quick] [--repeat N] [--nfiles N]

The tree is the source tree of the synthetic repo (``_repos.cached_large_repo``: nested
directories, 100 B - 2 MiB files of text-like and incompressible data, ~1 % symlinks;
deterministic, cached in ``benchmarks/.cache/``). Each round, in alternating order:

* **ostree**: ``ostree init --mode=archive`` of a fresh repo, then ``ostree commit
  --tree=dir=T --branch=x --timestamp=...`` (default fsync, and ``--fsync=false``);
* **ours**: what ``ostree-repo commit`` runs (``commit_tree`` of ``tree_from_directory``)
  with the same timestamp into a fresh filesystem store (fsync on, the default, and
  off), in a child process.

Both commit checksums must be identical (the run fails otherwise). Reported: median wall
time per variant, ratio ostree / ours (above 1: we are faster), CPU seconds, and peak RSS
of each child (``ru_maxrss`` from ``wait4``). Goal: no slower than ``ostree commit``.
``--quick``: one round. Results go to ``benchmarks/results/commit.json``.
"""

from __future__ import annotations

import argparse
import calendar
import datetime
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _repos import OSTREE, cached_large_repo, machine_info, save_results, scratch_dir  # noqa: E402

RESULTS = HERE / "results" / "commit.json"
TIMESTAMP = "2024-01-01 00:00:00"
MB = 1e6


def measured(cmd: list[str], **kwargs: Any) -> dict[str, Any]:
    """Run ``cmd``; its stdout, wall and CPU seconds and peak RSS (MB)."""
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, **kwargs)
    assert proc.stdout is not None
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed with status {proc.returncode}")
    return {
        "out": out,
        "seconds": seconds,
        "cpu_seconds": usage.ru_utime + usage.ru_stime,
        "peak_rss_mb": usage.ru_maxrss / 1024,
    }


def ostree_commit(tree: Path, work: Path, fsync: bool) -> dict[str, Any]:
    """``ostree init`` + ``ostree commit`` into a fresh archive repo."""
    repo = work / "repo"
    subprocess.run([OSTREE, "init", "--mode=archive", f"--repo={repo}"], check=True)
    cmd = [
        OSTREE,
        "commit",
        f"--repo={repo}",
        f"--tree=dir={tree}",
        "--branch=x",
        f"--timestamp={TIMESTAMP} +0000",
    ]
    if not fsync:
        cmd.append("--fsync=false")
    result = measured(cmd)
    result["commit"] = result.pop("out").strip()
    return result


CHILD = """
import json, sys, anyio
from ostree_repo.builder import commit_tree, tree_from_directory
from ostree_repo.repository import RepositoryManager

async def main():
    store, tree, fsync, timestamp = sys.argv[1], sys.argv[2], sys.argv[3] == "1", sys.argv[4]
    async with RepositoryManager.open(store, fsync=fsync) as manager:
        commit, _ = await commit_tree(
            manager, "x", tree_from_directory(tree), ref="x", timestamp=int(timestamp)
        )
    print(json.dumps({"commit": commit}))

anyio.run(main)
"""


def ours(tree: Path, work: Path, fsync: bool) -> dict[str, Any]:
    """``commit_tree(tree_from_directory(T))`` into a fresh filesystem store (what
    ``ostree-repo commit`` runs), in a child process."""
    stamp = str(calendar.timegm(time.strptime(TIMESTAMP, "%Y-%m-%d %H:%M:%S")))
    cmd = [sys.executable, "-c", CHILD, str(work / "store"), str(tree), str(int(fsync)), stamp]
    result = measured(cmd)
    result["commit"] = json.loads(result.pop("out"))["commit"]
    return result


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one round")
    parser.add_argument("--repeat", type=int, help="rounds (default 3; quick 1)")
    parser.add_argument("--nfiles", type=int, default=20000, help="files in the tree")
    parser.add_argument(
        "--workdir", help="where repos and stores go (default: _repos.scratch_dir())"
    )
    args = parser.parse_args(argv)
    started = time.perf_counter()
    repeat = args.repeat or (1 if args.quick else 3)
    print(f"building or loading the {args.nfiles}-file tree ...", flush=True)
    tree = cached_large_repo(args.nfiles).tree
    files = sum(len(f) + len(d) for _, d, f in os.walk(tree))
    size = sum(p.stat().st_size for p in tree.rglob("*") if p.is_file() and not p.is_symlink())
    print(f"tree: {tree} ({files} entries, {size / MB:.0f} MB)", flush=True)

    variants = [
        ("ostree/fsync", ostree_commit, True),
        ("ours/fsync", ours, True),
        ("ostree/nofsync", ostree_commit, False),
        ("ours/nofsync", ours, False),
    ]
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name, _, _ in variants}
    base = Path(tempfile.mkdtemp(prefix="bench-commit-", dir=args.workdir or scratch_dir()))
    try:
        for r in range(repeat):
            order = variants if r % 2 == 0 else variants[::-1]
            for name, run, fsync in order:
                work = base / f"run-{r}-{name.replace('/', '-')}"
                work.mkdir()
                print(f"  round {r + 1}/{repeat}: {name} ...", flush=True)
                runs[name].append(run(tree, work, fsync))
                # deleted only at the end: on the development VM, deleting tens of
                # thousands of files was seen to slow file creation for minutes after
                # (ext4 mounted with ``discard``, the likely cause), which would
                # penalise whichever variant runs next
                os.sync()  # nor may it pay for this one's writeback
    finally:
        shutil.rmtree(base, ignore_errors=True)

    checksums = {run["commit"] for rows in runs.values() for run in rows}
    identical = len(checksums) == 1
    figures: dict[str, dict[str, float]] = {}
    for name, rows in runs.items():
        figures[name] = {
            "seconds": statistics.median(r["seconds"] for r in rows),
            "cpu_seconds": statistics.median(r["cpu_seconds"] for r in rows),
            "peak_rss_mb": max(r["peak_rss_mb"] for r in rows),
        }
    for tag in ("fsync", "nofsync"):
        figures[f"ours/{tag}"]["speedup_vs_ostree"] = (
            figures[f"ostree/{tag}"]["seconds"] / figures[f"ours/{tag}"]["seconds"]
        )
    print(f"\n{'variant':16}{'seconds':>9}{'CPU s':>8}{'speedup':>9}{'RSS MB':>8}")
    for name, row in figures.items():
        print(
            f"{name:16}{row['seconds']:>9.2f}{row['cpu_seconds']:>8.2f}"
            f"{row.get('speedup_vs_ostree', float('nan')):>9.2f}{row['peak_rss_mb']:>8.0f}"
        )
    print(f"commit checksums identical: {identical} ({', '.join(sorted(checksums))})")
    goals = {
        "checksums_identical": identical,
        "no_slower_than_ostree": all(
            figures[f"ours/{t}"]["speedup_vs_ostree"] >= 1 for t in ("fsync", "nofsync")
        ),
    }
    for goal, ok in goals.items():
        print(f"goal {goal}: {'PASS' if ok else 'FAIL'}")
    results = {
        "benchmark": "commit",
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "quick": args.quick,
        "machine": machine_info(),
        "tree": {"path": str(tree), "entries": files, "bytes": size},
        "repeat": repeat,
        "figures": figures,
        "runs": runs,
        "goals": goals,
        "seconds_total": time.perf_counter() - started,
    }
    save_results(RESULTS, results)
    return 0 if identical else 1


if __name__ == "__main__":
    sys.exit(main())
