"""What a batch runs: the workflow files of a folder, a list of files, or stored workflows, checked up
front so that a batch with one bad file starts nothing."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from runctl_server.engine.definition import load_document
from runctl_server.engine.files import WORKFLOW_SUFFIXES, resolve_under_roots
from runctl_server.errors import FailedPrecondition, FieldViolation, InvalidArgument

if TYPE_CHECKING:
    from runctl_server.engine.batch_parts import BatchParts

FOLDER, FILES, WORKFLOWS = "folder", "files", "workflows"
MAX_BATCH_SIZE = 1000


@dataclass(frozen=True)
class BatchEntry:
    """One workflow of a batch: a stored workflow, or a file (its real path and the path as requested)."""

    workflow_id: str = ""
    real_path: str = ""
    workflow_path: str = ""
    file_name: str = ""


@dataclass(frozen=True)
class BatchSource:
    kind: str
    folder_path: str | None
    entries: list[BatchEntry]


def _inside(path: Path, roots: Sequence[Path]) -> bool:
    return any(path.is_relative_to(root) for root in roots)


def folder_entries(folder: Path, given: str, roots: Sequence[Path]) -> list[BatchEntry]:
    """The workflow files directly in `folder` (hidden ones left out), sorted by name.

    Unlike files.list_workflow_files, which skips them, an entry that cannot be read or whose symlink
    leads outside the roots refuses the batch: a batch that silently runs fewer files than the folder
    shows is worse than one that does not start.
    """
    real_roots = [Path(root).resolve() for root in roots]
    try:
        with os.scandir(folder) as scan:
            names = sorted(entry.name for entry in scan)
    except OSError:
        raise InvalidArgument.single(
            "folder_path", f"{given!r} cannot be read", reason="WORKFLOW_PATH_INVALID"
        ) from None
    entries: list[BatchEntry] = []
    violations: list[FieldViolation] = []
    for name in names:
        if name.startswith(".") or not name.lower().endswith(WORKFLOW_SUFFIXES):
            continue
        try:
            real = (folder / name).resolve(strict=True)
        except (OSError, RuntimeError):
            violations.append(FieldViolation("folder_path", f"{name}: is a broken symlink or unreadable"))
            continue
        if not _inside(real, real_roots):
            violations.append(
                FieldViolation("folder_path", f"{name}: leads outside the configured workflow folders")
            )
            continue
        if real.is_file():
            shown = f"{given.rstrip('/')}/{name}"
            entries.append(BatchEntry(real_path=str(real), workflow_path=shown, file_name=name))
    if violations:
        raise InvalidArgument(
            f"folder {given!r} holds files a batch cannot run", violations, reason="WORKFLOW_PATH_INVALID"
        )
    return entries


def _file_entries(paths: Sequence[str], roots: Sequence[Path]) -> list[BatchEntry]:
    entries: list[BatchEntry] = []
    violations: list[FieldViolation] = []
    for index, given in enumerate(paths):
        field = f"workflow_paths.paths[{index}]"
        try:
            real = resolve_under_roots(given, roots, field=field, expect="file")
        except InvalidArgument as exc:
            violations.extend(exc.violations)
            continue
        entries.append(BatchEntry(real_path=str(real), workflow_path=given, file_name=real.name))
    if violations:
        raise InvalidArgument("some workflow paths cannot be run", violations, reason="WORKFLOW_PATH_INVALID")
    return entries


async def _check_files(parts: BatchParts, kind: str, entries: list[BatchEntry]) -> None:
    """Every file must parse as a valid workflow; one violation per problem, naming its file."""

    def check(index: int, entry: BatchEntry) -> list[FieldViolation]:
        field = "folder_path" if kind == FOLDER else f"workflow_paths.paths[{index}]"
        try:
            text = Path(entry.real_path).read_text(encoding="utf-8")
            parts.parse(load_document(text, filename=entry.file_name))
        except InvalidArgument as exc:
            found = exc.violations or [FieldViolation("document", exc.message)]
            return [FieldViolation(field, f"{entry.file_name}: {v.field}: {v.description}") for v in found]
        except (OSError, UnicodeDecodeError) as exc:
            return [FieldViolation(field, f"{entry.file_name}: cannot be read: {exc.__class__.__name__}")]
        return []

    def check_all() -> list[FieldViolation]:
        return [v for index, entry in enumerate(entries) for v in check(index, entry)]

    violations = await asyncio.to_thread(check_all)
    if violations:
        raise InvalidArgument(
            "some workflow files of the batch are not valid workflows",
            violations,
            reason="WORKFLOW_DEFINITION_INVALID",
        )


async def _workflow_entries(parts: BatchParts, workspace_id: str, ids: Sequence[str]) -> list[BatchEntry]:
    empty = [
        FieldViolation(f"workflow_ids.ids[{i}]", "must not be empty") for i, wid in enumerate(ids) if not wid
    ]
    if empty:
        raise InvalidArgument("workflow ids must not be empty", empty, reason="FIELD_REQUIRED")
    for workflow_id in dict.fromkeys(ids):
        row = await parts.workflows.row(workspace_id, workflow_id)  # NotFound for an unknown id
        if row.status == "cancelled":
            raise FailedPrecondition(
                f"workflow {workflow_id!r} is cancelled and takes no new runs", reason="WORKFLOW_CANCELLED"
            )
    return [BatchEntry(workflow_id=workflow_id) for workflow_id in ids]


async def resolve_source(
    parts: BatchParts,
    workspace_id: str,
    *,
    folder_path: str | None,
    workflow_paths: Sequence[str] | None,
    workflow_ids: Sequence[str] | None,
) -> BatchSource:
    """Check the request's source and every workflow in it; raise before anything is created."""
    given = [v for v in (folder_path, workflow_paths, workflow_ids) if v is not None]
    if len(given) != 1:
        raise InvalidArgument.single(
            "source",
            "give exactly one of folder_path, workflow_paths or workflow_ids",
            reason="FIELD_INVALID",
        )
    if workflow_ids is not None:
        if not workflow_ids:
            raise InvalidArgument.single(
                "workflow_ids.ids", "must list at least one workflow id", reason="FIELD_REQUIRED"
            )
        _check_size(len(workflow_ids), "workflow_ids.ids")
        return BatchSource(WORKFLOWS, None, await _workflow_entries(parts, workspace_id, workflow_ids))
    roots = parts.workflows_dirs
    if folder_path is not None:
        folder = resolve_under_roots(folder_path, roots, field="folder_path", expect="folder")
        entries = await asyncio.to_thread(folder_entries, folder, folder_path, roots)
        if not entries:
            raise InvalidArgument.single(
                "folder_path",
                f"{folder_path!r} holds no workflow files ({', '.join(WORKFLOW_SUFFIXES)})",
                reason="WORKFLOW_PATH_INVALID",
            )
        kind = FOLDER
    else:
        assert workflow_paths is not None
        if not workflow_paths:
            raise InvalidArgument.single(
                "workflow_paths.paths", "must list at least one workflow file", reason="FIELD_REQUIRED"
            )
        entries = await asyncio.to_thread(_file_entries, workflow_paths, roots)
        kind = FILES
    _check_size(len(entries), "folder_path" if kind == FOLDER else "workflow_paths.paths")
    await _check_files(parts, kind, entries)
    return BatchSource(kind, folder_path, entries)


def _check_size(size: int, field: str) -> None:
    if size > MAX_BATCH_SIZE:
        raise InvalidArgument.single(
            field, f"a batch runs at most {MAX_BATCH_SIZE} workflows, not {size}", reason="FIELD_INVALID"
        )
