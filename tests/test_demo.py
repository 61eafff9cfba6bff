"""The README's main-job command (scripts/demo.py) runs end to end."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_demo_runs_the_main_job() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "demo.py")],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    for marker in (
        "commit-1.tar: commit archive of main",  # our builder's archive
        "update-2.tar.zst: update archive of main",  # ... and an update on top of it
        "fedora: version 2",  # the update archive imported on top of the first one
        "fedora: version 3",  # our builder's commit straight into the store
        "restored: version 1",  # the exported archive imported again
        "mirror: version 1",  # synced through our server
        "object fsck of 1 commits completed successfully",  # real ostree fsck / pull + fsck
        "== Done",
    ):
        assert marker in out, marker
