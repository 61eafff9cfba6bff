"""Test oracles: repos built by the real ``ostree`` CLI and GLib's GVariant code.

Import as ``oracle.ostree_cli``, ``oracle.glib_oracle`` (``tests/`` is on
``sys.path`` under pytest); fixtures come from the ``oracle.fixtures`` plugin.
"""
