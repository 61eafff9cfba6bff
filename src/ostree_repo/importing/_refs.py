"""Reading a repository's ``refs/`` as libostree reads it: ref files and symlinks.

Both importers (archives and directories) collect what ``refs/`` holds into a
:class:`RefTree` (each file's text, each symlink's target, the directories) and resolve
it once everything is read. libostree opens ``refs/heads/NAME`` and
``refs/mirrors/ID/NAME`` through any symlink, so a symlink is a ref at whatever commit
the file it finally reaches holds:

* a symlink whose first step lands in ``refs/heads/`` is an **alias** of that ref
  (``ostree refs --create=ALIAS --alias TARGET`` writes one): the version keeps it as an
  alias, and an export writes the same symlink back. It may name another alias (libostree
  follows the chain, as the kernel does, up to 40 links);
* a symlink to a ref file elsewhere under ``refs/`` (``refs/remotes/...``,
  ``refs/mirrors/...``) reads as a plain ref at that file's commit, as libostree lists
  it; so does a symlink under ``refs/mirrors/``;
* refused, as ``ostree refs`` and ``ostree summary -u`` fail on them: a symlink whose
  target does not exist, is a directory, or whose chain loops (ELOOP). Refused as well,
  where libostree would read files that are not refs (or the host's files): a symlink that
  leaves ``refs/`` or the repository, or an absolute one.
"""

from __future__ import annotations

from collections.abc import Callable

import attrs

from ostree_repo.errors import InvalidNameError
from ostree_repo.importing.errors import BrokenAliasError, InvalidRefError
from ostree_repo.objects.names import validate_checksum, validate_collection_id, validate_ref
from ostree_repo.repository._aliases import MAX_LINKS

__all__ = ["RefTree", "Refs"]

Path = tuple[str, ...]


@attrs.frozen
class Refs:
    """What a repository's ``refs/`` resolves to."""

    #: ``refs/heads``: name -> commit (symlinks that are no aliases included)
    heads: dict[str, str]
    #: ``refs/heads`` aliases: name -> the ref (or alias) it names
    aliases: dict[str, str]
    #: ``refs/mirrors``: (collection ID, name) -> commit
    mirrors: dict[tuple[str, str], str]


def _shown(text: str) -> str:
    return repr(text if len(text) <= 80 else text[:77] + "...")


@attrs.define
class RefTree:
    """The ``refs/`` directory of a repository being imported.

    Paths are tuples of components relative to the repository (``("refs", "heads",
    "main")``); ``where`` turns one into the path shown in error messages.
    """

    where: Callable[[Path], str]
    files: dict[Path, str] = attrs.field(factory=dict)
    links: dict[Path, str] = attrs.field(factory=dict)
    dirs: set[Path] = attrs.field(factory=set)

    def add_file(self, path: Path, text: str) -> None:
        """A regular file under ``refs/`` and its text."""
        self.files[path] = text

    def add_link(self, path: Path, target: str) -> None:
        """A symlink under ``refs/`` and the text it holds."""
        self.links[path] = target

    def add_dir(self, path: Path) -> None:
        """A directory under ``refs/``."""
        self.dirs.add(path)

    def _is_dir(self, path: Path) -> bool:
        if path in self.dirs:
            return True
        n = len(path)
        return any(p[:n] == path and len(p) > n for p in (*self.files, *self.links))

    def _step(self, path: Path) -> Path:
        """Where the symlink at ``path`` points (one step, resolved like the kernel does,
        relative to its directory)."""
        text = self.links[path]
        if text.startswith("/"):
            raise BrokenAliasError(
                f"{self.where(path)}: a symlink to the absolute path {_shown(text)}; ref "
                "symlinks must stay inside the repository"
            )
        parts = list(path[:-1])
        for part in text.split("/"):
            if part in ("", "."):
                continue
            if part == "..":
                if not parts:
                    raise BrokenAliasError(
                        f"{self.where(path)}: a symlink to {_shown(text)}, outside the repository"
                    )
                parts.pop()
            else:
                parts.append(part)
        target = tuple(parts)
        if target[:1] != ("refs",) or len(target) < 3:
            raise BrokenAliasError(
                f"{self.where(path)}: a symlink to {_shown(text)}, which is no ref file under "
                "refs/ (libostree would read it as one)"
            )
        return target

    def _follow(self, path: Path) -> str:
        """The commit the ref at ``path`` holds, through any symlinks."""
        current = path
        for _ in range(MAX_LINKS + 1):
            if current not in self.links:
                break
            current = self._step(current)
        else:
            raise BrokenAliasError(
                f"{self.where(path)}: a symlink chain that loops (more than {MAX_LINKS} links), "
                "which libostree cannot list"
            )
        text = self.files.get(current)
        if text is None:
            what = "a directory" if self._is_dir(current) else "nothing"
            raise BrokenAliasError(
                f"{self.where(path)}: a symlink to {'/'.join(current)}, which is {what} "
                f"(libostree cannot list such a ref)"
            )
        try:
            return validate_checksum(text.strip())
        except InvalidNameError:
            raise InvalidRefError(
                f"{self.where(current)}: not a commit checksum ({_shown(text.strip())})"
            ) from None

    def resolve(self) -> Refs:
        """The refs, aliases and collection refs of the tree; InvalidRefError (or its
        BrokenAliasError) for what libostree could not list."""
        heads: dict[str, str] = {}
        aliases: dict[str, str] = {}
        mirrors: dict[tuple[str, str], str] = {}
        for path in sorted({*self.files, *self.links}):
            if path[:2] == ("refs", "heads") and len(path) > 2:
                name = self._name(path, path[2:])
                commit = self._follow(path)
                first = self._step(path) if path in self.links else None
                if first is not None and first[:2] == ("refs", "heads"):
                    aliases[name] = self._name(first, first[2:])
                else:
                    heads[name] = commit
            elif path[:2] == ("refs", "mirrors") and len(path) > 3:
                try:
                    cid = validate_collection_id(path[2])
                except InvalidNameError as e:
                    raise InvalidRefError(f"{self.where(path)}: {e}") from None
                mirrors[(cid, self._name(path, path[3:]))] = self._follow(path)
        return Refs(heads, aliases, mirrors)

    def _name(self, path: Path, parts: Path) -> str:
        try:
            return validate_ref("/".join(parts))
        except InvalidNameError as e:
            raise InvalidRefError(f"{self.where(path)}: {e}") from None
