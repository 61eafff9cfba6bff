"""Test-suite-wide pytest configuration (fixtures live in the plugin modules listed here)."""

from hypothesis import settings

pytest_plugins = ["seaweedfs", "oracle.fixtures"]

# Property tests check verdicts, not speed: a per-example deadline only fails them when
# the machine is busy (CI shares 2 cores with servers the suite starts). Speed targets
# live in benchmarks/.
settings.register_profile("ostree-repo", deadline=None)
settings.load_profile("ostree-repo")
