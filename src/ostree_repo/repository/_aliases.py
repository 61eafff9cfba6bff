"""Ref aliases: a ref that names another ref instead of a commit.

libostree keeps an alias as a relative symlink under ``refs/heads/``
(``ostree refs --create=ALIAS --alias TARGET``): every reader that opens the ref file
follows the link, so the alias lists, serves and appears in the summary as a ref of its
own, at its target's commit. A version record keeps aliases apart from refs, as a
mapping alias -> target ref, so that an export writes the same symlink back and moving
the target moves the alias.

The rules are the filesystem's, as libostree relies on it: an alias may name another
alias (the chain is followed, as the kernel follows symlinks, at most
:data:`MAX_LINKS` deep); an alias whose chain loops or ends at no ref is refused, as
``ostree refs`` and ``ostree summary -u`` fail on it.
"""

from __future__ import annotations

from collections.abc import Mapping

from ostree_repo.errors import OstreeRepoError

__all__ = ["MAX_LINKS", "AliasError", "alias_link", "resolve_alias", "resolve_aliases"]

#: How many symlinks Linux follows in one lookup (MAXSYMLINKS) before ELOOP.
MAX_LINKS = 40


class AliasError(OstreeRepoError):
    """An alias that resolves to no commit: its target is missing, or its chain loops."""


def resolve_alias(name: str, refs: Mapping[str, str], aliases: Mapping[str, str]) -> str:
    """The commit alias ``name`` resolves to, following a chain of aliases.

    Raises :class:`AliasError` when the chain ends at a ref that neither ``refs`` nor
    ``aliases`` holds, or loops (more than :data:`MAX_LINKS` links).
    """
    current = name
    for _ in range(MAX_LINKS):
        target = aliases[current]
        commit = refs.get(target)
        if commit is not None:
            return commit
        if target not in aliases:
            via = f" (through {current})" if current != name else ""
            raise AliasError(f"alias {name} points at ref {target}{via}, which does not exist")
        current = target
    raise AliasError(f"alias {name} loops: more than {MAX_LINKS} aliases chained")


def resolve_aliases(refs: Mapping[str, str], aliases: Mapping[str, str]) -> dict[str, str]:
    """Every alias with the commit it resolves to; :class:`AliasError` for a broken one,
    or for a name that is both a ref and an alias."""
    both = sorted(set(refs) & set(aliases))
    if both:
        raise AliasError(f"{both[0]} is both a ref and an alias")
    return {name: resolve_alias(name, refs, aliases) for name in aliases}


def alias_link(name: str, target: str) -> str:
    """The symlink text libostree writes at ``refs/heads/NAME`` for an alias to
    ``target``: one ``../`` per directory of ``name``, then ``target``."""
    return "../" * name.count("/") + target
