"""GVariant codec and content checksum speed, each beside its reference in the same run.

    python benchmarks/bench_codec.py [--quick] [--nfiles N]

On one synthetic archive repository made by the real ``ostree`` CLI (~20,000 files, two
commits, cached in ``benchmarks/.cache/``; see ``_repos.py``), everything loaded into memory
before any timing:

* **metadata decode**: every ``.commit``, ``.dirtree``, ``.dirmeta`` and ``.commitmeta``
  object and the ``summary``, decoded by ``ostree_repo.gvariant.loads(signature, data)`` and
  by the typed classes (``DirTree.from_bytes`` ...), against GLib through PyGObject
  (``GLib.Variant.new_from_bytes(...).unpack()``, run by ``_glib_decode.py`` under
  ``/usr/bin/python3``, which reads the same objects in the same order). PyGObject 3.42
  unpacks an ``ay`` one byte at a time, which dominates its time on OSTree metadata (every
  checksum is an ``ay``), so a second, tuned GLib figure is measured too: the same
  recursive unpack, but ``ay`` taken whole with ``get_data_as_bytes()``. GLib's
  ``is_normal_form()`` alone (validation in C, no Python values) is shown for reference.
* **metadata encode**: ``gvariant.dumps`` of the decoded values and ``to_bytes()`` of the
  typed objects. Every re-encoding must equal its input byte for byte.
* **content checksum**: every ``.filez`` object through
  ``new_verifier(ObjectType.FILE, checksum)`` fed 1 MiB chunks, against the physical floor:
  the canonical prefix built by hand from the ``.filez`` header, then
  ``zlib.decompressobj(-15)`` and ``hashlib.sha256`` over the same bytes. The same floor with
  ``isal.isal_zlib`` and with libdeflate (``deflate``), when importable, is reported for
  reference only. Every floor digest must equal the object's name.

Each figure is the best of several repetitions (the variants interleaved); ``--quick``
repeats less and takes every 8th ``.filez`` object (about 10 s instead of about a minute,
once the repo is cached; building it takes about a minute more). The goal from
the issue: our decode no slower than GLib through PyGObject; PASS or FAIL is printed, and
the exit status is 0 either way unless a correctness check failed (then 1). Results go to
``benchmarks/results/codec.json``.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import platform
import struct
import subprocess
import sys
import time
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _repos import cached_large_repo, save_results  # noqa: E402

from ostree_repo import OstreeRepoError  # noqa: E402
from ostree_repo.gvariant import dumps, loads  # noqa: E402
from ostree_repo.objects import (  # noqa: E402
    Commit,
    DetachedMetadata,
    DirMeta,
    DirTree,
    ObjectType,
    Summary,
    new_verifier,
)
from ostree_repo.objects.metadata import COMMIT_SIGNATURE  # noqa: E402
from ostree_repo.objects.summary import SUMMARY_SIGNATURE  # noqa: E402
from ostree_repo.objects.tree import DIRMETA_SIGNATURE, DIRTREE_SIGNATURE  # noqa: E402

RESULTS = HERE / "results" / "codec.json"
SYSTEM_PYTHON = "/usr/bin/python3"
CHUNK = 1 << 20  # what a streaming caller hands the verifier
MB = 1e6

#: kind -> (GVariant signature, typed class); the kinds and order of ``_glib_decode.py``.
KINDS: dict[str, tuple[str, Any]] = {
    "commit": (COMMIT_SIGNATURE, Commit),
    "dirtree": (DIRTREE_SIGNATURE, DirTree),
    "dirmeta": (DIRMETA_SIGNATURE, DirMeta),
    "commitmeta": ("a{sv}", DetachedMetadata),
    "summary": (SUMMARY_SIGNATURE, Summary),
}

# The tuned PyGObject decode, run by the system Python next to _glib_decode.py (whose
# loader and type table it reuses, so the object set is the same).
_GLIB_TUNED = r"""
import json, sys, time
sys.path.insert(0, sys.argv[1])
from _glib_decode import GLib, TYPES, load

def unpack(v):
    ts = v.get_type_string()
    if ts == "ay":
        return v.get_data_as_bytes().get_data()
    if ts[0] == "(":
        return tuple(unpack(v.get_child_value(i)) for i in range(v.n_children()))
    if ts.startswith("a{"):
        out = {}
        for i in range(v.n_children()):
            e = v.get_child_value(i)
            out[unpack(e.get_child_value(0))] = unpack(e.get_child_value(1))
        return out
    if ts[0] == "a":
        return [unpack(v.get_child_value(i)) for i in range(v.n_children())]
    if ts[0] == "v":
        return unpack(v.get_variant())
    return v.unpack()

items = load(sys.argv[2])
vtypes = {k: GLib.VariantType.new(s) for k, s in TYPES.items()}
prepared = [(vtypes[k], d) for k, d in items]
best = {"tuned": float("inf"), "normal": float("inf")}
for _ in range(int(sys.argv[3])):
    t0 = time.perf_counter()
    for vt, d in prepared:
        unpack(GLib.Variant.new_from_bytes(vt, GLib.Bytes.new(d), False))
    t1 = time.perf_counter()
    for vt, d in prepared:
        GLib.Variant.new_from_bytes(vt, GLib.Bytes.new(d), False).is_normal_form()
    t2 = time.perf_counter()
    best = {"tuned": min(best["tuned"], t1 - t0), "normal": min(best["normal"], t2 - t1)}
print(json.dumps({"objects": len(items), "bytes": sum(len(d) for _, d in items), **best}))
"""


# --------------------------------------------------------------------------- loading


def load_metadata(repo: Path) -> list[tuple[str, str, bytes]]:
    """(kind, name, data) for each metadata object, in ``_glib_decode.load``'s order."""
    out: list[tuple[str, str, bytes]] = []
    objects = repo / "objects"
    for sub in sorted(os.listdir(objects)):
        subdir = objects / sub
        if len(sub) != 2 or not subdir.is_dir():
            continue
        for name in sorted(os.listdir(subdir)):
            stem, _, ext = name.rpartition(".")
            if ext in KINDS and ext != "summary":
                out.append((ext, sub + stem, (subdir / name).read_bytes()))
    summary = repo / "summary"
    if summary.is_file():
        out.append(("summary", "summary", summary.read_bytes()))
    return out


def load_filez(repo: Path, step: int) -> list[tuple[str, bytes]]:
    """(checksum, data) for every ``step``-th ``.filez`` object, in path order."""
    paths = sorted((repo / "objects").glob("??/*.filez"))[::step]
    return [(p.parent.name + p.name[: -len(".filez")], p.read_bytes()) for p in paths]


# --------------------------------------------------------------------------- timing


def best_of(fns: dict[str, Callable[[], object]], repeat: int) -> dict[str, float]:
    """Best wall time of each function over ``repeat`` rounds, the order rotated per round."""
    names = list(fns)
    best = dict.fromkeys(names, float("inf"))
    for r in range(repeat):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            t0 = time.perf_counter()
            fns[name]()
            best[name] = min(best[name], time.perf_counter() - t0)
    return best


def run_system_python(args: list[str], timeout: float = 600) -> dict[str, Any]:
    """Run the system Python (with gi) isolated from our environment; parse its JSON line."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    proc = subprocess.run(
        [SYSTEM_PYTHON, "-I", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    if proc.returncode != 0:
        raise SystemExit(f"GLib reference failed ({proc.returncode}):\n{proc.stderr}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


# --------------------------------------------------------------------------- metadata


def bench_metadata(
    items: list[tuple[str, str, bytes]], repeat: int, failures: list[str]
) -> dict[str, Any]:
    """Decode and re-encode every metadata object, raw and typed; check the round trips."""
    raw = [(KINDS[kind][0], data) for kind, _, data in items]
    typed = [(KINDS[kind][1], data) for kind, _, data in items]
    values = [(sig, loads(sig, data)) for sig, data in raw]
    objs = [cls.from_bytes(data) for cls, data in typed]

    for (kind, name, data), (sig, value), obj in zip(items, values, objs, strict=True):
        if dumps(sig, value) != data:
            failures.append(f"gvariant.dumps({sig!r}, loads(...)) differs from {kind} {name}")
        if obj.to_bytes() != data:
            failures.append(f"{type(obj).__name__}.to_bytes() differs from {kind} {name}")

    seconds = best_of(
        {
            "decode_loads": lambda: [loads(sig, data) for sig, data in raw],
            "decode_typed": lambda: [cls.from_bytes(data) for cls, data in typed],
            "encode_dumps": lambda: [dumps(sig, value) for sig, value in values],
            "encode_typed": lambda: [obj.to_bytes() for obj in objs],
        },
        repeat,
    )
    kinds = [kind for kind, _, _ in items]
    entries = sum(
        len(v[0]) + len(v[1]) for k, (_, v) in zip(kinds, values, strict=True) if k == "dirtree"
    )
    return {"seconds": seconds, "repeat": repeat, "dirtree_entries": entries}


def glib_metadata(repo: Path, repeat: int, tuned_repeat: int) -> dict[str, Any]:
    """GLib's figures for the same objects: stock unpack, is_normal_form, tuned unpack."""
    stock = run_system_python([str(HERE / "_glib_decode.py"), str(repo), f"--repeat={repeat}"])
    tuned = run_system_python(["-c", _GLIB_TUNED, str(HERE), str(repo), str(tuned_repeat)])
    if (tuned["objects"], tuned["bytes"]) != (stock["objects"], stock["bytes"]):
        raise SystemExit("the two GLib runs saw different object sets")
    return {
        **stock,
        "seconds_tuned": tuned["tuned"],
        # is_normal_form takes milliseconds: also timed by the second run, with more repeats
        "seconds_normal": min(stock["seconds_normal"], tuned["normal"]),
        "tuned_repeat": tuned_repeat,
    }


# --------------------------------------------------------------------------- content


def _canonical_prefix(body: bytes) -> bytes:
    """The content checksum's prefix, from a ``.filez`` ``(tuuuusa(ayay))`` header by hand.

    The canonical header ``(uuuusa(ayay))`` is the same bytes without the leading 8-byte
    size, its one framing offset (the end of the symlink target ``s``) 8 smaller.
    """
    n = len(body)
    width = 1 if n <= 0xFF else 2 if n <= 0xFFFF else 4
    target_end = int.from_bytes(body[n - width :], "little") - 8
    fields = body[8 : n - width]
    m = len(fields)
    width = 1 if m + 1 <= 0xFF else 2 if m + 2 <= 0xFFFF else 4
    header = fields + target_end.to_bytes(width, "little")
    return struct.pack(">II", len(header), 0) + header


def _split(data: bytes) -> tuple[bytes, memoryview, int]:
    """(canonical prefix, compressed payload, uncompressed size) of a ``.filez`` object."""
    (hlen,) = struct.unpack_from(">I", data)
    body = data[8 : 8 + hlen]
    return _canonical_prefix(body), memoryview(data)[8 + hlen :], int.from_bytes(body[:8], "big")


def floor_zlib(objs: list[tuple[str, bytes]], zmod: Any = zlib) -> list[str]:
    """Inflate and hash every object by hand; return the names whose digest differs."""
    bad = []
    for checksum, data in objs:
        prefix, payload, _ = _split(data)
        sha = hashlib.sha256(prefix)
        if payload:
            inflater = zmod.decompressobj(-15)
            sha.update(inflater.decompress(payload))
        if sha.hexdigest() != checksum:
            bad.append(checksum)
    return bad


def floor_libdeflate(objs: list[tuple[str, bytes]], libdeflate: Any) -> list[str]:
    """The same floor with libdeflate's one-shot raw inflate (it needs the output size)."""
    bad = []
    for checksum, data in objs:
        prefix, payload, size = _split(data)
        sha = hashlib.sha256(prefix)
        if payload:
            sha.update(libdeflate.deflate_decompress(payload, size))
        if sha.hexdigest() != checksum:
            bad.append(checksum)
    return bad


def ours_verify(objs: list[tuple[str, bytes]]) -> None:
    """Our verifier, fed 1 MiB chunks as a streaming caller would."""
    for checksum, data in objs:
        verifier = new_verifier(ObjectType.FILE, checksum)
        view = memoryview(data)
        for start in range(0, len(view), CHUNK):
            verifier.update(view[start : start + CHUNK])
        verifier.finish()


def _optional_floors() -> dict[str, Callable[[list[tuple[str, bytes]]], list[str]]]:
    floors: dict[str, Callable[[list[tuple[str, bytes]]], list[str]]] = {}
    try:
        from isal import isal_zlib
    except ImportError:
        pass
    else:
        floors["floor_isal"] = lambda objs: floor_zlib(objs, isal_zlib)
    try:
        import deflate
    except ImportError:
        pass
    else:
        floors["floor_libdeflate"] = lambda objs: floor_libdeflate(objs, deflate)
    return floors


def bench_content(
    objs: list[tuple[str, bytes]], repeat: int, failures: list[str]
) -> dict[str, Any]:
    """Our content verifier against hashlib + raw inflate by hand, on the same bytes."""
    floors = {"floor_zlib": floor_zlib, **_optional_floors()}
    for name, floor in floors.items():  # correctness once, untimed
        for checksum in floor(objs)[:5]:
            failures.append(f"{name}: digest of {checksum}.filez differs from its name")
    try:
        ours_verify(objs)
    except OstreeRepoError as e:
        failures.append(f"new_verifier(FILE) refused a real object: {e!r}")

    fns: dict[str, Callable[[], object]] = {"ours": lambda: ours_verify(objs)}
    for name, floor in floors.items():
        fns[name] = lambda floor=floor: floor(objs)
    seconds = best_of(fns, repeat)
    return {
        "objects": len(objs),
        "compressed_bytes": sum(len(d) for _, d in objs),
        "content_bytes": sum(_split(d)[2] for _, d in objs),
        "seconds": seconds,
        "repeat": repeat,
    }


# --------------------------------------------------------------------------- report


def _versions() -> dict[str, str]:
    versions = {"python": platform.python_version(), "zlib": zlib.ZLIB_RUNTIME_VERSION}
    for module in ("isal", "deflate"):
        try:
            versions[module] = __import__(module).__version__
        except ImportError:
            versions[module] = "not installed"
    return versions


def report(meta: dict[str, Any], glib: dict[str, Any], content: dict[str, Any]) -> dict[str, Any]:
    """Print the table; return the derived figures."""
    n, nbytes = meta["objects"], meta["bytes"]
    s = meta["seconds"]
    rows: dict[str, float] = {
        "glib_unpack": glib["seconds_unpack"],
        "glib_tuned": glib["seconds_tuned"],
        "glib_normal": glib["seconds_normal"],
        "decode_loads": s["decode_loads"],
        "decode_typed": s["decode_typed"],
        "encode_dumps": s["encode_dumps"],
        "encode_typed": s["encode_typed"],
    }
    labels = {
        "glib_unpack": "GLib unpack() (PyGObject)",
        "glib_tuned": "GLib unpack, ay as bytes",
        "glib_normal": "GLib is_normal_form only",
        "decode_loads": "ours: gvariant.loads",
        "decode_typed": "ours: typed from_bytes",
        "encode_dumps": "ours: gvariant.dumps",
        "encode_typed": "ours: typed to_bytes",
    }
    metadata = {
        k: {
            "seconds": v,
            "objects_per_s": n / v,
            "mb_per_s": nbytes / v / MB,
            "vs_glib_unpack": glib["seconds_unpack"] / v,
            "vs_glib_tuned": glib["seconds_tuned"] / v,
        }
        for k, v in rows.items()
    }
    by_type = ", ".join(f"{c} {k}" for k, c in meta["by_type"].items())
    print(
        f"\nmetadata: {n} objects ({by_type}; {meta['dirtree_entries']:,} dirtree entries),"
        f" {nbytes / MB:.2f} MB"
    )
    head = f"  {'':28}{'objects/s':>12}{'MB/s':>10}{'x GLib':>9}{'x tuned':>9}"
    print(head)
    for k, m in metadata.items():
        if k == "encode_dumps":
            print("  re-encode (every output equal to its input)")
        print(
            f"  {labels[k]:28}{m['objects_per_s']:>12,.0f}{m['mb_per_s']:>10.1f}"
            f"{m['vs_glib_unpack']:>9.2f}{m['vs_glib_tuned']:>9.2f}"
        )

    c = content
    base = c["seconds"]["floor_zlib"]
    cont = {
        k: {
            "seconds": v,
            "mb_per_s": c["content_bytes"] / v / MB,
            "compressed_mb_per_s": c["compressed_bytes"] / v / MB,
            "objects_per_s": c["objects"] / v,
            "vs_floor_zlib": base / v,
        }
        for k, v in c["seconds"].items()
    }
    clabels = {
        "floor_zlib": "floor: zlib + hashlib",
        "ours": "ours: new_verifier(FILE)",
        "floor_isal": "floor: isal + hashlib",
        "floor_libdeflate": "floor: libdeflate + hashlib",
    }
    print(
        f"\ncontent checksum: {c['objects']} .filez, {c['compressed_bytes'] / MB:.1f} MB"
        f" -> {c['content_bytes'] / MB:.1f} MB of content"
    )
    print(f"  {'':28}{'MB/s':>12}{'objects/s':>12}{'x floor':>9}")
    for k in ("floor_zlib", "ours", "floor_isal", "floor_libdeflate"):
        if k in cont:
            m = cont[k]
            print(
                f"  {clabels[k]:28}{m['mb_per_s']:>12.1f}{m['objects_per_s']:>12,.0f}"
                f"{m['vs_floor_zlib']:>9.2f}"
            )
    return {"metadata": metadata, "content": cont}


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions, 1/8 of files")
    parser.add_argument("--nfiles", type=int, default=20000, help="files in the synthetic repo")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    meta_repeat, glib_repeat, tuned_repeat, content_repeat, step = (
        (3, 1, 3, 2, 8) if args.quick else (7, 3, 7, 3, 1)
    )
    print(f"building or loading the {args.nfiles}-file repo ...", flush=True)
    large = cached_large_repo(args.nfiles)
    repo = large.path
    items = load_metadata(repo)
    filez = load_filez(repo, step)
    failures: list[str] = []

    print("GLib (PyGObject) on the metadata objects ...", flush=True)
    glib = glib_metadata(repo, glib_repeat, tuned_repeat)
    by_type: dict[str, int] = {}
    for kind, _, _ in items:
        by_type[kind] = by_type.get(kind, 0) + 1
    meta_set = {"objects": len(items), "bytes": sum(len(d) for _, _, d in items)}
    if (glib["objects"], glib["bytes"], glib["by_type"]) != (*meta_set.values(), by_type):
        failures.append(f"GLib saw a different object set: {glib} vs {meta_set} {by_type}")

    print("ours on the metadata objects ...", flush=True)
    meta = {**bench_metadata(items, meta_repeat, failures), **meta_set, "by_type": by_type}
    print("content checksums ...", flush=True)
    content = bench_content(filez, content_repeat, failures)

    figures = report(meta, glib, content)
    loads_x = figures["metadata"]["decode_loads"]["vs_glib_unpack"]
    typed_x = figures["metadata"]["decode_typed"]["vs_glib_unpack"]
    goal = "PASS" if min(loads_x, typed_x) >= 1.0 else "FAIL"
    print(
        f"\ngoal (decode no slower than GLib via PyGObject unpack): {goal}"
        f" (loads {loads_x:.1f}x, typed {typed_x:.1f}x;"
        f" against the tuned unpack {figures['metadata']['decode_loads']['vs_glib_tuned']:.1f}x"
        f" and {figures['metadata']['decode_typed']['vs_glib_tuned']:.1f}x)"
    )
    ours_x = figures["content"]["ours"]["vs_floor_zlib"]
    print(f"content checksum: ours at {ours_x:.2f}x the zlib+hashlib floor")

    results = {
        "benchmark": "codec",
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "quick": args.quick,
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "glib": glib["glib"],
            **_versions(),
        },
        "repo": {
            "path": str(repo),
            "nfiles": large.nfiles,
            "commits": len(large.commits),
            "files": large.files,
        },
        "metadata_set": {
            **meta_set,
            "by_type": by_type,
            "dirtree_entries": meta["dirtree_entries"],
        },
        "repeat": {
            "ours_metadata": meta_repeat,
            "glib_unpack": glib_repeat,
            "glib_tuned": tuned_repeat,
            "content": content_repeat,
            "filez_sample_step": step,
        },
        **figures,
        "content_set": {k: content[k] for k in ("objects", "compressed_bytes", "content_bytes")},
        "goal": {
            "status": goal,
            "decode_loads_vs_glib_unpack": loads_x,
            "decode_typed_vs_glib_unpack": typed_x,
        },
        "correctness": {"ok": not failures, "failures": failures},
        "seconds_total": time.perf_counter() - started,
    }
    save_results(RESULTS, results)
    if failures:
        print(f"\n!!! CORRECTNESS FAILURES ({len(failures)}):", file=sys.stderr)
        for failure in failures[:20]:
            print(f"!!!   {failure}", file=sys.stderr)
        if len(failures) > 20:
            print(f"!!!   ... and {len(failures) - 20} more (see {RESULTS.name})", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
