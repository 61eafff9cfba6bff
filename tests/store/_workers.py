"""Code that runs in other processes: racing writers and the crash-test writer.

Run as ``python -m store._workers SPEC_JSON START`` (with ``tests/`` on ``sys.path``) it is
the crash-test writer: it writes objects and named files forever, printing a line after
each round and for each chunk of a streamed object, until it is killed.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import sys
import traceback
from collections.abc import Awaitable, Callable, Iterator
from multiprocessing.synchronize import Barrier
from typing import Any

import anyio

from ostree_repo.errors import ConflictError
from ostree_repo.store import open_store

from .objfactory import dirmeta, file_object

# -- racing writers (multiprocessing, spawn) ----------------------------------------------


def _outcome(main: Callable[[], Awaitable[Any]], index: int | None) -> tuple[Any, Any, str]:
    """Run ``main``; report (index, result, "") or (index, None, traceback) to the parent."""
    try:
        return index, anyio.run(main), ""
    except BaseException:
        return index, None, traceback.format_exc()


def _report_and_exit(results: Any, outcome: tuple[Any, Any, str]) -> None:
    """Hand ``outcome`` to the parent, then leave without finalizing the interpreter.

    Python before 3.14 stops a native thread that takes the GIL during finalization with
    ``pthread_exit``, which aborts the process (SIGABRT): obstore's runtime threads can be
    finishing a request's hand-over just then. ``ostree-repo`` exits the same way.
    """
    results.put(outcome)
    results.close()
    results.join_thread()  # the queue's feeder thread has written the outcome
    os._exit(0)


def race_create(
    spec: dict[str, Any], index: int, rounds: int, barrier: Barrier, results: Any
) -> None:
    """Race the other processes to create ``race/<round>``; report the rounds won."""

    async def main() -> list[int]:
        won = []
        async with open_store(spec["url"], env=spec["env"], **spec["options"]) as store:
            for r in range(rounds):
                barrier.wait()
                try:
                    await store.create_named(f"race/{r}", b"writer %d" % index)
                except ConflictError:
                    continue
                won.append(r)
        return won

    _report_and_exit(results, _outcome(main, index))


def race_increment(spec: dict[str, Any], times: int, barrier: Barrier, results: Any) -> None:
    """Add ``times`` to the counter with read + compare-and-swap; report the conflicts seen."""

    async def main() -> int:
        conflicts = 0
        async with open_store(spec["url"], env=spec["env"], **spec["options"]) as store:
            barrier.wait()
            for _ in range(times):
                while True:
                    data, token = await store.read_named("counter")
                    try:
                        await store.replace_named("counter", b"%d" % (int(data) + 1), token)
                        break
                    except ConflictError:
                        conflicts += 1
        return conflicts

    _report_and_exit(results, _outcome(main, None))


# -- crash-test writer ------------------------------------------------------------------------


def sealed(payload: bytes) -> bytes:
    """Bytes that prove their own completeness: payload + sha256(payload)."""
    return payload + hashlib.sha256(payload).digest()


def is_sealed(data: bytes) -> bool:
    return len(data) >= 32 and hashlib.sha256(data[:-32]).digest() == data[-32:]


async def write_forever(spec: dict[str, Any], start: int) -> None:
    rng = random.Random(start)
    async with open_store(spec["url"], env=spec["env"], **spec["options"]) as store:
        for i in range(start, start + 1_000_000):
            obj = dirmeta(i)
            await store.write_object(obj.checksum, obj.objtype, obj.data)
            if i % 2 == 0:  # a content object, sometimes bigger than one S3 part
                size = rng.choice([50_000, 1 << 20, 3 << 20, 10 << 20])
                big = file_object(size, seed=i)
                await store.write_object(big.checksum, big.objtype, announced(big.chunks()))
            async with store.staging() as staging:  # visible at the end of the block
                metas = [dirmeta(i + 500_000 + k) for k in range(3)]
                await staging.write_objects([(o.checksum, o.objtype, o.data) for o in metas])
                if i % 3 == 0:
                    big = file_object(rng.choice([50_000, 3 << 20]), seed=i + 500_000)
                    await staging.write_object(big.checksum, big.objtype, announced(big.chunks()))
            payload = rng.randbytes(rng.choice([10, 5000, 300_000]))
            await store.write_named(f"files/{i % 5}", sealed(payload))
            await store.create_named(f"log/{i}", sealed(payload[:100]))
            print("round", i, flush=True)


def announced(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """Pass chunks through, printing a line as each is handed to the store.

    The test kills the writer right after some line, so many kills land in the middle of
    a streamed write, with a temporary file or a multipart upload open.
    """
    for chunk in chunks:
        print("chunk", flush=True)
        yield chunk


if __name__ == "__main__":
    anyio.run(write_forever, json.loads(sys.argv[1]), int(sys.argv[2]))
