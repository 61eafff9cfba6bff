"""HTTP servers for the sync tests: ``python3 -m http.server`` and a fault injector."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_listening(port: int, proc: subprocess.Popen[bytes], deadline: float = 15.0) -> None:
    """Return once something accepts connections on ``port`` (polling connects)."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with status {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            continue
    raise RuntimeError(f"nothing listens on port {port} after {deadline} s")


@contextlib.contextmanager
def http_server(directory: Path) -> Iterator[str]:
    """``python3 -m http.server`` serving ``directory``; yields its base URL."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(port),
         "--directory", str(directory)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_listening(port, proc)
        yield f"http://127.0.0.1:{port}/"
    finally:
        proc.terminate()
        proc.wait(10)


#: A fault policy: (path, how many times it was requested before) -> action.
#: Actions: "ok", "500", "429", "404", "reset", "truncate", "corrupt", "stall".
Policy = Callable[[str, int], str]


class FaultServer:
    """A tiny HTTP/1.1 server (keep-alive, GET only) serving ``root`` with injected faults.

    It runs on the test's own event loop. ``requests`` counts GETs per path.
    """

    def __init__(self, root: Path, policy: Policy) -> None:
        self.root = root
        self.policy = policy
        self.requests: dict[str, int] = {}
        self.url = ""
        self._server: asyncio.Server | None = None
        self._stalled = asyncio.Event()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                line = await reader.readline()
                if not line:
                    return
                while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                    pass
                path = line.split()[1].decode().lstrip("/")
                seen = self.requests.get(path, 0)
                self.requests[path] = seen + 1
                action = self.policy(path, seen)
                file = self.root / path
                if action == "stall":
                    await self._stalled.wait()
                    return
                if action == "reset":
                    writer.transport.abort()
                    return
                if action in ("500", "429", "404") or not file.is_file():
                    status = action if action != "ok" else "404"
                    writer.write(f"HTTP/1.1 {status} X\r\nContent-Length: 0\r\n\r\n".encode())
                    await writer.drain()
                    continue
                body = file.read_bytes()
                head = f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\n\r\n".encode()
                if action == "truncate":
                    writer.write(head + body[: len(body) // 2])
                    await writer.drain()
                    writer.close()
                    return
                if action == "corrupt":
                    body = body[:-1] + bytes([body[-1] ^ 0xFF]) if body else b"x"
                writer.write(head + body)
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        finally:
            with contextlib.suppress(Exception):
                writer.close()

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[FaultServer]:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}/"
        try:
            yield self
        finally:
            self._stalled.set()
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 5)
