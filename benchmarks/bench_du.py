"""``ostree-repo du`` on a ~20 000-object repository, beside GNU ``du`` of the same repo.

    python benchmarks/bench_du.py [--quick] [--repeat N] [--nfiles N]

The store (built once, cached in ``benchmarks/.cache/``): the synthetic repo
(``_repos.cached_large_repo``: ~20 000 files, 2 commits, one static delta) imported as
``big``, its ``main`` copied into ``prod`` and into four more repositories (so the
accounting has other repositories to count shared objects against), and a ``staging``
repository with a retention policy. Each round, in alternating order, a fresh process:

* **gnu-du**: ``du -sb`` of the libostree repository directory (what it takes on disk);
* **du**: ``ostree-repo du big --json`` (version totals, unique bytes against the whole
  store);
* **du-commit**: ``ostree-repo du big --by commit --json``;
* **du-ref**: ``ostree-repo du prod --by ref --json``;

and in one process, ``accounting.usage`` called again and again: the first call reads
the records and closures, the later ones find the closures in the manager's cache.

Checked: the object bytes of ``big`` (its closures' sizes) equal the bytes of the
libostree repo's object files. Reported: median seconds (and CPU) of each, the ratio
gnu-du / du. Goal: ``du`` under 2 s after the first run (the issue's figure).
``--quick``: one round. Results go to ``benchmarks/results/du.json``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _repos import (  # noqa: E402
    CACHE_DIR,
    cached_large_repo,
    compile_package,
    machine_info,
    save_results,
)
from bench_commit import measured  # noqa: E402

RESULTS = HERE / "results" / "du.json"
GOAL_SECONDS = 2.0

BUILD = """
import sys, anyio
from ostree_repo.importing import import_directory
from ostree_repo.repository import RepositoryManager

async def main():
    store, repo = sys.argv[1], sys.argv[2]
    async with RepositoryManager.open(store) as m:
        await import_directory(m, "big", repo)
        for name in ("prod", "qa1", "qa2", "qa3", "qa4"):
            await m.create_repository(name)
            await m.copy("big", name, refs=["main"])
        await m.create_repository("staging", settings={"retention": {"versions": 2}})
        await m.copy("big", "staging", whole=True)

anyio.run(main)
"""

IN_PROCESS = """
import json, sys, time, anyio
from ostree_repo.repository import RepositoryManager
from ostree_repo.repository.accounting import usage

async def main():
    store, rounds = sys.argv[1], int(sys.argv[2])
    async with RepositoryManager.open(store) as m:
        times = {}
        for by in (None, "commit"):
            runs = []
            for _ in range(rounds):
                started = time.perf_counter()
                report = await usage(m, "big", by=by)
                runs.append(time.perf_counter() - started)
            times[by or "version"] = runs
        record = await m.repository("big").version()
        print(json.dumps({"times": times, "object_bytes": await m.version_size(record),
                          "report": report.to_json()}))

anyio.run(main)
"""


def build_store(repo: Path, nfiles: int) -> Path:
    """The benchmark's store, built once."""
    store = CACHE_DIR / f"du-store-n{nfiles}-v1"
    ready = store.with_suffix(".ready")
    if not ready.exists():
        print(f"building {store} ...", flush=True)
        if store.exists():
            subprocess.run(["rm", "-rf", str(store)], check=True)
        subprocess.run([sys.executable, "-c", BUILD, str(store), str(repo)], check=True)
        ready.touch()
    return store


def file_bytes(directory: Path) -> int:
    """Bytes of the object files of a libostree repo."""
    total = 0
    for path in (directory / "objects").rglob("*"):
        if path.suffix in (".commit", ".dirtree", ".dirmeta", ".filez") and path.is_file():
            total += path.stat().st_size
    return total


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one round")
    parser.add_argument("--repeat", type=int, help="rounds (default 5; quick 1)")
    parser.add_argument("--nfiles", type=int, default=20000, help="files in the repo")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    repeat = args.repeat or (1 if args.quick else 5)
    compile_package()
    large = cached_large_repo(args.nfiles)
    store = build_store(large.path, args.nfiles)
    cli = [sys.executable, "-m", "ostree_repo", "--store", str(store)]
    variants = {
        "gnu-du": ["du", "-sb", str(large.path)],
        "du": [*cli, "du", "big", "--json"],
        "du-commit": [*cli, "du", "big", "--by", "commit", "--json"],
        "du-ref": [*cli, "du", "prod", "--by", "ref", "--json"],
    }
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in variants}
    measured(variants["du"])  # the first run (cold page cache for the records)
    for r in range(repeat):
        order = list(variants) if r % 2 == 0 else list(variants)[::-1]
        for name in order:
            print(f"  round {r + 1}/{repeat}: {name} ...", flush=True)
            runs[name].append(measured(variants[name]))
    inner = json.loads(
        measured([sys.executable, "-c", IN_PROCESS, str(store), str(max(repeat, 3))])["out"]
    )
    report = json.loads(runs["du"][-1]["out"])
    objects_ok = inner["object_bytes"] == file_bytes(large.path)
    figures: dict[str, dict[str, float]] = {}
    for name, rows in runs.items():
        figures[name] = {
            "seconds": statistics.median(r["seconds"] for r in rows),
            "cpu_seconds": statistics.median(r["cpu_seconds"] for r in rows),
        }
    for name in ("du", "du-commit", "du-ref"):
        figures[name]["ratio_gnu_du"] = figures["gnu-du"]["seconds"] / figures[name]["seconds"]
    for kind, times in inner["times"].items():
        figures[f"in-process/{kind}/first"] = {"seconds": times[0]}
        figures[f"in-process/{kind}/again"] = {"seconds": statistics.median(times[1:])}
    print(f"\n{'variant':28}{'seconds':>9}{'CPU s':>8}{'gnu/ours':>10}")
    for name, row in figures.items():
        print(
            f"{name:28}{row['seconds']:>9.3f}{row.get('cpu_seconds', float('nan')):>8.2f}"
            f"{row.get('ratio_gnu_du', float('nan')):>10.2f}"
        )
    print(
        f"big: {report['bytes']} bytes, {report['objects']} objects, "
        f"{report['unique_bytes']} only its own; store live {report['live_bytes']}"
    )
    print(f"object bytes equal the libostree repo's object files: {objects_ok}")
    goals = {
        "object_bytes_match": objects_ok,
        "du_under_2s": all(figures[n]["seconds"] < GOAL_SECONDS for n in runs if n != "gnu-du"),
    }
    for goal, ok in goals.items():
        print(f"goal {goal}: {'PASS' if ok else 'FAIL'}")
    for rows in runs.values():
        for row in rows:
            row.pop("out")
    results = {
        "benchmark": "du",
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "quick": args.quick,
        "machine": machine_info(),
        "repo": {"path": str(large.path), "commits": large.commits},
        "repeat": repeat,
        "figures": figures,
        "runs": runs,
        "goals": goals,
        "seconds_total": time.perf_counter() - started,
    }
    save_results(RESULTS, results)
    return 0 if all(goals.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
