"""Our static-delta generator beside ``ostree static-delta generate``, in one run.

    python benchmarks/bench_deltas.py [--quick] [--repeat N] [--nfiles N] [--no-scratch]

The repository is the synthetic one of ``_repos.cached_large_repo`` (~20 000 files, two
commits A and B, B modifying ~5 % of A's files, adding ~1 % and deleting ~1 %). Each
round, in alternating order (ABBA), for the delta A -> B and the from-scratch delta to B:

* **ostree**: ``ostree static-delta generate --from A --to B --filename DIR/superblock``
  (``--empty`` from scratch) in the archive repository;
* **ours**: :func:`ostree_repo.deltas.generate_delta` on that repository opened as our
  filesystem store (a hard-linked copy), writing the superblock and parts into a
  directory, in a child process with its default worker processes.

Then the real client applies each delta: ``ostree static-delta apply-offline`` into a
fresh bare-user repository that holds A (for A -> B; prepared untimed with
``pull-local``) or nothing (from scratch), followed by ``ostree fsck`` (untimed) of
the result.

Reported: median wall time of generation and of the client's apply, their ratios ours /
ostree (goals: generation <= 1.0, apply <= 1.1), total delta size (superblock + parts;
goal <= 1.05x), and the peak RSS of our generator with its worker processes (sampled
sum over the process tree, goal < 300 MB); libostree's own ``ru_maxrss`` for reference.
``--quick``: one round. Results go to ``benchmarks/results/deltas.json``.
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
    OSTREE,
    TreeMemory,
    cached_large_repo,
    compile_package,
    machine_info,
    save_results,
    scratch_dir,
)

RESULTS = HERE / "results" / "deltas.json"
MB = 1e6
GOALS = {"generate": 1.0, "size": 1.05, "apply": 1.1}
RSS_GOAL_MB = 300.0

CHILD = """
import json, sys, time, anyio
from pathlib import Path
from ostree_repo.deltas import generate_delta
from ostree_repo.store import open_store

async def main():
    store_path, start, end, out = sys.argv[1], sys.argv[2] or None, sys.argv[3], Path(sys.argv[4])
    out.mkdir(parents=True)
    async with open_store(store_path) as store:
        async def write(index, data):
            (out / str(index)).write_bytes(data)
            return index
        delta = await generate_delta(store, start, end, write_part=write)
    (out / "superblock").write_bytes(delta.superblock)
    print(json.dumps(delta.stats.to_json()))

anyio.run(main)
"""


def _ostree(*args: str) -> None:
    subprocess.run([OSTREE, *args], check=True, capture_output=True, stdin=subprocess.DEVNULL)


def timed(cmd: list[str], *, memory: bool = False, quiet: bool = False) -> dict[str, Any]:
    """Run ``cmd``: its stdout, wall and CPU seconds, ``ru_maxrss`` and (``memory``) the
    sampled peak RSS and PSS of its process tree (MB). ``quiet``: drop its stderr
    (``static-delta generate`` reports its progress there)."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL if quiet else None,
        text=True,
    )
    sampler = TreeMemory(proc.pid) if memory else None
    assert proc.stdout is not None
    out = proc.stdout.read()
    if sampler is not None:
        sampler.stop()
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed")
    result: dict[str, Any] = {
        "out": out,
        "seconds": seconds,
        "cpu_seconds": usage.ru_utime + usage.ru_stime,
        "maxrss_mb": usage.ru_maxrss / 1024,
    }
    if sampler is not None:
        result["tree_rss_mb"] = sampler.peak_rss_mb
        result["tree_pss_mb"] = sampler.peak_pss_mb
    return result


def size_of(directory: Path) -> int:
    """Bytes of a delta directory (superblock and parts)."""
    return sum(p.stat().st_size for p in directory.iterdir())


def generate(tool: str, repo: Path, start: str | None, end: str, out: Path) -> dict[str, Any]:
    """One generation into ``out`` (a new directory)."""
    if tool == "ostree":
        out.mkdir(parents=True)
        cmd = [OSTREE, "static-delta", "generate", f"--repo={repo}", f"--to={end}"]
        cmd += [f"--from={start}"] if start else ["--empty"]
        result = timed([*cmd, f"--filename={out / 'superblock'}"], memory=True, quiet=True)
    else:
        result = timed(
            [sys.executable, "-c", CHILD, str(repo), start or "", end, str(out)], memory=True
        )
        result["stats"] = json.loads(result["out"])
    result.pop("out")
    result["size"] = size_of(out)
    return result


def apply(source: Path, start: str | None, delta: Path, work: Path) -> dict[str, Any]:
    """``static-delta apply-offline`` of ``delta`` into a fresh bare-user repository
    holding ``start`` (prepared untimed); then ``fsck`` (untimed)."""
    client = work / "client"
    _ostree("init", "--mode=bare-user", f"--repo={client}")
    if start:
        _ostree("pull-local", f"--repo={client}", str(source), start)
    os.sync()
    result = timed(
        [OSTREE, "static-delta", "apply-offline", f"--repo={client}", str(delta / "superblock")]
    )
    result.pop("out")
    _ostree("fsck", f"--repo={client}")
    return result


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one round")
    parser.add_argument("--repeat", type=int, help="rounds (default 3; quick 1)")
    parser.add_argument("--nfiles", type=int, default=20000, help="files in the tree")
    parser.add_argument("--no-scratch", action="store_true", help="only the A -> B delta")
    parser.add_argument("--workdir", help="where copies go (default: _repos.scratch_dir())")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    repeat = args.repeat or (1 if args.quick else 3)
    compile_package()
    print(f"building or loading the {args.nfiles}-file repository ...", flush=True)
    large = cached_large_repo(args.nfiles)
    a, b = large.commits[0], large.commits[-1]
    kinds = {"delta": a} if args.no_scratch else {"delta": a, "scratch": None}
    base = Path(tempfile.mkdtemp(prefix="bench-deltas-", dir=args.workdir or scratch_dir()))
    runs: dict[str, list[dict[str, Any]]] = {}
    try:
        repo = base / "repo"  # both tools read the same copy (hard links: no data copied)
        shutil.copytree(large.path, repo, copy_function=os.link)
        shutil.rmtree(repo / "deltas", ignore_errors=True)
        for r in range(repeat):
            tools = ("ostree", "ours") if r % 2 == 0 else ("ours", "ostree")
            for kind, start in kinds.items():
                for tool in tools:
                    name = f"{kind}/{tool}"
                    out = base / f"{kind}-{tool}-{r}"
                    print(f"  round {r + 1}/{repeat}: generate {name} ...", flush=True)
                    row = generate(tool, repo, start, b, out)
                    runs.setdefault(f"generate/{name}", []).append(row)
                    os.sync()
                for tool in tools:
                    name = f"{kind}/{tool}"
                    print(f"  round {r + 1}/{repeat}: apply {name} ...", flush=True)
                    work = base / f"apply-{kind}-{tool}-{r}"
                    work.mkdir()
                    runs.setdefault(f"apply/{name}", []).append(
                        apply(repo, start, base / f"{kind}-{tool}-{r}", work)
                    )
                    shutil.rmtree(work)
                    os.sync()
    finally:
        shutil.rmtree(base, ignore_errors=True)

    figures: dict[str, Any] = {}
    goals: dict[str, bool] = {}
    for kind in kinds:
        row: dict[str, Any] = {}
        for step in ("generate", "apply"):
            for tool in ("ostree", "ours"):
                rows = runs[f"{step}/{kind}/{tool}"]
                row[f"{step}_seconds_{tool}"] = statistics.median(x["seconds"] for x in rows)
                row[f"{step}_cpu_seconds_{tool}"] = statistics.median(
                    x["cpu_seconds"] for x in rows
                )
            row[f"{step}_ratio"] = row[f"{step}_seconds_ours"] / row[f"{step}_seconds_ostree"]
            goals[f"{kind}_{step}"] = row[f"{step}_ratio"] <= GOALS[step]
        gen = {tool: runs[f"generate/{kind}/{tool}"] for tool in ("ostree", "ours")}
        row["size_ostree"] = statistics.median(x["size"] for x in gen["ostree"])
        row["size_ours"] = statistics.median(x["size"] for x in gen["ours"])
        row["size_ratio"] = row["size_ours"] / row["size_ostree"]
        goals[f"{kind}_size"] = row["size_ratio"] <= GOALS["size"]
        row["peak_rss_mb_ours"] = max(x["tree_rss_mb"] for x in gen["ours"])
        row["peak_pss_mb_ours"] = max(x["tree_pss_mb"] for x in gen["ours"])
        row["peak_rss_mb_ostree"] = max(x["tree_rss_mb"] for x in gen["ostree"])
        goals[f"{kind}_rss"] = row["peak_rss_mb_ours"] < RSS_GOAL_MB
        row["stats_ours"] = gen["ours"][-1]["stats"]
        figures[kind] = row

    print(f"\n{'':10}{'ostree s':>10}{'ours s':>10}{'ratio':>8}")
    for kind, row in figures.items():
        for step in ("generate", "apply"):
            print(
                f"{kind + ' ' + step[:3]:10}{row[f'{step}_seconds_ostree']:>10.2f}"
                f"{row[f'{step}_seconds_ours']:>10.2f}{row[f'{step}_ratio']:>8.2f}"
            )
        print(
            f"{kind + ' size':10}{row['size_ostree'] / MB:>10.2f}{row['size_ours'] / MB:>10.2f}"
            f"{row['size_ratio']:>8.3f}   (MB)"
        )
        print(
            f"{kind + ' RSS':10}{row['peak_rss_mb_ostree']:>10.0f}{row['peak_rss_mb_ours']:>10.0f}"
            f"           (MB, peak over the process tree; ours PSS {row['peak_pss_mb_ours']:.0f})"
        )
    for goal, ok in goals.items():
        print(f"goal {goal}: {'PASS' if ok else 'FAIL'}")
    results = {
        "benchmark": "deltas",
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "quick": args.quick,
        "machine": machine_info(),
        "repository": {"path": str(large.path), "files": large.files, "commits": [a, b]},
        "repeat": repeat,
        "figures": figures,
        "goals": goals,
        "runs": runs,
        "seconds_total": time.perf_counter() - started,
    }
    save_results(RESULTS, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
