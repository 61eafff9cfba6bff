"""Helper processes of this package: ``python -c CODE`` children that talk over pipes.

The filesystem store's writer processes and fsck's checker processes start this way: the
same interpreter, no ``multiprocessing`` (so an embedding program's ``__main__`` is never
re-imported), and this package importable whatever the parent's ``sys.path`` was.
"""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
import sys

__all__ = ["spawn", "stop"]

_PACKAGE_PARENT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def spawn(code: str, *args: str, bufsize: int = -1) -> subprocess.Popen[bytes]:
    """Start ``python -c CODE ARGS...`` with pipes on its stdin and stdout (OSError if it
    cannot be started)."""
    if not sys.executable:
        raise OSError(errno.ENOENT, "no sys.executable")
    env = dict(os.environ)
    path = env.get("PYTHONPATH")
    env["PYTHONPATH"] = _PACKAGE_PARENT + (os.pathsep + path if path else "")
    return subprocess.Popen(
        [sys.executable, "-c", code, *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        bufsize=bufsize,
        env=env,
    )


def stop(process: subprocess.Popen[bytes]) -> None:
    """Close a child's pipes (it exits when its input ends) and reap it."""
    for stream in (process.stdin, process.stdout):
        if stream is not None:
            with contextlib.suppress(OSError):
                stream.close()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:  # pragma: no cover - a stuck child
        process.kill()
        process.wait()
