"""Conditional writes hold across processes: racing creators and compare-and-swap."""

from __future__ import annotations

import dataclasses
import multiprocessing
from pathlib import Path

import pytest

from ._workers import race_create, race_increment
from .conftest import make_spec

pytestmark = pytest.mark.anyio

PROCESSES = 8
ROUNDS = {"fs": 10, "s3": 2}
"""SeaweedFS makes the losers of a contended conditional PUT wait 1-5 s: few S3 rounds."""


@pytest.fixture(params=["fs", "s3"])
def shared_spec(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, object]:
    return dataclasses.asdict(make_spec(request.param, request, tmp_path))


def run_all(processes: list[multiprocessing.process.BaseProcess]) -> None:
    for p in processes:
        p.start()
    for p in processes:
        p.join(timeout=120)
    exits = [p.exitcode for p in processes]
    for p in processes:
        if p.exitcode is None:
            p.kill()
    assert exits == [0] * len(processes)


async def test_exactly_one_of_eight_processes_creates(shared_spec: dict[str, object]) -> None:
    from ostree_repo.store import open_store

    rounds = ROUNDS[str(shared_spec["kind"])]
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(PROCESSES, timeout=60)
    results = ctx.Queue()
    run_all(
        [
            ctx.Process(target=race_create, args=(shared_spec, i, rounds, barrier, results))
            for i in range(PROCESSES)
        ]
    )
    outcomes = [results.get(timeout=10) for _ in range(PROCESSES)]
    assert [error for _, _, error in outcomes if error] == []
    won = {index: rounds for index, rounds, _ in outcomes}
    async with open_store(shared_spec["url"], env=shared_spec["env"]) as store:  # type: ignore[arg-type]
        for r in range(rounds):
            winners = [i for i, rounds in won.items() if r in rounds]
            assert len(winners) == 1, (r, won)
            assert (await store.read_named(f"race/{r}")).data == b"writer %d" % winners[0]


async def test_compare_and_swap_across_processes_loses_no_update(
    shared_spec: dict[str, object],
) -> None:
    from ostree_repo.store import open_store

    async with open_store(shared_spec["url"], env=shared_spec["env"]) as store:  # type: ignore[arg-type]
        await store.create_named("counter", b"0")
    ctx = multiprocessing.get_context("spawn")
    workers, times = 4, 25
    barrier = ctx.Barrier(workers, timeout=60)
    results = ctx.Queue()
    run_all(
        [
            ctx.Process(target=race_increment, args=(shared_spec, times, barrier, results))
            for _ in range(workers)
        ]
    )
    outcomes = [results.get(timeout=10) for _ in range(workers)]
    assert [error for _, _, error in outcomes if error] == []
    conflicts = sum(count for _, count, _ in outcomes)
    async with open_store(shared_spec["url"], env=shared_spec["env"]) as store:  # type: ignore[arg-type]
        assert (await store.read_named("counter")).data == b"%d" % (workers * times)
    assert conflicts > 0  # the writers did overlap, so the swaps were really contended
