"""Task groups that raise the first real error instead of an ExceptionGroup, and bounded
fan-out over many items.

Callers of this library catch :class:`~ostree_repo.errors.OstreeRepoError`; when one of
many concurrent tasks fails, the others are cancelled and that first error is raised as
itself, not wrapped in an ``ExceptionGroup``.

A walk over every object of a store must never start a task (or open a file) per object:
:func:`for_each` and :func:`map_bounded` run a fixed number of worker tasks that draw the
items one at a time, so a million items cost ``limit`` tasks, and an iterator of items is
consumed as the workers go (memory stays bounded by ``limit``, not by the item count).
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from typing import TypeVar

import anyio
from anyio.abc import TaskGroup

__all__ = ["for_each", "map_bounded", "task_group"]

_T = TypeVar("_T")
_R = TypeVar("_R")


def _first(group: BaseExceptionGroup[BaseException]) -> BaseException:
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            return _first(exc)
        if not isinstance(exc, anyio.get_cancelled_exc_class()):
            return exc
    return group


@asynccontextmanager
async def task_group() -> AsyncIterator[TaskGroup]:
    """``anyio.create_task_group()``, re-raising the first non-cancellation error plainly."""
    try:
        async with anyio.create_task_group() as tg:
            yield tg
    except BaseExceptionGroup as group:
        raise _first(group) from None


async def for_each(
    items: Iterable[_T] | AsyncIterable[_T],
    func: Callable[[_T], Awaitable[object]],
    *,
    limit: int,
) -> None:
    """Await ``func(item)`` for every item, at most ``limit`` at a time.

    ``limit`` worker tasks draw the items in order (a sync or async iterable, read
    lazily); the first error cancels the others and is raised as itself.
    """
    limit = max(1, limit)
    if isinstance(items, AsyncIterable):
        source = aiter(items)
        lock = anyio.Lock()

        async def async_worker() -> None:
            while True:
                async with lock:  # an async iterator must not be advanced twice at once
                    try:
                        item = await anext(source)
                    except StopAsyncIteration:
                        return
                await func(item)

        async with task_group() as tg:
            for _ in range(limit):
                tg.start_soon(async_worker)
        return

    iterator = iter(items)

    async def worker() -> None:
        for item in iterator:  # (next() never awaits: the workers cannot collide)
            await func(item)

    async with task_group() as tg:
        for _ in range(limit):
            tg.start_soon(worker)


async def map_bounded(
    func: Callable[[_T], Awaitable[_R]], items: Sequence[_T], *, limit: int
) -> list[_R]:
    """``[await func(item) for item in items]``, at most ``limit`` calls at a time (see
    :func:`for_each`)."""
    if len(items) <= 1:
        return [await func(item) for item in items]
    results: list[_R | None] = [None] * len(items)

    async def one(index: int) -> None:
        results[index] = await func(items[index])

    await for_each(range(len(items)), one, limit=min(limit, len(items)))
    return results  # type: ignore[return-value]
