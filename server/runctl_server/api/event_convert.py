"""Logged events to runctl.v1 Events, and back.

The event log stores each event's payload as a JSON object (the engine writes it in the same
transaction as the change). This is the one place that knows its keys: `event` turns a logged event
into an Event whose typed `attributes` carry every key, and `payload` turns the attributes back into
the stored JSON, for the HTTP faces that print events in that shape and for the tests that check no
key is lost on the way.

Each event type has a table of its keys: the stored key, the attributes field it goes to, and how
its value is converted. A stored key that no table names is never dropped without a word: `event`
logs it (a stream must not break on an old row) and `attributes(..., strict=True)` raises.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from google.protobuf import duration_pb2, json_format, struct_pb2, timestamp_pb2
from google.protobuf.message import Message

from runctl.v1 import batch_resource_pb2, common_pb2, event_pb2, workflow_pb2
from runctl_server.api.convert import frames, timestamp
from runctl_server.store.records import LoggedEvent

log = logging.getLogger(__name__)
_reported: set[str] = set()


class UnmappedPayloadKeys(ValueError):
    """A stored payload holds keys that its event type's attributes have no field for."""


# -- value codecs: stored JSON value <-> field value ------------------------------------------------


def _epoch_to_timestamp(epoch: float) -> timestamp_pb2.Timestamp:
    # Whole seconds and nanoseconds apart, so that the way back gives the same float exactly.
    seconds = math.floor(epoch)
    nanos = round((epoch - seconds) * 1e9)
    if nanos >= 1_000_000_000:
        seconds, nanos = seconds + 1, nanos - 1_000_000_000
    return timestamp_pb2.Timestamp(seconds=int(seconds), nanos=nanos)


def _timestamp_to_epoch(stamp: timestamp_pb2.Timestamp) -> float:
    return stamp.seconds + stamp.nanos / 1e9


def _seconds_to_duration(seconds: float) -> duration_pb2.Duration:
    stamp = _epoch_to_timestamp(seconds)
    return duration_pb2.Duration(seconds=stamp.seconds, nanos=stamp.nanos)


def _duration_to_seconds(duration: duration_pb2.Duration) -> float:
    return duration.seconds + duration.nanos / 1e9


def _value(data: Any) -> struct_pb2.Value:
    message = struct_pb2.Value()
    json_format.ParseDict(data, message)
    return message


def _struct(data: Any) -> struct_pb2.Struct:
    message = struct_pb2.Struct()
    json_format.ParseDict(data, message)
    return message


def _proto_json(message_type: type[Message]) -> Callable[[Any], Message]:
    """A stored object that is a message in proto JSON (Batch, BatchItem): parsed strictly, so a key
    the message has no field for raises instead of vanishing."""

    def parse(data: Any) -> Message:
        return json_format.ParseDict(data, message_type())

    return parse


def _message_json(message: Message) -> Any:
    return json_format.MessageToDict(message)


@dataclass(frozen=True)
class Enum:
    """A stored word ("running", "workflow_paused") <-> a value of one of our enums."""

    wrapper: Any
    prefix: str

    def parse(self, word: Any) -> int:
        return int(self.wrapper.Value(f"{self.prefix}{str(word).upper()}"))

    def word(self, value: int) -> str:
        return str(self.wrapper.Name(value)).removeprefix(self.prefix).lower()


NODE_STATUS = Enum(common_pb2.NodeStatus, "NODE_STATUS_")
EXECUTION_STATUS = Enum(common_pb2.ExecutionStatus, "EXECUTION_STATUS_")
WORKFLOW_STATUS = Enum(workflow_pb2.WorkflowStatus, "WORKFLOW_STATUS_")
PAUSE_REASON = Enum(common_pb2.PauseReason, "PAUSE_REASON_")
QUEUE_REASON = Enum(event_pb2.QueueReason, "QUEUE_REASON_")
LOG_LEVEL = Enum(common_pb2.LogLevel, "LOG_LEVEL_")


# -- per-type tables -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Key:
    """One stored payload key and the attributes field that carries it.

    kind: "scalar" (string, int, bool), "value" (google.protobuf.Value: any JSON, null included),
    "struct", "enum", "epoch" (epoch seconds <-> Timestamp), "seconds" (<-> Duration), "message"
    (an object in proto JSON), "branches" (a list of labels or null <-> NodeBranches).
    `optional`: the key is only stored sometimes; it is written back only when the field is set
    (non-empty for scalars and enums).
    """

    key: str
    field: str
    kind: str = "scalar"
    enum: Enum | None = None
    message: type[Message] | None = None
    optional: bool = False


def _node(*extra: Key) -> tuple[Key, ...]:
    """Node events written by the engine's node transitions: node key, type and new status first."""
    return (
        Key("nodeKey", "node_key"),
        Key("nodeType", "node_type"),
        Key("status", "status", "enum", NODE_STATUS),
        *extra,
    )


def _pause_point(*extra: Key) -> tuple[Key, ...]:
    return (Key("contextId", "context_id"), *extra, Key("nodeKey", "node_key"))


NODE_ERROR = Key("error", "error", "message", message=common_pb2.NodeError)
BATCH = Key("batch", "batch", "message", message=batch_resource_pb2.Batch)

# Event type name (without EVENT_TYPE_) -> (attributes field of Event, its keys).
KEYS: dict[str, tuple[str, tuple[Key, ...]]] = {
    "WORKFLOW_CREATED": ("workflow_created_attributes", (Key("version", "version"), Key("name", "name"))),
    "WORKFLOW_UPDATED": ("workflow_updated_attributes", (Key("version", "version"),)),
    "WORKFLOW_DELETED": ("workflow_deleted_attributes", ()),
    "WORKFLOW_PAUSED": (
        "workflow_paused_attributes",
        (Key("status", "status", "enum", WORKFLOW_STATUS), Key("reason", "reason")),
    ),
    "WORKFLOW_RESUMED": ("workflow_resumed_attributes", (Key("status", "status", "enum", WORKFLOW_STATUS),)),
    "WORKFLOW_CANCELLED": (
        "workflow_cancelled_attributes",
        (Key("status", "status", "enum", WORKFLOW_STATUS), Key("reason", "reason")),
    ),
    "WORKFLOW_SECRET_ROTATED": (
        "workflow_secret_rotated_attributes",
        (Key("overlap_seconds", "overlap", "seconds"),),
    ),
    "EXECUTION_QUEUED": (
        "execution_queued_attributes",
        (Key("input", "input", "struct"), Key("name", "name"), Key("reason", "reason", "enum", QUEUE_REASON)),
    ),
    "EXECUTION_STARTED": (
        "execution_started_attributes",
        (Key("input", "input", "struct"), Key("name", "name")),
    ),
    "EXECUTION_PAUSED": (
        "execution_paused_attributes",
        (Key("reason", "reason", "enum", PAUSE_REASON), Key("contextId", "context_id", optional=True)),
    ),
    "EXECUTION_RESUMED": ("execution_resumed_attributes", ()),
    "EXECUTION_COMPLETED": (
        "execution_completed_attributes",
        (Key("status", "status", "enum", EXECUTION_STATUS), Key("output", "output", "value")),
    ),
    "EXECUTION_FAILED": (
        "execution_failed_attributes",
        (
            Key("status", "status", "enum", EXECUTION_STATUS),
            Key("error", "error", "message", message=common_pb2.ExecutionError),
        ),
    ),
    "EXECUTION_STOPPED": (
        "execution_stopped_attributes",
        (
            Key("status", "status", "enum", EXECUTION_STATUS),
            Key("output", "output", "value"),
            Key("reason", "reason"),
            Key("was", "previous_status", "enum", EXECUTION_STATUS),
        ),
    ),
    "EXECUTION_TRACE_LOGS_CHANGED": ("execution_trace_logs_changed_attributes", (Key("enabled", "enabled"),)),
    "NODE_STARTED": ("node_started_attributes", _node(Key("attempt", "attempt"))),
    "NODE_WAITING": (
        "node_waiting_attributes",
        _node(
            Key("contextId", "context_id", optional=True),
            Key("pauseKind", "pause_kind", "enum", PAUSE_REASON, optional=True),
            Key("until", "wake_time", "epoch", optional=True),
        ),
    ),
    "NODE_COMPLETED": (
        "node_completed_attributes",
        _node(Key("output", "output", "value"), Key("branches", "branches", "branches")),
    ),
    "NODE_FAILED": ("node_failed_attributes", _node(NODE_ERROR, Key("attempt", "attempt"))),
    "NODE_SKIPPED": ("node_skipped_attributes", _node(Key("reason", "reason"))),
    "NODE_STOPPED": ("node_stopped_attributes", _node()),
    "NODE_RETRYING": (
        "node_retrying_attributes",
        _node(NODE_ERROR, Key("attempt", "attempt"), Key("retryAt", "retry_time", "epoch")),
    ),
    "NODE_LOG": (
        "node_log_attributes",
        (
            Key("nodeKey", "node_key"),
            Key("level", "level", "enum", LOG_LEVEL),
            Key("message", "message"),
            Key("details", "details", "struct"),
        ),
    ),
    "PAUSE_POINT_CREATED": (
        "pause_point_created_attributes",
        _pause_point(Key("kind", "kind", "enum", PAUSE_REASON)),
    ),
    "PAUSE_POINT_RESUMED": ("pause_point_resumed_attributes", _pause_point()),
    "PAUSE_POINT_EXPIRED": ("pause_point_expired_attributes", _pause_point()),
    "PAUSE_POINT_CANCELLED": ("pause_point_cancelled_attributes", _pause_point()),
    "BATCH_STARTED": ("batch_started_attributes", (BATCH,)),
    "BATCH_UPDATED": (
        "batch_updated_attributes",
        (BATCH, Key("item", "item", "message", message=batch_resource_pb2.BatchItem)),
    ),
    "BATCH_COMPLETED": ("batch_completed_attributes", (BATCH,)),
    "BATCH_STOPPED": ("batch_stopped_attributes", (BATCH, Key("reason", "reason"))),
    # Stored as {"cleared": ClearBatchesResponse JSON}; the attributes are that object's fields.
    "BATCHES_CLEARED": (
        "batches_cleared_attributes",
        (
            Key("batchesDeleted", "batches_deleted"),
            Key("executionsDeleted", "executions_deleted"),
            Key("skippedBatchIds", "skipped_batch_ids"),
        ),
    ),
}
NESTED = {"BATCHES_CLEARED": "cleared"}  # types whose keys sit inside one stored object


def _set(attributes: Message, spec: Key, stored: Any) -> None:
    kind = spec.kind
    if kind == "scalar":
        if isinstance(stored, list):
            getattr(attributes, spec.field).extend(stored)
        elif stored is not None:
            setattr(attributes, spec.field, stored)
    elif kind == "enum":
        assert spec.enum is not None
        if stored:
            setattr(attributes, spec.field, spec.enum.parse(stored))
    else:
        _set_message(attributes, spec, stored)


def _set_message(attributes: Message, spec: Key, stored: Any) -> None:
    """A message field; set even when the stored value is empty ({}, [], null), so that presence
    says the key was stored."""
    kind = spec.kind
    if stored is None and kind in ("epoch", "seconds", "branches"):
        return
    target = getattr(attributes, spec.field)
    target.SetInParent()
    if kind == "value":
        target.CopyFrom(_value(stored))
    elif kind == "struct":
        target.CopyFrom(_struct(stored))
    elif kind == "epoch":
        target.CopyFrom(_epoch_to_timestamp(float(stored)))
    elif kind == "seconds":
        target.CopyFrom(_seconds_to_duration(float(stored)))
    elif kind == "message":
        assert spec.message is not None
        target.CopyFrom(_proto_json(spec.message)(stored))
    elif kind == "branches":
        target.labels.extend(str(label) for label in stored)
    else:  # pragma: no cover - a table error
        raise AssertionError(f"unknown key kind {kind!r}")


def _get(attributes: Message, spec: Key) -> tuple[bool, Any]:
    """(whether the stored payload had the key, its stored value)."""
    kind = spec.kind
    value = getattr(attributes, spec.field)
    if kind == "scalar":
        if isinstance(value, (str, int, float, bool)):
            return (bool(value) or not spec.optional), value
        return True, list(value)
    if kind == "enum":
        assert spec.enum is not None
        if not value:
            return not spec.optional, None
        return True, spec.enum.word(value)
    if not attributes.HasField(spec.field):
        return not spec.optional, None  # e.g. "branches": null
    if kind in ("value", "struct", "message"):
        return True, _message_json(value)
    if kind == "epoch":
        return True, _timestamp_to_epoch(value)
    if kind == "seconds":
        return True, _duration_to_seconds(value)
    if kind == "branches":
        return True, list(value.labels)
    raise AssertionError(f"unknown key kind {kind!r}")  # pragma: no cover - a table error


# -- the two directions ----------------------------------------------------------------------------


def attributes(event_type: str, payload: Mapping[str, Any], *, strict: bool = False) -> tuple[str, Message]:
    """The attributes field name and message of one stored payload (without its `stack`, which is
    the Event's own field). Keys the type has no field for raise UnmappedPayloadKeys when `strict`,
    and are logged otherwise."""
    field, keys = KEYS[event_type]
    message = getattr(event_pb2.Event(), field).__class__()
    source: Mapping[str, Any] = payload
    unmapped = set(payload) - {"stack"}
    if event_type in NESTED:
        outer = NESTED[event_type]
        source = payload.get(outer) or {}
        unmapped -= {outer}
        unmapped |= {f"{outer}.{key}" for key in set(source) - {spec.key for spec in keys}}
    else:
        unmapped -= {spec.key for spec in keys}
    for spec in keys:
        if spec.key not in source:
            continue
        try:
            _set(message, spec, source[spec.key])
        except (ValueError, TypeError, json_format.ParseError):
            if strict:
                raise
            unmapped.add(spec.key)  # a value the field cannot hold (an old or foreign row)
            if spec.kind == "message" and spec.message is not None and isinstance(source[spec.key], dict):
                # Keep what the message still has fields for (e.g. a Batch logged before a rename).
                with contextlib.suppress(json_format.ParseError):
                    lenient = json_format.ParseDict(
                        source[spec.key], spec.message(), ignore_unknown_fields=True
                    )
                    getattr(message, spec.field).CopyFrom(lenient)
    if unmapped:
        problem = f"{event_type} payload keys without an attributes field: {sorted(unmapped)}"
        if strict:
            raise UnmappedPayloadKeys(problem)
        if problem not in _reported:  # once per process: every event of the type would say it again
            _reported.add(problem)
            log.error("%s (left out of the typed event)", problem)
    return field, message


def payload(event: event_pb2.Event) -> dict[str, Any]:
    """The event's attributes as the JSON object the event log stores (and the HTTP faces print),
    with the node's for-each `stack` where the engine writes it."""
    type_name = event_pb2.EventType.Name(event.type).removeprefix("EVENT_TYPE_")
    entry = KEYS.get(type_name)
    if entry is None:
        return {}
    field, keys = entry
    attributes_message = getattr(event, field)
    out: dict[str, Any] = {}
    for spec in keys:
        present, stored = _get(attributes_message, spec)
        if present:
            out[spec.key] = stored
        if spec.key == "status" and event.stack and type_name.startswith("NODE_"):
            out["stack"] = [
                {"index": f.index, "parentNodeId": f.parent_node_id, "total": f.total} for f in event.stack
            ]
    if type_name in NESTED:
        return {NESTED[type_name]: out}
    return out


def event(logged: LoggedEvent, *, strict: bool = False) -> event_pb2.Event:
    """One event of the log as an Event with its typed attributes."""
    stored: Mapping[str, Any] = json.loads(logged.payload_json) if logged.payload_json else {}
    message = event_pb2.Event(
        sequence=logged.sequence,
        type=event_pb2.EventType.Value(f"EVENT_TYPE_{logged.type}"),
        time=timestamp(logged.time),
        workflow_id=logged.workflow_id or "",
        execution_id=logged.execution_id or "",
        batch_id=logged.batch_id or "",
        node_id=logged.node_id or "",
        stack=frames(stored.get("stack")),
    )
    if logged.type in KEYS:
        field, attributes_message = attributes(logged.type, stored, strict=strict)
        getattr(message, field).CopyFrom(attributes_message)
    return message


def shared(logged: LoggedEvent) -> event_pb2.Event:
    """A live event is shared by every watcher (gRPC streams, Socket.IO): it is converted once, and
    the Event kept on it. Callers must not change the Event they get."""
    return logged.derived(event)
