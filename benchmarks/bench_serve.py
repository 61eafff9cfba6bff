"""Serving speed: our ASGI app under granian and uvicorn beside nginx, in one run.

    python benchmarks/bench_serve.py [--quick] [--servers granian[,uvicorn]] [--rounds N]

The workload is the synthetic ~20,000-file repository (``_repos.cached_large_repo``),
imported once into a filesystem store cached in ``benchmarks/.cache/``. Its version is
exported (hard-linked, so nginx reads the very same files) and served by:

* ``nginx``: one worker, ``sendfile``, a static export of the version (the ceiling);
* ``granian``/``uvicorn``: ``ostree-repo serve --server NAME`` (one worker process).

Two measurements:

1. **pull**: ``ostree pull --mirror`` of the repository into a fresh archive repo (on
   ``/dev/shm`` when there is one, ``core.fsync=false``: the client's disk is not what is
   measured), in interleaved rounds (5 by default; ABBA order: nginx first in even rounds,
   last in odd ones, so a drift in the machine's load hits both sides alike). Reported:
   wall time, median over the rounds; the ratio of the medians to nginx (goal: <= 1.2)
   and the median of the per-round ratios; and the CPU time the server's processes used
   (steadier than wall time on a busy machine: the client needs a core of its own);
2. **small objects**: requests per second for small ``.filez`` objects (<= 4 KiB), with
   ``wrk`` (2 threads, 64 connections) cycling through 2,000 object URLs, or with a
   Python load generator (httpx, 64 concurrent requests) when ``wrk`` is not installed.

The client and the servers share the machine's cores, as they would on a small host. The
results go to ``benchmarks/results/bench_serve-*.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _repos import CACHE_DIR, LargeRepo, cached_large_repo  # noqa: E402

from ostree_repo.export import export_version  # noqa: E402
from ostree_repo.importing import import_directory  # noqa: E402
from ostree_repo.repository import RepositoryManager  # noqa: E402

OSTREE = shutil.which("ostree") or "/usr/bin/ostree"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
NAME = "large"
READY = ".ready"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for_port(port: int, proc: subprocess.Popen[bytes], deadline: float = 60.0) -> None:
    """Poll until something accepts connections on the port (or the process died)."""
    end = time.monotonic() + deadline
    while True:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with status {proc.returncode}")
        if time.monotonic() > end:
            raise TimeoutError(f"nothing listening on port {port} after {deadline} s")
        time.sleep(0.02)


def stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGINT) -> None:
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _stat(pid: int) -> list[str]:
    text = Path(f"/proc/{pid}/stat").read_text()
    return text[text.rindex(")") + 2 :].split()  # fields from 3 (state) on


def tree_cpu(pid: int) -> float:
    """CPU seconds used so far by process ``pid`` and its children (Linux /proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = _stat(int(entry.name))
        except (OSError, ValueError):
            continue
        if int(entry.name) == pid or int(fields[1]) == pid:
            total += (int(fields[11]) + int(fields[12])) / tick  # utime + stime
    return total


def build_store(repo: LargeRepo) -> Path:
    """The repository imported into a filesystem store (cached beside the repo)."""
    store = CACHE_DIR / f"serve-store-{repo.root.name}"
    ready = store.with_name(store.name + READY)
    if ready.is_file() and store.is_dir():
        return store
    shutil.rmtree(store, ignore_errors=True)
    print(f"importing {repo.path} into {store} (once)...", flush=True)

    async def run() -> None:
        async with RepositoryManager.open(str(store), fsync=False) as m:
            await import_directory(m, NAME, repo.path)

    anyio.run(run)
    ready.write_text("ok\n")
    return store


def export(store: Path, work: Path) -> Path:
    """The latest version as a static directory (hard links into the store)."""

    async def run() -> None:
        async with RepositoryManager.open(str(store), create=False) as m:
            await export_version(m, NAME, work / NAME)

    anyio.run(run)
    return work / NAME


@contextmanager
def nginx(root: Path, work: Path) -> Iterator[tuple[str, int]]:
    """nginx serving ``root`` (one worker, sendfile) on a free port; yields (URL, pid)."""
    port = free_port()
    prefix = work / "nginx"
    (prefix / "logs").mkdir(parents=True, exist_ok=True)
    user = "user root;\n" if os.geteuid() == 0 else ""
    (prefix / "nginx.conf").write_text(
        f"""{user}worker_processes 1;
daemon off;
error_log {prefix}/logs/error.log;
pid {prefix}/nginx.pid;
events {{ worker_connections 1024; }}
http {{
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_requests 100000;
    access_log off;
    default_type application/octet-stream;
    server {{
        listen 127.0.0.1:{port};
        root {root};
    }}
}}
"""
    )
    proc = subprocess.Popen(
        [NGINX, "-c", str(prefix / "nginx.conf"), "-p", str(prefix)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, proc)
        yield f"http://127.0.0.1:{port}", proc.pid
    finally:
        stop(proc, signal.SIGQUIT)


@contextmanager
def ours(store: Path, server: str, work: Path) -> Iterator[tuple[str, int]]:
    """``ostree-repo serve --server SERVER`` on a free port; yields (URL, pid)."""
    port = free_port()
    log = open(work / f"{server}.log", "wb")  # noqa: SIM115 - closed below
    cmd = [sys.executable, "-m", "ostree_repo", "--store", str(store), "serve"]
    proc = subprocess.Popen(
        [*cmd, "--port", str(port), "--server", server],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for_port(port, proc)
        yield f"http://127.0.0.1:{port}", proc.pid
    finally:
        stop(proc)
        log.close()


def ostree(*args: str, repo: Path) -> None:
    subprocess.run([OSTREE, *args, f"--repo={repo}"], check=True, capture_output=True)


def pull(url: str, scratch: Path, expected: str) -> float:
    """Seconds for ``ostree pull --mirror`` of the repository at ``url``."""
    client = scratch / "client"
    shutil.rmtree(client, ignore_errors=True)
    ostree("init", "--mode=archive", repo=client)
    ostree("config", "set", "core.fsync", "false", repo=client)
    ostree("remote", "add", "--no-gpg-verify", "origin", url, repo=client)
    start = time.perf_counter()
    ostree("pull", "--mirror", "origin", repo=client)
    elapsed = time.perf_counter() - start
    head = (client / "refs" / "heads" / "main").read_text().strip()
    if head != expected:
        raise RuntimeError(f"pull from {url} gave main={head}, expected {expected}")
    shutil.rmtree(client, ignore_errors=True)
    return elapsed


def small_objects(export_dir: Path, count: int = 2000) -> list[str]:
    """URL paths of small content objects (<= 4 KiB), in a stable order."""
    found = []
    for path in sorted((export_dir / "objects").glob("*/*.filez")):
        if path.stat().st_size <= 4096:
            found.append(f"/{NAME}/{path.relative_to(export_dir).as_posix()}")
            if len(found) >= count:
                break
    return found


def wrk_rate(url: str, paths: list[str], work: Path, seconds: int, connections: int) -> float:
    """Requests per second measured by wrk cycling through ``paths``."""
    listing = work / "paths.txt"
    listing.write_text("\n".join(paths) + "\n")
    script = work / "paths.lua"
    script.write_text(
        f"""local paths = {{}}
for line in io.lines("{listing}") do paths[#paths + 1] = line end
local i = 0
request = function()
  i = i + 1
  return wrk.format("GET", paths[(i % #paths) + 1])
end
"""
    )
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "-s", str(script), url],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    if "Non-2xx" in out:
        raise RuntimeError(f"errors while measuring {url}:\n{out}")
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if match is None:
        raise RuntimeError(f"cannot read wrk's output:\n{out}")
    return float(match.group(1))


def python_rate(url: str, paths: list[str], seconds: int, connections: int) -> float:
    """Requests per second with httpx, ``connections`` requests in flight."""

    async def run() -> float:
        done = 0
        end = time.perf_counter() + seconds
        limits = httpx.Limits(max_connections=connections)
        async with httpx.AsyncClient(base_url=url, limits=limits) as client:

            async def worker(offset: int) -> None:
                nonlocal done
                i = offset
                while time.perf_counter() < end:
                    reply = await client.get(paths[i % len(paths)])
                    if reply.status_code != 200:
                        raise RuntimeError(f"{reply.status_code} for {paths[i % len(paths)]}")
                    done += 1
                    i += connections

            start = time.perf_counter()
            await asyncio.gather(*(worker(n) for n in range(connections)))
            return done / (time.perf_counter() - start)

    return asyncio.run(run())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="2 rounds, 5 s load runs")
    parser.add_argument("--servers", default="granian", help="our servers (granian,uvicorn)")
    parser.add_argument("--rounds", type=int, default=None, help="pull rounds (5; quick 2)")
    parser.add_argument("--no-load", action="store_true", help="skip the small-object load")
    parser.add_argument("--seconds", type=int, default=None, help="load run length (10; quick 5)")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--files", type=int, default=20000, help="files in the repository")
    args = parser.parse_args(argv)
    rounds = args.rounds or (2 if args.quick else 5)
    seconds = args.seconds or (5 if args.quick else 10)
    servers = [s for s in args.servers.split(",") if s]

    load_start = os.getloadavg()
    repo = cached_large_repo(nfiles=args.files)
    store = build_store(repo)
    shm = Path("/dev/shm")
    scratch = Path(tempfile.mkdtemp(prefix="bench-serve-", dir=shm if shm.is_dir() else None))
    work = Path(tempfile.mkdtemp(prefix="bench-serve-", dir=CACHE_DIR))
    results: dict[str, Any] = {"pull": {}, "rps": {}}
    try:
        export_dir = export(store, work)
        paths = small_objects(export_dir)
        expected = repo.commits[-1]
        targets = ["nginx", *servers]
        pulls: dict[str, list[float]] = {t: [] for t in targets}
        cpus: dict[str, list[float]] = {t: [] for t in targets}
        for rnd in range(rounds):
            order = targets if rnd % 2 == 0 else targets[::-1]  # ABBA
            for target in order:
                serving = nginx(work, work) if target == "nginx" else ours(store, target, work)
                with serving as (base, pid):
                    cpu = tree_cpu(pid)
                    seconds_taken = pull(f"{base}/{NAME}/", scratch, expected)
                    cpu = tree_cpu(pid) - cpu
                    pulls[target].append(seconds_taken)
                    cpus[target].append(cpu)
                    print(
                        f"round {rnd + 1} pull {target}: {seconds_taken:.2f} s, "
                        f"server cpu {cpu:.2f} s",
                        flush=True,
                    )
                    if rnd == 0 and not args.no_load:
                        if shutil.which("wrk"):
                            rate = wrk_rate(base, paths, work, seconds, args.connections)
                            results["load_generator"] = "wrk -t2"
                        else:
                            rate = python_rate(base, paths, seconds, args.connections)
                            results["load_generator"] = "httpx"
                        results["rps"][target] = rate
                        print(f"small objects {target}: {rate:,.0f} req/s", flush=True)
        for target, times in pulls.items():
            paired = [t / n for t, n in zip(times, pulls["nginx"], strict=True)]
            results["pull"][target] = {
                "seconds": times,
                "median": statistics.median(times),
                "round_ratios": paired,
                "median_round_ratio": statistics.median(paired),
                "server_cpu": cpus[target],
                "server_cpu_median": statistics.median(cpus[target]),
            }
    finally:
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(scratch, ignore_errors=True)

    base_pull = results["pull"]["nginx"]["median"]
    base_rps = results["rps"].get("nginx")
    rows = []
    for target in ["nginx", *servers]:
        median = results["pull"][target]["median"]
        rps = results["rps"].get(target)
        rows.append(
            {
                "server": target,
                "pull_s": median,
                "pull_ratio": median / base_pull,
                "round_ratio": results["pull"][target]["median_round_ratio"],
                "server_cpu_s": results["pull"][target]["server_cpu_median"],
                "rps": rps,
                "rps_ratio": rps / base_rps if rps and base_rps else None,
            }
        )
    when = datetime.datetime.now(datetime.UTC).strftime("%Y%m%d-%H%M%S")
    meta = {
        "when": when,
        "files": args.files,
        "objects": len(list((store / "objects").glob("*/*"))),
        "rounds": rounds,
        "order": "ABBA",
        "loadavg_start": load_start,
        "loadavg_end": os.getloadavg(),
        "load_seconds": seconds,
        "connections": args.connections,
        "load_generator": results.get("load_generator"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cpus",
        "python": platform.python_version(),
    }
    lines = [
        json.dumps(meta),
        "",
        "| server | pull --mirror (median) | vs nginx | median of round ratios "
        "| server CPU per pull | small objects | vs nginx |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        rps = f"{row['rps']:,.0f} req/s | {row['rps_ratio']:.2f}" if row["rps"] else "- | -"
        lines.append(
            f"| {row['server']} | {row['pull_s']:.2f} s | {row['pull_ratio']:.2f}x "
            f"| {row['round_ratio']:.2f}x | {row['server_cpu_s']:.2f} s | {rps} |"
        )
    text = "\n".join(lines) + "\n"
    print()
    print(text)
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    (out / f"bench_serve-{when}.json").write_text(
        json.dumps({"meta": meta, "rows": rows, "raw": results}, indent=2) + "\n"
    )
    (out / f"bench_serve-{when}.md").write_text(text)


if __name__ == "__main__":
    main()
