"""Self-tests for the oracles: the ostree-built fixture repos and the GLib server."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest

from .fixtures import BENCHMARKS_DIR
from .glib_oracle import (
    DICT_TAG,
    JUST_TAG,
    SYSTEM_PYTHON,
    VARIANT_TAG,
    GLibOracle,
    GLibOracleDiedError,
    GLibOracleError,
)
from .ostree_cli import (
    RICH_METADATA,
    RepoInfo,
    count_objects,
    delta_index_path,
    fsck,
    list_deltas,
    list_objects,
    mbase64,
    ostree,
    rev_parse,
)

COMMIT = "(a{sv}aya(say)sstayay)"
DIRTREE = "(a(say)a(sayay))"
DIRMETA = "(uuua(ayay))"
SUMMARY = "(a(s(taya{sv}))a{sv})"
SUPERBLOCK = "(a{sv}tayay" + COMMIT + "aya(uayttay)a(yaytt))"
META_TYPES = {
    "commit": COMMIT,
    "dirtree": DIRTREE,
    "dirmeta": DIRMETA,
    "commitmeta": "a{sv}",
    "tombstone-commit": "a{sv}",
}


def as_dict(value: Any) -> dict[Any, Any]:
    """A decoded ``("__dict__", pairs)`` as a dict (asserting unique keys)."""
    assert value[0] == DICT_TAG
    pairs = value[1]
    d = dict(pairs)
    assert len(d) == len(pairs), "duplicate keys"
    return d


def unvariant(value: Any) -> Any:
    """Strip one ``("__variant__", sig, v)`` wrapper."""
    assert value[0] == VARIANT_TAG
    return value[2]


def read_commit(glib: GLibOracle, repo: RepoInfo, checksum: str) -> tuple[Any, ...]:
    normal, value = glib.decode(COMMIT, repo.object_path(checksum, "commit").read_bytes())
    assert normal
    return tuple(value)


# ---------------------------------------------------------------------------
# The rich repo


def test_rich_repo_fsck(rich_repo: RepoInfo) -> None:
    out = fsck(rich_repo.path)
    assert "no errors found" in out


def test_rich_repo_object_types(rich_repo: RepoInfo) -> None:
    counts = count_objects(rich_repo.path)
    assert counts["commit"] == 8  # C1-C5, S1, O1, T2 (T1 deleted)
    assert counts["commitmeta"] == 2  # C2 and C5
    assert counts["tombstone-commit"] == 1
    assert counts["dirtree"] > 20
    assert counts["dirmeta"] > 5
    assert counts["filez"] > 100
    assert counts["delta-superblock"] == 5
    assert counts["delta-part"] == 4  # the inline delta has none
    assert counts["delta-index"] == 4  # targets C2, C3, C4, C5
    assert counts["summary"] == 1
    assert counts["summary.sig"] == int(rich_repo.gpg is not None)
    assert set(counts) >= {
        "commit",
        "dirtree",
        "dirmeta",
        "filez",
        "commitmeta",
        "tombstone-commit",
    }
    objs = list_objects(rich_repo.path)
    assert all(len(c) == 64 for c, _, _ in objs)
    # framing offsets of every width occur in real objects
    dirtree_sizes = [p.stat().st_size for _, e, p in objs if e == "dirtree"]
    assert max(dirtree_sizes) > 65535  # many/: 4-byte offsets
    assert any(255 < n < 65536 for n in dirtree_sizes)  # 2-byte offsets
    assert min(dirtree_sizes) < 256  # 1-byte offsets


def test_rich_repo_refs_and_history(rich_repo: RepoInfo) -> None:
    lab = rich_repo.labels
    assert rich_repo.refs == {
        "main": lab["C5"],
        "exampleos/x86_64/stable": lab["S1"],
        "tombstone-demo": lab["T2"],
    }
    assert rich_repo.main == [lab[f"C{i}"] for i in range(1, 6)]
    for parent, child in zip(rich_repo.main, rich_repo.main[1:], strict=False):
        assert rev_parse(rich_repo.path, f"{child}^") == parent
        assert rich_repo.commit_info[child].parent == parent
    assert rich_repo.commit_info[lab["S1"]].parent == lab["C3"]
    assert rich_repo.commit_info[lab["T2"]].parent == lab["T1"]
    assert rich_repo.orphans == [lab["O1"]]
    assert rich_repo.tombstoned == [lab["T1"]]
    assert not rich_repo.object_path(lab["T1"], "commit").exists()
    assert rich_repo.object_path(lab["T1"], "tombstone-commit").is_file()
    assert lab["T1"] not in rich_repo.commits
    assert set(rich_repo.commits) == {
        c for c, e, _ in list_objects(rich_repo.path) if e == "commit"
    }
    config = (rich_repo.path / "config").read_text()
    assert "tombstone-commits=true" in config
    assert "mode=archive-z2" in config


def test_rich_repo_metadata_objects_are_normal(rich_repo: RepoInfo, glib: GLibOracle) -> None:
    items = [
        (META_TYPES[ext], path.read_bytes())
        for _, ext, path in list_objects(rich_repo.path)
        if ext in META_TYPES
    ]
    items.append((SUMMARY, (rich_repo.path / "summary").read_bytes()))
    for d in rich_repo.deltas.values():
        items.append((SUPERBLOCK, d.superblock.read_bytes()))
    for p in (rich_repo.path / "delta-indexes").rglob("*.index"):
        items.append(("a{sv}", p.read_bytes()))
    if rich_repo.summary_sig is not None:
        items.append(("a{sv}", rich_repo.summary_sig.read_bytes()))
    results = glib.decode_many(items)
    assert len(results) > 100
    assert all(normal for normal, _ in results)


def test_rich_repo_commit_metadata(rich_repo: RepoInfo, glib: GLibOracle) -> None:
    c1 = read_commit(glib, rich_repo, rich_repo.labels["C1"])
    meta = as_dict(c1[0])
    assert c1[1] == b""  # no parent
    assert c1[3] == "Initial commit ✓"
    assert c1[4].startswith("The first commit.")
    assert c1[5] == int.from_bytes((1704067200).to_bytes(8, "big"), "little")  # swapped
    assert meta["version"] == (VARIANT_TAG, "s", "1.0")
    assert meta["ostree.ref-binding"] == (VARIANT_TAG, "as", ["main"])
    # every --add-metadata value kept its GVariant type
    for key, text in RICH_METADATA.items():
        sig, data = glib.parse(text)
        assert meta[key][1] == sig, key
        assert meta[key] == (VARIANT_TAG, sig, glib.decode(sig, data)[1]), key
    assert meta["test.handle"] == (VARIANT_TAG, "h", 3)
    assert meta["test.maybe-maybe"] == (VARIANT_TAG, "mmi", (JUST_TAG, None))
    assert meta["test.bytes"] == (VARIANT_TAG, "ay", b"\x00\x01\xff")

    c2 = read_commit(glib, rich_repo, rich_repo.labels["C2"])
    assert c2[1] == bytes.fromhex(rich_repo.labels["C1"])
    normal, detached = glib.decode(
        "a{sv}", rich_repo.object_path(rich_repo.labels["C2"], "commitmeta").read_bytes()
    )
    assert normal
    assert as_dict(detached) == {
        "detached.key": (VARIANT_TAG, "s", "detval"),
        "detached.other": (VARIANT_TAG, "s", "second value"),
    }

    c3 = read_commit(glib, rich_repo, rich_repo.labels["C3"])
    sizes = unvariant(as_dict(c3[0])["ostree.sizes"])
    assert len(sizes) > 10 and all(len(s) > 32 for s in sizes)


def test_rich_repo_gpg(rich_repo: RepoInfo, glib: GLibOracle) -> None:
    if rich_repo.gpg is None:
        pytest.skip("gpg not installed")
    c5 = rich_repo.labels["C5"]
    normal, detached = glib.decode("a{sv}", rich_repo.object_path(c5, "commitmeta").read_bytes())
    meta = as_dict(detached)
    assert normal and meta["detached.release"] == (VARIANT_TAG, "s", "5.0")
    assert meta["ostree.gpgsigs"][1] == "aay" and len(meta["ostree.gpgsigs"][2]) == 1
    shown = ostree("show", f"--gpg-homedir={rich_repo.gpg.homedir}", c5, repo=rich_repo.path)
    assert "Good signature" in shown
    assert rich_repo.summary_sig is not None
    normal, sig = glib.decode("a{sv}", rich_repo.summary_sig.read_bytes())
    assert normal and as_dict(sig)["ostree.gpgsigs"][1] == "aay"
    assert rich_repo.gpg.public_keyring.stat().st_size > 0


def test_rich_repo_tombstone(rich_repo: RepoInfo, glib: GLibOracle) -> None:
    t1 = rich_repo.tombstoned[0]
    data = rich_repo.object_path(t1, "tombstone-commit").read_bytes()
    normal, value = glib.decode("a{sv}", data)
    assert normal
    assert as_dict(value) == {"commit": (VARIANT_TAG, "ay", t1.encode() + b"\x00")}


def test_rich_repo_deltas(rich_repo: RepoInfo, glib: GLibOracle) -> None:
    lab = rich_repo.labels
    assert list_deltas(rich_repo.path) == sorted(rich_repo.deltas)
    by_kind = {
        "scratch": rich_repo.deltas[lab["C5"]],
        "small": rich_repo.deltas[f"{lab['C1']}-{lab['C2']}"],
        "binary": rich_repo.deltas[f"{lab['C2']}-{lab['C3']}"],
        "inline": rich_repo.deltas[f"{lab['C3']}-{lab['C4']}"],
        "swapped": rich_repo.deltas[f"{lab['C4']}-{lab['C5']}"],
    }
    assert by_kind["scratch"].path.name == mbase64(lab["C5"])[2:]

    def show(name: str) -> str:
        return ostree("static-delta", "show", name, repo=rich_repo.path)

    scratch = show(by_kind["scratch"].name)
    assert "Number of fallback entries: 1" in scratch
    binary = show(by_kind["binary"].name)
    assert "bspatch=1" in binary  # blobs/patch.bin
    assert "bspatch=0" not in binary and "write=0 " not in binary  # rollsum: roll.bin
    assert "Endianness: big" in show(by_kind["swapped"].name)
    assert by_kind["swapped"].endianness == "B"
    normal, sb = glib.decode(SUPERBLOCK, by_kind["swapped"].superblock.read_bytes())
    assert normal
    assert as_dict(sb[0])["ostree.endianness"] == (VARIANT_TAG, "y", ord("B"))
    (fallback,) = sb[7]  # data/big.bin, sizes byte-swapped
    assert fallback[3] == int.from_bytes((5_000_000).to_bytes(8, "big"), "little")
    for _version, _csum, size, _usize, _objs in sb[6]:
        assert (
            int.from_bytes(size.to_bytes(8, "little"), "big")
            == by_kind["swapped"].parts[0].stat().st_size
        )

    inline = by_kind["inline"]
    assert inline.inline and inline.parts == ()
    assert sorted(p.name for p in inline.path.iterdir()) == ["superblock"]
    normal, sb = glib.decode(SUPERBLOCK, inline.superblock.read_bytes())
    assert normal
    keys = [k for k, _ in sb[0][1]]
    assert any(k.endswith("/0") and k.startswith("deltas/") for k in keys)
    assert sb[3] == bytes.fromhex(lab["C4"]) and sb[2] == bytes.fromhex(lab["C3"])

    normal, sb = glib.decode(SUPERBLOCK, by_kind["scratch"].superblock.read_bytes())
    assert normal and sb[2] == b""
    assert as_dict(sb[0])["ostree.endianness"] == (VARIANT_TAG, "y", ord("l"))
    assert len(sb[7]) == 1 and sb[7][0][3] == 5_000_000  # the fallback object
    assert any(k.endswith("/commitmeta") for k, _ in sb[0][1])

    # delta indexes list exactly the deltas to each target, by superblock SHA-256
    for target in (lab["C2"], lab["C3"], lab["C4"], lab["C5"]):
        normal, idx = glib.decode("a{sv}", delta_index_path(rich_repo.path, target).read_bytes())
        assert normal
        listed = as_dict(unvariant(as_dict(idx)["ostree.static-deltas"]))
        expected = {d.name: d for d in rich_repo.deltas.values() if d.to_commit == target}
        assert set(listed) == set(expected)
        for name, v in listed.items():
            assert v == (VARIANT_TAG, "ay", bytes.fromhex(expected[name].superblock_sha256))


def test_rich_repo_summary(rich_repo: RepoInfo, glib: GLibOracle) -> None:
    normal, (refs, meta) = glib.decode(SUMMARY, (rich_repo.path / "summary").read_bytes())
    assert normal
    names = [r[0] for r in refs]
    assert names == sorted(names, key=lambda s: s.encode())
    assert {r[0]: r[1][1].hex() for r in refs} == rich_repo.refs
    for name, (size, csum, _) in refs:
        assert size == rich_repo.object_path(csum.hex(), "commit").stat().st_size, name
    m = as_dict(meta)
    assert m["custom.key"] == (VARIANT_TAG, "s", "hello")
    assert m["custom.number"] == (VARIANT_TAG, "u", 42)
    assert m["ostree.summary.tombstone-commits"] == (VARIANT_TAG, "b", True)
    assert m["ostree.summary.indexed-deltas"] == (VARIANT_TAG, "b", True)
    deltas = as_dict(unvariant(m["ostree.static-deltas"]))
    assert {k: v[2].hex() for k, v in deltas.items()} == {
        d.name: d.superblock_sha256 for d in rich_repo.deltas.values()
    }


def test_rich_repo_source_trees(rich_repo: RepoInfo) -> None:
    c1 = rich_repo.commit_info[rich_repo.labels["C1"]]
    tree = c1.tree
    assert not (tree / "data/big.bin").exists()
    c5_tree = rich_repo.commit_info[rich_repo.labels["C5"]].tree
    assert (c5_tree / "data/big.bin").stat().st_size == 5_000_000
    assert os.readlink(tree / "links/dangling") == "does/not/exist"
    assert (tree / "modes/setuid").stat().st_mode & 0o7777 == 0o4755
    assert len(list((tree / "many").iterdir())) == 2000
    if rich_repo.xattrs:
        assert os.getxattr(tree / "xattrs", "user.dirx") == b"d1"
    listing = ostree(
        "ls",
        "-X",
        rich_repo.labels["C1"],
        "/xattrs/file.txt",
        "/owned/uid1000",
        repo=rich_repo.path,
    )
    if rich_repo.xattrs:
        assert "user.abc" in listing
    if rich_repo.as_root:
        assert " 1000 1000 " in listing


# ---------------------------------------------------------------------------
# The collection repo


def test_collection_repo(collection_repo: RepoInfo, glib: GLibOracle) -> None:
    assert "no errors found" in fsck(collection_repo.path)
    assert collection_repo.collection_refs == {
        ("org.example.Other", "foo/bar"): collection_repo.labels["C1"]
    }
    assert collection_repo.refs["main"] == collection_repo.labels["C2"]
    assert "ostree-metadata" in collection_repo.refs
    normal, (_, meta) = glib.decode(SUMMARY, (collection_repo.path / "summary").read_bytes())
    assert normal
    m = as_dict(meta)
    assert m["ostree.summary.collection-id"] == (VARIANT_TAG, "s", "org.example.Os")
    cmap = as_dict(unvariant(m["ostree.summary.collection-map"]))
    assert [r[0] for r in cmap["org.example.Other"]] == ["foo/bar"]
    c1 = read_commit(glib, collection_repo, collection_repo.labels["C1"])
    assert as_dict(c1[0])["ostree.collection-binding"] == (VARIANT_TAG, "s", "org.example.Os")


# ---------------------------------------------------------------------------
# The GLib oracle

# (signature, value, hex) from the fact sheet, section 1.6 and 1.4
KNOWN: list[tuple[str, Any, str]] = [
    ("b", True, "01"),
    ("n", -2, "feff"),
    ("q", 0x1234, "3412"),
    ("u", 0x01020304, "04030201"),
    ("t", 0x0102030405060708, "0807060504030201"),
    ("d", 1.5, "000000000000f83f"),
    ("s", "hello", "68656c6c6f00"),
    ("o", "/a/b", "2f612f6200"),
    ("g", "a{sv}", "617b73767d00"),
    ("v", (VARIANT_TAG, "u", 7), "070000000075"),
    ("v", (VARIANT_TAG, "s", "hi"), "6869000073"),
    ("mu", 7, "07000000"),
    ("mu", None, ""),
    ("ms", "ab", "61620000"),
    ("ms", "", "0000"),
    ("ms", None, ""),
    ("ay", b"\x01\x02\x03", "010203"),
    ("as", ["a", "bc"], "61006263000205"),
    ("(su)", ("ab", 1), "616200000100000003"),
    ("(ss)", ("a", "b"), "6100620002"),
    ("(sss)", ("a", "bb", "c"), "61006262006300" + "0502"),
    ("a(say)", [("a", b"\x01")], "6100010204"),
    ("a{sv}", {"k": (VARIANT_TAG, "b", True)}, "6b00000000000000010062020c"),
    ("a{sv}", (DICT_TAG, [("k", (VARIANT_TAG, "b", True))]), "6b00000000000000010062020c"),
    ("(yu)", (1, 2), "0100000002000000"),
    ("(uy)", (2, 1), "0200000001000000"),
    ("()", (), "00"),
    ("a()", [(), ()], "0000"),
    ("(as)", ([],), ""),
    ("(a(say)a(sayay))", ([], []), "00"),
    ("a{sv}", {}, ""),
    ("(uuua(ayay))", (0, 0, 0xED410000, []), "0000000000000000000041ed"),
    ("mmi", (JUST_TAG, None), "00"),
    ("h", 3, "03000000"),
]


@pytest.mark.parametrize(("signature", "value", "hexbytes"), KNOWN)
def test_glib_known_encodings(glib: GLibOracle, signature: str, value: Any, hexbytes: str) -> None:
    data = glib.encode(signature, value)
    assert data.hex() == hexbytes
    normal, decoded = glib.decode(signature, data)
    assert normal
    assert glib.encode(signature, decoded) == data


@pytest.mark.parametrize(
    ("length", "total", "tail"),
    [
        (252, 254, "6100fd"),
        (253, 255, "6100fe"),
        (254, 257, "00ff00"),
        (65532, 65535, "00fdff"),
        (65533, 65538, "00feff0000"),
    ],
)
def test_glib_offset_widths(glib: GLibOracle, length: int, total: int, tail: str) -> None:
    data = glib.encode("as", ["a" * length])
    assert len(data) == total
    assert data.hex().endswith(tail)


def test_glib_two_byte_tuple_offset(glib: GLibOracle) -> None:
    data = glib.encode("(ss)", ("a" * 300, "b"))
    assert len(data) == 305 and data[-4:].hex() == "62002d01"


@pytest.mark.parametrize(
    ("signature", "hexbytes", "value"),
    [
        ("(yi)", "5566778802010000", (0x55, 258)),  # non-zero padding
        ("u", "073390", 0),  # wrong size for a fixed type
        ("b", "02", True),  # boolean other than 0/1
        ("as", "666f6f006261720062617a00" + "04100c", ["foo", "", ""]),  # bad offsets
        ("as", "61000200", ["", "", "", ""]),  # last offset 0: four empty elements
        ("s", "666f6f", ""),  # no terminator
        ("ms", "6162", None),  # Just of a variable-size type without the trailing 0x00
    ],
)
def test_glib_non_normal(glib: GLibOracle, signature: str, hexbytes: str, value: Any) -> None:
    data = bytes.fromhex(hexbytes)
    normal, decoded = glib.decode(signature, data)
    assert not normal
    assert not glib.is_normal(signature, data)
    if signature != "ms":
        assert decoded == value
    nf = glib.normal_form(signature, data)
    assert glib.is_normal(signature, nf)
    assert glib.decode(signature, nf) == (True, decoded)


def test_glib_maybe_representation(glib: GLibOracle) -> None:
    assert glib.decode("mmi", b"") == (True, None)
    assert glib.decode("mmi", b"\x00") == (True, (JUST_TAG, None))
    five = glib.encode("mmi", (JUST_TAG, 5))
    assert glib.decode("mmi", five) == (True, (JUST_TAG, 5))
    assert glib.encode("mmi", 5) == five  # a bare value means Just(Just 5)
    assert glib.decode("mi", glib.encode("mi", 5)) == (True, 5)
    assert glib.decode("mmmi", glib.encode("mmmi", (JUST_TAG, (JUST_TAG, None)))) == (
        True,
        (JUST_TAG, (JUST_TAG, None)),
    )


def test_glib_dict_order_and_duplicates(glib: GLibOracle) -> None:
    pairs = [
        ("b", (VARIANT_TAG, "u", 1)),
        ("a", (VARIANT_TAG, "u", 2)),
        ("b", (VARIANT_TAG, "u", 3)),
    ]
    data = glib.encode("a{sv}", (DICT_TAG, pairs))
    assert glib.decode("a{sv}", data) == (True, (DICT_TAG, pairs))


def test_glib_text_helpers(glib: GLibOracle) -> None:
    data = glib.encode("a{sv}", {"k": (VARIANT_TAG, "b", True)})
    assert glib.print("a{sv}", data) == "{'k': <true>}"
    assert glib.format("v", (VARIANT_TAG, "as", ["a"])) == "<['a']>"
    assert glib.parse("@a{sv} {'k': <true>}") == ("a{sv}", data)
    assert glib.parse("5", "q") == ("q", b"\x05\x00")


def test_glib_errors_do_not_kill_the_server(glib: GLibOracle) -> None:
    pid = glib.pid
    bad: list[tuple[str, Any]] = [
        ("s", "a\x00b"),
        ("s", 1),
        ("u", -1),
        ("y", 256),
        ("o", "not/a/path"),
        ("g", "a{"),
        ("r", 1),
        ("a{vs}", []),
        ("(ii)", (1,)),
        ("v", 5),
        ("", 1),
        ("ii", 1),
    ]
    for sig, value in bad:
        with pytest.raises(GLibOracleError):
            glib.encode(sig, value)
    with pytest.raises(GLibOracleError):
        glib.decode("a{vs}", b"")
    with pytest.raises(GLibOracleError):
        glib.parse("@s 5")
    with pytest.raises(GLibOracleError):
        glib._call("no-such-op")
    results = glib.encode_many([("s", "ok"), ("s", 1), ("u", 7)], return_exceptions=True)
    assert results[0] == b"ok\x00" and isinstance(results[1], GLibOracleError)
    assert results[2] == b"\x07\x00\x00\x00"
    assert glib.ping() == "pong" and glib.pid == pid


def test_glib_batches(glib: GLibOracle) -> None:
    items = [("(su)", (f"s{i}", i)) for i in range(2000)]
    encoded = glib.encode_many(items)
    decoded = glib.decode_many([(sig, d) for (sig, _), d in zip(items, encoded, strict=True)])
    assert decoded == [(True, v) for _, v in items]
    assert glib.normal_form_many([("u", b"\x01")]) == [b"\x00\x00\x00\x00"]


def test_glib_random_bytes_never_kill_the_server(glib: GLibOracle) -> None:
    import random

    rng = random.Random(7)
    sigs = ["a{sv}", COMMIT, DIRTREE, "v", "mmv", "(vv)", "aav", "a(ayay)", SUMMARY]
    items = [(rng.choice(sigs), rng.randbytes(rng.randrange(64))) for _ in range(3000)]
    results = glib.decode_many(items, return_exceptions=True)
    assert len(results) == len(items)
    assert all(isinstance(r, tuple) for r in results)
    assert glib.ping() == "pong"


def test_glib_server_restarts_after_crash() -> None:
    with GLibOracle() as g:
        pid = g.pid
        assert pid is not None and g.ping() == "pong"
        os.kill(pid, signal.SIGKILL)
        with pytest.raises(GLibOracleDiedError):
            g.ping()
        assert g.ping() == "pong"
        assert g.pid != pid
    assert g.pid is None


# ---------------------------------------------------------------------------
# Benchmark helpers


def test_large_repo_small(large_repo_small: Any, tmp_path: Path) -> None:
    repo = large_repo_small
    assert "no errors found" in fsck(repo.path)
    assert len(repo.commits) == 2 and len(repo.deltas) == 1
    assert repo.files[0] == 2000
    assert rev_parse(repo.path, "main") == repo.commits[-1]
    assert list_deltas(repo.path) == repo.deltas
    assert (repo.path / "summary").is_file()
    # committing the final tree from scratch gives the same commit
    check = tmp_path / "check-repo"
    ostree("init", "--mode=archive", repo=check)
    got = ostree(
        "commit",
        "--branch=main",
        "--subject=Synthetic commit 2",
        "--timestamp=2024-01-02 00:00:00 +0000",
        "--add-metadata-string=version=2",
        f"--parent={repo.commits[0]}",
        str(repo.tree),
        repo=check,
    ).strip()
    assert got == repo.commits[1]


def test_glib_decode_script(rich_repo: RepoInfo) -> None:
    script = BENCHMARKS_DIR / "_glib_decode.py"
    proc = subprocess.run(
        [SYSTEM_PYTHON, "-I", str(script), str(rich_repo.path)],
        capture_output=True,
        text=True,
        check=True,
    )
    result = json.loads(proc.stdout)
    expected = [
        p
        for _, e, p in list_objects(rich_repo.path)
        if e in ("commit", "dirtree", "dirmeta", "commitmeta")
    ]
    assert result["objects"] == len(expected) + 1  # + summary
    summary = rich_repo.path / "summary"
    assert result["bytes"] == sum(p.stat().st_size for p in expected) + summary.stat().st_size
    assert result["seconds_unpack"] > 0 and result["seconds_normal"] > 0


def test_mbase64() -> None:
    # fact sheet 4.3: C3 = c66d118c... -> xm0RjO8...; '/' becomes '_', no '=' padding
    assert mbase64("c66d118cef" + "00" * 27).startswith("xm0RjO8")
    assert mbase64("ff" * 32) == "_" * 42 + "8"
    assert len(mbase64("00" * 32)) == 43
