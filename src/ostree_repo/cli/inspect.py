"""``ostree-repo inspect FILE``: decode any OSTree object or repository file and show it.

Internal to ostree_repo: the CLI's interface is the command line (:func:`ostree_repo.cli.main`).
"""

from __future__ import annotations

import argparse
import hashlib
import os
from collections.abc import Callable
from typing import Any

from ostree_repo.cli._verb import Verb, when
from ostree_repo.errors import InvalidNameError, InvalidObjectError
from ostree_repo.gvariant import Variant
from ostree_repo.gvariant.text import format_value, to_json
from ostree_repo.objects import (
    Commit,
    DeltaIndex,
    DeltaSuperblock,
    DetachedMetadata,
    DirMeta,
    DirTree,
    ObjectType,
    Summary,
    Tombstone,
    read_filez,
)
from ostree_repo.objects._fields import decode
from ostree_repo.objects.delta import DeltaPart
from ostree_repo.objects.names import is_checksum

NAME = "inspect"
HELP = "decode an object or repository file (commit, dirtree, filez, summary, superblock, ...)"

KINDS = [
    "commit",
    "dirtree",
    "dirmeta",
    "file",
    "commitmeta",
    "tombstone-commit",
    "summary",
    "summary-signatures",
    "delta-superblock",
    "delta-index",
    "delta-part",
]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the verb's arguments."""
    parser.add_argument("file", help="the file to decode")
    parser.add_argument(
        "--kind", choices=KINDS, help="decode as this kind instead of guessing from name and bytes"
    )


def _metadata_json(metadata: dict[str, Variant]) -> dict[str, Any]:
    return {k: to_json(v) for k, v in metadata.items()}


def _metadata_text(metadata: dict[str, Variant], indent: str = "  ") -> list[str]:
    return [f"{indent}{k}: {format_value('v', v)}" for k, v in metadata.items()]


def _commit(data: bytes) -> tuple[dict[str, Any], list[str]]:
    c = Commit.from_bytes(data)
    doc = {
        "parent": c.parent,
        "subject": c.subject,
        "body": c.body,
        "timestamp": c.timestamp,
        "root_tree": c.root_tree,
        "root_meta": c.root_meta,
        "content_checksum": c.content_checksum,
        "version": c.version,
        "metadata": _metadata_json(c.metadata),
        "related": [list(r) for r in c.related],
    }
    lines = [
        f"parent: {c.parent or 'none'}",
        f"date: {when(c.timestamp)}",
        f"subject: {c.subject}",
        f"root tree: {c.root_tree}",
        f"root dirmeta: {c.root_meta}",
        f"content checksum: {c.content_checksum}",
    ]
    if c.body:
        lines.append("body:\n" + "\n".join("  " + line for line in c.body.splitlines()))
    if c.metadata:
        lines += ["metadata:", *_metadata_text(c.metadata)]
    return doc, lines


def _dirtree(data: bytes) -> tuple[dict[str, Any], list[str]]:
    t = DirTree.from_bytes(data)
    doc = {
        "files": [{"name": f.name, "checksum": f.checksum} for f in t.files],
        "dirs": [{"name": d.name, "tree": d.tree, "meta": d.meta} for d in t.dirs],
    }
    lines = [f"file {f.checksum} {f.name}" for f in t.files]
    lines += [f"dir  {d.tree} {d.meta} {d.name}/" for d in t.dirs]
    return doc, lines or ["(empty directory)"]


def _xattrs(xattrs: tuple[tuple[bytes, bytes], ...]) -> list[dict[str, str]]:
    return [{"name": n.decode("utf-8", "replace"), "value": v.hex()} for n, v in xattrs]


def _dirmeta(data: bytes) -> tuple[dict[str, Any], list[str]]:
    m = DirMeta.from_bytes(data)
    xattrs = _xattrs(m.xattrs)
    doc = {"uid": m.uid, "gid": m.gid, "mode": m.mode, "xattrs": xattrs}
    lines = [f"uid: {m.uid}", f"gid: {m.gid}", f"mode: {m.mode:#o}"]
    lines += [f"xattr {x['name']}: {x['value']}" for x in xattrs]
    return doc, lines


def _file(data: bytes) -> tuple[dict[str, Any], list[str]]:
    h, payload = read_filez(data)
    doc: dict[str, Any] = {
        "uid": h.uid,
        "gid": h.gid,
        "mode": h.mode,
        "symlink_target": h.symlink_target or None,
        "size": len(payload),
        "compressed_size": len(data),
        "xattrs": _xattrs(h.xattrs),
    }
    kind = (
        f"symlink -> {h.symlink_target}" if h.is_symlink else f"regular file, {len(payload)} bytes"
    )
    lines = [kind, f"uid: {h.uid}", f"gid: {h.gid}", f"mode: {h.mode:#o}"]
    lines += [f"xattr {x['name']}: {x['value']}" for x in doc["xattrs"]]
    return doc, lines


def _commitmeta(data: bytes) -> tuple[dict[str, Any], list[str]]:
    m = DetachedMetadata.from_bytes(data)
    return {"metadata": _metadata_json(m.metadata)}, _metadata_text(m.metadata, "") or ["(empty)"]


def _tombstone(data: bytes) -> tuple[dict[str, Any], list[str]]:
    t = Tombstone.from_bytes(data)
    return {"commit": t.commit}, [f"deleted commit: {t.commit}"]


def _refs_json(refs: Any) -> list[dict[str, Any]]:
    return [
        {
            "name": r.name,
            "commit": r.checksum,
            "commit_size": r.commit_size,
            "timestamp": r.timestamp,
            "metadata": _metadata_json(r.metadata),
        }
        for r in refs
    ]


def _summary(data: bytes) -> tuple[dict[str, Any], list[str]]:
    s = Summary.from_bytes(data)
    doc = {
        "refs": _refs_json(s.refs),
        "static_deltas": s.static_deltas,
        "last_modified": s.last_modified,
        "collection_map": {cid: _refs_json(refs) for cid, refs in s.collection_map.items()},
        "metadata": _metadata_json(s.metadata),
    }
    lines = [f"ref {r.name}: {r.checksum} ({r.commit_size} bytes)" for r in s.refs]
    for cid, refs in s.collection_map.items():
        lines += [f"ref ({cid}, {r.name}): {r.checksum}" for r in refs]
    lines += [f"delta {name}: superblock {digest}" for name, digest in s.static_deltas.items()]
    if s.last_modified is not None:
        lines.append(f"last modified: {when(s.last_modified)}")
    lines += ["metadata:", *_metadata_text(s.metadata)]
    return doc, lines


def _signatures(data: bytes) -> tuple[dict[str, Any], list[str]]:
    value = decode("a{sv}", data, "summary.sig")
    doc = {
        "signatures": {
            k: [s.hex() for s in v.value] for k, v in value.items() if v.signature == "aay"
        }
    }
    lines = [f"{k}: {len(v)} signature(s)" for k, v in doc["signatures"].items()]
    return doc, lines or ["(no signatures)"]


def _superblock(data: bytes) -> tuple[dict[str, Any], list[str]]:
    d = DeltaSuperblock.from_bytes(data)
    commit_doc, _ = _commit(d.commit.to_bytes())
    doc = {
        "from": d.from_checksum,
        "to": d.to_checksum,
        "timestamp": d.timestamp,
        "commit": commit_doc,
        "metadata": _metadata_json(d.metadata),
        "parts": [
            {
                "checksum": p.checksum,
                "size": p.size,
                "uncompressed_size": p.usize,
                "objects": [{"type": t.value, "checksum": c} for t, c in p.objects],
            }
            for p in d.parts
        ],
        "fallbacks": [
            {
                "type": f.objtype.value,
                "checksum": f.checksum,
                "size": f.size,
                "uncompressed_size": f.usize,
            }
            for f in d.fallbacks
        ],
    }
    lines = [
        f"from: {d.from_checksum or '(scratch)'}",
        f"to: {d.to_checksum}",
        f"date: {when(d.timestamp)}",
        f"parts: {len(d.parts)}, {sum(p.size for p in d.parts)} bytes",
        f"fallback objects: {len(d.fallbacks)}, {sum(f.size for f in d.fallbacks)} bytes",
    ]
    lines += [
        f"part {i}: {p.checksum} {p.size} bytes, {len(p.objects)} objects"
        for i, p in enumerate(d.parts)
    ]
    return doc, lines


def _index(data: bytes) -> tuple[dict[str, Any], list[str]]:
    i = DeltaIndex.from_bytes(data)
    return {"static_deltas": i.deltas}, [f"delta {n}: superblock {c}" for n, c in i.deltas.items()]


def _part(data: bytes) -> tuple[dict[str, Any], list[str]]:
    p = DeltaPart.from_bytes(data)
    doc = {
        "compression": {0: "none", ord("x"): "xz"}[p.compression],
        "modes": [list(m) for m in p.modes],
        "xattrs": [_xattrs(x) for x in p.xattrs],
        "blob_size": len(p.blob),
        "ops_size": len(p.ops),
    }
    lines = [
        f"compression: {doc['compression']}",
        f"modes: {len(p.modes)}, xattr sets: {len(p.xattrs)}",
        f"blob: {len(p.blob)} bytes, opcodes: {len(p.ops)} bytes",
    ]
    return doc, lines


Describer = Callable[[bytes], tuple[dict[str, Any], list[str]]]
_DESCRIBERS: dict[str, Describer] = {
    "commit": _commit,
    "dirtree": _dirtree,
    "dirmeta": _dirmeta,
    "file": _file,
    "commitmeta": _commitmeta,
    "tombstone-commit": _tombstone,
    "summary": _summary,
    "summary-signatures": _signatures,
    "delta-superblock": _superblock,
    "delta-index": _index,
    "delta-part": _part,
}
# When neither the name nor --kind says, try the strictest decoders first.
_GUESS_ORDER = [
    "commit",
    "delta-superblock",
    "summary",
    "dirtree",
    "dirmeta",
    "file",
    "tombstone-commit",
    "delta-index",
    "commitmeta",
    "delta-part",
]


def _kind_from_name(path: str) -> tuple[str | None, str | None]:
    """(kind, checksum named by the path) as far as the file name tells."""
    base = os.path.basename(path)
    parent = os.path.basename(os.path.dirname(os.path.abspath(path)))
    if base == "summary":
        return "summary", None
    if base == "summary.sig":
        return "summary-signatures", None
    if base == "superblock":
        return "delta-superblock", None
    if base.endswith(".index"):
        return "delta-index", None
    if base.isdigit() and "deltas" in os.path.abspath(path).split(os.sep):
        return "delta-part", None
    stem, dot, ext = base.partition(".")
    if not dot:
        return None, None
    try:
        objtype = ObjectType.from_extension(ext)
    except InvalidNameError:
        return None, None
    named = parent + stem if is_checksum(parent + stem) else None
    return objtype.value, named


def _checksum(kind: str, data: bytes) -> str | None:
    if kind in ("commit", "dirtree", "dirmeta"):
        return hashlib.sha256(data).hexdigest()
    if kind == "file":
        from ostree_repo.objects import FilezReader

        reader = FilezReader()
        reader.feed(data)
        reader.finish()
        return reader.checksum()
    return None


def describe(path: str, data: bytes, kind: str | None = None) -> dict[str, Any]:
    """Decode ``data`` (read from ``path``) and describe it; guess the kind if not given."""
    guessed, named = _kind_from_name(path)
    kind = kind or guessed
    candidates = [kind] if kind else _GUESS_ORDER
    errors = []
    for candidate in candidates:
        try:
            doc, lines = _DESCRIBERS[candidate](data)
        except InvalidObjectError as e:
            errors.append(f"{candidate}: {e}")
            continue
        checksum = _checksum(candidate, data)
        result: dict[str, Any] = {"kind": candidate, "path": path, "size": len(data)}
        if checksum is not None:
            result["checksum"] = checksum
        if named is not None:
            result["named"] = named
            if checksum is not None:
                result["name_matches"] = checksum == named
        result["value"] = doc
        result["_lines"] = lines
        return result
    if kind:
        raise InvalidObjectError(f"{path}: not a valid {errors[0]}")
    raise InvalidObjectError(f"{path}: not a recognised OSTree object or repository file")


def run(args: argparse.Namespace) -> tuple[Any, str]:
    """Run the verb: returns (JSON document, text)."""
    with open(args.file, "rb") as f:
        data = f.read()
    result = describe(args.file, data, args.kind)
    lines = result.pop("_lines")
    head = f"{result['kind']} {result.get('checksum', '')}".rstrip()
    if result.get("name_matches") is False:
        head += f" (MISMATCH: file is named {result['named']})"
    text = "\n".join([head, *("  " + line for line in lines)])
    return result, text


VERBS = [Verb(NAME, HELP, add_arguments, run)]
