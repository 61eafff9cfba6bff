"""Synthetic large OSTree repos for benchmarks, built with the real ``ostree`` CLI.

No pytest and no project imports here, so both the benchmarks and the tests
(``tests/oracle/fixtures.py`` loads this file by path) can use it::

    from _repos import cached_large_repo
    repo = cached_large_repo()          # ~20 000 files, built once into benchmarks/.cache/
    repo.path, repo.commits, repo.deltas

The content is deterministic for a given ``(nfiles, commits, seed)``: a tree
of pseudo-random files (most 100 B - 16 KiB, some 16 - 100 KiB, a few
100 KiB - 2 MiB; text-like and incompressible data), 50-200 entries per
directory and about 1 % symlinks.  Each later commit modifies ~5 % of the
files, adds ~1 % and deletes ~1 %.  A static delta is generated between each
pair of consecutive commits, then ``ostree summary -u``.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import platform
import random
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "CACHE_DIR",
    "FORMAT_VERSION",
    "LargeRepo",
    "TreeMemory",
    "build_large_repo",
    "cached_large_repo",
    "compile_package",
    "machine_info",
    "save_results",
    "scratch_dir",
]

CACHE_DIR = Path(__file__).resolve().with_name(".cache")
FORMAT_VERSION = 1  # bump when the generated content changes
OSTREE = os.environ.get("OSTREE") or shutil.which("ostree") or "/usr/bin/ostree"
_INFO = "info.json"


def machine_info() -> dict[str, object]:
    """What results files record about the machine a benchmark ran on."""
    return {
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "load_average_at_end": os.getloadavg(),
    }


class TreeMemory:
    """Samples the memory of a process and all its descendants (the store's writer
    processes) every ``interval`` seconds, in a thread, until :meth:`stop`.

    ``peak_pss_mb`` is the largest sum of PSS (proportional set size: shared pages such
    as the interpreter's libraries are split between the processes that map them, so the
    sum is the memory the job really holds); ``peak_rss_mb`` the largest sum of RSS (which
    counts shared pages once per process). A sample can miss a spike shorter than the
    interval: compare with each process's own ``VmHWM``.
    """

    def __init__(self, pid: int, interval: float = 0.02) -> None:
        self.pid = pid
        self.interval = interval
        self.peak_pss_mb = 0.0
        self.peak_rss_mb = 0.0
        self.samples = 0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop sampling (call before reaping the process, or its children are gone)."""
        self._done.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._done.wait(self.interval):
            pss = rss = 0
            for pid in self._tree(self.pid):
                try:
                    text = Path(f"/proc/{pid}/smaps_rollup").read_text()
                except OSError:  # exited meanwhile
                    continue
                for line in text.splitlines():
                    if line.startswith("Pss:"):
                        pss += int(line.split()[1])
                    elif line.startswith("Rss:"):
                        rss += int(line.split()[1])
            if rss:
                self.samples += 1
                self.peak_pss_mb = max(self.peak_pss_mb, pss / 1024)
                self.peak_rss_mb = max(self.peak_rss_mb, rss / 1024)

    @staticmethod
    def _tree(pid: int) -> list[int]:
        found, pending = [], [pid]
        while pending:
            current = pending.pop()
            found.append(current)
            try:
                tasks = os.listdir(f"/proc/{current}/task")
            except OSError:
                continue
            for task in tasks:
                try:
                    children = Path(f"/proc/{current}/task/{task}/children").read_text()
                except OSError:
                    continue
                pending.extend(int(c) for c in children.split())
        return found


def compile_package() -> None:
    """Byte-compile ``ostree_repo`` as ``pip install`` does for an installed package: a
    development checkout (or ``PYTHONDONTWRITEBYTECODE``) would otherwise make every
    benchmark child, and every writer process, compile the sources again (~0.2 s each)."""
    import compileall
    import importlib.util

    spec = importlib.util.find_spec("ostree_repo")
    if spec is not None and spec.submodule_search_locations:
        for location in spec.submodule_search_locations:
            compileall.compile_dir(location, quiet=1)


def save_results(path: Path, results: dict[str, Any]) -> None:
    """Write a results file (JSON) and say where, with the run's total seconds."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2) + "\n")
    shown = path.relative_to(CACHE_DIR.parent.parent)
    print(f"results: {shown}  ({results['seconds_total']:.0f} s)")


def scratch_dir() -> Path:
    """Where benchmarks put the repositories and stores they write (``$BENCH_WORKDIR``,
    default ``benchmarks/.cache/work``).

    Not ``/tmp``: on the development VM, creating a file under ``/tmp`` costs 0.8-1.3 ms
    against 35-45 µs elsewhere on the same disk (seen 2026-11-23), which swamped every
    per-object figure of both tools. Run with ``BENCH_WORKDIR=/tmp`` to see it.
    """
    path = Path(os.environ.get("BENCH_WORKDIR") or CACHE_DIR / "work")
    path.mkdir(parents=True, exist_ok=True)
    return path


_WORDS = (
    "alpha",
    "beta",
    "gamma",
    "delta",
    "epsilon",
    "zeta",
    "theta",
    "kappa",
    "lambda",
    "sigma",
    "omega",
    "core",
    "util",
    "data",
    "config",
    "module",
    "plugin",
    "widget",
    "render",
    "network",
    "storage",
    "object",
    "index",
    "cache",
    "thread",
    "buffer",
    "stream",
    "parser",
    "lexer",
    "token",
    "schema",
    "locale",
    "icon",
    "theme",
    "font",
)
_TEXT_EXT = (".py", ".txt", ".json", ".h", ".c", ".conf", ".md", ".xml", ".js", ".css")
_BIN_EXT = (".so", ".png", ".mo", ".bin", ".gz", ".a")


@dataclass(frozen=True)
class LargeRepo:
    """A built (or cached) synthetic repo."""

    root: Path  # directory holding repo/, tree/ and info.json
    nfiles: int
    seed: int
    commits: list[str]  # oldest first; "main" points at the last
    deltas: list[str]  # "FROM-TO" delta names
    files: list[int]  # regular files + symlinks per commit
    content_bytes: list[int]  # total regular-file bytes per commit
    build_seconds: float
    cached: bool = False
    refs: dict[str, str] = field(default_factory=dict)

    @property
    def path(self) -> Path:
        """The archive repo."""
        return self.root / "repo"

    @property
    def tree(self) -> Path:
        """The source tree as of the last commit."""
        return self.root / "tree"


def _ostree(*args: str, repo: Path) -> str:
    cmd = [OSTREE, *args, f"--repo={repo}"]
    proc = subprocess.run(
        cmd, capture_output=True, text=True, check=False, stdin=subprocess.DEVNULL
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr}")
    return proc.stdout


class _Content:
    """Deterministic data pools that file contents are sliced from."""

    def __init__(self, rng: random.Random) -> None:
        self.binary = rng.randbytes(4 * 1024 * 1024)
        words = [rng.choice(_WORDS) for _ in range(700_000)]
        lines: list[str] = []
        i = 0
        while i < len(words):
            n = rng.randint(3, 14)
            lines.append(" ".join(words[i : i + n]))
            i += n
        self.text = ("\n".join(lines) + "\n").encode()

    def make(self, rng: random.Random, size: int, text: bool) -> bytes:
        pool = self.text if text else self.binary
        if size >= len(pool):
            reps = size // len(pool) + 1
            return (pool * reps)[:size]
        off = rng.randrange(len(pool) - size)
        return pool[off : off + size]


def _pick_size(rng: random.Random) -> int:
    r = rng.random()
    lo, hi = (
        (100, 16 * 1024)
        if r < 0.97
        else (16 * 1024, 100 * 1024)
        if r < 0.995
        else (100 * 1024, 2 * 1024 * 1024)
    )
    return int(math.exp(rng.uniform(math.log(lo), math.log(hi))))


def _name(rng: random.Random, used: set[str], exts: tuple[str, ...] = ()) -> str:
    while True:
        base = f"{rng.choice(_WORDS)}_{rng.randrange(100000)}"
        name = base + (rng.choice(exts) if exts else "")
        if name not in used:
            used.add(name)
            return name


def _generate_tree(root: Path, nfiles: int, rng: random.Random, content: _Content) -> None:
    root.mkdir(parents=True)
    remaining = nfiles
    queue: list[Path] = [root]
    qi = 0
    while remaining > 0:
        if qi >= len(queue):  # pragma: no cover - each dir adds >= 2 children
            queue.append(root / f"extra{qi}")
            queue[-1].mkdir()
        d = queue[qi]
        qi += 1
        used: set[str] = set()
        for _ in range(rng.randint(2, 8)):
            sub = d / _name(rng, used)
            sub.mkdir()
            os.chmod(sub, 0o755)
            queue.append(sub)
        count = min(remaining, rng.randint(50, 200))
        remaining -= count
        regular: list[str] = []
        for _ in range(count):
            if regular and rng.random() < 0.01:
                target = rng.choice(regular)
                os.symlink(target, d / _name(rng, used, (".link",)))
                continue
            text = rng.random() < 0.6
            name = _name(rng, used, _TEXT_EXT if text else _BIN_EXT)
            p = d / name
            p.write_bytes(content.make(rng, _pick_size(rng), text))
            os.chmod(p, 0o755 if rng.random() < 0.05 else 0o644)
            regular.append(name)
    os.chmod(root, 0o755)


def _walk(root: Path) -> tuple[list[Path], list[Path], list[Path]]:
    files: list[Path] = []
    links: list[Path] = []
    dirs: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        dp = Path(dirpath)
        dirs.append(dp)
        for f in sorted(filenames):
            p = dp / f
            (links if p.is_symlink() else files).append(p)
    return files, links, dirs


def _mutate_tree(
    root: Path, rng: random.Random, content: _Content
) -> tuple[list[Path], list[Path]]:
    """Modify ~5 %, delete ~1 % and add ~1 % of the files in place.

    Returns ``(changed_or_added, deleted)`` as paths relative to ``root``.
    (Committing an overlay of just the changes onto the previous commit with
    ``--tree=ref= --tree=dir= --skip-list=`` gives the same commit but is no
    faster with ostree 2022.7: the skip list forces a full walk.)
    """
    files, links, dirs = _walk(root)
    n = len(files)
    changed: set[Path] = set()
    deleted: list[Path] = []
    for p in rng.sample(files, max(1, n * 5 // 100)):
        data = bytearray(p.read_bytes())
        kind = rng.random()
        if len(data) < 64 or kind < 0.1:
            data = bytearray(content.make(rng, _pick_size(rng), p.suffix in _TEXT_EXT))
        elif kind < 0.8:
            off = rng.randrange(len(data) - 32)
            data[off : off + 32] = rng.randbytes(32)
        elif kind < 0.9:
            data += content.make(rng, rng.randint(1, 512), True)
        else:
            del data[rng.randrange(len(data) // 2, len(data)) :]
        p.write_bytes(bytes(data))
        changed.add(p)
    for p in rng.sample(files, max(1, n // 100)):
        p.unlink()
        changed.discard(p)
        deleted.append(p)
    for p in links:
        if not p.resolve().exists():
            p.unlink()
            deleted.append(p)
    for _ in range(max(1, n // 100)):
        d = rng.choice(dirs)
        used = {c.name for c in d.iterdir()}
        text = rng.random() < 0.6
        p = d / _name(rng, used, _TEXT_EXT if text else _BIN_EXT)
        p.write_bytes(content.make(rng, _pick_size(rng), text))
        os.chmod(p, 0o644)
        changed.add(p)
    return (
        [p.relative_to(root) for p in sorted(changed)],
        [p.relative_to(root) for p in sorted(deleted)],
    )


def _count(root: Path) -> tuple[int, int]:
    files, links, _ = _walk(root)
    return len(files) + len(links), sum(p.stat().st_size for p in files)


def _load(root: Path, nfiles: int, commits: int, seed: int) -> LargeRepo | None:
    try:
        info = json.loads((root / _INFO).read_text())
    except (OSError, ValueError):
        return None
    want = {"format": FORMAT_VERSION, "nfiles": nfiles, "ncommits": commits, "seed": seed}
    if any(info.get(k) != v for k, v in want.items()):
        return None
    repo = root / "repo"
    heads = repo / "refs" / "heads" / "main"
    if not heads.is_file() or heads.read_text().strip() != info["commits"][-1]:
        return None
    return LargeRepo(
        root=root,
        nfiles=nfiles,
        seed=seed,
        commits=info["commits"],
        deltas=info["deltas"],
        files=info["files"],
        content_bytes=info["content_bytes"],
        build_seconds=info["build_seconds"],
        cached=True,
        refs=info["refs"],
    )


def build_large_repo(
    directory: str | os.PathLike[str], nfiles: int = 20000, commits: int = 2, *, seed: int = 0
) -> LargeRepo:
    """Build the synthetic repo in ``directory`` (or reuse what is already there).

    ``directory`` gets ``repo/`` (archive mode), ``tree/`` (the last committed
    source tree) and ``info.json``.  If ``info.json`` matches the parameters the
    existing build is returned (``cached=True``).  A build happens in a sibling
    temporary directory that is renamed into place at the end, so an
    interrupted build never looks complete.  ``directory`` may exist if empty.
    """
    if commits < 1:
        raise ValueError("commits must be >= 1")
    root = Path(directory)
    found = _load(root, nfiles, commits, seed)
    if found is not None:
        return found
    if root.exists() and any(root.iterdir()):
        raise FileExistsError(f"{root} exists, is not empty and holds no matching build")

    started = time.perf_counter()
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = root.parent / f".{root.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        repo, tree = tmp / "repo", tmp / "tree"
        rng = random.Random(seed)
        content = _Content(rng)
        _ostree("init", "--mode=archive", repo=repo)
        _generate_tree(tree, nfiles, rng, content)
        checksums: list[str] = []
        files: list[int] = []
        sizes: list[int] = []
        for i in range(commits):
            ts = time.strftime("%Y-%m-%d %H:%M:%S +0000", time.gmtime(1704067200 + i * 86400))
            args = [
                "commit",
                "--branch=main",
                f"--subject=Synthetic commit {i + 1}",
                f"--timestamp={ts}",
                f"--add-metadata-string=version={i + 1}",
                "--fsync=false",
            ]
            if i:
                _mutate_tree(tree, rng, content)
            args.append(str(tree))
            nf, nb = _count(tree)
            files.append(nf)
            sizes.append(nb)
            checksums.append(_ostree(*args, repo=repo).strip())
        deltas: list[str] = []
        for a, b in itertools.pairwise(checksums):
            _ostree("static-delta", "generate", f"--from={a}", f"--to={b}", repo=repo)
            deltas.append(f"{a}-{b}")
        _ostree("summary", "-u", repo=repo)
        elapsed = time.perf_counter() - started
        info = {
            "format": FORMAT_VERSION,
            "nfiles": nfiles,
            "ncommits": commits,
            "seed": seed,
            "commits": checksums,
            "deltas": deltas,
            "files": files,
            "content_bytes": sizes,
            "build_seconds": elapsed,
            "refs": {"main": checksums[-1]},
        }
        (tmp / _INFO).write_text(json.dumps(info, indent=2) + "\n")
        if root.exists():
            root.rmdir()
        os.rename(tmp, root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return LargeRepo(
        root=root,
        nfiles=nfiles,
        seed=seed,
        commits=checksums,
        deltas=deltas,
        files=files,
        content_bytes=sizes,
        build_seconds=elapsed,
        refs={"main": checksums[-1]},
    )


def cached_large_repo(
    nfiles: int = 20000,
    commits: int = 2,
    *,
    seed: int = 0,
    cache_dir: str | os.PathLike[str] | None = None,
) -> LargeRepo:
    """:func:`build_large_repo` under ``cache_dir`` (default ``benchmarks/.cache/``)."""
    base = Path(cache_dir) if cache_dir is not None else CACHE_DIR
    name = f"large-n{nfiles}-c{commits}-s{seed}-v{FORMAT_VERSION}"
    return build_large_repo(base / name, nfiles, commits, seed=seed)


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20000
    r = cached_large_repo(n)
    print(
        json.dumps(
            {
                "root": str(r.root),
                "cached": r.cached,
                "commits": r.commits,
                "files": r.files,
                "content_bytes": r.content_bytes,
                "build_seconds": round(r.build_seconds, 2),
            },
            indent=2,
        )
    )
