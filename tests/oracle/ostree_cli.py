"""Build OSTree repositories with the real ``ostree`` CLI, as test fixtures.

Nothing here imports the project package: libostree (through its CLI) is the
oracle our pure-Python code is compared against.

Main entry points:

* :func:`build_rich_repo` -- an archive repo exercising almost every format
  feature (see its docstring for the exact contents);
* :func:`build_collection_repo` -- a repo with a collection ID and a
  ``refs/mirrors`` collection ref;
* helpers :func:`ostree`, :func:`fsck`, :func:`list_objects`,
  :func:`count_objects`, :func:`read_refs`, :func:`mbase64`,
  :func:`delta_dir`, :func:`copy_repo`.

The repos are deterministic where the CLI allows: file contents come from a
seeded RNG, modes are set explicitly and commit timestamps are fixed, so commit,
dirtree, dirmeta and content checksums are stable from run to run *when built
as root* (file uid/gid are recorded; CI runs as root).  GPG signatures, the
summary's ``last-modified``, delta superblock timestamps (and so superblock
and delta-index checksums) differ between builds.

Fixture repos are shared by a whole test session: treat them as read-only and
use :func:`copy_repo` before mutating one.

ostree 2022.7 facts learnt while building these (beyond the fact sheet):

* an xattr with an *empty value* is silently dropped by ``ostree commit``
  (``xattrs/binary`` has ``user.empty=b""`` on disk, not in the repo);
* ``delta-indexes/`` paths use the modified base64 of the target, like
  ``deltas/`` (see :func:`delta_index_path`);
* ``ostree commit --tree=ref=C --tree=dir=D --skip-list=F`` gives the same
  commit as committing the full tree, but the skip list forces a full walk;
* libostree's GPG verifier reads ``*.gpg`` keyrings in ``--gpg-homedir``, not
  GnuPG 2's ``pubring.kbx`` (so :func:`make_gpg_key` writes
  ``trustedkeys.gpg`` there).
"""

from __future__ import annotations

import base64
import calendar
import contextlib
import hashlib
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

__all__ = [
    "OSTREE",
    "RICH_METADATA",
    "CommitInfo",
    "DeltaInfo",
    "Entry",
    "GpgKey",
    "OstreeCommandError",
    "RepoInfo",
    "build_collection_repo",
    "build_rich_repo",
    "copy_repo",
    "count_objects",
    "delta_dir",
    "delta_index_path",
    "fsck",
    "gpg_available",
    "iter_metadata_objects",
    "list_deltas",
    "list_objects",
    "make_gpg_key",
    "materialize",
    "mbase64",
    "object_path",
    "ostree",
    "ostree_available",
    "read_refs",
    "rev_parse",
    "xattrs_supported",
]

OSTREE = os.environ.get("OSTREE") or shutil.which("ostree") or "/usr/bin/ostree"
GPG = shutil.which("gpg") or "/usr/bin/gpg"

PathLike = str | os.PathLike[str]

# ---------------------------------------------------------------------------
# Running the CLI


class OstreeCommandError(RuntimeError):
    """An ``ostree`` (or ``gpg``) command exited non-zero."""

    def __init__(self, cmd: Sequence[str], returncode: int, stdout: str, stderr: str) -> None:
        super().__init__(
            f"command failed with exit code {returncode}: {' '.join(cmd)}\n"
            f"stderr:\n{stderr.strip()}\nstdout:\n{stdout.strip()[-2000:]}"
        )
        self.cmd = list(cmd)
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr


def _run(
    cmd: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: PathLike | None = None,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    full_env = dict(os.environ)
    full_env.setdefault("LC_ALL", "C.UTF-8")
    if env:
        full_env.update(env)
    proc = subprocess.run(
        list(cmd),
        capture_output=True,
        text=True,
        errors="replace",
        env=full_env,
        cwd=cwd,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    if check and proc.returncode != 0:
        raise OstreeCommandError(cmd, proc.returncode, proc.stdout, proc.stderr)
    return proc


def ostree(
    *args: PathLike,
    repo: PathLike | None = None,
    env: Mapping[str, str] | None = None,
    check: bool = True,
) -> str:
    """Run ``ostree ARGS... [--repo=REPO]`` and return its stdout.

    ``--repo`` is appended last, which works for every subcommand (GOption
    parses options anywhere).  Raises :class:`OstreeCommandError`, carrying
    stderr, on failure.
    """
    cmd = [OSTREE, *(os.fspath(a) for a in args)]
    if repo is not None:
        cmd.append(f"--repo={os.fspath(repo)}")
    return _run(cmd, env=env, check=check).stdout


def ostree_available() -> bool:
    """Whether the ``ostree`` binary can be run."""
    try:
        return _run([OSTREE, "--version"], check=False).returncode == 0
    except OSError:
        return False


def fsck(repo: PathLike, *extra: str) -> str:
    """Run ``ostree fsck`` (raises on any error); returns its output."""
    return ostree("fsck", *extra, repo=repo)


def rev_parse(repo: PathLike, rev: str) -> str:
    """Resolve a ref (or ``ref^``) to a commit checksum."""
    return ostree("rev-parse", rev, repo=repo).strip()


# ---------------------------------------------------------------------------
# Inspecting a repo on disk


def list_objects(repo: PathLike) -> list[tuple[str, str, Path]]:
    """All loose objects as ``(checksum, extension, path)``, sorted.

    ``extension`` is e.g. ``commit``, ``dirtree``, ``dirmeta``, ``filez``,
    ``commitmeta``, ``tombstone-commit``.
    """
    objects = Path(repo) / "objects"
    out: list[tuple[str, str, Path]] = []
    if not objects.is_dir():
        return out
    for sub in sorted(objects.iterdir()):
        if len(sub.name) != 2 or not sub.is_dir():
            continue
        for p in sorted(sub.iterdir()):
            rest, dot, ext = p.name.partition(".")
            if not dot:
                continue
            out.append((sub.name + rest, ext, p))
    return out


def count_objects(repo: PathLike) -> dict[str, int]:
    """Number of loose objects per extension, plus static-delta files.

    Extra keys: ``delta-superblock``, ``delta-part`` (separate part files),
    ``delta-index``, ``summary`` and ``summary.sig`` (0 or 1).
    """
    counts: dict[str, int] = {}
    for _, ext, _ in list_objects(repo):
        counts[ext] = counts.get(ext, 0) + 1
    root = Path(repo)
    deltas = root / "deltas"
    counts["delta-superblock"] = len(list(deltas.rglob("superblock"))) if deltas.is_dir() else 0
    counts["delta-part"] = (
        sum(1 for p in deltas.rglob("*") if p.is_file() and p.name.isdigit())
        if deltas.is_dir()
        else 0
    )
    idx = root / "delta-indexes"
    counts["delta-index"] = len(list(idx.rglob("*.index"))) if idx.is_dir() else 0
    counts["summary"] = int((root / "summary").is_file())
    counts["summary.sig"] = int((root / "summary.sig").is_file())
    return counts


def object_path(repo: PathLike, checksum: str, ext: str) -> Path:
    """``objects/XX/rest.EXT`` for a checksum."""
    return Path(repo) / "objects" / checksum[:2] / f"{checksum[2:]}.{ext}"


def read_refs(repo: PathLike) -> tuple[dict[str, str], dict[tuple[str, str], str]]:
    """Read ``refs/heads`` and ``refs/mirrors`` directly from disk.

    Returns ``(heads, mirrors)``: ``heads`` maps ref name to checksum,
    ``mirrors`` maps ``(collection_id, ref name)`` to checksum.
    """
    root = Path(repo) / "refs"
    heads: dict[str, str] = {}
    mirrors: dict[tuple[str, str], str] = {}
    hdir = root / "heads"
    if hdir.is_dir():
        for p in sorted(hdir.rglob("*")):
            if p.is_file() and not p.is_symlink():
                heads[p.relative_to(hdir).as_posix()] = p.read_text().strip()
    mdir = root / "mirrors"
    if mdir.is_dir():
        for cdir in sorted(mdir.iterdir()):
            for p in sorted(cdir.rglob("*")):
                if p.is_file() and not p.is_symlink():
                    mirrors[(cdir.name, p.relative_to(cdir).as_posix())] = p.read_text().strip()
    return heads, mirrors


def list_deltas(repo: PathLike) -> list[str]:
    """Delta names (``FROM-TO`` or ``TO``) as listed by ``ostree static-delta list``."""
    out = ostree("static-delta", "list", repo=repo)
    return sorted(
        line.strip() for line in out.splitlines() if line.strip() and not line.startswith("(")
    )


def mbase64(checksum: str) -> str:
    """OSTree's "modified base64" of a hex checksum (43 chars, ``/`` -> ``_``)."""
    raw = bytes.fromhex(checksum)
    return base64.b64encode(raw).decode("ascii").rstrip("=").replace("/", "_")


def delta_dir(repo: PathLike, from_commit: str | None, to_commit: str) -> Path:
    """The ``deltas/...`` directory of a static delta."""
    to_b = mbase64(to_commit)
    if from_commit is None:
        return Path(repo) / "deltas" / to_b[:2] / to_b[2:]
    from_b = mbase64(from_commit)
    return Path(repo) / "deltas" / from_b[:2] / f"{from_b[2:]}-{to_b}"


def delta_index_path(repo: PathLike, to_commit: str) -> Path:
    """``delta-indexes/XX/REST.index`` for a target commit.

    Like delta directories, the path uses the *modified base64* of the
    checksum (``XX`` = its first two characters), not hex.
    """
    to_b = mbase64(to_commit)
    return Path(repo) / "delta-indexes" / to_b[:2] / f"{to_b[2:]}.index"


def copy_repo(src: PathLike, dst: PathLike) -> Path:
    """Copy a repo (symlinks as symlinks, xattrs and modes kept); returns ``dst``."""
    shutil.copytree(src, dst, symlinks=True)
    return Path(dst)


# ---------------------------------------------------------------------------
# Source trees


@dataclass(frozen=True)
class Entry:
    """One path of a source tree to materialise.

    ``mode`` holds only permission bits (07777).  ``uid``/``gid`` are applied
    only when running as root.
    """

    kind: Literal["file", "dir", "symlink"]
    data: bytes = b""
    target: str = ""
    mode: int = 0o644
    xattrs: tuple[tuple[str, bytes], ...] = ()
    uid: int | None = None
    gid: int | None = None


Tree = dict[str, Entry]


def _file(
    data: bytes | str,
    mode: int = 0o644,
    xattrs: Mapping[str, bytes] | None = None,
    uid: int | None = None,
    gid: int | None = None,
) -> Entry:
    if isinstance(data, str):
        data = data.encode()
    return Entry(
        "file", data=data, mode=mode, xattrs=tuple(sorted((xattrs or {}).items())), uid=uid, gid=gid
    )


def _dir(mode: int = 0o755, xattrs: Mapping[str, bytes] | None = None) -> Entry:
    return Entry("dir", mode=mode, xattrs=tuple(sorted((xattrs or {}).items())))


def _link(target: str) -> Entry:
    return Entry("symlink", target=target, mode=0o777)


_XATTR_PROBE: dict[str, bool] = {}


def xattrs_supported(directory: PathLike) -> bool:
    """Whether ``user.*`` xattrs can be set on files in ``directory`` (cached)."""
    key = os.fspath(directory)
    if key not in _XATTR_PROBE:
        try:
            with tempfile.NamedTemporaryFile(dir=directory) as f:
                os.setxattr(f.name, "user.ostree-repo-probe", b"1")
                ok = os.getxattr(f.name, "user.ostree-repo-probe") == b"1"
        except OSError:
            ok = False
        _XATTR_PROBE[key] = ok
    return _XATTR_PROBE[key]


def materialize(
    tree: Mapping[str, Entry],
    dest: PathLike,
    *,
    xattrs: bool = True,
    link_from: tuple[Mapping[str, Entry], Path] | None = None,
) -> Path:
    """Write ``tree`` (relative POSIX path -> :class:`Entry`) under ``dest``.

    Missing parent directories are created 0755.  Directory modes are applied
    last (deepest first) so read-only directories can still be filled.
    ``tree[""]``, if present, describes ``dest`` itself.  With
    ``link_from=(other_tree, other_dir)``, regular files whose entry is equal
    in ``other_tree`` are hard-linked from ``other_dir`` instead of written.
    """
    root = Path(dest)
    root.mkdir(parents=True, exist_ok=False)
    is_root = os.geteuid() == 0
    dirs: list[tuple[Path, Entry]] = [(root, tree.get("", _dir()))]
    for rel in sorted(k for k in tree if k):
        entry = tree[rel]
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if entry.kind == "dir":
            path.mkdir(exist_ok=True)
            dirs.append((path, entry))
        elif entry.kind == "symlink":
            os.symlink(entry.target, path)
        elif link_from is not None and link_from[0].get(rel) == entry:
            os.link(link_from[1] / rel, path)
        else:
            path.write_bytes(entry.data)
            if is_root and (entry.uid is not None or entry.gid is not None):
                os.chown(
                    path,
                    entry.uid if entry.uid is not None else 0,
                    entry.gid if entry.gid is not None else 0,
                )
            os.chmod(path, entry.mode)  # after chown, which would clear setuid bits
            if xattrs:
                for name, value in entry.xattrs:
                    os.setxattr(path, name, value, follow_symlinks=False)
    # Parents created implicitly get 0755 regardless of umask.
    explicit = {p for p, _ in dirs}
    for p in root.rglob("*"):
        if p.is_dir() and not p.is_symlink() and p not in explicit:
            os.chmod(p, 0o755)
    for path, entry in sorted(dirs, key=lambda pe: -len(pe[0].parts)):
        if xattrs:
            for name, value in entry.xattrs:
                os.setxattr(path, name, value, follow_symlinks=False)
        os.chmod(path, entry.mode)
    return root


# ---------------------------------------------------------------------------
# GPG


@dataclass(frozen=True)
class GpgKey:
    """A throwaway signing key (no passphrase) in its own GNUPGHOME."""

    homedir: Path
    fingerprint: str
    public_key_asc: Path  # ASCII-armoured public key
    public_keyring: Path  # binary public key (usable as a remote's gpg keyring)


def gpg_available() -> bool:
    """Whether a usable ``gpg`` binary is installed."""
    try:
        return _run([GPG, "--version"], check=False).returncode == 0
    except OSError:
        return False


def _short_gnupghome(preferred: Path) -> Path:
    # gpg-agent's socket path must fit in sun_path (108 bytes).
    if len(os.fspath(preferred)) + len("/S.gpg-agent.browser") < 100:
        preferred.mkdir(mode=0o700, parents=True)
        return preferred
    return Path(tempfile.mkdtemp(prefix="gpg-"))


def make_gpg_key(directory: PathLike, uid: str = "OSTree Test <test@example.com>") -> GpgKey:
    """Generate an ed25519 signing key with no passphrase under ``directory``."""
    home = _short_gnupghome(Path(directory) / "gnupg")
    os.chmod(home, 0o700)
    env = {"GNUPGHOME": os.fspath(home)}
    _run(
        [
            GPG,
            "--batch",
            "--pinentry-mode",
            "loopback",
            "--passphrase",
            "",
            "--quick-gen-key",
            uid,
            "ed25519",
            "sign",
            "never",
        ],
        env=env,
    )
    listing = _run([GPG, "--batch", "--with-colons", "--list-secret-keys"], env=env).stdout
    fpr = next(line.split(":")[9] for line in listing.splitlines() if line.startswith("fpr:"))
    asc = Path(directory) / "pubkey.asc"
    gpgfile = Path(directory) / "pubkey.gpg"
    asc.write_text(_run([GPG, "--batch", "--armor", "--export", fpr], env=env).stdout)
    exported = subprocess.run(
        [GPG, "--batch", "--export", fpr],
        capture_output=True,
        env={**os.environ, **env},
        check=True,
    )
    gpgfile.write_bytes(exported.stdout)
    # libostree's verifier loads *.gpg keyrings from a --gpg-homedir (not pubring.kbx).
    (home / "trustedkeys.gpg").write_bytes(exported.stdout)
    return GpgKey(homedir=home, fingerprint=fpr, public_key_asc=asc, public_keyring=gpgfile)


def _kill_gpg_agent(home: Path) -> None:
    with contextlib.suppress(OSError):
        _run(["gpgconf", "--homedir", os.fspath(home), "--kill", "all"], check=False)


# ---------------------------------------------------------------------------
# Repo descriptions


@dataclass(frozen=True)
class CommitInfo:
    """How one commit was made (what ``ostree commit`` was told)."""

    checksum: str
    label: str  # e.g. "C1"; stable names used by tests
    ref: str | None  # branch it was committed on (None for --orphan)
    parent: str | None
    subject: str
    body: str
    timestamp: int  # seconds since the epoch (UTC)
    tree: Path  # the source directory that was committed
    metadata_strings: dict[str, str] = field(default_factory=dict)
    metadata: dict[str, str] = field(default_factory=dict)  # key -> GVariant text
    detached_metadata_strings: dict[str, str] = field(default_factory=dict)
    generate_sizes: bool = False
    owner_uid: int | None = None
    owner_gid: int | None = None
    gpg_signed: bool = False
    deleted: bool = False  # removed with prune --delete-commit (tombstoned)


@dataclass(frozen=True)
class DeltaInfo:
    """A static delta generated with ``ostree static-delta generate``."""

    name: str  # "FROM-TO" or "TO" (hex), as in the summary
    from_commit: str | None
    to_commit: str
    path: Path  # deltas/... directory
    inline: bool = False
    endianness: Literal["l", "B"] = "l"
    parts: tuple[Path, ...] = ()  # separate part files (empty for --inline)

    @property
    def superblock(self) -> Path:
        """Path of the superblock file."""
        return self.path / "superblock"

    @property
    def superblock_sha256(self) -> str:
        """SHA-256 of the superblock (what the summary and delta index list)."""
        return hashlib.sha256(self.superblock.read_bytes()).hexdigest()


@dataclass(frozen=True)
class RepoInfo:
    """Description of a repo built by this module."""

    path: Path
    mode: str  # "archive" (config says archive-z2)
    refs: dict[str, str]  # refs/heads name -> commit, read from disk after the build
    collection_refs: dict[tuple[str, str], str]  # (collection id, ref) -> commit
    commits: list[str]  # every commit still in the repo, in creation order
    commit_info: dict[str, CommitInfo]  # by checksum; includes deleted (tombstoned) ones
    labels: dict[str, str]  # label ("C1", "S1", "O1", ...) -> checksum
    main: list[str] = field(default_factory=list)  # history of "main", oldest first
    orphans: list[str] = field(default_factory=list)
    tombstoned: list[str] = field(default_factory=list)  # deleted commits with a tombstone
    deltas: dict[str, DeltaInfo] = field(default_factory=dict)  # by delta name
    collection_id: str | None = None
    gpg: GpgKey | None = None
    signed_commits: list[str] = field(default_factory=list)
    summary_metadata: dict[str, str] = field(default_factory=dict)  # -m KEY -> text
    xattrs: bool = True  # whether user.* xattrs were recorded in the source trees
    as_root: bool = True  # built as root (file uids/gids as intended)
    build_seconds: float = 0.0

    @property
    def summary(self) -> Path | None:
        """The summary file, if present."""
        p = self.path / "summary"
        return p if p.is_file() else None

    @property
    def summary_sig(self) -> Path | None:
        """summary.sig, if present (only when gpg was available)."""
        p = self.path / "summary.sig"
        return p if p.is_file() else None

    def objects(self) -> list[tuple[str, str, Path]]:
        """See :func:`list_objects`."""
        return list_objects(self.path)

    def object_counts(self) -> dict[str, int]:
        """See :func:`count_objects`."""
        return count_objects(self.path)

    def object_path(self, checksum: str, ext: str) -> Path:
        """Loose object path in this repo."""
        return object_path(self.path, checksum, ext)


# ---------------------------------------------------------------------------
# Builder helpers


def _ts(text: str) -> int:
    return calendar.timegm(time.strptime(text, "%Y-%m-%d %H:%M:%S"))


def _ts_arg(epoch: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S +0000", time.gmtime(epoch))


class _Builder:
    def __init__(self, repo: Path, trees_dir: Path, *, xattrs: bool) -> None:
        self.repo = repo
        self.trees_dir = trees_dir
        self.xattrs = xattrs
        self.infos: dict[str, CommitInfo] = {}
        self.order: list[str] = []
        self.labels: dict[str, str] = {}
        self._last: tuple[Mapping[str, Entry], Path] | None = None

    def tree(self, name: str, tree: Mapping[str, Entry]) -> Path:
        path = materialize(tree, self.trees_dir / name, xattrs=self.xattrs, link_from=self._last)
        self._last = (tree, path)
        return path

    def commit(
        self,
        label: str,
        tree: Path,
        *,
        subject: str,
        timestamp: int,
        ref: str | None = None,
        parent: str | None = None,
        body: str = "",
        metadata_strings: Mapping[str, str] | None = None,
        metadata: Mapping[str, str] | None = None,
        detached: Mapping[str, str] | None = None,
        generate_sizes: bool = False,
        owner: tuple[int, int] | None = None,
        extra: Sequence[str] = (),
    ) -> str:
        args: list[str] = ["commit", f"--subject={subject}", f"--timestamp={_ts_arg(timestamp)}"]
        if body:
            args.append(f"--body={body}")
        if ref is None:
            args.append("--orphan")
        else:
            args.append(f"--branch={ref}")
        if parent is not None:
            args.append(f"--parent={parent}")
        for k, v in (metadata_strings or {}).items():
            args.append(f"--add-metadata-string={k}={v}")
        for k, v in (metadata or {}).items():
            args.append(f"--add-metadata={k}={v}")
        for k, v in (detached or {}).items():
            args.append(f"--add-detached-metadata-string={k}={v}")
        if generate_sizes:
            args.append("--generate-sizes")
        if owner is not None:
            args += [f"--owner-uid={owner[0]}", f"--owner-gid={owner[1]}"]
        args += list(extra)
        args.append(os.fspath(tree))
        checksum = ostree(*args, repo=self.repo).strip()
        if ref is not None and parent is None:
            # ostree used the ref's previous value as the parent, if any.
            with contextlib.suppress(OstreeCommandError):
                parent = rev_parse(self.repo, f"{checksum}^")
        self.infos[checksum] = CommitInfo(
            checksum=checksum,
            label=label,
            ref=ref,
            parent=parent,
            subject=subject,
            body=body,
            timestamp=timestamp,
            tree=tree,
            metadata_strings=dict(metadata_strings or {}),
            metadata=dict(metadata or {}),
            detached_metadata_strings=dict(detached or {}),
            generate_sizes=generate_sizes,
            owner_uid=owner[0] if owner else None,
            owner_gid=owner[1] if owner else None,
        )
        self.order.append(checksum)
        self.labels[label] = checksum
        return checksum

    def mark_signed(self, checksum: str) -> None:
        self.infos[checksum] = replace(self.infos[checksum], gpg_signed=True)

    def mark_deleted(self, checksum: str) -> None:
        self.infos[checksum] = replace(self.infos[checksum], deleted=True)

    def delta(
        self,
        from_commit: str | None,
        to_commit: str,
        *,
        inline: bool = False,
        swap_endianness: bool = False,
    ) -> DeltaInfo:
        args = ["static-delta", "generate", f"--to={to_commit}"]
        args.append("--empty" if from_commit is None else f"--from={from_commit}")
        if inline:
            args.append("--inline")
        if swap_endianness:
            args.append("--swap-endianness")
        ostree(*args, repo=self.repo)
        path = delta_dir(self.repo, from_commit, to_commit)
        if not (path / "superblock").is_file():
            raise RuntimeError(f"delta superblock not found at {path}")
        parts = tuple(
            sorted((p for p in path.iterdir() if p.name.isdigit()), key=lambda p: int(p.name))
        )
        name = to_commit if from_commit is None else f"{from_commit}-{to_commit}"
        big_endian_host = sys.byteorder == "big"
        endian: Literal["l", "B"] = "B" if (swap_endianness != big_endian_host) else "l"
        return DeltaInfo(
            name=name,
            from_commit=from_commit,
            to_commit=to_commit,
            path=path,
            inline=inline,
            endianness=endian,
            parts=parts,
        )


def _prepare(directory: PathLike) -> tuple[Path, Path]:
    root = Path(directory)
    root.mkdir(parents=True, exist_ok=True)
    repo = root / "repo"
    if repo.exists():
        raise FileExistsError(f"{repo} already exists")
    trees = root / "trees"
    trees.mkdir(exist_ok=True)
    return repo, trees


# ---------------------------------------------------------------------------
# The rich repo

# GVariant text for --add-metadata, one value per interesting type.
RICH_METADATA: dict[str, str] = {
    "test.int32": "42",
    "test.int32-neg": "-7",
    "test.uint64": "@t 5",
    "test.uint64-max": "@t 18446744073709551615",
    "test.double": "1.5",
    "test.bool": "true",
    "test.bool-false": "false",
    "test.strv": "['a', 'bc', '']",
    "test.strv-empty": "@as []",
    "test.asv": "{'k': <1>, 'nested': <{'x': <'y'>}>}",
    "test.bytes": "@ay [0x00, 0x01, 0xff]",
    "test.bytestring": "b'hello'",
    "test.nested-variant": "<<'x'>>",
    "test.maybe-string": "@ms 'x'",
    "test.maybe-nothing": "@ms nothing",
    "test.maybe-maybe": "@mmi just nothing",
    "test.maybe-int": "@mi 5",
    "test.tuple": "(1, 'a', true)",
    "test.unit": "()",
    "test.array-say": "@a(say) [('a', [1, 2]), ('b', [])]",
    "test.objpaths": "@ao ['/a/b', '/']",
    "test.objpath": "@o '/org/example'",
    "test.signature": "@g 'a{sv}'",
    "test.handle": "@h 3",
    "test.int16": "@n -2",
    "test.uint16": "@q 7",
    "test.byte": "@y 0x10",
    "test.int64": "@x -1",
    "test.dict-ui": "@a{ui} {1: 2, 3: 4}",
    "test.aay": "@aay [[1], [], [2, 3]]",
    "test.unicode": "'ünïcödé ✓ 日本'",
    "test.long-string": "'" + "x" * 300 + "'",
}


def _text(rng: random.Random, n_lines: int) -> str:
    words = [
        "ostree",
        "commit",
        "tree",
        "object",
        "delta",
        "summary",
        "ref",
        "mirror",
        "alpha",
        "beta",
        "gamma",
        "delta",
        "lorem",
        "ipsum",
        "dolor",
        "sit",
        "amet",
    ]
    return "".join(
        " ".join(rng.choice(words) for _ in range(rng.randint(3, 12))) + "\n"
        for _ in range(n_lines)
    )


def _rich_base_tree(rng: random.Random) -> Tree:
    t: Tree = {"": _dir(0o755, {"user.root": b"1"})}
    t["README.md"] = _file("# Rich test tree\n\nBuilt by tests/oracle/ostree_cli.py.\n")
    t["empty"] = _file(b"")
    t[".hidden"] = _file("hidden\n")
    t["latest"] = _link("data")
    # executables
    t["bin"] = _dir()
    t["bin/run.sh"] = _file("#!/bin/sh\necho hi\n", 0o755)
    t["bin/tool"] = _file(rng.randbytes(3000), 0o755)
    t["bin/readonly-exec"] = _file("#!/bin/sh\n", 0o555)
    t["data"] = _dir()
    t["data/small.txt"] = _file(_text(rng, 20))
    # files changed later to force bsdiff (scattered edits) and rollsum (insertion)
    t["blobs"] = _dir()
    t["blobs/patch.bin"] = _file(rng.randbytes(256 * 1024))
    t["blobs/roll.bin"] = _file(rng.randbytes(512 * 1024))
    t["blobs/text.txt"] = _file(_text(rng, 800))
    # symlinks
    t["links"] = _dir()
    t["links/rel"] = _link("../README.md")
    t["links/abs"] = _link("/etc/os-release")
    t["links/dangling"] = _link("does/not/exist")
    t["links/dir"] = _link("../deep")
    t["links/dot"] = _link(".")
    t["links/dotdot"] = _link("..")
    t["links/unicode"] = _link("../unicode/héllo.txt")
    t["links/long"] = _link("a/" * 150 + "end")
    # xattrs on files and directories
    t["xattrs"] = _dir(0o755, {"user.dirx": b"d1", "user.comment": b"directory xattr"})
    t["xattrs/file.txt"] = _file("has xattrs\n", xattrs={"user.test": b"t", "user.abc": b"abc"})
    # user.empty is dropped by ostree 2022.7 (empty xattr values are not recorded)
    t["xattrs/binary"] = _file(
        "binary xattr\n", xattrs={"user.bin": b"\x00\x01\xff\xfe", "user.empty": b""}
    )
    t["xattrs/nested"] = _dir(0o750, {"user.level": b"2"})
    t["xattrs/nested/plain"] = _file("no xattrs here\n")
    # depth >= 5
    t["deep/a/b/c/d/e/f/g/leaf.txt"] = _file("deep leaf\n")
    t["deep/a/b/c/side.txt"] = _file("side\n")
    # a directory with only directories (including an empty one)
    for d in ("alpha", "beta/inner", "gamma"):
        t[f"onlydirs/{d}"] = _dir()
    t["onlydirs/alpha/file"] = _file("alpha\n")
    t["onlydirs/empty"] = _dir()
    # unicode names (NFC and NFD spellings are different names)
    t["unicode/héllo.txt"] = _file("NFC\n")
    t["unicode/he\u0301llo.txt"] = _file("NFD\n")
    t["unicode/日本語.txt"] = _file("nihongo\n")
    t["unicode/emoji-😀.txt"] = _file("emoji\n")
    t["unicode/Ελληνικά"] = _file("greek\n")
    t["unicode/ß"] = _file("eszett\n")
    t["unicode/ディレクトリ/ファイル"] = _file("katakana\n")
    # names whose strcmp order is interesting
    for name in (
        "A",
        "B",
        "Z",
        "a",
        "b",
        "z",
        "a.b",
        "a-b",
        "a_b",
        "a0",
        "a~",
        "aa",
        "a b",
        "ä",
        "10",
        "9",
        "_",
        "-",
        "m.txt",
        "m-",
        "m0",
        "l",
        "n",
        "Ω",
        "~",
    ):
        t[f"sort/{name}"] = _file(f"{name}\n")
    for name in ("m", "M", "dir.d", "dir-d", "dir"):
        t[f"sort/{name}"] = _dir()
        t[f"sort/{name}/x"] = _file(f"{name}/x\n")
    # awkward but valid names
    for name in (
        "with space",
        "new\nline",
        "tab\there",
        "back\\slash",
        "quote'\"",
        "-dash",
        "#hash",
        "%41percent",
        "colon:name",
        "star*",
        "question?",
        "x" * 255,
    ):
        t[f"weird/{name}"] = _file(f"{name!r}\n")
    # permission bits
    t["modes"] = _dir()
    t["modes/setuid"] = _file("setuid\n", 0o4755)
    t["modes/setgid"] = _file("setgid\n", 0o2755)
    t["modes/setuid-setgid"] = _file("both\n", 0o6755)
    t["modes/sticky-file"] = _file("sticky\n", 0o1644)
    t["modes/mode-0000"] = _file("nothing\n", 0o000)
    t["modes/world"] = _file("world\n", 0o777)
    t["modes/private"] = _file("private\n", 0o600)
    t["modes/group"] = _file("group\n", 0o640)
    t["modes/sticky-dir"] = _dir(0o1777)
    t["modes/sticky-dir/inside"] = _file("inside\n")
    t["modes/private-dir"] = _dir(0o700)
    t["modes/private-dir/secret"] = _file("secret\n", 0o600)
    t["modes/setgid-dir"] = _dir(0o2775)
    t["modes/setgid-dir/f"] = _file("f\n")
    # per-file ownership (recorded when building as root)
    t["owned/uid1000"] = _file("owned by 1000:1000\n", uid=1000, gid=1000)
    t["owned/uid4242"] = _file("owned by 4242:0\n", uid=4242, gid=0)
    # a wide directory: its dirtree needs 4-byte framing offsets (> 64 KiB)
    for i in range(2000):
        t[f"many/f{i:04d}"] = _file(f"{i % 7}\n")
    return t


def build_rich_repo(directory: PathLike, *, gpg: bool | None = None, seed: int = 1) -> RepoInfo:
    """Build the "rich" archive repo under ``directory`` (which may exist).

    Layout: ``directory/repo`` (the repo), ``directory/trees/<label>`` (the
    committed source trees), ``directory/gnupg`` + ``pubkey.{asc,gpg}`` (the
    throwaway GPG key, when gpg is available).

    Commits (labels are keys of :attr:`RepoInfo.labels`):

    * ``C1`` .. ``C5`` on ``main`` (each the parent of the next), timestamps
      2024-01-01 .. 2024-05-01.  ``C1`` carries :data:`RICH_METADATA` (every
      GVariant type via ``--add-metadata``) and ``version=1.0``; ``C2`` has
      small edits and detached metadata; ``C3`` changes ``blobs/patch.bin``
      (scattered edits, bsdiff) and ``blobs/roll.bin`` (insertion, rollsum)
      and uses ``--generate-sizes``; ``C4`` deletes/renames/re-modes things;
      ``C5`` (``version=5.0``) adds ``data/big.bin`` (5 000 000 random bytes,
      a delta fallback object), has detached metadata and, with gpg, a GPG
      signature (``ostree gpg-sign``).
    * ``S1`` on ``exampleos/x86_64/stable``, parent ``C3``, committed with
      ``--owner-uid=1234 --owner-gid=5678`` (every file and dir owned 1234:5678).
    * ``O1``: an ``--orphan`` commit on no ref.
    * ``T1`` -> ``T2`` on ``tombstone-demo``; ``T1`` is then deleted with
      ``prune --delete-commit`` under ``core.tombstone-commits=true``, leaving
      ``T1.tombstone-commit`` and ``T2`` with a missing parent.

    Static deltas: scratch -> C5 (5 MB fallback object), C1->C2, C2->C3
    (bsdiff + rollsum), C3->C4 ``--inline``, C4->C5 ``--swap-endianness``
    (with the fallback too, so its sizes are big-endian).  Deltas to C5 embed
    C5's detached metadata.
    Finally ``ostree summary -u -m custom.key="hello" -m custom.number=@u 42``
    (GPG-signed when gpg is available, giving ``summary.sig``), which also
    writes ``delta-indexes/``.
    """
    started = time.perf_counter()
    rng = random.Random(seed)
    root = Path(directory)
    repo, trees_dir = _prepare(root)
    use_xattrs = xattrs_supported(root)
    use_gpg = gpg_available() if gpg is None else gpg
    b = _Builder(repo, trees_dir, xattrs=use_xattrs)

    ostree("init", "--mode=archive", repo=repo)
    ostree("config", "set", "core.tombstone-commits", "true", repo=repo)

    # -- main: C1..C5 ---------------------------------------------------
    t1 = _rich_base_tree(rng)
    c1 = b.commit(
        "C1",
        b.tree("C1", t1),
        ref="main",
        timestamp=_ts("2024-01-01 00:00:00"),
        subject="Initial commit ✓",
        body="The first commit.\n\nIt has a multi-line body — with ünïcödé.",
        metadata_strings={"version": "1.0", "test.string": "plain string"},
        metadata=RICH_METADATA,
    )

    t2 = dict(t1)
    t2["README.md"] = _file(t1["README.md"].data + b"\nEdited in C2.\n")
    del t2["bin/tool"]
    t2["NEWS"] = _file("C2: added NEWS\n")
    t2["links/rel"] = _link("../NEWS")
    t2["xattrs/file.txt"] = _file(
        "has xattrs (edited)\n", xattrs={"user.test": b"t", "user.abc": b"abc"}
    )
    lines = t1["blobs/text.txt"].data.decode().splitlines(keepends=True)
    lines[100] = "edited line in C2\n"
    lines.insert(400, "inserted line in C2\n")
    t2["blobs/text.txt"] = _file("".join(lines))
    c2 = b.commit(
        "C2",
        b.tree("C2", t2),
        ref="main",
        timestamp=_ts("2024-02-01 00:00:00"),
        subject="Small edits",
        body="Edit README, drop bin/tool, add NEWS.",
        metadata_strings={"version": "2.0"},
        detached={"detached.key": "detval", "detached.other": "second value"},
    )

    t3 = dict(t2)
    patch = bytearray(t2["blobs/patch.bin"].data)
    for _ in range(300):
        patch[rng.randrange(len(patch))] ^= 0x5A
    t3["blobs/patch.bin"] = _file(bytes(patch))
    roll = t2["blobs/roll.bin"].data
    t3["blobs/roll.bin"] = _file(roll[:200_000] + rng.randbytes(4096) + roll[200_000:])
    t3["added/in/c3/file.txt"] = _file("added in C3\n")
    c3 = b.commit(
        "C3",
        b.tree("C3", t3),
        ref="main",
        timestamp=_ts("2024-03-01 00:00:00"),
        subject="Binary changes",
        body="bsdiff and rollsum material.",
        metadata_strings={"version": "3.0"},
        generate_sizes=True,
    )

    t4 = {k: v for k, v in t3.items() if not k.startswith("deep/")}
    t4["links/dir"] = _link("../onlydirs")
    t4["modes/world"] = _file("world\n", 0o755)  # same data, new mode -> new object
    t4["xattrs"] = _dir(0o755, {"user.dirx": b"d2", "user.comment": b"directory xattr"})
    t4["unicode/renamed-日本語.txt"] = t4.pop("unicode/日本語.txt")
    for i in range(0, 2000, 200):
        del t4[f"many/f{i:04d}"]
    c4 = b.commit(
        "C4",
        b.tree("C4", t4),
        ref="main",
        timestamp=_ts("2024-04-01 00:00:00"),
        subject="Restructure",
        metadata_strings={"version": "4.0"},
    )

    t5 = dict(t4)
    t5["release"] = _file("5.0\n")
    # large file: > 4 MB, so it is a fallback object in the deltas to C5.  Added only
    # here because ostree recompresses every file on each commit.
    t5["data/big.bin"] = _file(rng.randbytes(5_000_000))
    c5 = b.commit(
        "C5",
        b.tree("C5", t5),
        ref="main",
        timestamp=_ts("2024-05-01 00:00:00"),
        subject="Release 5.0",
        body="Signed release.",
        metadata_strings={"version": "5.0"},
        detached={"detached.release": "5.0"},
    )

    # -- second ref sharing history -------------------------------------
    ts1 = dict(t3)
    ts1["STABLE"] = _file("stable branch\n")
    b.commit(
        "S1",
        b.tree("S1", ts1),
        ref="exampleos/x86_64/stable",
        parent=c3,
        timestamp=_ts("2024-03-15 00:00:00"),
        subject="Stable from C3",
        metadata_strings={"version": "3.1"},
        owner=(1234, 5678),
    )

    # -- orphan commit ------------------------------------------------------
    small: Tree = {"orphan.txt": _file("orphan\n"), "sub/x": _file("x\n")}
    o1 = b.commit(
        "O1", b.tree("O1", small), timestamp=_ts("2024-06-01 00:00:00"), subject="Orphan commit"
    )

    # -- tombstone: T1 -> T2, then delete T1 ---------------------------------
    tt1: Tree = {"tomb.txt": _file("t1\n")}
    tt2: Tree = {"tomb.txt": _file("t2\n")}
    tomb1 = b.commit(
        "T1",
        b.tree("T1", tt1),
        ref="tombstone-demo",
        timestamp=_ts("2024-07-01 00:00:00"),
        subject="To be deleted",
    )
    b.commit(
        "T2",
        b.tree("T2", tt2),
        ref="tombstone-demo",
        timestamp=_ts("2024-07-02 00:00:00"),
        subject="Child of a deleted commit",
    )

    # -- GPG ------------------------------------------------------------------
    key: GpgKey | None = None
    try:
        if use_gpg:
            key = make_gpg_key(root)
            ostree("gpg-sign", f"--gpg-homedir={key.homedir}", c5, key.fingerprint, repo=repo)
            b.mark_signed(c5)

        ostree("prune", f"--delete-commit={tomb1}", repo=repo)
        b.mark_deleted(tomb1)

        deltas = [
            b.delta(None, c5),
            b.delta(c1, c2),
            b.delta(c2, c3),
            b.delta(c3, c4, inline=True),
            b.delta(c4, c5, swap_endianness=True),
        ]

        summary_md = {"custom.key": '"hello"', "custom.number": "@u 42"}
        sargs = ["summary", "-u"] + [f"--add-metadata={k}={v}" for k, v in summary_md.items()]
        if key is not None:
            sargs += [f"--gpg-sign={key.fingerprint}", f"--gpg-homedir={key.homedir}"]
        ostree(*sargs, repo=repo)
    finally:
        if key is not None:
            _kill_gpg_agent(key.homedir)

    heads, mirrors = read_refs(repo)
    commits = [c for c in b.order if not b.infos[c].deleted]
    return RepoInfo(
        path=repo,
        mode="archive",
        refs=heads,
        collection_refs=mirrors,
        commits=commits,
        commit_info=dict(b.infos),
        labels=dict(b.labels),
        main=[c1, c2, c3, c4, c5],
        orphans=[o1],
        tombstoned=[tomb1],
        deltas={d.name: d for d in deltas},
        gpg=key,
        signed_commits=[c5] if key is not None else [],
        summary_metadata=summary_md,
        xattrs=use_xattrs,
        as_root=os.geteuid() == 0,
        build_seconds=time.perf_counter() - started,
    )


def build_collection_repo(
    directory: PathLike, *, collection_id: str = "org.example.Os"
) -> RepoInfo:
    """An archive repo with ``core.collection-id`` and a mirrored collection ref.

    Commits ``C1`` -> ``C2`` on ``main`` (so they carry
    ``ostree.collection-binding``), a ref ``org.example.Other:foo/bar`` ->
    ``C1`` in ``refs/mirrors/org.example.Other/foo/bar``, and ``summary -u``
    (which writes ``ostree.summary.collection-id``, the collection map and an
    ``ostree-metadata`` commit/ref).
    """
    started = time.perf_counter()
    root = Path(directory)
    repo, trees_dir = _prepare(root)
    b = _Builder(repo, trees_dir, xattrs=False)
    ostree("init", "--mode=archive", f"--collection-id={collection_id}", repo=repo)
    c1 = b.commit(
        "C1",
        b.tree("C1", {"hello.txt": _file("hello\n")}),
        ref="main",
        timestamp=_ts("2024-01-01 00:00:00"),
        subject="Collection C1",
        metadata_strings={"version": "1"},
    )
    c2 = b.commit(
        "C2",
        b.tree("C2", {"hello.txt": _file("hello again\n")}),
        ref="main",
        timestamp=_ts("2024-01-02 00:00:00"),
        subject="Collection C2",
        metadata_strings={"version": "2"},
    )
    ostree("refs", "--collections", "--create=org.example.Other:foo/bar", c1, repo=repo)
    ostree("summary", "-u", repo=repo)
    heads, mirrors = read_refs(repo)
    commits = list(b.order)
    extra = heads.get("ostree-metadata")
    if extra and extra not in commits:
        commits.append(extra)
    return RepoInfo(
        path=repo,
        mode="archive",
        refs=heads,
        collection_refs=mirrors,
        commits=commits,
        commit_info=dict(b.infos),
        labels=dict(b.labels),
        main=[c1, c2],
        collection_id=collection_id,
        xattrs=False,
        as_root=os.geteuid() == 0,
        build_seconds=time.perf_counter() - started,
    )


def iter_metadata_objects(repo: PathLike) -> Iterator[tuple[str, str, Path]]:
    """Loose metadata objects (everything but ``.filez``/``.file``)."""
    for checksum, ext, path in list_objects(repo):
        if ext not in ("file", "filez"):
            yield checksum, ext, path
