"""Messages to runs cross replicas as JSON through the run inbox: each kind comes back as it went, and the
ones that concern only this process's own work never leave it."""

from __future__ import annotations

import json

import pytest

from runctl_server.engine.message_json import message_from_json, message_to_json
from runctl_server.engine.messages import (
    ChildCompleted,
    ChildFailed,
    Command,
    Message,
    NodeWorkDone,
    TaskCompleted,
    TaskFailed,
    TimerFired,
    Wake,
)
from runctl_server.nodes.base import NodeFailure, NodeResult

FAILURE = NodeFailure("it broke", code="BROKEN", retryable=False)


@pytest.mark.parametrize(
    "message",
    [
        Command(name="pause", args={"node_id": "a"}, traceparent="00-abc-def-01"),
        Command(name="refresh"),
        TaskCompleted(node_key="t", task_id="task_1", output={"n": [1, 2]}),
        TaskFailed(node_key="loop[0].t", task_id="task_2", error=FAILURE),
        ChildCompleted(node_key="child", output={"executionId": "exec_1", "output": None}),
        ChildFailed(node_key="child", error=FAILURE),
    ],
)
def test_a_message_read_back_from_the_inbox_is_the_one_sent(message: Message) -> None:
    stored = json.loads(json.dumps(message_to_json(message)))
    read = message_from_json(stored, inbox_id=7, inbox_sender="replica-b")
    assert type(read) is type(message)
    assert (read.inbox_id, read.inbox_sender) == (7, "replica-b")
    if isinstance(message, TaskFailed | ChildFailed):
        assert isinstance(read, TaskFailed | ChildFailed)
        assert (read.error.message, read.error.code, read.error.retryable) == ("it broke", "BROKEN", False)
        assert read.node_key == message.node_key
    else:
        assert read == type(message)(**{**vars(message), "inbox_id": 7, "inbox_sender": "replica-b"})


def test_the_inbox_format_is_the_one_replicas_already_exchange() -> None:
    assert message_to_json(TaskCompleted(node_key="t", task_id="task_1", output=3)) == {
        "kind": "task_done",
        "node_key": "t",
        "data": {"taskId": "task_1", "output": 3},
    }
    assert message_to_json(Command(name="stop", args={"reason": "x"})) == {
        "kind": "control",
        "node_key": "",
        "data": {"command": "stop", "args": {"reason": "x"}},
    }


@pytest.mark.parametrize(
    "message",
    [Wake(), TimerFired(node_key="d", wake_at=1.5), NodeWorkDone(node_key="h", result=NodeResult(output=1))],
)
def test_messages_about_this_process_own_work_never_leave_it(message: Message) -> None:
    assert message.local_only
    with pytest.raises(ValueError, match="never leaves"):
        message_to_json(message)


def test_an_unknown_kind_in_the_inbox_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown message kind"):
        message_from_json({"kind": "teleport", "node_key": "", "data": {}})
