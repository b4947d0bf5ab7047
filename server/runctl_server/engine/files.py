"""Workflow files on disk: resolving a requested path under the configured roots, listing a folder.

A request may name a path; nothing it names may reach outside the roots, through `..` or a symlink.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from runctl_server.errors import FailedPrecondition, InvalidArgument, NotFound

__all__ = ["WORKFLOW_SUFFIXES", "list_workflow_files", "path_problem", "resolve_under_roots"]

WORKFLOW_SUFFIXES = (".json", ".yaml", ".yml")
# Longer paths or names are refused as bad input before the OS sees them (PATH_MAX, NAME_MAX on Linux).
MAX_PATH_CHARS = 1024
MAX_NAME_BYTES = 255
NO_ROOTS = "no workflow folders are configured; start the server with --workflows-dir or RUNCTL_WORKFLOWS_DIR"

logger = logging.getLogger(__name__)


def _inside(path: Path, roots: Sequence[Path]) -> bool:
    return any(path.is_relative_to(root) for root in roots)


def resolve_under_roots(
    path: str,
    roots: Sequence[Path],
    *,
    field: str = "workflowPath",
    expect: Literal["file", "folder"] | None = None,
) -> Path:
    """The real path (symlinks followed) of a workflow file or folder that lies inside one of `roots`.

    A relative path is tried under each root in turn; the first root that holds it wins. Raises
    FailedPrecondition without roots, InvalidArgument (on `field`) for a path that leads outside every
    root, NotFound when nothing is there, and, with `expect`, InvalidArgument for the wrong kind.
    """
    if not roots:
        raise FailedPrecondition(NO_ROOTS, reason="NO_WORKFLOW_FOLDERS")
    if not isinstance(path, str) or not path.strip():
        raise InvalidArgument.single(
            field, "must name a workflow file or folder", reason="WORKFLOW_PATH_INVALID"
        )
    if "\x00" in path:
        raise InvalidArgument.single(
            field, "must not contain a NUL character", reason="WORKFLOW_PATH_INVALID"
        )
    if len(path) > MAX_PATH_CHARS:
        raise InvalidArgument.single(
            field,
            f"must be at most {MAX_PATH_CHARS} characters, got {len(path)}",
            reason="WORKFLOW_PATH_INVALID",
        )
    if any(len(part.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES for part in Path(path).parts):
        raise InvalidArgument.single(
            field,
            f"each file or folder name in the path must be at most {MAX_NAME_BYTES} bytes",
            reason="WORKFLOW_PATH_INVALID",
        )
    real_roots = [Path(root).resolve() for root in roots]
    requested = Path(path)
    candidates = [requested] if requested.is_absolute() else [root / requested for root in real_roots]

    escaped = False
    for candidate in candidates:
        try:
            real = candidate.resolve()
        except (OSError, RuntimeError):  # a symlink loop, or a path the OS refuses
            continue
        if not _inside(real, real_roots):
            escaped = True
            continue
        try:
            exists, is_file, is_dir = real.exists(), real.is_file(), real.is_dir()
        except OSError:  # unreadable: as good as missing
            continue
        if exists:
            if expect == "file" and not is_file:
                raise InvalidArgument.single(field, f"{path!r} is not a file", reason="WORKFLOW_PATH_INVALID")
            if expect == "folder" and not is_dir:
                raise InvalidArgument.single(
                    field, f"{path!r} is not a folder", reason="WORKFLOW_PATH_INVALID"
                )
            return real
    if escaped:
        raise InvalidArgument.single(
            field, f"{path!r} is outside the configured workflow folders", reason="WORKFLOW_PATH_INVALID"
        )
    raise NotFound(
        f"no workflow file or folder {path!r} in the configured workflow folders",
        reason="WORKFLOW_PATH_NOT_FOUND",
    )


def path_problem(path: str, roots: Sequence[Path]) -> str | None:
    """Why a workflow path written in a definition (a sub-workflow's) can never be run: no roots, a
    bad path, or one leading outside every root; None when it lies inside one (existing or not yet)."""
    try:
        resolve_under_roots(path, roots, field="path")
    except NotFound:
        return None  # inside the roots; the file may be added later
    except (InvalidArgument, FailedPrecondition) as refused:
        violations = getattr(refused, "violations", None)
        return violations[0].description if violations else refused.message
    return None


def list_workflow_files(folder: Path, *, roots: Sequence[Path] | None = None) -> list[Path]:
    """The workflow files (*.json, *.yaml, *.yml) directly in `folder`, sorted by name, as real paths.

    Hidden files are left out, and so is any entry whose symlink leads outside `roots` (outside
    `folder` itself when no roots are given).
    """
    real_folder = Path(folder).resolve()
    allowed = [Path(root).resolve() for root in roots] if roots else [real_folder]
    files: list[Path] = []
    try:
        with os.scandir(real_folder) as entries:
            names = sorted(entry.name for entry in entries)
    except (FileNotFoundError, NotADirectoryError):
        raise NotFound(f"no workflow folder {str(folder)!r}", reason="WORKFLOW_PATH_NOT_FOUND") from None
    for name in names:
        if name.startswith(".") or not name.lower().endswith(WORKFLOW_SUFFIXES):
            continue
        try:
            real = (real_folder / name).resolve(strict=True)
        except (OSError, RuntimeError):
            continue  # a dangling symlink or a loop
        if not _inside(real, allowed):
            logger.warning("skipping %s: it leads outside the workflow folders", real_folder / name)
            continue
        if real.is_file():
            files.append(real)
    return files
