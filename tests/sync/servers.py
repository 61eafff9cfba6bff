"""HTTP servers for the sync tests: ``python3 -m http.server`` and a fault injector."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import subprocess
import sys
import threading
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


class Request:
    """A request as :class:`ScriptServer` received it."""

    def __init__(self, line: bytes, headers: dict[str, str], conn: int, index: int) -> None:
        self.method, target, self.version = line.decode("latin-1").split(" ")
        self.path = target.lstrip("/")
        self.headers = headers
        self.conn = conn  # which connection (0, 1, ...)
        self.index = index  # which request on that connection (0, 1, ...)


#: A script: request -> what to do, in order: bytes to send (at once), or
#: ("bytewise", bytes) to send byte by byte, ("gather", n) to wait until n requests of
#: the connection have arrived (proves pipelining), "close", "reset", "stall".
Script = Callable[[Request], list[object]]


def response(body: bytes, status: str = "200 OK", headers: str = "") -> bytes:
    """An HTTP/1.1 response with a Content-Length."""
    return f"HTTP/1.1 {status}\r\nContent-Length: {len(body)}\r\n{headers}\r\n".encode() + body


class ScriptServer:
    """A loopback HTTP server in a thread that answers as its script says (blocking
    sockets, so it works under any event loop). ``requests`` lists what arrived."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self.port = self._listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/repo/"
        self._threads: list[threading.Thread] = []
        self._socks: list[socket.socket] = []
        self._accepting = threading.Thread(target=self._accept, daemon=True)

    def __enter__(self) -> ScriptServer:
        self._accepting.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._accepting.join(5)
        with self._lock:
            socks = list(self._socks)
        for s in socks:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)  # wakes a thread blocked in recv
            with contextlib.suppress(OSError):
                s.close()
        for t in self._threads:
            t.join(5)
        self._listener.close()

    @property
    def connections(self) -> int:
        return len({r.conn for r in self.requests})

    def _accept(self) -> None:
        count = 0
        while not self._stop.is_set():
            try:
                sock, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self._socks.append(sock)
            t = threading.Thread(target=self._serve, args=(sock, count), daemon=True)
            count += 1
            self._threads.append(t)
            t.start()

    def _serve(self, sock: socket.socket, conn: int) -> None:
        buf = b""
        index = 0
        try:
            while True:
                while b"\r\n\r\n" not in buf:
                    data = sock.recv(65536)
                    if not data:
                        return
                    buf += data
                head, buf = buf.split(b"\r\n\r\n", 1)
                line, *fields = head.split(b"\r\n")
                headers = {}
                for field in fields:
                    name, _, value = field.decode("latin-1").partition(":")
                    headers[name.strip().lower()] = value.strip()
                request = Request(line, headers, conn, index)
                index += 1
                with self._lock:
                    self.requests.append(request)
                for action in self.script(request):
                    if isinstance(action, bytes):
                        sock.sendall(action)
                    elif isinstance(action, tuple) and action[0] == "bytewise":
                        for i in range(len(action[1])):
                            sock.sendall(action[1][i : i + 1])
                    elif isinstance(action, tuple) and action[0] == "gather":
                        while buf.count(b"\r\n\r\n") < action[1] - 1:
                            data = sock.recv(65536)
                            if not data:
                                return
                            buf += data
                    elif action == "close":
                        sock.shutdown(socket.SHUT_RDWR)
                        return
                    elif action == "reset":
                        sock.setsockopt(
                            socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                        )
                        return
                    elif action == "stall":
                        self._stop.wait()
                        return
                    else:
                        raise AssertionError(f"unknown action {action!r}")
        except OSError:
            return
        finally:
            with contextlib.suppress(OSError):
                sock.close()
