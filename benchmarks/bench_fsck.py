"""fsck beside ``ostree fsck``, on the same objects, in the same run.

    python benchmarks/bench_fsck.py [--quick] [--repeat N] [--nfiles N]

The workload is the synthetic ~20,000-file repository (``_repos.cached_large_repo``: two
commits, 21,639 objects), made by the real ``ostree`` CLI and imported once into a
filesystem store cached in ``benchmarks/.cache/``. Two commands check every object of it,
from a warm page cache (one untimed run of each first):

* ``ostree fsck --repo=REPO`` on the repository itself (what it checks: each commit's
  reachable objects, each read, decompressed and hashed, metadata validated);
* ``ostree-repo --store STORE fsck NAME``: the same objects (plus the version's blobs),
  the CLI as a user runs it (interpreter start included, as ``ostree``'s start is), with
  its default checker processes; and with ``--workers 0`` (worker threads only) for
  comparison.

Rounds alternate the order (ABBA). Each figure is the median of ``--repeat`` rounds
(default 5), with the CPU time each used (``wait4``: ours with its checker processes),
which a busy machine disturbs less. Memory: ``ostree``'s peak RSS (``ru_maxrss`` from
``wait4``); ours, the largest sum of RSS (and of PSS) over our process and its checker
processes, sampled every 20 ms (``_repos.TreeMemory``), beside our process's own peak.
Goals: time ratio ours / ostree <= 1.0, peak RSS of the whole job < 150 MB. Results go to
``benchmarks/results/fsck.json``; the exit status is 1 if either tool reported a problem.
"""

from __future__ import annotations

import argparse
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

from _repos import (  # noqa: E402
    CACHE_DIR,
    LargeRepo,
    TreeMemory,
    cached_large_repo,
    compile_package,
    machine_info,
    save_results,
)

RESULTS = HERE / "results" / "fsck.json"
OSTREE = shutil.which("ostree") or "/usr/bin/ostree"
NAME = "bench"
READY = ".ready"
GOAL_RATIO = 1.0
GOAL_RSS_MB = 150.0


def build_store(repo: LargeRepo) -> Path:
    """The repository imported into a filesystem store (cached beside the repo)."""
    store = CACHE_DIR / f"fsck-store-{repo.root.name}"
    ready = store.with_name(store.name + READY)
    if ready.is_file() and store.is_dir():
        return store
    shutil.rmtree(store, ignore_errors=True)
    print(f"importing {repo.path} into {store} (once)...", flush=True)
    subprocess.run(
        [sys.executable, "-m", "ostree_repo", "--store", str(store), "import-dir", NAME,
         str(repo.path)],
        check=True,
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    ready.write_text("ok\n")
    return store


def run_ostree(repo: Path) -> dict[str, Any]:
    """One ``ostree fsck``: wall time and peak RSS."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        [OSTREE, "fsck", "--quiet", f"--repo={repo}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    assert proc.stderr is not None
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - started
    code = os.waitstatus_to_exitcode(status)
    return {
        "seconds": seconds,
        "cpu_seconds": usage.ru_utime + usage.ru_stime,
        "peak_rss_mb": usage.ru_maxrss / 1024,
        "ok": code == 0,
        "error": err.decode(errors="replace").strip()[-500:] if code else "",
    }


def run_ours(store: Path, workers: list[str]) -> dict[str, Any]:
    """One ``ostree-repo fsck``: wall time, peak RSS of it and of its process tree."""
    with tempfile.TemporaryFile() as errors:
        started = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-m", "ostree_repo", "--store", str(store), *workers, "fsck",
             NAME, "--json"],
            stdout=subprocess.PIPE,
            stderr=errors,
        )  # fmt: skip
        memory = TreeMemory(proc.pid)
        assert proc.stdout is not None
        out = proc.stdout.read()
        memory.stop()
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - started
        errors.seek(0)
        err = errors.read()
    code = os.waitstatus_to_exitcode(status)
    doc = json.loads(out) if out.strip() else {}
    return {
        "seconds": seconds,
        "cpu_seconds": usage.ru_utime + usage.ru_stime,  # with the reaped checker processes
        "peak_rss_mb": usage.ru_maxrss / 1024,
        "tree_peak_rss_mb": memory.peak_rss_mb,
        "tree_peak_pss_mb": memory.peak_pss_mb,
        "ok": code == 0 and bool(doc.get("ok")),
        "objects": doc.get("objects"),
        "error": err.decode(errors="replace").strip()[-500:],
    }


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one round")
    parser.add_argument("--repeat", type=int, default=5, help="rounds (default 5)")
    parser.add_argument("--nfiles", type=int, default=20000, help="files per commit")
    args = parser.parse_args(argv)
    rounds = 1 if args.quick else max(1, args.repeat)
    compile_package()
    began = time.perf_counter()
    repo = cached_large_repo(args.nfiles)
    store = build_store(repo)
    variants = {
        "ostree": lambda: run_ostree(repo.path),
        "ours": lambda: run_ours(store, []),
        "ours_threads": lambda: run_ours(store, ["--workers", "0"]),
    }
    for run in variants.values():  # warm the page cache; check that all are clean
        result = run()
        if not result["ok"]:
            print(f"a warm-up run found problems: {result}", file=sys.stderr)
            return 1
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in variants}
    order = list(variants)
    for i in range(rounds):
        for name in order if i % 2 == 0 else order[::-1]:  # ABBA
            runs[name].append(variants[name]())
        line = "  ".join(f"{n} {runs[n][-1]['seconds']:.2f}s" for n in order)
        print(f"round {i + 1}/{rounds}: {line}  (load {os.getloadavg()[0]:.1f})", flush=True)

    def median(name: str, field: str) -> float:
        return statistics.median(r[field] for r in runs[name])

    summary: dict[str, Any] = {}
    for name in order:
        summary[name] = {
            "seconds": median(name, "seconds"),
            "cpu_seconds": median(name, "cpu_seconds"),
            "peak_rss_mb": median(name, "peak_rss_mb"),
        }
        if name != "ostree":
            summary[name]["tree_peak_rss_mb"] = max(r["tree_peak_rss_mb"] for r in runs[name])
            summary[name]["tree_peak_pss_mb"] = max(r["tree_peak_pss_mb"] for r in runs[name])
            summary[name]["ratio"] = summary[name]["seconds"] / summary["ostree"]["seconds"]
    ok = all(r["ok"] for rs in runs.values() for r in rs)
    print(f"\nfsck of {runs['ours'][0]['objects']} objects, median of {rounds} rounds:")
    print(f"  ostree fsck      {summary['ostree']['seconds']:6.2f} s  "
          f"CPU {summary['ostree']['cpu_seconds']:5.2f} s  "
          f"peak RSS {summary['ostree']['peak_rss_mb']:5.1f} MB")  # fmt: skip
    for name in order[1:]:
        s = summary[name]
        print(
            f"  {name:15}  {s['seconds']:6.2f} s  CPU {s['cpu_seconds']:5.2f} s  "
            f"ratio {s['ratio']:.2f}  "
            f"peak RSS (all processes) {s['tree_peak_rss_mb']:5.1f} MB, "
            f"PSS {s['tree_peak_pss_mb']:5.1f} MB"
        )
    ours = summary["ours"]
    print(
        f"goals: ratio <= {GOAL_RATIO}: {'met' if ours['ratio'] <= GOAL_RATIO else 'MISSED'}; "
        f"peak RSS < {GOAL_RSS_MB:.0f} MB: "
        f"{'met' if ours['tree_peak_rss_mb'] < GOAL_RSS_MB else 'MISSED'}"
    )
    save_results(
        RESULTS,
        {
            "benchmark": "fsck",
            "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "machine": machine_info(),
            "repo": str(repo.path),
            "rounds": rounds,
            "summary": summary,
            "runs": runs,
            "seconds_total": time.perf_counter() - began,
        },
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
