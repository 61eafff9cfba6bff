"""Fixtures for the builder tests: the managers of the repository tests."""

from repository.conftest import anyio_backend, fs_manager, manager, store_spec

__all__ = ["anyio_backend", "fs_manager", "manager", "store_spec"]
