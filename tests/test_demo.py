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
        "fedora: version 2",  # our builder's commit on top of the import
        "restored: version 1",  # the exported archive imported again
        "mirror: version 1",  # synced through our server
        "object fsck of 1 commits completed successfully",  # real ostree pull + fsck
        "== Done",
    ):
        assert marker in out, marker
