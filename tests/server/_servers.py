"""Real ASGI servers on loopback for the tests: uvicorn in a thread, the CLI in a process.

Readiness is polled against a deadline (never a fixed sleep); ports come from the kernel.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import uvicorn

READY_DEADLINE = 30.0


def free_port() -> int:
    """A port nobody listens on right now (the kernel's choice)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until(predicate: Callable[[], bool], what: str, deadline: float = READY_DEADLINE) -> None:
    """Poll ``predicate`` until it holds; fail after ``deadline`` seconds."""
    end = time.monotonic() + deadline
    pause = threading.Event()
    while not predicate():
        if time.monotonic() > end:
            raise TimeoutError(f"{what} not ready after {deadline} s")
        pause.wait(0.01)


def port_open(port: int) -> bool:
    """Whether something accepts connections on 127.0.0.1:``port``."""
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


class ThreadedServer:
    """uvicorn serving ``app`` on a kernel-chosen loopback port, in a thread.

    ``context``: an optional async context manager factory entered in the server's event
    loop around serving (to open a store object there).
    """

    def __init__(
        self,
        app: Any,
        context: Callable[[], contextlib.AbstractAsyncContextManager[Any]] | None = None,
    ) -> None:
        self.app = app
        self._context = context
        self._sock = socket.socket()
        # inherited by accepted connections (asyncio sets it only on sockets it makes)
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(128)
        self.port: int = self._sock.getsockname()[1]
        config = uvicorn.Config(app, lifespan="on", log_config=None, access_log=False, ws="none")
        # libcurl offers "Upgrade: h2c" on every request; uvicorn warns about each one
        logging.getLogger("uvicorn.error").setLevel(logging.ERROR)
        self.server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._run, daemon=True, name="uvicorn")
        self.error: BaseException | None = None

    @property
    def url(self) -> str:
        """The server's base URL (no trailing slash)."""
        return f"http://127.0.0.1:{self.port}"

    def _run(self) -> None:
        async def main() -> None:
            async with self._context() if self._context else _nothing():
                await self.server.serve(sockets=[self._sock])

        try:
            asyncio.run(main())
        except BaseException as e:  # reported by __enter__/__exit__
            self.error = e

    def __enter__(self) -> ThreadedServer:
        self._thread.start()
        wait_until(lambda: self.server.started or not self._thread.is_alive(), "uvicorn")
        if not self.server.started:
            raise RuntimeError(f"uvicorn did not start: {self.error!r}")
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self._thread.join(READY_DEADLINE)
        self._sock.close()


@contextlib.asynccontextmanager
async def _nothing() -> AsyncIterator[None]:
    yield


class LogCapture(logging.Handler):
    """Every record of some loggers, formatted, kept in memory (thread-safe)."""

    def __init__(self, *names: str) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self._names = names
        self._levels: dict[str, int] = {}
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        text = self.format(record)
        with self.lock or contextlib.nullcontext():
            self.lines.append(text)

    def since(self, mark: int) -> list[str]:
        """Lines logged after ``mark`` (a previous ``len(lines)``)."""
        return self.lines[mark:]

    def __enter__(self) -> LogCapture:
        for name in self._names:
            logger = logging.getLogger(name)
            self._levels[name] = logger.level
            logger.setLevel(logging.DEBUG)
            logger.addHandler(self)
        return self

    def __exit__(self, *exc: object) -> None:
        for name in self._names:
            logger = logging.getLogger(name)
            logger.removeHandler(self)
            logger.setLevel(self._levels[name])


@contextlib.contextmanager
def cli_server(store: Path, *args: str, server: str = "granian") -> Iterator[CliServer]:
    """``ostree-repo --store STORE serve --port P ARGS...`` in a subprocess."""
    port = free_port()
    cmd = [
        sys.executable,
        "-m",
        "ostree_repo",
        "--store",
        str(store),
        "serve",
        "--port",
        str(port),
        "--server",
        server,
        *args,
    ]
    log_path = store.parent / f"serve-{port}.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    running = CliServer(proc, port, log_path)
    try:
        wait_until(lambda: proc.poll() is not None or port_open(port), "ostree-repo serve")
        if proc.poll() is not None:
            raise RuntimeError(f"ostree-repo serve exited: {running.output()}")
        yield running
    finally:
        running.stop()


class CliServer:
    """A running ``ostree-repo serve`` process."""

    def __init__(self, proc: subprocess.Popen[bytes], port: int, log_path: Path) -> None:
        self.proc = proc
        self.port = port
        self.log_path = log_path

    @property
    def url(self) -> str:
        """The server's base URL (no trailing slash)."""
        return f"http://127.0.0.1:{self.port}"

    def output(self) -> str:
        """Everything the process printed so far."""
        return self.log_path.read_text(errors="replace")

    def stop(self) -> int:
        """SIGINT (as Ctrl-C), then SIGKILL if it does not exit in time; the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(READY_DEADLINE)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        return self.proc.returncode
