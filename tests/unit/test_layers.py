"""The server's layers import only downwards (DESIGN.md: http -> api -> engine -> events -> store, node
types and settings at the bottom), as the import-linter contract in pyproject.toml states."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[2]


def test_the_server_layers_import_only_downwards() -> None:
    linter = Path(sys.executable).with_name("lint-imports")
    checked = subprocess.run(
        [str(linter), "--no-cache"], cwd=REPOSITORY, capture_output=True, text=True, timeout=120, check=False
    )
    assert checked.returncode == 0, checked.stdout[-3000:] + checked.stderr[-2000:]
    assert "KEPT" in checked.stdout and "BROKEN" not in checked.stdout
