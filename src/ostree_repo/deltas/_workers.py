"""Worker processes that compute diffs and write parts on every core.

Rolling checksums, bsdiff and xz are cheap in C, but the Python around them holds the
GIL, and a part's compression is one long C call: a :class:`DeltaWorkers` pool runs a
few child processes (:func:`ostree_repo._children.spawn`: ``python -c``, the same
interpreter; no ``multiprocessing``, so an embedding program's ``__main__`` is never
re-imported) and gives each job to an idle
one. With ``processes=0`` the same jobs run in a thread of this process.

Jobs are admitted within a memory budget (each says how much it needs: liblzma's
encoder state for a part, the inputs and bsdiff's suffix arrays for diffs), so the
children together stay within it; a job bigger than the budget runs alone.

The protocol over each child's pipes is lock-step. A message is a type byte, a length
(u64) and a pickled body (only this library's processes are at either end):

* ``D`` (diffs to compute) is answered at once;
* ``P`` starts a part, ``E`` carries some of its entries (no answer: the parent streams
  them, the pipe pushing back), ``F`` finishes it and is answered with the part file.

An answer is a status byte (``k`` ok, ``e`` an error), a length and the body: the
result (for ``F`` the raw part bytes), or the error as (module, class, args, attributes)
so the parent raises the very exception. A child that dies, or that is abandoned by a
cancelled job, is killed and replaced on the next job.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import pickle
import signal
import struct
import subprocess
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import anyio

from ostree_repo._children import spawn
from ostree_repo.deltas._jobs import (
    DiffRequest,
    DiffResult,
    Entry,
    PartStart,
    run_diffs,
    start_part,
    write_entries,
)
from ostree_repo.deltas._payload import PartWriter
from ostree_repo.deltas.errors import DeltaWorkerError
from ostree_repo.errors import OstreeRepoError

__all__ = [
    "DEFAULT_MEMORY_BUDGET",
    "DeltaWorkers",
    "PartSession",
    "child_main",
    "default_processes",
]

#: What the jobs of a pool may hold at once (bytes), unless told otherwise.
DEFAULT_MEMORY_BUDGET = 160 << 20
#: Jobs on fewer bytes than this run in a thread of the parent even with processes.
IN_PROCESS_BELOW = 256 << 10
_HEAD = struct.Struct(">cQ")
_CHILD = "from ostree_repo.deltas._workers import child_main; child_main()"


def default_processes() -> int:
    """One worker per CPU, at most 4."""
    return max(1, min(4, os.cpu_count() or 1))


# -- the child ------------------------------------------------------------------------------


def child_main() -> None:
    """A worker process: answers messages on stdin until it ends."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a terminal's ^C is the parent's
    rfd = sys.stdin.fileno()
    wfd = os.dup(sys.stdout.fileno())
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # stray prints must not hit the pipe
    writer: PartWriter | None = None
    failure: BaseException | None = None
    while True:
        head = _read_exact(rfd, _HEAD.size)
        if len(head) < _HEAD.size:
            return
        kind, length = _HEAD.unpack(head)
        body = pickle.loads(_read_exact(rfd, length))
        try:
            if kind == b"D":
                requests, use_rollsum = body
                _reply(wfd, b"k", pickle.dumps(run_diffs(requests, use_rollsum)))
            elif kind == b"P":
                writer, failure = start_part(body), None
            elif kind == b"E":
                if failure is None and writer is not None:
                    write_entries(writer, body)
            elif kind == b"F":
                if failure is not None:
                    raise failure
                assert writer is not None
                data, writer = writer.finish(), None
                _reply(wfd, b"k", data)
        except Exception as e:
            if kind == b"E":
                failure = e  # answered at F, once the parent stops streaming
            else:
                writer, failure = None, None
                _reply(wfd, b"e", _pickle_error(e))


def _pickle_error(e: BaseException) -> bytes:
    cls = type(e)
    attributes = {k: v for k, v in vars(e).items() if _picklable(v)}
    return pickle.dumps((cls.__module__, cls.__qualname__, e.args, attributes))


def _picklable(value: Any) -> bool:
    try:
        pickle.dumps(value)
    except Exception:
        return False
    return True


def _reply(fd: int, status: bytes, body: bytes) -> None:
    _write_all(fd, [_HEAD.pack(status, len(body)), body])


# -- pipes ----------------------------------------------------------------------------------


def _read_exact(fd: int, size: int) -> bytes:
    """``size`` bytes, fewer only at the end of the input."""
    pieces = []
    have = 0
    while have < size:
        piece = os.read(fd, min(size - have, 1 << 22))
        if not piece:
            break
        pieces.append(piece)
        have += len(piece)
    return b"".join(pieces)


def _write_all(fd: int, pieces: Sequence[bytes | memoryview]) -> None:
    for piece in pieces:
        view = memoryview(piece)
        while view:
            written = os.write(fd, view)
            view = view[written:]


def _raise_error(body: bytes) -> None:
    module, name, args, attributes = pickle.loads(body)
    cls: Any = None
    with contextlib.suppress(ImportError, AttributeError):
        cls = getattr(importlib.import_module(module), name)
    if isinstance(cls, type) and issubclass(cls, OstreeRepoError):
        error = cls.__new__(cls)
        error.args = args
        vars(error).update(attributes)
        raise error
    message = args[0] if len(args) == 1 else args
    raise DeltaWorkerError(f"delta worker failed: {name}: {message}")


class _Child:
    """One worker process and its pipes."""

    def __init__(self) -> None:
        try:
            self.process = spawn(_CHILD, bufsize=0)
        except OSError as e:
            raise DeltaWorkerError(f"cannot start a delta worker: {e}") from e
        assert self.process.stdin is not None and self.process.stdout is not None
        self._in = self.process.stdin.fileno()
        self._out = self.process.stdout.fileno()
        self.broken = False

    def send(self, kind: bytes, body: Any) -> None:
        data = pickle.dumps(body, protocol=pickle.HIGHEST_PROTOCOL)
        try:
            _write_all(self._in, [_HEAD.pack(kind, len(data)), data])
        except OSError as e:
            self.broken = True
            raise DeltaWorkerError(f"delta worker {self.process.pid} is gone ({e})") from None

    def answer(self) -> bytes:
        head = _read_exact(self._out, _HEAD.size)
        if len(head) < _HEAD.size:
            self.broken = True
            code = self.process.poll()
            raise DeltaWorkerError(
                f"delta worker {self.process.pid} died"
                + (f" (exit status {code})" if code is not None else "")
            )
        status, length = _HEAD.unpack(head)
        body = _read_exact(self._out, length)
        if len(body) < length:
            self.broken = True
            raise DeltaWorkerError(f"delta worker {self.process.pid} died mid-answer")
        if status == b"e":
            _raise_error(body)
        return body

    def close(self, kill: bool = False) -> None:
        with contextlib.suppress(OSError):
            assert self.process.stdin is not None
            self.process.stdin.close()
        if kill:
            with contextlib.suppress(OSError):
                self.process.kill()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        with contextlib.suppress(OSError):
            assert self.process.stdout is not None
            self.process.stdout.close()


class _Budget:
    """Admits jobs while their memory adds up to at most the budget (one at least)."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.used = 0
        self.running = 0
        self._changed = anyio.Condition()

    @asynccontextmanager
    async def hold(self, amount: int) -> AsyncIterator[None]:
        async with self._changed:
            while self.running and self.used + amount > self.total:
                await self._changed.wait()
            self.used += amount
            self.running += 1
        try:
            yield
        finally:
            with anyio.CancelScope(shield=True):
                async with self._changed:
                    self.used -= amount
                    self.running -= 1
                    self._changed.notify_all()


class PartSession:
    """One part being written by a worker: :meth:`send` entries, then :meth:`finish`."""

    def __init__(self, child: _Child | None, writer: PartWriter | None) -> None:
        self._child = child
        self._writer = writer

    async def send(self, entries: list[Entry]) -> None:
        """Add entries to the part (in order)."""
        if self._child is None:
            assert self._writer is not None
            await anyio.to_thread.run_sync(write_entries, self._writer, entries)
        else:
            await _call(self._child, self._child.send, b"E", entries)

    async def finish(self) -> bytes:
        """The part file."""
        if self._child is None:
            assert self._writer is not None
            return await anyio.to_thread.run_sync(self._writer.finish)
        child = self._child
        await _call(child, child.send, b"F", None)
        data: bytes = await _call(child, child.answer)
        return data


async def _call(child: _Child, function: Any, *args: Any) -> Any:
    """Run a blocking pipe operation in a thread; a cancelled caller kills the child
    (it is mid-message, so no later job could use it)."""
    try:
        return await anyio.to_thread.run_sync(lambda: function(*args), abandon_on_cancel=True)
    except anyio.get_cancelled_exc_class():
        child.broken = True
        with contextlib.suppress(OSError):
            child.process.kill()
        raise


class DeltaWorkers:
    """A pool of ``processes`` delta workers (0: jobs run in a thread of this process),
    whose jobs together hold at most ``memory_budget`` bytes; jobs on fewer than
    ``in_process_below`` bytes run in a thread here all the same. Use as an async
    context manager; children start on first use and stop at exit."""

    def __init__(
        self,
        processes: int | None = None,
        memory_budget: int = DEFAULT_MEMORY_BUDGET,
        *,
        in_process_below: int = IN_PROCESS_BELOW,
    ):
        self.processes = default_processes() if processes is None else max(0, processes)
        self.in_process_below = in_process_below
        self._budget = _Budget(memory_budget)
        self._idle: list[_Child] = []
        self._all: list[_Child] = []
        self._slots = anyio.Semaphore(max(1, self.processes))
        self._thread = anyio.Semaphore(1)

    async def __aenter__(self) -> DeltaWorkers:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def start(self) -> None:
        """Start every child now (they import while the caller prepares their work)."""
        while len(self._all) < self.processes:
            child = _Child()
            self._all.append(child)
            self._idle.append(child)

    async def aclose(self) -> None:
        """Stop the children."""
        children, self._all, self._idle = self._all, [], []
        for child in children:
            await anyio.to_thread.run_sync(child.close, child.broken)

    @asynccontextmanager
    async def _child(self, memory: int, size: int) -> AsyncIterator[_Child | None]:
        """A child for a job holding ``memory`` bytes and working on ``size`` bytes of
        data; None (run it in a thread here) without processes, or for a job smaller
        than :data:`IN_PROCESS_BELOW` (not worth a child, or starting one)."""
        if size < self.in_process_below:
            async with self._budget.hold(memory), self._thread:
                yield None
            return
        async with self._budget.hold(memory), self._slots:
            if not self.processes:
                yield None
                return
            self.start()
            child = self._idle.pop()
            try:
                yield child
            finally:
                if child.broken:
                    self._all.remove(child)
                    await anyio.to_thread.run_sync(child.close, True)
                else:
                    self._idle.append(child)

    async def diffs(
        self, requests: list[DiffRequest], use_rollsum: bool, memory: int
    ) -> list[DiffResult]:
        """Run :func:`~._jobs.run_diffs` on a worker."""
        size = sum(len(r.filez) + len(r.source_filez) for r in requests)
        async with self._child(memory, size) as child:
            if child is None:
                return await anyio.to_thread.run_sync(run_diffs, requests, use_rollsum)
            await _call(child, child.send, b"D", (requests, use_rollsum))
            result: list[DiffResult] = pickle.loads(await _call(child, child.answer))
            return result

    @asynccontextmanager
    async def part(self, start: PartStart, memory: int) -> AsyncIterator[PartSession]:
        """A worker writing one part, held until the block ends."""
        async with self._child(memory, start.payload_size) as child:
            if child is None:
                writer = await anyio.to_thread.run_sync(start_part, start)
                yield PartSession(None, writer)
            else:
                await _call(child, child.send, b"P", start)
                yield PartSession(child, None)
