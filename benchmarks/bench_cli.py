"""CLI start-up: what every ``ostree-repo`` run pays before it does anything, and what the
progress display (rich) and shell completion (shtab) add, each in fresh interpreters.

    python benchmarks/bench_cli.py [--quick] [--rounds N] [--baseline SRC]

Interleaved rounds (every variant once per round, in turn), reported as medians (and the
minimum, the figure least disturbed by other load):

* ``python -c pass``: the interpreter's own start, the floor;
* ``import ostree_repo.cli``: the CLI with every verb registered (what ``ostree-repo
  VERB`` imports before it parses its arguments);
* ``ostree-repo --version``: the console script, start to exit;
* with ``--baseline SRC`` (another checkout's ``src``, e.g. main's before a change): its
  ``import ostree_repo.cli`` too, side by side;
* ``-X importtime`` cumulative figures of ``rich.progress`` + ``rich.console`` (imported only
  when stderr is a terminal and a verb shows progress) and ``shtab`` (only by ``completion``),
  each imported after ``ostree_repo.cli`` as the CLI does;
* ``import httpx`` with and without ``click`` importable: httpx imports its own command
  line (click, pygments, rich) when all three are installed, which the sync verb then pays.

``--quick``: 5 rounds instead of 21. Results go to ``benchmarks/results/cli.json``.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import sysconfig
import time
from pathlib import Path
from typing import Any

from _repos import CACHE_DIR, compile_package, machine_info, save_results

RESULTS = CACHE_DIR.parent / "results" / "cli.json"
# a top-level import (one space before the name; nested ones are indented further)
_IMPORTTIME = re.compile(r"import time:\s+\d+ \|\s+(\d+) \| (\S.*)$")


def _env(src: Path | None) -> dict[str, str]:
    env = dict(os.environ)
    if src is not None:
        env["PYTHONPATH"] = str(src)
    return env


def _wall(command: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def _cumulative_us(code: str, modules: tuple[str, ...], env: dict[str, str]) -> int:
    """The summed ``-X importtime`` cumulative microseconds of ``modules`` imported at the
    top level when ``code`` runs (a module another one imports first is inside that one's
    figure)."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    total = 0
    for line in done.stderr.splitlines():
        match = _IMPORTTIME.match(line)
        if match and match[2].strip() in modules:
            total += int(match[1])
    return total


def _in_process_seconds(code: str, env: dict[str, str]) -> float:
    """``code`` prints a duration it measured itself; that duration."""
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, check=True, capture_output=True, text=True
    )
    return float(done.stdout.strip().splitlines()[-1])


def _httpx_code(block_click: bool) -> str:
    block = "import sys; sys.modules['click'] = None\n" if block_click else ""
    timed = "import time\nt = time.perf_counter()\nimport httpx\nprint(time.perf_counter() - t)\n"
    return block + timed


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5 rounds")
    parser.add_argument("--rounds", type=int, help="rounds (default 21, --quick 5)")
    parser.add_argument("--baseline", type=Path, help="another checkout's src to compare with")
    args = parser.parse_args(argv)
    rounds = args.rounds or (5 if args.quick else 21)
    compile_package()
    src = Path(__file__).resolve().parent.parent / "src"
    here = _env(src)
    script = str(Path(sysconfig.get_path("scripts")) / "ostree-repo")
    if not Path(script).exists():
        script = shutil.which("ostree-repo") or script
    if args.baseline is not None:
        import compileall

        compileall.compile_dir(str(args.baseline), quiet=1)

    variants: dict[str, Any] = {
        "python -c pass": lambda: _wall([sys.executable, "-c", "pass"], here),
        "import ostree_repo.cli": lambda: _wall(
            [sys.executable, "-c", "import ostree_repo.cli"], here
        ),
        "ostree-repo --version": lambda: _wall([script, "--version"], here),
        "rich (after the CLI), ms": lambda: (
            _cumulative_us(
                "import ostree_repo.cli, ostree_repo.cli._progress, rich.console, rich.progress",
                ("rich.progress", "rich.console"),
                here,
            )
            / 1000
        ),
        "shtab (after the CLI), ms": lambda: (
            _cumulative_us("import ostree_repo.cli, shtab", ("shtab",), here) / 1000
        ),
        "import httpx, click importable": lambda: _in_process_seconds(_httpx_code(False), here),
        "import httpx, click blocked": lambda: _in_process_seconds(_httpx_code(True), here),
    }
    if args.baseline is not None:
        baseline = _env(args.baseline.resolve())
        variants["baseline: import ostree_repo.cli"] = lambda: _wall(
            [sys.executable, "-c", "import ostree_repo.cli"], baseline
        )
    samples: dict[str, list[float]] = {name: [] for name in variants}
    started = time.perf_counter()
    for _ in range(rounds):
        for name, measure in variants.items():
            samples[name].append(measure())
    results: dict[str, Any] = {"machine": machine_info(), "rounds": rounds, "figures": {}}
    print(f"{'':34} {'median':>10} {'min':>10}   ({rounds} interleaved rounds)")
    for name, values in samples.items():
        unit = "ms" if name.endswith(", ms") else "s"
        scale = 1.0 if unit == "ms" else 1000.0
        median, least = statistics.median(values) * scale, min(values) * scale
        results["figures"][name] = {"median_ms": round(median, 2), "min_ms": round(least, 2)}
        print(f"{name:34} {median:8.1f} ms {least:8.1f} ms")
    results["seconds_total"] = time.perf_counter() - started
    save_results(RESULTS, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
