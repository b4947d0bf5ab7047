"""The server's layers import only downwards (DESIGN.md: http -> api -> engine -> events -> store, node
types and settings at the bottom), no two modules import each other (directly or around a cycle), and the
node plugin API imports nothing of the engine: the import-linter contracts in pyproject.toml."""

from __future__ import annotations

import os
import shutil
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


def _lint_copy(tmp_path: Path, edit: tuple[str, str]) -> subprocess.CompletedProcess[str]:
    """lint-imports, with the repository's contracts, over a copy of the server with one file edited."""
    shutil.copytree(
        REPOSITORY / "server" / "runctl_server",
        tmp_path / "runctl_server",
        ignore=shutil.ignore_patterns("__pycache__", "console_assets", "migrations"),
    )
    shutil.copy(REPOSITORY / "pyproject.toml", tmp_path / "pyproject.toml")
    relative, line = edit
    target = tmp_path / "runctl_server" / relative
    target.write_text(target.read_text() + f"\n{line}\n")
    linter = Path(sys.executable).with_name("lint-imports")
    return subprocess.run(
        [str(linter), "--no-cache"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_an_import_cycle_between_two_modules_breaks_the_contracts(tmp_path: Path) -> None:
    # The scheduler imports the timers; timers importing the scheduler back closes a cycle.
    checked = _lint_copy(tmp_path, ("engine/timers.py", "import runctl_server.engine.scheduler"))
    assert checked.returncode != 0
    assert "No import cycle between the modules of any package BROKEN" in checked.stdout


def test_the_plugin_api_importing_the_engine_breaks_the_contracts(tmp_path: Path) -> None:
    checked = _lint_copy(tmp_path, ("nodes/base.py", "import runctl_server.engine.model"))
    assert checked.returncode != 0
    assert "The node plugin API is a leaf: it imports nothing else of the server BROKEN" in checked.stdout
