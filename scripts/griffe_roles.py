"""A griffe extension for the docs site (``mkdocs.yml``): the docstrings' reST roles
(``:class:`~ostree_repo.x.Y```, ``:func:`f```, ``:meth:`C.m```) become Markdown for
mkdocstrings: a link into the API reference when the target is public API (a name in a
public package's ``__all__``, or a documented member of one), else plain code.

The docstrings stay as they are (reST roles read well in a terminal and in ``help()``); only
what the site renders changes. A target is found as Sphinx would look for it: relative to
the docstring's module (``.archive.ArchiveLimits``), through the names the module imports,
or as a full path.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
import sys
from functools import cache
from pathlib import Path
from typing import Any

import griffe

# the checkout's package, the one griffe reads (mkdocs.yml: paths: [src]), not another install
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

_ROLE = re.compile(
    r":(?:py:)?(?:class|func|meth|mod|attr|data|exc|obj|const):`(?P<tilde>~?)(?P<target>[^`<>\s]+)`"
)


@cache
def _documented() -> dict[str, str]:
    """Where each public object is documented: its canonical path (and its public path)
    -> its public path (``package.name``), for every public package and top-level module."""
    import ostree_repo

    packages = ["ostree_repo"]
    for info in pkgutil.walk_packages(ostree_repo.__path__, "ostree_repo."):
        parts = info.name.split(".")
        if any(p.startswith("_") for p in parts):
            continue
        if info.ispkg or len(parts) == 2:
            packages.append(info.name)
    found: dict[str, str] = {}
    # deeper first: a name is documented where its own package exports it (ostree_repo
    # re-exports the errors of ostree_repo.errors, which documents them)
    for package in sorted(packages, key=lambda p: -p.count(".")):
        module = importlib.import_module(package)
        found.setdefault(package, package)
        for name in getattr(module, "__all__", ()):
            value = getattr(module, name)
            public = f"{package}.{name}"
            found[public] = public
            canonical = f"{getattr(value, '__module__', '')}.{getattr(value, '__qualname__', '')}"
            if canonical != ".":
                found.setdefault(canonical, public)
    return found


def _member_documented(public: str, member: str) -> bool:
    """Whether ``public`` (a documented class) shows ``member``: it has its own docstring."""
    package, _, name = public.rpartition(".")
    owner = getattr(importlib.import_module(package), name, None)
    if not isinstance(owner, type):  # a module's members are documented by its __all__
        return False
    value = getattr(owner, member, None)
    if value is None or member.startswith("_"):
        return False
    doc = getattr(value, "__doc__", None)
    return bool(doc) and doc != getattr(type(value), "__doc__", None)


def _link_target(target: str, obj: griffe.Object) -> str | None:
    """The public path ``target`` names, seen from ``obj``'s docstring, or None."""
    module = obj if obj.is_module else obj.module
    candidates: list[str] = []
    if target.startswith("."):
        package = module.path if module.is_package else module.path.rpartition(".")[0]
        candidates += [module.path + target, package + target]
    else:
        candidates.append(target)
        head, _, rest = target.partition(".")
        try:
            resolved = obj.resolve(head)
        except Exception:  # griffe's NameResolutionError, or anything it cannot follow
            resolved = None
        if resolved:
            candidates.append(resolved + ("." + rest if rest else ""))
        candidates.append(f"{module.path}.{target}")
    documented = _documented()
    for candidate in candidates:
        if candidate in documented:
            return documented[candidate]
        owner, _, member = candidate.rpartition(".")
        if owner in documented and _member_documented(documented[owner], member):
            return f"{documented[owner]}.{member}"
    return None


def convert(text: str, obj: griffe.Object) -> str:
    """``text`` with each reST role made a Markdown link or code."""

    def replace(match: re.Match[str]) -> str:
        target = match["target"]
        shown = target.rpartition(".")[2] if match["tilde"] else target.lstrip(".")
        if match["target"].endswith("()"):
            target = target[:-2]
        public = _link_target(target, obj)
        return f"[`{shown}`][{public}]" if public else f"`{shown}`"

    return _ROLE.sub(replace, text)


class RolesToMarkdown(griffe.Extension):
    """Rewrite every docstring's reST roles as the site renders them (see the module)."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        """Convert ``obj``'s docstring, once griffe has loaded it."""
        if obj.docstring is not None and ":`" in obj.docstring.value:
            obj.docstring.value = convert(obj.docstring.value, obj)
