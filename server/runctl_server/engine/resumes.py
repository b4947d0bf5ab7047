"""Resuming pause points: ResumePausePoint (form values) and ResumeNode (webhook secret, for-each stack).

Every resume is a handler that runs inside the run's driver (Engine.send), so resumes of one pause point
are serialised whatever the database: the first sees the node waiting and resumes it, later ones find
it no longer waiting and are skipped. The answer is given only once the resume is committed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from runctl_server.engine.commands import RunSteering, SendCommand, command
from runctl_server.engine.definition import Definition
from runctl_server.engine.forms import resolve_form_values
from runctl_server.engine.keys import frame, node_key
from runctl_server.engine.model import APPROVAL, IDLE, SCHEDULED, WAIT, WAITING, now
from runctl_server.engine.persistence import RunStore
from runctl_server.engine.workflows import secret_accepted
from runctl_server.errors import (
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
    Unauthenticated,
)
from runctl_server.store import executions, pause_points, workflows
from runctl_server.store.reads import Reader
from runctl_server.store.records import PausePointRecord, RunRecord
from runctl_server.store.writer import dumps

if TYPE_CHECKING:
    from runctl_server.engine.scheduler import Driven

RESUMABLE = (WAIT, APPROVAL)
# Kept in the node's state once it is resumed: which pause point, by which request and actor. A retry
# carrying the winner's request id is recognised by it, after restarts too, with no schema change.
MARK = "resume"
SKIP_REASONS = {"resumed": "already resumed", "expired": "expired", "cancelled": "cancelled"}
# Runs of an inline definition or a file have no workflow; their resume links say "-" for it.
NO_WORKFLOW = "-"


@dataclass(frozen=True)
class Verdict:
    """What a resume handler found inside the driver. `reason` None: the node was not waiting on the
    pause point any more, and the pause point's row says how it ended."""

    resumed: bool
    reason: str | None = None
    node_status: str = ""


@dataclass(frozen=True)
class PausePointOutcome:
    resumed: bool
    reason: str
    # The pause point as committed after the call.
    pause_point: PausePointRecord
    resolved_by: str


@dataclass(frozen=True)
class NodeOutcome:
    resumed: bool
    reason: str = ""


def _skipped(reason: str) -> NodeOutcome:
    return NodeOutcome(resumed=False, reason=reason)


def _same_request(mark: Any, request_id: str, context_id: str = "") -> bool:
    """Whether the recorded resume was made by this request (an idempotent retry)."""
    return (
        bool(request_id)
        and isinstance(mark, dict)
        and mark.get("requestId") == request_id
        and (not context_id or mark.get("contextId") == context_id)
    )


def _mark_of(state_text: str | None) -> dict[str, Any] | None:
    state = json.loads(state_text) if state_text else None
    mark = state.get(MARK) if isinstance(state, dict) else None
    return mark if isinstance(mark, dict) else None


@command("resume_pause_point")
def _resume_command(steer: RunSteering, driven: Driven, args: dict[str, Any]) -> dict[str, Any]:
    """Resume the node `key` with `output` if it waits at a wait or approval pause point (at
    `context_id`, when given); answers a Verdict as JSON."""
    verdict = _resume(steer, driven, str(args["key"]), args.get("output"), dict(args.get("mark") or {}),
                      str(args.get("context_id") or ""))  # fmt: skip
    return {"resumed": verdict.resumed, "reason": verdict.reason, "node_status": verdict.node_status}


def _verdict(answer: Any) -> Verdict | None:
    if answer is None:
        return None
    return Verdict(bool(answer["resumed"]), answer.get("reason"), str(answer.get("node_status") or ""))


def _resume(
    steer: RunSteering, driven: Driven, key: str, output: Any, mark: dict[str, str], context_id: str
) -> Verdict:
    record = driven.run.nodes.get(key)
    if record is None or record.status in (IDLE, SCHEDULED):
        return Verdict(False, f"node {key} has not been reached yet")
    state = record.state or {}
    waiting_on = state.get("contextId") if record.status == WAITING else None
    if waiting_on and (not context_id or waiting_on == context_id):
        kind = state.get("pauseKind")
        if kind not in RESUMABLE:
            return Verdict(
                False,
                f"node {key} is paused at a {kind}, not a wait or an approval: go on with ControlPause",
            )
        if record.wake_at is not None and record.wake_at <= now():
            return Verdict(False, "expired")  # its expiry timer is due and closes it next
        record.state = {**state, MARK: {**mark, "contextId": waiting_on}}
        steer.resume_waiting(driven, record, output, output)
        return Verdict(True)
    if _same_request(state.get(MARK), mark.get("requestId", ""), context_id):
        return Verdict(True)
    return Verdict(False, None, record.status)


def _loops_around(definition: Definition, node_id: str) -> list[str]:
    """The for_each nodes whose bodies hold the node, outermost first."""
    loops: list[str] = []
    parent = definition.parent_loop(node_id)
    while parent is not None:
        loops.insert(0, parent)
        parent = definition.parent_loop(parent)
    return loops


def _given_frames(for_each: Mapping[str, Any] | None) -> list[tuple[str, Mapping[str, Any]]]:
    """The frames a caller sent, each with its field path."""
    stack = (for_each or {}).get("stack") or []
    return [(f"for_each_context.stack[{depth}]", level) for depth, level in enumerate(stack)]


def iteration_stack(
    definition: Definition, node_id: str, for_each: Mapping[str, Any] | None
) -> list[dict[str, Any]]:
    """The for-each stack naming one iteration of the node, checked against the definition.

    `for_each` is the node resume API's forEachContext with its stack: {stack: [{index, parentNodeId, total}]}
    (the node resume route turns the legacy flat fields into a stack of one). Raises InvalidArgument
    with a violation per bad frame.
    """
    loops = _loops_around(definition, node_id)
    given = _given_frames(for_each)
    violations: list[FieldViolation] = []
    stack: list[dict[str, Any]] = []
    for depth, (path, level) in enumerate(given):
        index = int(level.get("index") or 0)
        if index < 0:
            violations.append(FieldViolation(f"{path}.index", "must be 0 or greater"))
        if int(level.get("total") or 0) < 0:
            violations.append(FieldViolation(f"{path}.total", "must be 0 or greater"))
        parent = str(level.get("parentNodeId") or "")
        if depth >= len(loops):
            where = f"inside {len(loops)} loop(s)" if loops else "not inside a loop"
            violations.append(FieldViolation(path, f"one frame too many: node {node_id!r} is {where}"))
            continue
        expected = loops[depth]
        if parent != expected:
            spec = definition.find(parent) if parent else None
            if not parent:
                problem = f"is required: the for_each node of this level is {expected!r}"
            elif spec is None or spec.body is None:
                problem = f"{parent!r} is not a for_each node; node {node_id!r} runs in {expected!r} here"
            else:
                problem = (
                    f"for_each {parent!r} does not hold node {node_id!r} at this level: expected {expected!r}"
                )
            violations.append(FieldViolation(f"{path}.parent_node_id", problem))
        stack.append(frame(expected, index, int(level.get("total") or 0)))
    if len(given) < len(loops):
        violations.append(
            FieldViolation(
                "for_each_context.stack",
                f"node {node_id!r} runs inside for_each {' > '.join(map(repr, loops))}: give one frame "
                "per loop, outermost first",
            )
        )
    if violations:
        raise InvalidArgument(
            f"for_each_context does not name an iteration of node {node_id!r}",
            violations,
            reason="BAD_FOR_EACH_CONTEXT",
        )
    return stack


class Resumes:
    """Answers resume calls; exactly one of many concurrent resumes of one pause point wins."""

    def __init__(self, reader: Reader, store: RunStore, send: SendCommand, *, max_resume_bytes: int) -> None:
        self._reader = reader
        self._store = store
        self._send = send
        self._max_resume_bytes = max_resume_bytes

    def _check_size(self, field: str, values: Mapping[str, Any]) -> None:
        limit = self._max_resume_bytes
        if len(dumps(dict(values))) > limit:
            raise InvalidArgument.single(
                field, f"is larger than {limit} bytes (the resume limit)", reason="PAYLOAD_TOO_LARGE"
            )

    # -- ResumePausePoint ------------------------------------------------------------------------

    async def _pause_point(
        self, workspace_id: str, context_id: str
    ) -> tuple[PausePointRecord, str | None] | None:
        """The pause point, with the state of its node (where the resume mark is kept)."""
        return await pause_points.with_node_state(self._reader, workspace_id, context_id)

    async def resume_pause_point(
        self,
        workspace_id: str,
        context_id: str,
        values: Mapping[str, Any],
        *,
        workflow_id: str = "",
        execution_id: str = "",
        request_id: str = "",
        actor: str = "",
    ) -> PausePointOutcome:
        """Resume a wait or approval pause point with values (validated against an approval's form)."""
        if not context_id:
            raise InvalidArgument.single("context_id", "is required", reason="FIELD_REQUIRED")
        self._check_size("values", values)
        found = await self._pause_point(workspace_id, context_id)
        if (
            found is None
            or (execution_id and execution_id != found[0].execution_id)
            or (workflow_id and workflow_id != (found[0].workflow_id or NO_WORKFLOW))
        ):
            raise NotFound(f"pause point {context_id!r} not found", reason="PAUSE_POINT_NOT_FOUND")
        row, node_state = found
        kind = row.kind
        if kind not in RESUMABLE:
            raise FailedPrecondition(
                f"pause point {context_id!r} is a {kind}, not a wait or an approval: go on with ControlPause",
                reason="PAUSE_POINT_NOT_RESUMABLE",
            )
        output = (
            resolve_form_values(json.loads(row.form_fields or "[]"), values)
            if kind == APPROVAL
            else dict(values)
        )
        verdict: Verdict | None = None
        if row.status == "paused":
            mark = {k: v for k, v in (("requestId", request_id), ("actor", actor)) if v}
            args = {"key": row.node_key, "output": output, "mark": mark, "context_id": context_id}
            verdict = _verdict(await self._send(row.execution_id, "resume_pause_point", args))
            committed = await self._pause_point(workspace_id, context_id)
            if committed is not None:
                row, node_state = committed
        mark_after = _mark_of(node_state)
        resolved_by = ""
        if mark_after is not None and mark_after.get("contextId") == context_id:
            resolved_by = str(mark_after.get("actor") or "")
        if (verdict is not None and verdict.resumed) or _same_request(mark_after, request_id, context_id):
            return PausePointOutcome(True, "", row, resolved_by)
        reason = (verdict.reason if verdict is not None else None) or SKIP_REASONS.get(
            row.status, "the execution has already ended"
        )
        return PausePointOutcome(False, reason, row, resolved_by)

    # -- ResumeNode ------------------------------------------------------------------------------

    async def _authenticate(self, run: RunRecord, secret: str) -> None:
        """The run's workflow webhook secret, compared in constant time, before anything about its
        nodes is revealed."""
        if not run.workflow_id:
            raise Unauthenticated(
                f"execution {run.id!r} was started from an inline definition or a file, so it has no "
                "workflow webhook secret: resume it with ResumePausePoint and the pause point's context id",
                reason="NO_WEBHOOK_SECRET",
            )
        workflow = await workflows.by_id(self._reader, run.workflow_id)
        if not secret:
            raise Unauthenticated("the workflow's webhook secret is required", reason="SECRET_REQUIRED")
        if workflow is None or not secret_accepted(secret, workflow, now()):
            raise Unauthenticated(
                "the secret does not match the workflow's webhook secret", reason="BAD_SECRET"
            )

    async def resume_node(
        self,
        workspace_id: str,
        execution_id: str,
        node_id: str,
        secret: str,
        data: Mapping[str, Any],
        *,
        for_each: Mapping[str, Any] | None = None,
        request_id: str = "",
    ) -> NodeOutcome:
        """Resume a waiting wait or approval node of a run (the node resume API), in one loop iteration when
        the node is inside for_each bodies."""
        missing = [
            FieldViolation(name, "is required")
            for name, value in (("execution_id", execution_id), ("node_id", node_id), ("secret", secret))
            if not value
        ]
        # A request naming its run and node but no secret is refused as unauthenticated below.
        if missing and missing[0].field != "secret":
            raise InvalidArgument(
                "execution_id, node_id and secret are required", missing, reason="FIELD_REQUIRED"
            )
        self._check_size("data", data)
        run = await executions.run(self._reader, execution_id, workspace_id)
        if run is None:
            raise NotFound(f"execution {execution_id!r} not found", reason="EXECUTION_NOT_FOUND")
        await self._authenticate(run, secret)
        definition = await self._store.definition_of(run.document, run.workflow_id, run.workflow_version)
        node = definition.find(node_id)
        if node is None:
            raise NotFound(
                f"node {node_id!r} not found in execution {execution_id!r}", reason="NODE_NOT_FOUND"
            )
        stack = iteration_stack(definition, node_id, for_each)
        if node.type not in RESUMABLE:
            return _skipped(f"node {node_id!r} is a {node.type} node, not a wait or approval pause point")
        output = (
            resolve_form_values(node.config.get("formFields") or [], data, prefix="data")
            if node.type == APPROVAL
            else dict(data)
        )
        key = node_key(node_id, stack)
        mark = {"requestId": request_id} if request_id else {}
        args = {"key": key, "output": output, "mark": mark, "context_id": ""}
        verdict = _verdict(await self._send(execution_id, "resume_pause_point", args))
        if verdict is not None and (verdict.resumed or verdict.reason):
            return NodeOutcome(verdict.resumed, verdict.reason or "")
        return await self._why_not_waiting(run, key, request_id, verdict)

    async def _why_not_waiting(
        self, run: RunRecord, key: str, request_id: str, verdict: Verdict | None
    ) -> NodeOutcome:
        """The answer for a node that was not waiting: a retry of the call that resumed it, or skipped
        with how its pause point ended."""
        node = await executions.node(self._reader, run.id, key)
        if node is not None and _same_request(_mark_of(node.state), request_id):
            return NodeOutcome(resumed=True)
        ended = await pause_points.latest_status(self._reader, run.id, key) or ""
        # How the node's own pause point ended says most, unless the run's end is what closed it.
        if ended in ("resumed", "expired") or (verdict is not None and ended in SKIP_REASONS):
            return _skipped(SKIP_REASONS[ended])
        if verdict is None:
            execution = await executions.run(self._reader, run.id)
            status = execution.status if execution is not None else "deleted"
            return _skipped(f"the execution has already ended ({status})")
        return _skipped(f"node {key} is not waiting (it is {verdict.node_status})")
