"""Progress displays for long verbs (``import``, ``sync``): one live line on stderr, drawn
by rich, and only when stderr is a terminal.

rich is imported only when a display is made, so verbs that show none, and every verb
whose stderr is a file or a pipe, never pay for importing it. The line is transient: it is
erased when the verb ends, leaving the terminal to the verb's own output.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TextIO, TypeVar

if TYPE_CHECKING:
    from ostree_repo.importing import ImportProgress
    from ostree_repo.sync import SyncProgress

__all__ = ["ImportDisplay", "SyncDisplay", "import_display", "on_terminal", "sync_display"]

#: Redraws per second.
REFRESH_PER_SECOND = 10


def on_terminal(stream: TextIO) -> bool:
    """Whether ``stream`` is a terminal (a closed or fake stream is not)."""
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


class _Display:
    """A rich ``Progress`` with one task, drawn on ``stream`` until :meth:`done`."""

    def __init__(self, stream: TextIO, columns: tuple[Any, ...], **fields: Any) -> None:
        from rich.console import Console
        from rich.progress import Progress

        self._progress = Progress(
            *columns,
            console=Console(file=stream),
            transient=True,
            refresh_per_second=REFRESH_PER_SECOND,
        )
        self._task = self._progress.add_task("", total=None, **fields)
        self._progress.start()

    def _update(self, **changes: Any) -> None:
        self._progress.update(self._task, **changes)

    def done(self) -> None:
        """Erase the line and stop redrawing (idempotent)."""
        self._progress.stop()


class ImportDisplay(_Display):
    """``import``: a bar over the archive's bytes when its size is known, the bytes read
    and the objects stored (and how many were new)."""

    def __init__(self, stream: TextIO) -> None:
        from rich.progress import BarColumn, DownloadColumn, TaskProgressColumn, TextColumn

        super().__init__(
            stream,
            (
                TextColumn("importing"),
                BarColumn(),
                TaskProgressColumn(),
                DownloadColumn(),
                TextColumn("{task.fields[objects]:,} objects ({task.fields[new]:,} new)"),
            ),
            objects=0,
            new=0,
        )

    def __call__(self, progress: ImportProgress) -> None:
        self._update(
            completed=progress.bytes_read,
            total=progress.bytes_total,
            objects=progress.objects,
            new=progress.objects_new,
        )


class SyncDisplay(_Display):
    """``sync``: the phase, the commits walked, the objects and bytes fetched."""

    def __init__(self, stream: TextIO) -> None:
        from rich.progress import SpinnerColumn, TextColumn

        super().__init__(
            stream,
            (
                SpinnerColumn(),
                TextColumn(
                    "{task.fields[phase]}: {task.fields[commits]:,} commits, "
                    "{task.fields[objects]:,} objects, {task.fields[mb]:,.1f} MB"
                ),
            ),
            phase="starting",
            commits=0,
            objects=0,
            mb=0.0,
        )

    def __call__(self, progress: SyncProgress) -> None:
        self._update(
            phase=progress.phase,
            commits=progress.commits,
            objects=progress.objects_fetched,
            mb=progress.bytes_fetched / 1e6,
        )


_D = TypeVar("_D", bound=_Display)


def _shown(kind: Callable[[TextIO], _D], stream: TextIO | None) -> _D | None:
    stream = sys.stderr if stream is None else stream
    return kind(stream) if on_terminal(stream) else None


def import_display(stream: TextIO | None = None) -> ImportDisplay | None:
    """A display for ``import`` on ``stream`` (stderr), or None when it is no terminal."""
    return _shown(ImportDisplay, stream)


def sync_display(stream: TextIO | None = None) -> SyncDisplay | None:
    """A display for ``sync`` on ``stream`` (stderr), or None when it is no terminal."""
    return _shown(SyncDisplay, stream)
