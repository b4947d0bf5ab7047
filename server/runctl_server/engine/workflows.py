"""Workflow definitions: create, read, list, update (a new version each time) and delete."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from runctl_server.engine.definition import Definition
from runctl_server.engine.model import new_id, now
from runctl_server.engine.paging import decode_token, encode_token, page_size
from runctl_server.engine.persistence import RunStore
from runctl_server.errors import Aborted, FailedPrecondition, InvalidArgument, NotFound
from runctl_server.store import workflows as stored
from runctl_server.store.records import WorkflowRecord
from runctl_server.store.writer import EventRecord, Mutation, WriteError, dumps

WORKFLOW_STATUSES = ("active", "paused", "cancelled")
# How long a rotated-out webhook secret keeps working when the rotation does not say.
DEFAULT_SECRET_OVERLAP_SECONDS = 24 * 3600.0
MAX_SECRET_OVERLAP_SECONDS = 30 * 24 * 3600.0


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def secret_accepted(secret: str, workflow: WorkflowRecord, at: float) -> bool:
    """Whether `secret` is the workflow's webhook secret, or the one it replaced while that one's
    overlap lasts. Both hashes are always compared, so the timing says nothing about which matched."""
    digest = hash_secret(secret)
    current = hmac.compare_digest(digest, workflow.secret_hash)
    previous = hmac.compare_digest(digest, workflow.previous_secret_hash or "")
    until = workflow.previous_secret_until
    return current or (previous and until is not None and at < float(until))


@dataclass(frozen=True)
class WorkflowView:
    """A workflow row with its current definition; `secret` is set only when just created."""

    row: WorkflowRecord
    document: dict[str, Any]
    secret: str | None = None
    # After a rotation: until when the replaced secret is still accepted (None: not at all).
    previous_secret_until: float | None = None


def _at_version(row: WorkflowRecord, version: int, field: str) -> WorkflowRecord:
    """`row` as of `version` (0: as it is). Versions run from 1 to the latest with no gaps, since
    every update adds the next one and none is ever removed alone."""
    if version < 0:
        raise InvalidArgument.single(field, "must not be negative (0 = the latest)", reason="FIELD_INVALID")
    if not version or version == row.version:
        return row
    if version > row.version:
        raise NotFound(
            f"workflow {row.id!r} has no version {version}; its latest is {row.version}",
            reason="WORKFLOW_VERSION_NOT_FOUND",
        )
    return replace(row, version=version)


class Workflows:
    """Workflow CRUD. Writes go through the group-commit writer like every other change."""

    def __init__(
        self, store: RunStore, secret_overlap_seconds: float = DEFAULT_SECRET_OVERLAP_SECONDS
    ) -> None:
        self._store = store
        self._secret_overlap_seconds = secret_overlap_seconds
        self.lock = asyncio.Lock()

    async def row(self, workspace_id: str, workflow_id: str) -> WorkflowRecord:
        row = await stored.live(self._store.reader, workspace_id, workflow_id)
        if row is None:
            raise NotFound(f"workflow {workflow_id!r} not found", reason="WORKFLOW_NOT_FOUND")
        return row

    async def _view(self, row: WorkflowRecord, secret: str | None = None) -> WorkflowView:
        text = await stored.version_document(self._store.reader, row.id, row.version)
        document = json.loads(text) if text else {}
        return WorkflowView(row, document, secret)

    async def get(self, workspace_id: str, workflow_id: str, version: int = 0) -> WorkflowView:
        """The workflow at its latest version, or at `version` (that version's definition, name and
        description; its status and times as they are now)."""
        if not workflow_id:
            raise InvalidArgument.single("workflow_id", "is required", reason="FIELD_REQUIRED")
        latest = await self.row(workspace_id, workflow_id)
        row = _at_version(latest, version, "version")
        view = await self._view(row)
        if row is latest:
            return view
        # Name and description are copied from the definition: those of the version asked for.
        document = view.document
        named = replace(
            row, name=document.get("name", row.name), description=document.get("description") or ""
        )
        return replace(view, row=named)

    async def definition(
        self, workspace_id: str, workflow_id: str, version: int = 0, *, field: str = "workflow_version"
    ) -> tuple[WorkflowRecord, Definition]:
        """The workflow's row with `version` (0: the latest) in place of the latest, and that
        version's definition."""
        row = _at_version(await self.row(workspace_id, workflow_id), version, field)
        definition = await self._store.definition_of(None, row.id, row.version)
        return row, definition

    async def create(
        self, workspace_id: str, document: Mapping[str, Any], request_id: str = ""
    ) -> WorkflowView:
        if request_id:
            existing = await stored.by_request(self._store.reader, workspace_id, request_id)
            if existing is not None:
                return await self._view(existing)
        definition = self._store.parse(document)
        workflow_id = new_id("wf")
        secret = secrets.token_urlsafe(24)
        stamp = now()
        mutation = Mutation()
        mutation.add(
            *stored.insert(
                workflow_id,
                workspace_id,
                name=definition.name,
                description=definition.description,
                secret_hash=hash_secret(secret),
                request_id=request_id or None,
                now=stamp,
            )
        )
        mutation.add(*stored.insert_version(workflow_id, 1, dumps(definition.document), stamp))
        mutation.emit(
            EventRecord(
                "WORKFLOW_CREATED",
                workspace_id,
                workflow_id=workflow_id,
                payload={"version": 1, "name": definition.name},
            )
        )
        try:
            await self._store.writer.commit(mutation)
        except WriteError:
            if request_id:  # a concurrent create with the same request id won
                return await self.create(workspace_id, document, request_id)
            raise
        return await self._view(await self.row(workspace_id, workflow_id), secret)

    async def list(
        self, workspace_id: str, *, size: int = 0, token: str = "", statuses: tuple[str, ...] = ()
    ) -> tuple[list[WorkflowView], str]:
        limit = page_size(size)
        position = decode_token(token, ("t", "id"), filters={"statuses": frozenset(statuses)})
        if any(status not in WORKFLOW_STATUSES for status in statuses):
            raise InvalidArgument.single(
                "statuses", f"must be among {', '.join(WORKFLOW_STATUSES)}", reason="FIELD_INVALID"
            )
        rows = await stored.page(
            self._store.reader,
            workspace_id,
            limit=limit + 1,
            statuses=statuses,
            before=None if position is None else (position["t"], position["id"]),
        )
        next_token = ""
        if len(rows) > limit:
            rows = rows[:limit]
            next_token = encode_token(
                {"t": rows[-1].created_at, "id": rows[-1].id}, {"statuses": frozenset(statuses)}
            )
        return [await self._view(row) for row in rows], next_token

    async def update(
        self, workspace_id: str, workflow_id: str, document: Mapping[str, Any], *, expected_version: int = 0
    ) -> WorkflowView:
        definition = self._store.parse(document)
        async with self.lock:
            row = await self.row(workspace_id, workflow_id)
            if expected_version and expected_version != row.version:
                raise Aborted(
                    f"workflow {workflow_id!r} is at version {row.version}, not {expected_version}",
                    reason="VERSION_MISMATCH",
                    metadata={"currentVersion": str(row.version)},
                )
            if row.status == "cancelled":
                raise FailedPrecondition(
                    f"workflow {workflow_id!r} is cancelled", reason="WORKFLOW_CANCELLED"
                )
            version = row.version + 1
            stamp = now()
            mutation = Mutation()
            mutation.add(*stored.insert_version(workflow_id, version, dumps(definition.document), stamp))
            mutation.add(
                *stored.update_definition(
                    workflow_id,
                    name=definition.name,
                    description=definition.description,
                    version=version,
                    now=stamp,
                )
            )
            mutation.emit(
                EventRecord(
                    "WORKFLOW_UPDATED", workspace_id, workflow_id=workflow_id, payload={"version": version}
                )
            )
            await self._store.writer.commit(mutation)
        return await self._view(await self.row(workspace_id, workflow_id))

    async def rotate_secret(
        self, workspace_id: str, workflow_id: str, overlap_seconds: float | None = None
    ) -> WorkflowView:
        """A new webhook secret, shown only in this answer. The one it replaces keeps working for
        the overlap (the server's default when None); the one before that stops now."""
        overlap = self._secret_overlap_seconds if overlap_seconds is None else overlap_seconds
        if not 0 <= overlap <= MAX_SECRET_OVERLAP_SECONDS:
            raise InvalidArgument.single(
                "overlap",
                f"must be between 0 and {MAX_SECRET_OVERLAP_SECONDS / 86400:g} days; got {overlap:g} s",
                reason="FIELD_INVALID",
            )
        secret = secrets.token_urlsafe(24)
        async with self.lock:
            await self.row(workspace_id, workflow_id)
            stamp = now()
            until = stamp + overlap if overlap > 0 else None
            mutation = Mutation()
            # One statement: the secret kept is whatever is current when it runs (SQL reads the old
            # row on the right-hand side), so two servers rotating at once cannot lose one.
            mutation.add(
                *stored.rotate_secret(workflow_id, hash_secret(secret), previous_until=until, now=stamp)
            )
            # The payload says when the old secret stops; neither secret is ever in an event.
            mutation.emit(
                EventRecord(
                    "WORKFLOW_SECRET_ROTATED",
                    workspace_id,
                    workflow_id=workflow_id,
                    payload={"overlap_seconds": overlap},
                )
            )
            await self._store.writer.commit(mutation)
        view = await self._view(await self.row(workspace_id, workflow_id), secret)
        return replace(view, previous_secret_until=until)

    async def delete(self, workspace_id: str, workflow_id: str) -> None:
        async with self.lock:
            await self.row(workspace_id, workflow_id)
            mutation = Mutation()
            mutation.add(*stored.delete(workflow_id, now()))
            mutation.emit(EventRecord("WORKFLOW_DELETED", workspace_id, workflow_id=workflow_id))
            await self._store.writer.commit(mutation)
