#!/usr/bin/python3
"""Reference timing: decode a repo's metadata objects with GLib (PyGObject).

Run with the *system* Python, which has ``gi``::

    /usr/bin/python3 benchmarks/_glib_decode.py REPO [--repeat N]

Every ``.commit``, ``.dirtree``, ``.dirmeta`` and ``.commitmeta`` object and
the ``summary`` file are read into memory first (not timed).  Then two timed
passes over the whole set, each the best of ``--repeat`` runs:

* ``seconds_unpack``: ``GLib.Variant.new_from_bytes(type, bytes, False).unpack()``
  (full conversion to Python values, as a user of PyGObject would do);
* ``seconds_normal``: ``new_from_bytes`` + ``is_normal_form()`` only (the
  validation libostree does before trusting metadata).

Prints one JSON object: ``{"objects", "bytes", "seconds_unpack",
"seconds_normal", "by_type", "repeat", "glib"}``.  Exit status 2 on bad usage.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

import gi

gi.require_version("GLib", "2.0")
from gi.repository import GLib  # noqa: E402

TYPES = {
    "commit": "(a{sv}aya(say)sstayay)",
    "dirtree": "(a(say)a(sayay))",
    "dirmeta": "(uuua(ayay))",
    "commitmeta": "a{sv}",
    "summary": "(a(s(taya{sv}))a{sv})",
}


def load(repo: str) -> list[tuple[str, bytes]]:
    """(kind, data) for every metadata object of the kinds in TYPES, plus the summary."""
    out: list[tuple[str, bytes]] = []
    objects = os.path.join(repo, "objects")
    for sub in sorted(os.listdir(objects)):
        subdir = os.path.join(objects, sub)
        if len(sub) != 2 or not os.path.isdir(subdir):
            continue
        for name in sorted(os.listdir(subdir)):
            ext = name.rpartition(".")[2]
            if ext in TYPES and ext != "summary":
                with open(os.path.join(subdir, name), "rb") as f:
                    out.append((ext, f.read()))
    summary = os.path.join(repo, "summary")
    if os.path.isfile(summary):
        with open(summary, "rb") as f:
            out.append(("summary", f.read()))
    return out


def _best(fn: Any, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("repo")
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args(argv)

    items = load(args.repo)
    vtypes = {k: GLib.VariantType.new(s) for k, s in TYPES.items()}
    prepared = [(vtypes[kind], data) for kind, data in items]

    def unpack_all() -> None:
        for vt, data in prepared:
            GLib.Variant.new_from_bytes(vt, GLib.Bytes.new(data), False).unpack()

    def normal_all() -> None:
        for vt, data in prepared:
            if not GLib.Variant.new_from_bytes(vt, GLib.Bytes.new(data), False).is_normal_form():
                raise SystemExit("non-normal metadata object found")

    repeat = max(1, args.repeat)
    seconds_normal = _best(normal_all, repeat)
    seconds_unpack = _best(unpack_all, repeat)
    by_type: dict[str, int] = {}
    for kind, _ in items:
        by_type[kind] = by_type.get(kind, 0) + 1
    print(
        json.dumps(
            {
                "objects": len(items),
                "bytes": sum(len(d) for _, d in items),
                "seconds_unpack": seconds_unpack,
                "seconds_normal": seconds_normal,
                "by_type": by_type,
                "repeat": repeat,
                "glib": f"{GLib.MAJOR_VERSION}.{GLib.MINOR_VERSION}.{GLib.MICRO_VERSION}",
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
