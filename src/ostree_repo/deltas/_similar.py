"""Which old file a new file is probably a modified version of, as libostree guesses.

libostree (``_ostree_delta_compute_similar_objects``) pairs each new regular file with
an old one that has a name in common and a size within 30 %: among old files whose size
is in that window and that share a base name, the smallest; failing that, the same with
"fuzzy" names (the part before the first dot, so ``libfoo.so.1`` matches
``libfoo.so.2``). Empty files and files named ``*.xz`` or ``*.bz2`` (already
compressed) are never paired.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

__all__ = ["SIMILARITY_PERCENT", "candidate_names", "pair_similar"]

SIMILARITY_PERCENT = 30
_UNDELTABLE = ("xz", "bz2")


def _fuzzy(name: str) -> str | None:
    dot = name.find(".")
    return name[:dot] if dot > 0 else None


def _deltable(size: int, names: Iterable[str]) -> bool:
    if size == 0:
        return False
    for name in names:
        dot = name.rfind(".")
        if dot >= 0 and name[dot + 1 :] in _UNDELTABLE:
            return False
    return True


def candidate_names(new_names: Iterable[Iterable[str]]) -> tuple[set[str], set[str]]:
    """(exact names, fuzzy prefixes) an old file needs one of to be a candidate for any
    of the new files: only those old files' sizes need reading."""
    exact: set[str] = set()
    fuzzy: set[str] = set()
    for names in new_names:
        for name in names:
            exact.add(name)
            prefix = _fuzzy(name)
            if prefix is not None:
                fuzzy.add(prefix)
    return exact, fuzzy


def pair_similar(
    new: Mapping[str, tuple[int, tuple[str, ...]]],
    old: Mapping[str, tuple[int, tuple[str, ...]]],
) -> dict[str, str]:
    """``{new checksum: old checksum}`` for the new regular files that have a similar old
    one. Both maps give each file's size and base names (a file can have several)."""
    by_name: dict[str, list[tuple[int, str]]] = {}
    by_prefix: dict[str, list[tuple[int, str]]] = {}
    for checksum, (size, names) in old.items():
        if not _deltable(size, names):
            continue
        for name in set(names):
            by_name.setdefault(name, []).append((size, checksum))
        for prefix in {p for p in map(_fuzzy, names) if p is not None}:
            by_prefix.setdefault(prefix, []).append((size, checksum))
    pairs: dict[str, str] = {}
    for checksum, (size, names) in new.items():
        if not _deltable(size, names):
            continue
        low = size * (1.0 - SIMILARITY_PERCENT / 100.0)
        high = size * (1.0 + SIMILARITY_PERCENT / 100.0)
        for index, keys in ((by_name, set(names)), (by_prefix, {_fuzzy(n) for n in names})):
            best: tuple[int, str] | None = None
            for key in keys:
                if key is None:
                    continue
                for candidate in index.get(key, ()):
                    # libostree compares the thresholds as guint64 (truncated)
                    if int(low) <= candidate[0] <= int(high) and (best is None or candidate < best):
                        best = candidate
            if best is not None:
                pairs[checksum] = best[1]
                break
    return pairs
