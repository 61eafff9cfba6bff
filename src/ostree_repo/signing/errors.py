"""Errors of the signing layer (all :class:`~ostree_repo.errors.OstreeRepoError`)."""

from __future__ import annotations

from ostree_repo.errors import OstreeRepoError

__all__ = ["KeyFileError", "SignatureError", "SigningError", "SigningUnavailableError"]


class SigningError(OstreeRepoError):
    """Something about keys or signatures went wrong."""


class KeyFileError(SigningError):
    """Key material is unreadable, of an unknown kind, or not of the kind asked for."""


class SignatureError(SigningError):
    """Data does not carry a valid signature from a trusted key (the message says why)."""


class SigningUnavailableError(SigningError):
    """The crypto libraries are missing: install the ``sign`` extra."""
