"""Test-suite-wide pytest configuration (fixtures live in the plugin modules listed here)."""

pytest_plugins = ["seaweedfs", "oracle.fixtures"]
