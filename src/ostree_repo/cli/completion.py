"""``ostree-repo completion SHELL``: a shell completion script, made by shtab from the
argument parser itself (so it knows every verb and option as they are).

The script is static: pressing TAB runs no Python, except where it completes repository
names (it asks ``ostree-repo list`` of the store in ``$OSTREE_REPO_STORE``, else
``./ostree-store``). Path arguments complete files or directories.

Internal to ostree_repo: the CLI's interface is the command line (:func:`ostree_repo.cli.main`).
"""

from __future__ import annotations

import argparse
from typing import Any

from ostree_repo.cli._verb import Output, Verb, run_with_manager
from ostree_repo.errors import OstreeRepoError
from ostree_repo.repository import RepositoryManager

__all__ = ["SHELLS", "VERBS"]

#: The shells a script can be made for.
SHELLS = ("bash", "zsh", "tcsh")

# What each argument (by dest) completes to; positional repository names ask the store.
_FILES = {"archive", "output", "tar", "token_file", "ca_bundle", "client_cert", "client_key"}
_FILES_OR_DIRECTORIES = {"tree", "path", "store"}
_DIRECTORIES = {"directory"}
_REPOSITORIES = {"name", "source", "destination"}
# What the scripts run to complete a repository name: one name a line, nothing on errors.
# Shell functions, so that it runs on TAB, never while the script is being loaded.
_LIST = "ostree-repo completion --repositories 2>/dev/null"
_REPOSITORY_NAMES = {
    "bash": "_ostree_repo_repositories",
    "zsh": "_ostree_repo_repositories",
    "tcsh": f"`{_LIST}`",
    "preamble": {
        "bash": f'_ostree_repo_repositories() {{\n  compgen -W "$({_LIST})" -- "$1"\n}}',
        "zsh": "_ostree_repo_repositories() {\n"
        "  local -a names\n"
        f'  names=(${{(f)"$({_LIST})"}})\n'
        '  compadd -- "${names[@]}"\n'
        "}",
    },
}


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("shell", nargs="?", choices=SHELLS, help="the shell to complete for")
    # for the scripts: the store's repository names, one a line
    parser.add_argument("--repositories", action="store_true", help=argparse.SUPPRESS)


def _mark(parser: argparse.ArgumentParser, kinds: dict[str, Any]) -> None:
    """Tell shtab what each argument of ``parser`` and its verbs completes to."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                _mark(sub, kinds)
            continue
        kind = None
        if action.dest in _FILES:
            kind = kinds["file"]
        elif action.dest in _FILES_OR_DIRECTORIES:
            kind = kinds["file"]  # shtab's file completion offers directories too
        elif action.dest in _DIRECTORIES:
            kind = kinds["directory"]
        elif action.dest in _REPOSITORIES and not action.option_strings:
            kind = kinds["repository"]
        if kind is not None:
            action.complete = kind  # type: ignore[attr-defined]


def _completion(args: argparse.Namespace) -> Output:
    if args.repositories:

        async def body(m: RepositoryManager) -> Output:
            names = await m.repositories()
            return names, "\n".join(names)

        return run_with_manager(args, body)
    if args.shell is None:
        raise OstreeRepoError(f"name the shell: {', '.join(SHELLS)}")
    import shtab

    from ostree_repo.cli import build_parser

    parser = build_parser()
    kinds = {"file": shtab.FILE, "directory": shtab.DIRECTORY, "repository": _REPOSITORY_NAMES}
    _mark(parser, kinds)
    script = shtab.complete(parser, shell=args.shell)
    return {"shell": args.shell, "script": script}, script


VERBS = [
    Verb(
        "completion",
        'print a shell completion script: eval "$(ostree-repo completion bash)"',
        _arguments,
        _completion,
    ),
]
