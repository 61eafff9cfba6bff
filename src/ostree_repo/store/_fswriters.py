"""Writer processes for the filesystem store: verify and write object batches on every core.

Verifying an object (inflate and hash a ``.filez``, decode a dirtree) and writing it to a
temporary file are cheap in C and in the kernel, but the Python around them holds the
GIL, so one process writes objects at the speed of one core whatever the thread count.
A :class:`WriterPool` runs a few child processes (``python -c``, the same interpreter;
no ``multiprocessing``, so an embedding program's ``__main__`` is never re-imported) and
hands each batch to an idle one over a pipe. Each child has its own
:class:`~._disk.Disk` over the store's directory (the very code the in-process staging
runs): it checks every object (the store's gate, exactly as in-process), writes it into
``tmp/`` and holds it there until the parent says flush; then it makes the files durable
and renames them into place (:meth:`~._disk.Disk.publish`). A child also flushes on its
own every ``flush_every`` objects, as a staging does.

The protocol is lock-step, one request and one reply at a time per child (so a reply
always answers the last request, and a pipe never holds more than one batch):

* start-up: the child writes ``R`` once it has imported what it needs; the parent waits
  for that from every child before using any (a child that cannot start makes the pool
  unavailable, and the store writes in-process).
* request: ``op`` (1 byte: ``W`` write, ``F`` flush, ``D`` discard), staging id (u32),
  payload length (u32), payload. A ``W`` payload is, per object, its raw 32-byte
  checksum, its type (u8, the index in :class:`ObjectType`), its length (u32) and bytes.
  ``F`` and ``D`` have no payload.
* reply: status (``k`` ok, ``v`` an object failed verification, ``o`` an OS error),
  payload length (u32), payload: for ``W``/``k`` one byte per object (1 = written,
  0 = the store had it); for ``v`` the object's index (u32) then the message; for ``o``
  the message.

Who holds what: a staging's files are spread over every child that wrote one of its
batches, so ``F`` and ``D`` go to all children. The parent takes every child's lock, in
one fixed order (no deadlock between two stagings flushing at once), sends the request
to all, then reads all replies: the children flush in parallel, and no ``W`` of another
thread can slip in between. A ``W`` goes to whichever child is idle.

A ``v`` reply only names the bad object; the parent verifies that object again
in-process to raise the very error (and message) an in-process write raises.

A child that dies (killed, out of memory) breaks the pool: the call fails with
StoreError, and so does every later one; the store then starts a new pool for its next
staging. Files the child left in ``tmp/`` are swept by the store's usual cleanup. A child
exits when its input ends, removing the files it has not flushed: a parent killed with
``kill -9`` leaves no process and no visible object behind.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import queue
import signal
import struct
import sys
import threading
from collections.abc import Sequence

from ostree_repo._children import spawn, stop
from ostree_repo.errors import GVariantError, InvalidObjectError, StoreError
from ostree_repo.objects.objtype import ObjectType
from ostree_repo.store._chunks import Buffer
from ostree_repo.store._disk import Disk, Staged, StageEntry

__all__ = ["ObjectRefusedError", "WriterPool", "child_main"]

_log = logging.getLogger(__name__)

_REQUEST = struct.Struct(">cII")
_REPLY = struct.Struct(">cI")
_OBJECT = struct.Struct(">32sBI")
_INDEX = struct.Struct(">I")
_TYPES = tuple(ObjectType)
_TYPE_INDEX = {objtype: i for i, objtype in enumerate(_TYPES)}
_PIPE_SIZE = 1 << 20
_F_SETPIPE_SZ = 1031  # Linux fcntl
_IOV_MAX = 1024
_CHILD_CODE = "from ostree_repo.store._fswriters import child_main; child_main()"


class ObjectRefusedError(Exception):
    """A writer refused object ``index`` of a batch (it failed verification)."""

    def __init__(self, index: int, message: str) -> None:
        super().__init__(message)
        self.index = index


# -- the child --------------------------------------------------------------------------------


def child_main() -> None:
    """A writer process: ``python -c '...; child_main()' ROOT FSYNC FLUSH_EVERY``."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a terminal's ^C is the parent's to handle
    rfd = sys.stdin.fileno()
    wfd = os.dup(sys.stdout.fileno())
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # stray prints must not hit the pipe
    root, fsync, flush_every = sys.argv[1], sys.argv[2] == "1", int(sys.argv[3])
    disk = Disk(root, fsync)
    _write_all(wfd, b"R")
    _serve(disk, rfd, wfd, flush_every)


def _serve(disk: Disk, rfd: int, wfd: int, flush_every: int) -> None:
    """Answer requests until the input ends; then remove every file not flushed yet.

    State: for each staging id, the files this process staged for it and has not
    flushed (``staged``). ``W`` adds to a staging's list (flushing it on its own once it
    holds ``flush_every`` files, as the in-process staging does), ``F`` publishes it and
    ``D`` removes its files; both forget the id, so the parent may reuse it. A failed
    request changes nothing else: a refused batch leaves no file (``Disk.stage`` removes
    what it wrote), and the staging's earlier files stay staged until its ``D``.
    """
    from ostree_repo.objects.names import object_path
    from ostree_repo.objects.verify import find_invalid, whole_verifier
    from ostree_repo.store._base import PutMode

    staged: dict[int, list[Staged]] = {}
    buffer = bytearray(1 << 20)  # reused: no large allocation per request
    try:
        while head := _read_exact(rfd, _REQUEST.size):
            op, sid, length = _REQUEST.unpack(head)
            if length > len(buffer):
                buffer = bytearray(length)
            payload = memoryview(buffer)[:length]
            if _read_into(rfd, payload) != length:
                break
            objects = _decode(payload) if op == b"W" else []
            try:
                if op == b"W":
                    entries: list[StageEntry] = []
                    for checksum, objtype, data in objects:
                        mode = PutMode.IDEMPOTENT if objtype.is_hashed else PutMode.OVERWRITE
                        path = object_path(checksum, objtype)
                        entries.append((path, data, whole_verifier(objtype, checksum), mode))
                    # as in-process: objects the store has are skipped, the rest verified
                    written, new = disk.stage(entries)
                    mine = staged.setdefault(sid, [])
                    mine.extend(new)
                    if len(mine) >= flush_every:
                        disk.publish(mine)
                    reply = bytes(written)
                elif op == b"F":
                    disk.publish(staged.pop(sid, []))
                    reply = b""
                else:
                    disk.discard(staged.pop(sid, []))
                    reply = b""
            except (InvalidObjectError, GVariantError) as e:
                bad = find_invalid(objects)  # which one (this is the error path)
                index = bad[0] if bad else 0
                message = str(e).encode("utf-8", "replace")
                _write_all(wfd, _REPLY.pack(b"v", 4 + len(message)) + _INDEX.pack(index) + message)
                continue
            except OSError as e:
                message = str(e).encode("utf-8", "replace")
                _write_all(wfd, _REPLY.pack(b"o", len(message)) + message)
                continue
            _write_all(wfd, _REPLY.pack(b"k", len(reply)) + reply)
    finally:
        for files in staged.values():
            disk.discard(files)


def _decode(payload: memoryview) -> list[tuple[str, ObjectType, memoryview]]:
    objects = []
    pos, end = 0, len(payload)
    while pos < end:
        raw, objtype, length = _OBJECT.unpack_from(payload, pos)
        pos += _OBJECT.size
        objects.append((raw.hex(), _TYPES[objtype], payload[pos : pos + length]))
        pos += length
    return objects


def _encode(objects: Sequence[tuple[str, ObjectType, Buffer]]) -> list[Buffer]:
    """A ``W`` payload as pieces for ``writev``: no copy of the objects' bytes."""
    pieces: list[Buffer] = []
    for checksum, objtype, data in objects:
        pieces.append(_OBJECT.pack(bytes.fromhex(checksum), _TYPE_INDEX[objtype], len(data)))
        pieces.append(data)
    return pieces


def _read_exact(fd: int, size: int) -> bytes:
    """``size`` bytes, fewer only at the end of the input."""
    data = os.read(fd, size)
    if len(data) == size or not data:
        return data
    pieces = [data]
    have = len(data)
    while have < size:
        more = os.read(fd, size - have)
        if not more:
            break
        pieces.append(more)
        have += len(more)
    return b"".join(pieces)


def _read_into(fd: int, view: memoryview) -> int:
    """Fill ``view``; how many bytes came (fewer only at the end of the input)."""
    have = 0
    while have < len(view):
        got = os.readv(fd, [view[have:]])
        if not got:
            break
        have += got
    return have


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _writev_all(fd: int, pieces: list[Buffer]) -> None:
    """``writev`` every piece, however the kernel splits the writes."""
    views = [memoryview(piece) for piece in pieces if len(piece)]
    while views:
        written = os.writev(fd, views[:_IOV_MAX])
        while views and written >= len(views[0]):
            written -= len(views.pop(0))
        if written:
            views[0] = views[0][written:]


# -- the parent -------------------------------------------------------------------------------


class _Child:
    """One writer process and its pipes; used by one thread at a time (``lock``)."""

    def __init__(self, args: list[str]) -> None:
        self.lock = threading.Lock()
        self.process = spawn(_CHILD_CODE, *args, bufsize=0)
        assert self.process.stdin is not None and self.process.stdout is not None
        self.wfd = self.process.stdin.fileno()
        self.rfd = self.process.stdout.fileno()
        for fd in (self.wfd, self.rfd):
            with contextlib.suppress(OSError):
                import fcntl

                fcntl.fcntl(fd, _F_SETPIPE_SZ, _PIPE_SIZE)

    def send(self, op: bytes, sid: int, payload: list[Buffer]) -> None:
        size = sum(len(piece) for piece in payload)
        _writev_all(self.wfd, [_REQUEST.pack(op, sid, size), *payload])

    def receive(self) -> tuple[bytes, bytes]:
        head = _read_exact(self.rfd, _REPLY.size)
        if len(head) != _REPLY.size:
            raise BrokenPipeError(errno.EPIPE, "the writer process exited")
        status, length = _REPLY.unpack(head)
        payload = _read_exact(self.rfd, length)
        if len(payload) != length:
            raise BrokenPipeError(errno.EPIPE, "the writer process exited")
        return status, payload

    def close(self) -> None:
        stop(self.process)


class WriterPool:
    """``size`` writer processes for the filesystem store at ``root`` (see the module)."""

    def __init__(self, root: str, *, fsync: bool, size: int, flush_every: int) -> None:
        self.root = root
        self._args = [root, "1" if fsync else "0", str(flush_every)]
        self._size = size
        self._children: list[_Child] = []
        self._idle: queue.SimpleQueue[_Child] = queue.SimpleQueue()
        self.broken = False
        self.pid = os.getpid()
        """The process the children belong to (after a ``fork``, not the child's)."""

    def start(self) -> bool:
        """Start the children; False (and nothing left running) if they cannot start."""
        try:
            for _ in range(self._size):
                self._children.append(_Child(self._args))
            for child in self._children:
                if _read_exact(child.rfd, 1) != b"R":
                    raise OSError(errno.EPIPE, "a writer process failed to start")
        except OSError as e:
            _log.warning("object writer processes unavailable (%s); writing in threads", e)
            self.close()
            return False
        for child in self._children:
            self._idle.put(child)
        return True

    def write(self, sid: int, objects: Sequence[tuple[str, ObjectType, Buffer]]) -> list[bool]:
        """Verify and stage ``objects`` for staging ``sid`` in an idle child; which were
        new. ObjectRefusedError names the first bad object; StoreError for the rest."""
        child = self._idle.get()
        try:
            status, reply = self._call(child, b"W", sid, _encode(objects))
        finally:
            self._idle.put(child)
        if status == b"v":
            (index,) = _INDEX.unpack_from(reply)
            raise ObjectRefusedError(index, reply[_INDEX.size :].decode("utf-8", "replace"))
        self._check(status, reply)
        return [bool(b) for b in reply]

    def flush(self, sid: int) -> None:
        """Make staging ``sid``'s files durable and visible, in every child at once."""
        self._everywhere(b"F", sid)

    def discard(self, sid: int) -> None:
        """Remove staging ``sid``'s files not flushed yet."""
        self._everywhere(b"D", sid)

    def close(self) -> None:
        """Stop the children (their unflushed files are removed)."""
        children, self._children = self._children, []
        for child in children:
            child.close()

    def _everywhere(self, op: bytes, sid: int) -> None:
        children = list(self._children)
        for child in children:  # always in the same order: no deadlock
            child.lock.acquire()
        try:
            self._ensure_usable()
            try:
                for child in children:
                    child.send(op, sid, [])
                replies = [child.receive() for child in children]
            except OSError as e:
                self.broken = True
                raise StoreError(f"{self.root}: object writer process failed ({e})") from None
        finally:
            for child in children:
                child.lock.release()
        for status, reply in replies:
            self._check(status, reply)

    def _call(
        self, child: _Child, op: bytes, sid: int, payload: list[Buffer]
    ) -> tuple[bytes, bytes]:
        with child.lock:
            self._ensure_usable()
            try:
                child.send(op, sid, payload)
                return child.receive()
            except OSError as e:
                self.broken = True
                raise StoreError(f"{self.root}: object writer process failed ({e})") from None

    def _ensure_usable(self) -> None:
        if self.broken:
            raise StoreError(f"{self.root}: an object writer process failed earlier")

    def _check(self, status: bytes, reply: bytes) -> None:
        if status == b"o":
            raise StoreError(f"{self.root}: {reply.decode('utf-8', 'replace')}")
        if status != b"k":
            raise StoreError(f"{self.root}: object writer process sent status {status!r}")
