"""Developer sessions: ``nox -s tests lint typecheck smoke bench docs``."""

from __future__ import annotations

import nox

nox.options.sessions = ["lint", "typecheck", "tests"]
nox.options.reuse_existing_virtualenvs = True


@nox.session
def tests(session: nox.Session) -> None:
    """The test suite (needs the ostree CLI and /usr/bin/python3 with gi; see .ci/run)."""
    session.install("-e", ".[test]")
    session.run("pytest", "-q", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff lint and format check; deptry: every import declared, every dependency used."""
    session.install("-e", ".", "ruff", "deptry")
    session.run("ruff", "check", "src", "tests", "benchmarks", "scripts")
    session.run("ruff", "format", "--check", "src", "tests", "benchmarks", "scripts")
    session.run("deptry", "src")


@nox.session
def smoke(session: nox.Session) -> None:
    """The built wheel in brand-new venvs, with the latest and the lowest allowed versions."""
    session.run("python", "scripts/smoke_install.py")
    session.run("python", "scripts/smoke_install.py", "--lowest")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict over the package."""
    session.install("-e", ".[dev]")
    session.run("mypy")


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmarks, each beside its reference tool in the same run; results as ratios."""
    session.install("-e", ".[dev]")
    session.run("python", "benchmarks/run.py", *session.posargs)


@nox.session
def docs(session: nox.Session) -> None:
    """The docs site, built with warnings as errors (``mkdocs build --strict``); every
    page's ``pycon`` blocks run as doctests, and the tutorial's commands as it shows them."""
    session.install("-e", ".[test,docs]")
    session.run("python", "-m", "pytest", "--doctest-glob=*.md", "docs", "-q")
    session.run("python", "-m", "pytest", "tests/test_tutorial.py", "-q")
    session.run(
        "mkdocs", "build", "--strict", "--site-dir", session.create_tmp() + "/site",
        env={"NO_MKDOCS_2_WARNING": "1"},
    )  # fmt: skip
