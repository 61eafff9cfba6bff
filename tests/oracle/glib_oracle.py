"""GLib as a GVariant test oracle, reached through a long-lived subprocess.

Our package must not depend on GLib, and our venv Python has no ``gi``.  The
system Python (``/usr/bin/python3``) does, so :class:`GLibOracle` starts
``/usr/bin/python3 -I _glib_server.py`` once and talks to it over pipes with a
length-prefixed pickle protocol (8-byte big-endian length, pickle protocol 5,
plain builtins only).  Requests are synchronous; a lock makes the client safe
to share between threads.

Value representation (used both for ``encode`` input and ``decode`` output):

=================  ==========================================================
GVariant type      Python value
=================  ==========================================================
``b``              ``bool`` (``encode`` also accepts 0/1)
``y n q i u x t``  ``int``
``h``              ``int`` (the handle index)
``d``              ``float`` (``encode`` also accepts ``int``)
``s o g``          ``str``
``v``              ``("__variant__", type_string, value)``
``ay``             ``bytes`` (``encode`` also accepts a list of ints)
``a{KV}``          ``("__dict__", [(k, v), ...])`` -- order and duplicate keys
                   are preserved; ``encode`` also accepts a ``dict`` or a
                   plain list of pairs
other ``aT``       ``list``
``(...)``          ``tuple`` (``encode`` also accepts a list)
``{KV}``           ``(k, v)`` (a lone dict entry)
``mT``             ``None`` for Nothing; otherwise the value of ``T``.  When
                   ``T`` is itself a maybe, Just is written
                   ``("__just__", value)`` so that Just(Nothing) =
                   ``("__just__", None)`` differs from Nothing = ``None``.
                   Example for ``mmi``: ``None``, ``("__just__", None)``,
                   ``("__just__", 5)``.  ``encode`` accepts ``("__just__", x)``
                   for any maybe, and a bare value as Just of that value.
=================  ==========================================================

``decode`` is lenient like GLib: non-normal data decodes with GLib's fallback
rules and the result says whether the input was in normal form.

Typical use::

    with GLibOracle() as g:
        assert g.encode("(su)", ("ab", 1)) == bytes.fromhex("616200000100000003")
        normal, value = g.decode("a{sv}", data)

or the session-scoped pytest fixture ``glib`` from ``tests.oracle.fixtures``.
"""

from __future__ import annotations

import os
import pickle
import struct
import subprocess
import tempfile
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import IO, Any

__all__ = [
    "DICT_TAG",
    "JUST_TAG",
    "SERVER_SCRIPT",
    "SYSTEM_PYTHON",
    "VARIANT_TAG",
    "GLibOracle",
    "GLibOracleDiedError",
    "GLibOracleError",
    "glib_available",
]

SYSTEM_PYTHON = "/usr/bin/python3"
SERVER_SCRIPT = Path(__file__).with_name("_glib_server.py")
VARIANT_TAG = "__variant__"
DICT_TAG = "__dict__"
JUST_TAG = "__just__"

PICKLE_PROTOCOL = 5
_HEADER = struct.Struct(">Q")


class GLibOracleError(Exception):
    """GLib (or the server's value conversion) rejected a request.

    ``kind`` is the name of the exception type raised in the server
    (``TypeError``, ``ValueError``, ``OverflowError``, ``GLib.GError``...).
    """

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(f"{kind}: {message}")
        self.kind = kind
        self.message = message


class GLibOracleDiedError(RuntimeError):
    """The server process died or the protocol stream broke.

    The next request starts a fresh server.
    """


def glib_available(python: str = SYSTEM_PYTHON) -> bool:
    """Whether ``python`` exists and can import GLib through ``gi``."""
    if not os.access(python, os.X_OK):
        return False
    try:
        proc = subprocess.run(
            [
                python,
                "-I",
                "-c",
                "import gi; gi.require_version('GLib', '2.0');from gi.repository import GLib",
            ],
            capture_output=True,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return proc.returncode == 0


def _child_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env.pop("VIRTUAL_ENV", None)
    return env


class GLibOracle:
    """Client for the GLib oracle server (a context manager).

    All methods raise :class:`GLibOracleError` when GLib rejects the request
    and :class:`GLibOracleDiedError` if the server process dies.
    """

    def __init__(self, python: str = SYSTEM_PYTHON, server: Path = SERVER_SCRIPT) -> None:
        self._python = python
        self._server = Path(server)
        self._proc: subprocess.Popen[bytes] | None = None
        self._stderr: IO[bytes] | None = None
        self._lock = threading.Lock()
        self._start()

    # -- process management -------------------------------------------------

    def _start(self) -> None:
        # Kept open for the life of the process (closed in _discard).
        self._stderr = tempfile.TemporaryFile(prefix="glib-oracle-stderr-")  # noqa: SIM115
        self._proc = subprocess.Popen(
            [self._python, "-I", str(self._server)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            env=_child_env(),
            close_fds=True,
        )

    def _stderr_tail(self, limit: int = 4000) -> str:
        if self._stderr is None:
            return ""
        try:
            self._stderr.seek(0)
            data = self._stderr.read()
        except (OSError, ValueError):
            return ""
        return data[-limit:].decode("utf-8", "replace")

    def _discard(self) -> str:
        """Kill the current process (if any); return its stderr tail."""
        tail = self._stderr_tail()
        proc, self._proc = self._proc, None
        if proc is not None:
            for stream in (proc.stdin, proc.stdout):
                try:
                    if stream is not None:
                        stream.close()
                except OSError:
                    pass
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None
        return tail

    def close(self) -> None:
        """Stop the server (closing its stdin makes it exit)."""
        with self._lock:
            self._discard()

    def __enter__(self) -> GLibOracle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:  # best effort; tests should use close()/with
        try:
            if self._proc is not None:
                self._discard()
        except Exception:
            pass

    @property
    def pid(self) -> int | None:
        """Process id of the running server, or None."""
        return self._proc.pid if self._proc is not None else None

    # -- transport ----------------------------------------------------------

    def _roundtrip(self, request: tuple[Any, ...]) -> Any:
        with self._lock:
            if self._proc is None:
                self._start()
            proc = self._proc
            assert proc is not None and proc.stdin is not None and proc.stdout is not None
            payload = pickle.dumps(request, protocol=PICKLE_PROTOCOL)
            try:
                proc.stdin.write(_HEADER.pack(len(payload)) + payload)
                proc.stdin.flush()
                header = proc.stdout.read(_HEADER.size)
                if len(header) != _HEADER.size:
                    raise EOFError("server closed its stdout")
                (length,) = _HEADER.unpack(header)
                body = proc.stdout.read(length)
                if len(body) != length:
                    raise EOFError("short response")
            except (OSError, EOFError, ValueError) as exc:
                tail = self._discard()
                raise GLibOracleDiedError(
                    f"GLib oracle server died ({exc}); stderr:\n{tail}"
                ) from exc
            return pickle.loads(body)

    @staticmethod
    def _result(response: Any) -> Any:
        if response[0] == "ok":
            return response[1]
        raise GLibOracleError(response[1], response[2])

    def _call(self, *request: Any) -> Any:
        return self._result(self._roundtrip(tuple(request)))

    def _batch(self, requests: Sequence[tuple[Any, ...]], return_exceptions: bool) -> list[Any]:
        responses = self._call("batch", list(requests))
        out: list[Any] = []
        for response in responses:
            if response[0] == "ok":
                out.append(response[1])
            elif return_exceptions:
                out.append(GLibOracleError(response[1], response[2]))
            else:
                raise GLibOracleError(response[1], response[2])
        return out

    # -- API ----------------------------------------------------------------

    def ping(self) -> str:
        """Round-trip a no-op request; returns ``"pong"``."""
        return str(self._call("ping"))

    def encode(self, signature: str, value: Any) -> bytes:
        """Serialise ``value`` as ``signature`` with GLib (normal form)."""
        return bytes(self._call("encode", signature, value))

    def decode(self, signature: str, data: bytes) -> tuple[bool, Any]:
        """Load ``data`` as an untrusted ``signature`` variant.

        Returns ``(is_normal_form, value)``; ``value`` follows GLib's fallback
        rules for non-normal input.
        """
        normal, value = self._call("decode", signature, bytes(data))
        return bool(normal), value

    def normal_form(self, signature: str, data: bytes) -> bytes:
        """GLib's normal form of ``data`` (``g_variant_get_normal_form``)."""
        return bytes(self._call("normal_form", signature, bytes(data)))

    def is_normal(self, signature: str, data: bytes) -> bool:
        """Whether ``data`` is in normal form for ``signature``."""
        return bool(self._call("is_normal", signature, bytes(data)))

    def print(self, signature: str, data: bytes, type_annotate: bool = True) -> str:
        """GVariant text form of ``data`` (``g_variant_print``), for debugging."""
        return str(self._call("print", signature, bytes(data), type_annotate))

    def format(self, signature: str, value: Any, type_annotate: bool = True) -> str:
        """GVariant text form of a Python ``value`` built as ``signature``."""
        return str(self._call("format", signature, value, type_annotate))

    def parse(self, text: str, signature: str | None = None) -> tuple[str, bytes]:
        """Parse GVariant text format; returns ``(type_string, bytes)``."""
        sig, data = self._call("parse", signature, text)
        return str(sig), bytes(data)

    def encode_many(
        self, items: Iterable[tuple[str, Any]], *, return_exceptions: bool = False
    ) -> list[Any]:
        """Batch :meth:`encode` in one round trip.

        With ``return_exceptions=True`` a failing item yields a
        :class:`GLibOracleError` in its slot instead of raising.
        """
        return self._batch([("encode", s, v) for s, v in items], return_exceptions)

    def decode_many(
        self, items: Iterable[tuple[str, bytes]], *, return_exceptions: bool = False
    ) -> list[Any]:
        """Batch :meth:`decode`; each result is ``(is_normal, value)``."""
        results = self._batch([("decode", s, bytes(d)) for s, d in items], return_exceptions)
        return [tuple(r) if isinstance(r, list | tuple) else r for r in results]

    def normal_form_many(
        self, items: Iterable[tuple[str, bytes]], *, return_exceptions: bool = False
    ) -> list[Any]:
        """Batch :meth:`normal_form`."""
        return self._batch([("normal_form", s, bytes(d)) for s, d in items], return_exceptions)
