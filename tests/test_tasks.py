"""Bounded fan-out (ostree_repo._tasks): never more than ``limit`` at once, items drawn
lazily, the first error raised as itself."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import anyio
import pytest

from ostree_repo._tasks import for_each, map_bounded

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Gauge:
    """Counts calls in flight and the most seen at once."""

    def __init__(self) -> None:
        self.now = 0
        self.peak = 0
        self.done: list[int] = []

    async def __call__(self, item: int) -> int:
        self.now += 1
        self.peak = max(self.peak, self.now)
        await anyio.sleep(0)
        await anyio.sleep(0)
        self.now -= 1
        self.done.append(item)
        return item * 2


async def test_for_each_runs_at_most_limit_at_once_and_every_item() -> None:
    gauge = Gauge()
    await for_each(range(1000), gauge, limit=7)
    assert gauge.peak == 7
    assert sorted(gauge.done) == list(range(1000))


async def test_for_each_draws_a_generator_lazily() -> None:
    drawn = []
    gauge = Gauge()

    def items() -> Iterator[int]:
        for i in range(100):
            drawn.append(i)
            # never more than ``limit`` items drawn and not finished
            assert len(drawn) - len(gauge.done) <= 4
            yield i

    await for_each(items(), gauge, limit=4)
    assert len(gauge.done) == 100


async def test_for_each_over_an_async_iterable() -> None:
    async def items() -> AsyncIterator[int]:
        for i in range(50):
            await anyio.sleep(0)
            yield i

    gauge = Gauge()
    await for_each(items(), gauge, limit=5)
    assert sorted(gauge.done) == list(range(50)) and gauge.peak <= 5


async def test_the_first_error_is_raised_as_itself_and_stops_the_rest() -> None:
    started = []

    async def fail_on_ten(item: int) -> None:
        started.append(item)
        await anyio.sleep(0)
        if item == 10:
            raise KeyError("ten")

    with pytest.raises(KeyError, match="ten"):
        await for_each(range(10_000), fail_on_ten, limit=3)
    assert len(started) < 100


async def test_map_bounded_keeps_the_order() -> None:
    gauge = Gauge()
    assert await map_bounded(gauge, list(range(200)), limit=9) == [i * 2 for i in range(200)]
    assert gauge.peak == 9
    assert await map_bounded(gauge, [5], limit=9) == [10]
    assert await map_bounded(gauge, [], limit=9) == []
