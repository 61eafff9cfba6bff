"""Sync speed and memory against ``ostree pull --mirror``, from the same nginx, in one run.

    python benchmarks/bench_sync.py [--quick] [--repeat N] [--concurrency 32]

The ~20 000-file, two-commit synthetic repo (``_repos.cached_large_repo``) is served by
nginx on loopback (a minimal config written to a temporary directory). Each round syncs
it with full history (``--depth=-1``) into a fresh store with our ``sync_repository``
(in a subprocess, default options: deltas passed through, fsync on), and with ``ostree
pull --mirror --depth=-1`` into a fresh archive repo. The variants alternate order each
round; the median wall time is reported with the ratio ostree / ours (2.0 = we are twice
as fast). Peak RSS of our sync is the subprocess's ``ru_maxrss``, read by the child
itself and cross-checked with ``RUSAGE_CHILDREN`` after the first round. ``--quick``
runs one round. Results go to ``benchmarks/results/``.

The stores and repos the rounds write are only removed at the end: on the development
VM (ext4), creating files right after tens of thousands were deleted was measured at
0.3-1 ms per file instead of 20-40 us, for minutes, which penalised whichever variant
ran after a cleanup. Creation speed still drifts over time on that VM (other jobs share
the disk), so compare the variants of one run, not figures across runs.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _repos import (  # noqa: E402
    OSTREE,
    TreeMemory,
    cached_large_repo,
    compile_package,
    scratch_dir,
)

CHILD = r"""
import json, resource, sys, time
import anyio
from ostree_repo.repository import RepositoryManager
from ostree_repo.sync import sync_repository

async def main():
    async with RepositoryManager.open(sys.argv[1]) as manager:
        started = time.perf_counter()
        result = await sync_repository(
            manager, "bench", sys.argv[2], depth=-1, concurrency=int(sys.argv[3]),
            deltas=sys.argv[4] == "1",
        )
        seconds = time.perf_counter() - started
    doc = result.to_json()
    doc["wall"] = seconds
    doc["maxrss_kb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps(doc))

anyio.run(main)
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextmanager
def nginx(root: Path, work: Path) -> Iterator[str]:
    """nginx serving ``root`` on a free loopback port; yields the base URL."""
    port = free_port()
    prefix = work / "nginx"
    (prefix / "logs").mkdir(parents=True)
    conf = prefix / "nginx.conf"
    conf.write_text(
        f"daemon off; worker_processes 1; pid {prefix}/nginx.pid;\n"
        f"error_log {prefix}/logs/error.log;\n"
        "events { worker_connections 1024; }\n"
        "http { access_log off; keepalive_requests 100000;\n"
        f"  client_body_temp_path {prefix}/tmp; proxy_temp_path {prefix}/tmp;\n"
        f"  fastcgi_temp_path {prefix}/tmp; uwsgi_temp_path {prefix}/tmp;\n"
        f"  scgi_temp_path {prefix}/tmp;\n"
        f"  server {{ listen 127.0.0.1:{port}; root {root}; sendfile on; }} }}\n"
    )
    proc = subprocess.Popen(["nginx", "-c", str(conf), "-p", str(prefix)])
    try:
        deadline = time.monotonic() + 15
        while True:
            if proc.poll() is not None:
                raise RuntimeError("nginx exited: " + (prefix / "logs/error.log").read_text())
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise
        yield f"http://127.0.0.1:{port}/"
    finally:
        proc.terminate()
        proc.wait(10)


def run_ours(url: str, work: Path, concurrency: int, deltas: bool) -> dict[str, object]:
    store = work / f"store-{time.monotonic_ns()}"
    cmd = [sys.executable, "-c", CHILD, str(store), url, str(concurrency), "1" if deltas else "0"]
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    memory = TreeMemory(proc.pid)  # the sync and the store's writer processes
    out, _ = proc.communicate()
    memory.stop()
    if proc.returncode != 0:
        raise RuntimeError(f"our sync failed with status {proc.returncode}")
    doc: dict[str, object] = json.loads(out)
    doc["tree_peak_pss_mb"] = memory.peak_pss_mb
    doc["tree_peak_rss_mb"] = memory.peak_rss_mb
    doc["process_wall"] = time.perf_counter() - started
    return doc


def run_ostree(url: str, work: Path) -> dict[str, object]:
    repo = work / f"pull-{time.monotonic_ns()}"
    started = time.perf_counter()
    for args in (
        ["init", "--mode=archive"],
        ["remote", "add", "--no-gpg-verify", "origin", url],
        ["pull", "--mirror", "--depth=-1", "origin"],
    ):
        subprocess.run([OSTREE, *args, f"--repo={repo}"], check=True, capture_output=True)
    wall = time.perf_counter() - started
    objects = sum(1 for _ in (repo / "objects").glob("*/*"))
    return {"process_wall": wall, "objects": objects}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one round")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args(argv)
    rounds = 1 if args.quick else args.repeat
    compile_package()

    repo = cached_large_repo()
    remote_objects = sum(1 for _ in (repo.path / "objects").glob("*/*"))
    print(f"repo: {repo.path} ({remote_objects} object files, commits {len(repo.commits)})")
    times: dict[str, list[float]] = {"ours": [], "ours-nodeltas": [], "ostree": []}
    first_children_rss = None
    ours_rss: list[int] = []
    ours_pss: list[float] = []
    last: dict[str, dict[str, object]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-sync-", dir=scratch_dir()) as tmp:
        work = Path(tmp)
        with nginx(repo.path, work) as url:
            for i in range(rounds):
                order = ["ours", "ours-nodeltas", "ostree"]
                order = order[i % 3 :] + order[: i % 3]
                for variant in order:
                    if variant == "ostree":
                        doc = run_ostree(url, work)
                    else:
                        doc = run_ours(url, work, args.concurrency, variant == "ours")
                        ours_rss.append(int(doc["maxrss_kb"]))  # type: ignore[call-overload]
                        ours_pss.append(float(doc["tree_peak_pss_mb"]))  # type: ignore[arg-type]
                        if first_children_rss is None:
                            first_children_rss = resource.getrusage(
                                resource.RUSAGE_CHILDREN
                            ).ru_maxrss
                    times[variant].append(float(doc["process_wall"]))  # type: ignore[arg-type]
                    last[variant] = doc
                    print(f"round {i + 1} {variant:14} {doc['process_wall']:.2f} s", flush=True)

    med = {k: statistics.median(v) for k, v in times.items()}
    rss_mb = max(ours_rss) / 1024
    rows = [
        ("ostree pull --mirror --depth=-1", med["ostree"], 1.0),
        ("sync_repository (deltas)", med["ours"], med["ostree"] / med["ours"]),
        ("sync_repository (no deltas)", med["ours-nodeltas"], med["ostree"] / med["ours-nodeltas"]),
    ]
    text = "| variant | median s | speed-up vs ostree |\n|---|---:|---:|\n" + "\n".join(
        f"| {name} | {s:.2f} | {r:.2f}x |" for name, s, r in rows
    )
    text += (
        f"\n\npeak RSS of our sync: {rss_mb:.0f} MB (child ru_maxrss; RUSAGE_CHILDREN after "
        f"the first round: {(first_children_rss or 0) / 1024:.0f} MB); with its writer "
        f"processes: {max(ours_pss):.0f} MB PSS (sampled every 20 ms)\n"
        f"objects fetched by us: {last['ours'].get('objects_fetched')}, "
        f"bytes {last['ours'].get('bytes_fetched')}; object files pulled by ostree: "
        f"{last['ostree'].get('objects')}; remote object files: {remote_objects}\n"
    )
    print(text)
    meta = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(),
        "host": platform.node(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "rounds": rounds,
        "concurrency": args.concurrency,
        "times": times,
        "rss_mb": rss_mb,
        "tree_peak_pss_mb": max(ours_pss),
        "ours": last.get("ours"),
    }
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%d-%H%M%S")
    (out / f"bench_sync-{stamp}.json").write_text(json.dumps(meta, indent=2, default=str))
    (out / f"bench_sync-{stamp}.md").write_text(f"{json.dumps(meta, default=str)}\n\n{text}\n")
    print(f"results: {out}/bench_sync-{stamp}.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
