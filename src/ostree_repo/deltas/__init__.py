"""Static deltas, generated in pure Python: from commit A (or from nothing) to commit B.

:func:`generate_delta` walks both trees in an object store and writes a superblock and
parts that the real ``ostree`` client applies: new metadata and files spliced whole,
modified files as rollsum matches of unchanged chunks or bsdiff patches, large new
files as fallbacks, parts compressed with xz (or not). The repository layer decides
which deltas a version wants (``ostree_repo.repository.delta_policy``); this layer only
makes them. The format is decoded in :mod:`ostree_repo.objects.delta`.

Generation needs the ``deltas`` extra (``bsdiff4`` for patches, ``numpy`` for the
rolling checksum).
"""

from ostree_repo.deltas._payload import XzSettings
from ostree_repo.deltas._workers import DeltaWorkers
from ostree_repo.deltas.errors import (
    CommitNotFoundError,
    DeltaError,
    DeltaWorkerError,
    UnrelatedCommitsError,
)
from ostree_repo.deltas.generate import (
    DeltaOptions,
    DeltaProgress,
    DeltaStats,
    GeneratedDelta,
    build_superblock,
    generate_delta,
)

__all__ = [
    "CommitNotFoundError",
    "DeltaError",
    "DeltaOptions",
    "DeltaProgress",
    "DeltaStats",
    "DeltaWorkerError",
    "DeltaWorkers",
    "GeneratedDelta",
    "UnrelatedCommitsError",
    "XzSettings",
    "build_superblock",
    "generate_delta",
]
