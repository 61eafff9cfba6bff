"""Task groups that raise the first real error instead of an ExceptionGroup.

Callers of this library catch :class:`~ostree_repo.errors.OstreeRepoError`; when one of
many concurrent tasks fails, the others are cancelled and that first error is raised as
itself, not wrapped in an ``ExceptionGroup``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
from anyio.abc import TaskGroup

__all__ = ["task_group"]


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
