"""Workflow documents over HTTP become WorkflowDefinition messages, or a violation per problem."""

from __future__ import annotations

import pytest

from runctl_server.errors import FieldViolation, InvalidArgument
from runctl_server.http.routes.fields import http_field, renamed
from runctl_server.http.routes.workflow_document import definition_message, plain_json_violations, under


def violations(document: object, prefix: str = "") -> dict[str, str]:
    with pytest.raises(InvalidArgument) as error:
        definition_message(document, prefix=prefix)
    return {v.field: v.description for v in error.value.violations}


def test_a_valid_document_converts() -> None:
    message = definition_message(
        {
            "name": "Order approval",
            "nodes": [
                {"id": "start", "type": "start"},
                {
                    "id": "fetch",
                    "type": "http",
                    "config": {"url": "http://x/{{ input.id }}"},
                    "timeoutSeconds": 5,
                    "retry": {"maxAttempts": 3, "backoffSeconds": 1.5},
                },
                {
                    "id": "each",
                    "type": "for_each",
                    "config": {"items": "input.rows"},
                    "body": {"nodes": [{"id": "send", "type": "wait"}], "edges": []},
                },
            ],
            "edges": [{"from": "start", "to": "fetch", "when": None}, {"from": "fetch", "to": "each"}],
            "positions": {"start": {"x": 450, "y": 0}},
            "width": 1200,
            "height": 150.0,
        }
    )
    assert [node.id for node in message.nodes] == ["start", "fetch", "each"]
    assert message.nodes[1].retry.max_attempts == 3
    assert message.edges[0].source == "start" and message.edges[1].target == "each"
    assert message.nodes[2].body.nodes[0].type == "wait"
    assert message.positions["start"].x == 450 and message.height == 150


def test_every_problem_is_reported_with_its_path() -> None:
    found = violations(
        {
            "name": 7,
            "nodes": [
                {"id": "a", "type": 5, "timeoutSeconds": "5", "breakpoint": "yes", "extra": 1},
                "not a node",
                {"id": "b", "type": "wait", "retry": {"maxAttempts": 2.5}, "config": []},
            ],
            "edges": {"from": "a"},
            "positions": {"a": {"x": "1"}},
            "width": 2**40,
            "colour": "blue",
        }
    )
    assert found == {
        "name": "must be a string, not a number",
        "nodes[0].type": "must be a string, not a number",
        "nodes[0].timeoutSeconds": "must be a number, not a string",
        "nodes[0].breakpoint": "must be a boolean (true or false), not a string",
        "nodes[0].extra": "unknown field",
        "nodes[1]": "must be an object, not a string",
        "nodes[2].retry.maxAttempts": "must be an integer, not a number",
        "nodes[2].config": "must be an object, not an array",
        "edges": "must be an array, not an object",
        "positions.a.x": "must be a number, not a string",
        "width": "must lie between -2147483648 and 2147483647",
        "colour": "unknown field",
    }


def test_documents_that_are_not_objects() -> None:
    assert violations([1, 2]) == {"body": "must be an object, not an array"}
    assert violations("text", prefix="workflow") == {"workflow": "must be an object, not a string"}


def test_prefix_and_non_finite_numbers_and_depth() -> None:
    deep: object = 1
    for _ in range(80):
        deep = {"d": deep}
    found = violations(
        {"nodes": [{"id": "a", "type": "log", "config": {"n": float("nan"), "deep": deep}}]},
        prefix="workflow",
    )
    assert found["workflow.nodes[0].config.n"] == "must be a finite number"
    assert any(field.startswith("workflow.nodes[0].config.deep.d") for field in found)
    assert plain_json_violations({"a": [1, float("inf")]}, "data") == [
        FieldViolation("data.a[1]", "must be a finite number")
    ]


def test_servicer_violations_move_under_the_inline_document() -> None:
    error = InvalidArgument(
        "bad",
        [
            FieldViolation("nodes[1].type", "unknown node type"),
            FieldViolation("input", "too large"),
        ],
        reason="WORKFLOW_DEFINITION_INVALID",
    )
    assert [v.field for v in under("workflow", error).violations] == ["workflow.nodes[1].type", "input"]


def test_field_names_for_http_callers() -> None:
    names = {"for_each_context": "forEachContext", "parent_node_id": "parentNodeId"}
    assert (
        http_field("for_each_context.stack[1].parent_node_id", names)
        == "forEachContext.stack[1].parentNodeId"
    )
    assert http_field("workflow_ids.ids[2]", {}, (("workflow_ids.ids", "workflowIds"),)) == "workflowIds[2]"
    assert http_field("workflow.nodes[0].config.workflow_id", {"workflow_id": "workflowId"}, deep=False) == (
        "workflow.nodes[0].config.workflow_id"
    )
    negative = InvalidArgument.single("page_size", "must not be negative", reason="FIELD_INVALID")
    error = renamed(negative, {"page_size": "limit"})
    assert error.message == "limit: must not be negative"
    assert [(v.field, v.description) for v in error.violations] == [("limit", "must not be negative")]
