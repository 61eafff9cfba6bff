"""Run every ``benchmarks/bench_*.py`` in turn (what ``nox -s bench`` runs).

    python benchmarks/run.py [--quick] [NAME ...]

Each benchmark runs in its own process with this interpreter, its output passed straight
through; ``--quick`` is handed on to each. NAMEs pick benchmarks by the part after
``bench_`` (``codec``, ``store``); all run by default. The exit status is 0 when every
benchmark exited 0, else 1; a failing benchmark does not stop the ones after it.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def discover() -> dict[str, Path]:
    """name -> script, in name order."""
    return {p.stem.removeprefix("bench_"): p for p in sorted(HERE.glob("bench_*.py"))}


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    found = discover()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="pass --quick to each benchmark")
    parser.add_argument("names", nargs="*", metavar="NAME", help=f"any of: {', '.join(found)}")
    args = parser.parse_args(argv)
    unknown = [n for n in args.names if n not in found]
    if unknown:
        parser.error(f"no benchmark named {', '.join(unknown)} (have: {', '.join(found)})")

    outcomes: list[tuple[str, int, float]] = []
    for name in args.names or list(found):
        cmd = [sys.executable, str(found[name]), *(["--quick"] if args.quick else [])]
        print(f"\n=== {name}: {' '.join(cmd[1:])}", flush=True)
        started = time.perf_counter()
        status = subprocess.run(cmd, check=False).returncode
        outcomes.append((name, status, time.perf_counter() - started))

    print("\n=== summary")
    for name, status, seconds in outcomes:
        verdict = "ok" if status == 0 else f"FAILED (exit status {status})"
        print(f"  {name:10} {seconds:7.1f} s  {verdict}")
    return 0 if all(status == 0 for _, status, _ in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
