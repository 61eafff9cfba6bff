"""Checking objects from their files in bulk (fsck of a store that keeps local files).

:func:`check_files` verifies objects straight from their files (one open file at a
time, whole-buffer verification for files up to :data:`WHOLE_MAX`, streamed above) and
says of each whether it is sound, missing, corrupt or unreadable. An ``OSError`` other
than "no such file" (``EMFILE``, ``EIO``, ``EACCES``, ...) makes an object *unreadable*:
it could not be checked, which is not damage.

Verifying is CPU work (inflate and hash a ``.filez``) whose Python glue holds the GIL, so
a :class:`CheckerPool` runs a few child processes (``python -c``, the same interpreter,
as the store's writer processes do) that each check a batch at a time, on every core.
The protocol is lock-step over the child's stdin/stdout:

* request: ``count`` (u32), then ``count`` times the object type (u8, the index in
  :class:`ObjectType`), the raw 32-byte checksum, and the file's path (u16 length, then
  the bytes, in the filesystem encoding);
* reply: ``count`` status bytes (see :data:`SOUND` and the others), then the messages of
  the objects that are not sound, in order, each a u16 length and UTF-8 bytes.

A child exits when its input ends. It imports nothing but the object codec, so it starts
in about a tenth of a second.
"""

from __future__ import annotations

import errno
import os
import queue
import signal
import stat
import struct
import sys
import threading
from collections.abc import Sequence

from ostree_repo._children import spawn, stop
from ostree_repo.errors import GVariantError, InvalidObjectError
from ostree_repo.objects import ObjectType
from ostree_repo.objects.verify import new_verifier, verify_bytes

__all__ = [
    "CORRUPT",
    "MISSING",
    "SOUND",
    "UNREADABLE",
    "WHOLE_MAX",
    "CheckerPool",
    "Item",
    "Verdict",
    "check_files",
    "child_main",
]

SOUND, MISSING, CORRUPT, UNREADABLE = 0, 1, 2, 3
"""What a check found: the object verifies; it is not there; its bytes are not the object
its name says; it could not be read (an I/O error: not checked)."""

WHOLE_MAX = 4 << 20
"""Files up to this size are read whole and verified in one go; larger ones stream."""

_CHUNK = 1 << 20
_COUNT = struct.Struct(">I")
_LENGTH = struct.Struct(">H")
_TYPES = tuple(ObjectType)
_TYPE_INDEX = {objtype: i for i, objtype in enumerate(_TYPES)}
_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_MAX_MESSAGE = 1000

Verdict = tuple[int, str]
"""(status, message): the message says what is wrong ("" when sound)."""


def _check_file(path: str, checksum: str, objtype: ObjectType) -> Verdict:
    try:
        fd = os.open(path, os.O_RDONLY | _O_CLOEXEC)
    except (FileNotFoundError, NotADirectoryError):
        return MISSING, "not in the store"
    except OSError as e:
        return UNREADABLE, f"cannot open {path}: {os.strerror(e.errno or errno.EIO)}"
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return MISSING, "not a regular file"
        if info.st_size <= WHOLE_MAX:
            pieces = []
            left = info.st_size
            while left > 0 and (piece := os.read(fd, left)):
                pieces.append(piece)
                left -= len(piece)
            data = pieces[0] if len(pieces) == 1 else b"".join(pieces)
            verify_bytes(objtype, checksum, data)
        else:
            verifier = new_verifier(objtype, checksum)
            while chunk := os.read(fd, _CHUNK):
                verifier.update(chunk)
            verifier.finish()
    except (InvalidObjectError, GVariantError) as e:
        return CORRUPT, str(e)
    except MemoryError:
        return UNREADABLE, "out of memory while checking"
    except OSError as e:
        return UNREADABLE, f"cannot read {path}: {os.strerror(e.errno or errno.EIO)}"
    finally:
        os.close(fd)
    return SOUND, ""


Item = tuple[str, str, ObjectType]
"""An object to check: (the path of its file, its checksum, its type)."""


def check_files(items: Sequence[Item]) -> list[Verdict]:
    """Check each object from its file (blocking: run it in a worker thread or a checker
    process)."""
    return [_check_file(path, checksum, objtype) for path, checksum, objtype in items]


# -- the child ----------------------------------------------------------------------------


def child_main() -> None:
    """A checker process: ``python -c '...; child_main()'``."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a terminal's ^C is the parent's
    source = sys.stdin.buffer
    sink = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # stray prints must not hit the pipe
    sink.write(b"R")
    sink.flush()
    while len(head := source.read(_COUNT.size)) == _COUNT.size:
        (count,) = _COUNT.unpack(head)
        items: list[Item] = []
        for _ in range(count):
            fixed = source.read(35)
            if len(fixed) != 35:
                return
            (length,) = _LENGTH.unpack_from(fixed, 33)
            path = os.fsdecode(source.read(length))
            items.append((path, fixed[1:33].hex(), _TYPES[fixed[0]]))
        sink.write(_encode_verdicts(check_files(items)))
        sink.flush()


def _encode_verdicts(verdicts: list[Verdict]) -> bytes:
    parts = [bytes(status for status, _ in verdicts)]
    for status, message in verdicts:
        if status != SOUND:
            text = message[:_MAX_MESSAGE].encode("utf-8", "replace")
            parts.append(_LENGTH.pack(len(text)) + text)
    return b"".join(parts)


# -- the parent ---------------------------------------------------------------------------


class CheckerError(OSError):
    """A checker process failed (it died, or its reply made no sense)."""


class _Child:
    def __init__(self) -> None:
        self.process = spawn("from ostree_repo._checkers import child_main; child_main()")
        assert self.process.stdin is not None and self.process.stdout is not None
        self.stdin = self.process.stdin
        self.stdout = self.process.stdout

    def check(self, items: Sequence[Item]) -> list[Verdict]:
        request = [_COUNT.pack(len(items))]
        for path, checksum, objtype in items:
            raw = os.fsencode(path)
            request += (bytes((_TYPE_INDEX[objtype],)), bytes.fromhex(checksum))
            request += (_LENGTH.pack(len(raw)), raw)
        self.stdin.write(b"".join(request))
        self.stdin.flush()
        statuses = self.stdout.read(len(items))
        if len(statuses) != len(items):
            raise CheckerError(errno.EPIPE, "a checker process exited")
        verdicts: list[Verdict] = []
        for status in statuses:
            message = ""
            if status != SOUND:
                head = self.stdout.read(_LENGTH.size)
                if len(head) != _LENGTH.size or status > UNREADABLE:
                    raise CheckerError(errno.EPROTO, "a checker process sent a bad reply")
                (length,) = _LENGTH.unpack(head)
                message = self.stdout.read(length).decode("utf-8", "replace")
            verdicts.append((status, message))
        return verdicts

    def close(self) -> None:
        stop(self.process)


class CheckerPool:
    """``size`` checker processes.

    :meth:`check` (blocking, from any thread) hands a batch to an idle child; a child
    that fails raises :class:`CheckerError` and is not used again (the caller checks that
    batch another way).
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self._children: list[_Child] = []
        self._idle: queue.SimpleQueue[_Child | None] = queue.SimpleQueue()
        self._lock = threading.Lock()

    def start(self) -> bool:
        """Start the children; False (nothing left running) if they cannot start."""
        try:
            for _ in range(self.size):
                self._children.append(_Child())
            for child in self._children:
                if child.stdout.read(1) != b"R":
                    raise OSError(errno.EPIPE, "a checker process failed to start")
        except OSError:
            self.close()
            return False
        for child in self._children:
            self._idle.put(child)
        return True

    @property
    def alive(self) -> int:
        """How many children are still usable."""
        with self._lock:
            return len(self._children)

    def check(self, items: Sequence[Item]) -> list[Verdict]:
        """Check ``items`` in an idle child (waits for one)."""
        child = self._idle.get()
        if child is None:
            self._idle.put(None)  # (wake the next waiter too)
            raise CheckerError(errno.EPIPE, "no checker process left")
        try:
            verdicts = child.check(items)
        except (OSError, ValueError) as e:
            with self._lock:
                if child in self._children:
                    self._children.remove(child)
                last = not self._children
            child.close()
            if last:
                self._idle.put(None)
            raise CheckerError(errno.EPIPE, f"a checker process failed: {e}") from None
        self._idle.put(child)
        return verdicts

    def close(self) -> None:
        """Stop the children."""
        with self._lock:
            children, self._children = self._children, []
        for child in children:
            child.close()
