"""Workflow documents: parsing into the domain model, and every validation rule, reported all at once."""

from __future__ import annotations

import copy
import dataclasses
import json
import logging
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

import pytest

from runctl_server.engine.definition import (
    DEFAULT_NAME,
    Definition,
    EdgeSpec,
    Graph,
    NodeSpec,
    RetryPolicy,
    load_document,
    parse_definition,
)
from runctl_server.errors import InvalidArgument
from runctl_server.nodes import registry
from runctl_server.nodes.base import ConfigField, NodeType
from runctl_server.nodes.registry import builtin_node_types, load_node_types

TYPES = builtin_node_types()

# The example of DESIGN.md, "Workflow files", verbatim.
DESIGN_EXAMPLE = """
{
  "name": "Order approval",
  "nodes": [
    {"id": "start", "type": "start"},
    {"id": "fetch", "type": "http", "config": {"method": "GET", "url": "http://127.0.0.1:8080/orders/{{ input.orderId }}", "timeoutSeconds": 5},
     "retry": {"maxAttempts": 3, "backoffSeconds": 1}},
    {"id": "check", "type": "condition", "config": {"expression": "nodes.fetch.output.body.total > `100`"}},
    {"id": "approve", "type": "approval", "config": {"title": "Approval Required", "message": "Please review this request",
     "formFields": [{"name": "approved", "type": "boolean", "required": true}, {"name": "note", "type": "text"}]}},
    {"id": "cool-off", "type": "delay", "config": {"seconds": 5}},
    {"id": "notify", "type": "for_each", "config": {"items": "input.recipients"},
     "body": {"nodes": [{"id": "send", "type": "wait"}], "edges": []}},
    {"id": "end", "type": "end"}
  ],
  "edges": [
    {"from": "start", "to": "fetch"}, {"from": "fetch", "to": "check"},
    {"from": "check", "to": "approve", "when": "true"}, {"from": "check", "to": "cool-off", "when": "false"},
    {"from": "approve", "to": "notify"}, {"from": "cool-off", "to": "notify"}, {"from": "notify", "to": "end"}
  ],
  "positions": {"start": {"x": 450, "y": 0}}
}
"""  # noqa: E501


def design_example() -> dict[str, Any]:
    return load_document(DESIGN_EXAMPLE, filename="order.json")


def problems(document: Any, types: Mapping[str, NodeType] = TYPES, **kwargs: Any) -> dict[str, str]:
    """field -> description of every violation (descriptions of one field joined by ' | ')."""
    with pytest.raises(InvalidArgument) as caught:
        parse_definition(document, types, **kwargs)
    found: dict[str, str] = {}
    for violation in caught.value.violations:
        found[violation.field] = " | ".join(filter(None, [found.get(violation.field), violation.description]))
    return found


def with_node(node: dict[str, Any], *, extra_edges: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """start -> node (at nodes[1], id "n" unless given) -> end; an end node is the last one itself."""
    node = {"id": "n", **node}
    if node.get("type") == "end":
        return {
            "nodes": [{"id": "start", "type": "start"}, node],
            "edges": [{"from": "start", "to": node["id"]}],
        }
    return {
        "name": "one node",
        "nodes": [{"id": "start", "type": "start"}, node, {"id": "end", "type": "end"}],
        "edges": [
            {"from": "start", "to": node["id"]},
            {"from": node["id"], "to": "end"},
            *(extra_edges or []),
        ],
    }


def expect(document: Any, expected: Mapping[str, str], types: Mapping[str, NodeType] = TYPES) -> None:
    """The violations are exactly these fields, each description containing the given fragment."""
    found = problems(document, types)
    assert set(found) == set(expected), found
    for field, fragment in expected.items():
        assert fragment in found[field], (field, found[field])


# -- the domain model --


def test_the_design_example_parses_into_the_model() -> None:
    definition = parse_definition(design_example(), TYPES)
    assert definition.name == "Order approval"
    assert definition.description == ""
    graph = definition.graph
    assert [node.id for node in graph.nodes] == [
        "start",
        "fetch",
        "check",
        "approve",
        "cool-off",
        "notify",
        "end",
    ]
    assert graph.entry_ids == ("start",)
    assert graph.by_id["check"].config == {"expression": "nodes.fetch.output.body.total > `100`"}
    assert graph.outgoing["check"] == (
        EdgeSpec("check", "approve", "true"),
        EdgeSpec("check", "cool-off", "false"),
    )
    assert graph.incoming["notify"] == (EdgeSpec("approve", "notify"), EdgeSpec("cool-off", "notify"))
    assert graph.incoming["start"] == ()
    assert graph.outgoing["end"] == ()
    order = graph.topological_order
    assert sorted(order) == sorted(graph.by_id)
    for edge in graph.edges:
        assert order.index(edge.source) < order.index(edge.target)

    fetch = graph.by_id["fetch"]
    assert fetch.retry == RetryPolicy(max_attempts=3, backoff_seconds=1, backoff_multiplier=2.0)
    assert fetch.timeout_seconds is None  # timeoutSeconds in config is the request's, not the node's
    assert fetch.name == "fetch"
    assert fetch.queue is None
    assert not fetch.breakpoint

    notify = graph.by_id["notify"]
    assert notify.body is not None
    assert notify.body.entry_ids == ("send",)
    assert definition.find("send") == NodeSpec("send", "wait", "send")
    assert definition.find("fetch") is fetch
    assert definition.find("nope") is None
    assert definition.parent_loop("send") == "notify"
    assert definition.parent_loop("fetch") is None
    assert {node.id for node in definition.iter_nodes()} == {*graph.by_id, "send"}
    assert definition.positions == {"start": (450, 0)}
    assert (definition.width, definition.height) == (0, 0)


def test_the_normalized_document_round_trips() -> None:
    definition = parse_definition(design_example(), TYPES)
    document = json.loads(json.dumps(definition.document))
    assert document == definition.document
    again = parse_definition(document, TYPES)
    assert again == definition
    assert again.document == definition.document
    assert document["name"] == "Order approval"
    assert document["positions"] == {"start": {"x": 450, "y": 0}}
    assert document["nodes"][1]["retry"] == {"maxAttempts": 3, "backoffSeconds": 1}
    assert document["nodes"][5]["body"] == {"nodes": [{"id": "send", "type": "wait"}], "edges": []}


def test_defaults_and_optional_fields() -> None:
    definition = parse_definition(
        {
            "description": "about it",
            "nodes": [
                {
                    "id": "start",
                    "type": "start",
                    "name": "Begin",
                    "breakpoint": True,
                    "timeoutSeconds": 2.5,
                    "retry": {"maxAttempts": 5, "backoffMultiplier": 3, "maxBackoffSeconds": 60},
                }
            ],
            "width": 1200,
            "height": 150,
        },
        TYPES,
    )
    assert definition.name == DEFAULT_NAME
    assert definition.description == "about it"
    assert (definition.width, definition.height) == (1200, 150)
    start = definition.graph.nodes[0]
    assert start == NodeSpec(
        id="start",
        type="start",
        name="Begin",
        config={},
        breakpoint=True,
        retry=RetryPolicy(max_attempts=5, backoff_seconds=0.0, backoff_multiplier=3, max_backoff_seconds=60),
        timeout_seconds=2.5,
    )
    assert definition.document["width"] == 1200
    assert parse_definition(definition.document, TYPES) == definition


def test_the_document_is_not_aliased_by_the_model() -> None:
    document = design_example()
    definition = parse_definition(document, TYPES)
    document["nodes"][2]["config"]["expression"] = "changed"
    assert definition.graph.by_id["check"].config["expression"] == "nodes.fetch.output.body.total > `100`"


def test_retry_backoff_grows_and_is_capped() -> None:
    policy = RetryPolicy(max_attempts=5, backoff_seconds=2, backoff_multiplier=3, max_backoff_seconds=30)
    assert [policy.delay_before(attempt) for attempt in range(1, 6)] == [0.0, 2, 6, 18, 30]
    huge = RetryPolicy(max_attempts=100, backoff_seconds=1, backoff_multiplier=1e300, max_backoff_seconds=5)
    assert huge.delay_before(100) == 5


def test_graph_lookups_and_its_own_guards() -> None:
    nodes = (NodeSpec("b", "log"), NodeSpec("a", "log"), NodeSpec("c", "log"), NodeSpec("d", "log"))
    graph = Graph(nodes, (EdgeSpec("a", "c"), EdgeSpec("b", "c"), EdgeSpec("c", "d")))
    assert graph.entry_ids == ("b", "a")
    assert graph.topological_order == ("b", "a", "c", "d")
    assert graph.incoming["c"] == (EdgeSpec("a", "c"), EdgeSpec("b", "c"))
    with pytest.raises(ValueError, match="cycle"):
        Graph(nodes[:2], (EdgeSpec("a", "b"), EdgeSpec("b", "a")))
    with pytest.raises(ValueError, match="outside this graph"):
        Graph(nodes[:1], (EdgeSpec("b", "zz"),))


# -- everything at once --


def test_every_problem_is_reported_at_once() -> None:
    document = {
        "name": 5,
        "colour": "blue",
        "nodes": [
            {"id": "start", "type": "start"},
            {"id": "bad id!", "type": "log", "config": {"message": "hi"}},
            {
                "id": "fetch",
                "type": "http",
                "config": {"url": "ftp://x", "verb": "GET"},
                "retry": {"maxAttempts": 0},
            },
            {"id": "check", "type": "condition", "config": {"expression": "a b"}},
            {"id": "fetch", "type": "log", "config": {"message": "dup"}},
            {"id": "click", "type": "click"},
            {
                "id": "loop",
                "type": "for_each",
                "config": {"items": "input.list"},
                "body": {
                    "nodes": [{"id": "inner", "type": "transform"}],
                    "edges": [{"from": "inner", "to": "check"}],
                },
            },
            {"id": "a", "type": "log", "config": {"message": "a"}},
            {"id": "b", "type": "log", "config": {"message": "b"}},
            {"id": "end", "type": "end", "timeoutSeconds": 0},
        ],
        "edges": [
            {"from": "start", "to": "fetch"},
            {"from": "fetch", "to": "check", "when": "yes"},
            {"from": "check", "to": "loop", "when": "maybe"},
            {"from": "loop", "to": "ghost"},
            {"from": "a", "to": "b"},
            {"from": "b", "to": "a"},
            {"from": "end", "to": "start"},
            {"from": "start", "to": "fetch"},
            {"from": "check", "to": "check", "when": "true"},
            {"from": "loop", "to": "end", "label": "x"},
        ],
        "positions": {"start": {"x": 1, "y": 2}, "inner": {"x": 0, "y": 0}},
        "width": -5,
    }
    with pytest.raises(InvalidArgument) as caught:
        parse_definition(document, TYPES)
    fields = [violation.field for violation in caught.value.violations]
    assert set(fields) == {
        "name",
        "colour",
        "nodes[1].id",
        "nodes[2].config.url",
        "nodes[2].config.verb",
        "nodes[2].retry.maxAttempts",
        "nodes[3].config.expression",
        "nodes[4].id",
        "nodes[5].type",
        "nodes[6].body.nodes[0].config.output",
        "nodes[6].body.edges[0].to",
        "nodes[9].timeoutSeconds",
        "edges[1].when",
        "edges[2].when",
        "edges[3].to",
        "edges[5]",
        "edges[6].from",
        "edges[6].to",
        "edges[7]",
        "edges[8].to",
        "edges[9].label",
        "positions.inner",
        "width",
    }
    assert len(fields) == len(set(fields))
    # Reachability is left out while some node or edge cannot be read: it would repeat those problems.
    assert not any("reachable" in violation.description for violation in caught.value.violations)
    assert caught.value.message == f"workflow definition is invalid: {len(fields)} problems"


# -- document level --


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"name": 5}, {"name": "must be a string, not a number"}),
        ({"name": "x" * 201}, {"name": "at most 200 characters"}),
        ({"description": ["a"]}, {"description": "must be a string, not an array"}),
        ({"nodes": None}, {"nodes": "required"}),
        ({"nodes": []}, {"nodes": "must not be empty"}),
        ({"nodes": {"id": "start"}}, {"nodes": "must be an array of nodes, not an object"}),
        ({"edges": {"from": "a"}}, {"edges": "must be an array of edges"}),
        ({"width": -1}, {"width": "must be at least 0"}),
        ({"height": 1.5}, {"height": "must be an integer"}),
        ({"width": True}, {"width": "must be an integer, not a boolean"}),
        ({"extra": {}}, {"extra": "unknown field"}),
        ({"positions": [1]}, {"positions": "must be an object"}),
        ({"positions": {"ghost": {"x": 1, "y": 1}}}, {"positions.ghost": "no top-level node 'ghost'"}),
        ({"positions": {"start": {"x": 1}}}, {"positions.start.y": "required"}),
        ({"positions": {"start": {"x": "1", "y": 2}}}, {"positions.start.x": "must be a number"}),
        ({"positions": {"start": {"x": 1, "y": 2, "z": 3}}}, {"positions.start.z": "unknown field"}),
        ({"positions": {"start": [1, 2]}}, {"positions.start": "must be an object"}),
    ],
)
def test_document_fields(change: dict[str, Any], expected: dict[str, str]) -> None:
    document = {**with_node({"type": "log", "config": {"message": "m"}}), **change}
    expect(document, expected)


def test_a_document_must_be_an_object() -> None:
    assert problems(["not", "an", "object"]) == {"document": "must be an object, not an array"}


def test_blank_name_takes_the_default() -> None:
    definition = parse_definition(
        {**with_node({"type": "log", "config": {"message": "m"}}), "name": " "}, TYPES
    )
    assert definition.name == DEFAULT_NAME


def test_too_many_nodes_counting_loop_bodies() -> None:
    loop = {
        "type": "for_each",
        "config": {"items": "input"},
        "body": {"nodes": [{"id": f"b{i}", "type": "log", "config": {"message": "m"}} for i in range(3)]},
    }
    document = with_node(loop)
    parse_definition(document, TYPES, max_nodes=6)
    assert problems(document, max_nodes=5) == {"nodes": "too many nodes: 6 (a workflow may have at most 5)"}


# -- node level --


@pytest.mark.parametrize(
    ("node", "expected"),
    [
        ({"type": None}, {"nodes[1].type": "required"}),
        ({"type": ""}, {"nodes[1].type": "must not be empty"}),
        ({"type": 3}, {"nodes[1].type": "must be a string"}),
        ({"type": "log", "config": {"message": "m"}, "colour": 1}, {"nodes[1].colour": "unknown field"}),
        ({"type": "log", "config": "message"}, {"nodes[1].config": "must be an object, not a string"}),
        ({"type": "log", "config": {"message": "m"}, "name": 1}, {"nodes[1].name": "must be a string"}),
        (
            {"type": "log", "config": {"message": "m"}, "breakpoint": "yes"},
            {"nodes[1].breakpoint": "boolean"},
        ),
        ({"type": "log", "config": {"message": "m"}, "breakpoint": 1}, {"nodes[1].breakpoint": "boolean"}),
        (
            {"type": "log", "config": {"message": "m"}, "timeoutSeconds": 0},
            {"nodes[1].timeoutSeconds": "greater"},
        ),
        (
            {"type": "log", "config": {"message": "m"}, "timeoutSeconds": -2},
            {"nodes[1].timeoutSeconds": "greater"},
        ),
        (
            {"type": "log", "config": {"message": "m"}, "timeoutSeconds": "5"},
            {"nodes[1].timeoutSeconds": "number"},
        ),
        (
            {"type": "log", "config": {"message": "m"}, "timeoutSeconds": True},
            {"nodes[1].timeoutSeconds": "number"},
        ),
        ({"type": "log", "config": {"message": "m"}, "queue": 5}, {"nodes[1].queue": "must be a string"}),
        ({"type": "log", "config": {"message": "m"}, "retry": 3}, {"nodes[1].retry": "must be an object"}),
        (
            {"type": "log", "config": {"message": "m"}, "retry": {"maxAttempts": 0}},
            {"nodes[1].retry.maxAttempts": "at least 1"},
        ),
        (
            {"type": "log", "config": {"message": "m"}, "retry": {"maxAttempts": 101}},
            {"nodes[1].retry.maxAttempts": "at most 100"},
        ),
        (
            {"type": "log", "config": {"message": "m"}, "retry": {"maxAttempts": 2.5}},
            {"nodes[1].retry.maxAttempts": "integer"},
        ),
        (
            {"type": "log", "config": {"message": "m"}, "retry": {"maxAttempts": True}},
            {"nodes[1].retry.maxAttempts": "integer"},
        ),
        (
            {"type": "log", "config": {"message": "m"}, "retry": {"backoffSeconds": -1}},
            {"nodes[1].retry.backoffSeconds": "at least 0"},
        ),
        (
            {"type": "log", "config": {"message": "m"}, "retry": {"backoffMultiplier": 0.5}},
            {"nodes[1].retry.backoffMultiplier": "at least 1"},
        ),
        (
            {"type": "log", "config": {"message": "m"}, "retry": {"maxBackoffSeconds": -1}},
            {"nodes[1].retry.maxBackoffSeconds": "at least 0"},
        ),
        (
            {"type": "log", "config": {"message": "m"}, "retry": {"attempts": 2}},
            {"nodes[1].retry.attempts": "unknown field"},
        ),
        (
            {"type": "log", "config": {"message": "m", "extra": float("nan")}},
            {"nodes[1].config.extra": "finite"},
        ),
        (
            {"type": "log", "config": {"message": "m"}, "body": {"nodes": []}},
            {"nodes[1].body": "a log node takes no body"},
        ),
        ({"type": "for_each", "config": {"items": "input"}}, {"nodes[1].body": "required"}),
        (
            {"type": "for_each", "config": {"items": "input"}, "body": []},
            {"nodes[1].body": "must be an object"},
        ),
        (
            {"type": "for_each", "config": {"items": "input"}, "body": {"nodes": []}},
            {"nodes[1].body.nodes": "must not be empty"},
        ),
        ({"type": "for_each", "config": {"items": "input"}, "body": {}}, {"nodes[1].body.nodes": "required"}),
        (
            {
                "type": "for_each",
                "config": {"items": "input"},
                "body": {"nodes": [{"id": "i", "type": "breakpoint"}], "x": 1},
            },
            {"nodes[1].body.x": "unknown field"},
        ),
        (
            {
                "type": "for_each",
                "config": {"items": "input"},
                "body": {"nodes": [{"id": "s", "type": "start"}]},
            },
            {"nodes[1].body.nodes[0].type": "top level"},
        ),
    ],
)
def test_node_fields(node: dict[str, Any], expected: dict[str, str]) -> None:
    expect(with_node(node), expected)


@pytest.mark.parametrize(
    ("node_id", "fragment"),
    [
        (None, "required"),
        (7, "must be a string, not a number"),
        ("has space", "must be 1-128 letters, digits, '_' or '-'"),
        ("x" * 129, "1-128 letters"),
        ("n\n", "1-128 letters"),
        ("", "1-128 letters"),
    ],
)
def test_node_ids(node_id: Any, fragment: str) -> None:
    document = {"nodes": [{"id": "start", "type": "start"}, {"id": node_id, "type": "breakpoint"}]}
    expect(document, {"nodes[1].id": fragment})


def test_node_ids_are_unique_across_loop_bodies() -> None:
    loop = {
        "type": "for_each",
        "config": {"items": "input"},
        "body": {"nodes": [{"id": "start", "type": "breakpoint"}]},
    }
    expect(
        with_node(loop), {"nodes[1].body.nodes[0].id": "duplicate node id 'start' (first used at nodes[0])"}
    )


def test_a_node_id_may_be_128_characters() -> None:
    node_id = "x" * 128
    parse_definition(with_node({"id": node_id, "type": "log", "config": {"message": "m"}}), TYPES)


def test_an_unknown_type_needs_a_queue_and_then_takes_any_config() -> None:
    found = problems(with_node({"type": "navigate", "config": {"url": "x"}}))
    assert set(found) == {"nodes[1].type"}
    message = found["nodes[1].type"]
    assert message.startswith("unknown node type 'navigate': set \"queue\" to hand it to external workers")
    for builtin in ("approval", "for_each", "http", "start", "task", "wait"):
        assert builtin in message

    definition = parse_definition(
        with_node({"type": "navigate", "queue": "browser", "config": {"url": "x", "anything": [1]}}), TYPES
    )
    node = definition.graph.by_id["n"]
    assert (node.type, node.queue, node.config) == ("navigate", "browser", {"url": "x", "anything": [1]})
    expect(with_node({"type": "navigate", "queue": ""}), {"nodes[1].type": "unknown node type"})
    expect(
        with_node({"type": "navigate", "queue": "q", "body": {"nodes": []}}),
        {"nodes[1].body": "a navigate node takes no body"},
    )


def test_a_task_takes_its_queue_from_the_node_or_its_config() -> None:
    expect(with_node({"type": "task", "config": {"x": 1}}), {"nodes[1].queue": "needs a queue"})
    from_node = parse_definition(with_node({"type": "task", "queue": "q1", "config": {"x": 1}}), TYPES)
    assert from_node.graph.by_id["n"].queue == "q1"
    from_config = parse_definition(with_node({"type": "task", "config": {"queue": "q2", "y": {}}}), TYPES)
    assert from_config.graph.by_id["n"].queue == "q2"
    assert from_config.graph.by_id["n"].config == {"queue": "q2", "y": {}}
    expect(with_node({"type": "task", "config": {"queue": 5}}), {"nodes[1].config.queue": "must be a string"})


# -- edges and graph rules --


def log(node_id: str) -> dict[str, Any]:
    return {"id": node_id, "type": "log", "config": {"message": node_id}}


def graph_doc(
    nodes: list[dict[str, Any]], edges: list[tuple[str, str] | tuple[str, str, str]]
) -> dict[str, Any]:
    return {
        "nodes": [{"id": "start", "type": "start"}, *nodes],
        "edges": [{"from": e[0], "to": e[1], **({"when": e[2]} if len(e) == 3 else {})} for e in edges],
    }


@pytest.mark.parametrize(
    ("edge", "expected"),
    [
        ("not an edge", {"edges[3]": "must be an object"}),
        ({"to": "a"}, {"edges[3].from": "required"}),
        ({"from": "a"}, {"edges[3].to": "required"}),
        ({"from": "a", "to": 3}, {"edges[3].to": "must be a string"}),
        ({"from": "b", "to": "c", "weight": 1}, {"edges[3].weight": "unknown field"}),
        ({"from": "b", "to": "cc"}, {"edges[3].to": "no node 'cc' (did you mean 'c'?)"}),
        ({"from": "zzz", "to": "b"}, {"edges[3].from": "no node 'zzz'"}),
        ({"from": "b", "to": "c", "when": 1}, {"edges[3].when": "must be a string"}),
        (
            {"from": "b", "to": "c", "when": "true"},
            {"edges[3].when": "edges from 'b' (type 'log') take no \"when\""},
        ),
        ({"from": "b", "to": "b"}, {"edges[3].to": "cannot lead from node 'b' to itself"}),
        ({"from": "b", "to": "start"}, {"edges[3].to": "no edge may lead into the start node 'start'"}),
        ({"from": "start", "to": "a"}, {"edges[3]": "duplicate of edges[0]"}),
    ],
)
def test_edge_rules(edge: Any, expected: dict[str, str]) -> None:
    document = graph_doc([log("a"), log("b"), log("c")], [("start", "a"), ("a", "b"), ("a", "c")])
    document["edges"].append(edge)
    expect(document, expected)


def test_no_edge_leaves_an_end_node() -> None:
    document = graph_doc([{"id": "end", "type": "end"}, log("after")], [("start", "end"), ("end", "after")])
    expect(document, {"edges[1].from": "no edge may leave the end node 'end'"})


def test_exactly_one_start_node() -> None:
    expect({"nodes": [log("a")]}, {"nodes": "no start node"})
    document = graph_doc([{"id": "start2", "type": "start"}], [])
    expect(document, {"nodes[1].type": "more than one start node (the first is nodes[0])"})


def test_every_node_is_reachable_from_start() -> None:
    document = graph_doc([log("a"), log("island"), log("b")], [("start", "a"), ("island", "b")])
    expect(document, {"nodes[2]": "node 'island' is not reachable", "nodes[3]": "node 'b' is not reachable"})


def test_a_cycle_is_reported_on_the_edge_that_closes_it_with_its_nodes_in_order() -> None:
    document = graph_doc([log("a"), log("b"), log("c")], [("start", "a"), ("a", "b"), ("b", "c"), ("c", "a")])
    expect(document, {"edges[3]": "closes a cycle: a -> b -> c -> a"})


def test_a_cycle_in_a_loop_body_is_reported_with_the_body_path() -> None:
    body = {"nodes": [log("x"), log("y")], "edges": [{"from": "x", "to": "y"}, {"from": "y", "to": "x"}]}
    loop = {"type": "for_each", "config": {"items": "input"}, "body": body}
    expect(with_node(loop), {"nodes[1].body.edges[1]": "closes a cycle: x -> y -> x"})


def test_edges_connect_nodes_of_the_same_graph_only() -> None:
    body = {"nodes": [log("inner")], "edges": [{"from": "inner", "to": "end"}]}
    document = with_node({"type": "for_each", "config": {"items": "input"}, "body": body})
    document["edges"].append({"from": "start", "to": "inner"})
    expect(
        document,
        {
            "nodes[1].body.edges[0].to": "node 'end' is at the top level",
            "edges[2].to": "node 'inner' is in the body of 'n'",
        },
    )


def test_a_loop_body_needs_no_start_and_may_hold_several_entries() -> None:
    body = {
        "nodes": [log("x"), log("y"), log("z")],
        "edges": [{"from": "x", "to": "z"}, {"from": "y", "to": "z"}],
    }
    definition = parse_definition(
        with_node({"type": "for_each", "config": {"items": "input"}, "body": body}), TYPES
    )
    loop_body = definition.graph.by_id["n"].body
    assert loop_body is not None
    assert loop_body.entry_ids == ("x", "y")
    assert definition.parent_loop("z") == "n"


def test_nested_loops() -> None:
    inner = {
        "id": "inner",
        "type": "for_each",
        "config": {"items": "item.parts"},
        "body": {"nodes": [log("leaf")]},
    }
    outer = {
        "type": "for_each",
        "config": {"items": "input.orders", "concurrency": 4},
        "body": {"nodes": [inner]},
    }
    definition = parse_definition(with_node(outer), TYPES)
    assert definition.parent_loop("leaf") == "inner"
    assert definition.parent_loop("inner") == "n"
    expect(
        with_node(
            {**outer, "body": {"nodes": [{**inner, "body": {"nodes": [{"id": "leaf", "type": "nope"}]}}]}}
        ),
        {"nodes[1].body.nodes[0].body.nodes[0].type": "unknown node type 'nope'"},
    )


@pytest.mark.parametrize(
    ("source", "when", "ok"),
    [
        ({"type": "condition", "config": {"expression": "input.x"}}, "true", True),
        ({"type": "condition", "config": {"expression": "input.x"}}, "false", True),
        ({"type": "condition", "config": {"expression": "input.x"}}, "yes", False),
        ({"type": "switch", "config": {"expression": "input.x", "cases": ["a", "b"]}}, "b", True),
        ({"type": "switch", "config": {"expression": "input.x", "cases": ["a", "b"]}}, "default", True),
        ({"type": "switch", "config": {"expression": "input.x", "cases": ["a", "b"]}}, "c", False),
        ({"type": "wait"}, "timeout", True),
        ({"type": "approval"}, "timeout", True),
        ({"type": "wait"}, "done", False),
    ],
)
def test_when_must_name_a_branch_of_the_source(source: dict[str, Any], when: str, ok: bool) -> None:
    document = with_node(source, extra_edges=[{"from": "n", "to": "x", "when": when}])
    document["nodes"].append(log("x"))
    if ok:
        parse_definition(document, TYPES)
        return
    found = problems(document)
    assert set(found) == {"edges[2].when"}
    assert f"{when!r} is not a branch of 'n': use one of" in found["edges[2].when"]
    assert "'default'" in found["edges[2].when"] or source["type"] != "switch"


def test_edges_with_different_when_are_not_duplicates() -> None:
    source = {"type": "switch", "config": {"expression": "input.x", "cases": ["a"]}}
    document = with_node(source, extra_edges=[{"from": "n", "to": "end", "when": "a"}])
    parse_definition(document, TYPES)
    document["edges"].append({"from": "n", "to": "end", "when": "a"})
    expect(document, {"edges[3]": "duplicate of edges[2]"})


# -- config schemas --


class Probe(NodeType):
    type_name = "probe"
    config_schema: ClassVar[Mapping[str, ConfigField]] = {
        "s": ConfigField("string"),
        "num": ConfigField("number", minimum=1, maximum=10),
        "i": ConfigField("integer", maximum=3),
        "b": ConfigField("boolean"),
        "e": ConfigField("expression"),
        "t": ConfigField("template"),
        "o": ConfigField("object"),
        "a": ConfigField("array"),
        "any": ConfigField("any"),
        "c": ConfigField("string", choices=("x", "y")),
        "req": ConfigField("string", required=True),
    }

    def check_config(self, config: Mapping[str, Any]) -> list[tuple[str, str]]:
        return [("a[1]", "checked"), ("", "whole")] if config.get("s") == "flag" else []


class Open(NodeType):
    type_name = "open"
    open_config = True
    config_schema: ClassVar[Mapping[str, ConfigField]] = {"known": ConfigField("integer")}


class Crashy(NodeType):
    type_name = "crashy"
    config_schema: ClassVar[Mapping[str, ConfigField]] = {"n": ConfigField("number")}

    def check_config(self, config: Mapping[str, Any]) -> list[tuple[str, str]]:
        return [("n", "small")] if config["n"] + 1 < 3 else []


PROBE_TYPES: dict[str, NodeType] = {**TYPES, "probe": Probe(), "open": Open(), "crashy": Crashy()}


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({}, {"req": "required"}),
        ({"req": None}, {"req": "required"}),
        ({"req": "r", "s": 1}, {"s": "must be a string, not a number"}),
        ({"req": "r", "num": "1"}, {"num": "must be a number"}),
        ({"req": "r", "num": True}, {"num": "must be a number, not a boolean"}),
        ({"req": "r", "num": 0.5}, {"num": "must be at least 1"}),
        ({"req": "r", "num": 11}, {"num": "must be at most 10"}),
        ({"req": "r", "i": 1.5}, {"i": "must be an integer"}),
        ({"req": "r", "i": False}, {"i": "must be an integer"}),
        ({"req": "r", "i": 4}, {"i": "at most 3"}),
        ({"req": "r", "b": "true"}, {"b": "must be a boolean"}),
        ({"req": "r", "b": 0}, {"b": "must be a boolean"}),
        ({"req": "r", "e": 5}, {"e": "JMESPath expression"}),
        ({"req": "r", "e": "a."}, {"e": "invalid expression 'a.'"}),
        ({"req": "r", "e": ""}, {"e": "empty expression"}),
        ({"req": "r", "t": {"h": ["ok", "{{ x[ }}"]}}, {"t.h[1]": "invalid expression 'x['"}),
        ({"req": "r", "t": "{{ open"}, {"t": "unterminated"}),
        ({"req": "r", "o": []}, {"o": "must be an object"}),
        ({"req": "r", "a": {}}, {"a": "must be an array"}),
        ({"req": "r", "c": "z"}, {"c": "must be one of: x, y"}),
        ({"req": "r", "zzz": 1}, {"zzz": "unknown field (a probe node takes: s, num"}),
        ({"req": "r", "s": "flag"}, {"a[1]": "checked", "": "whole"}),
    ],
)
def test_config_schema_kinds(config: dict[str, Any], expected: dict[str, str]) -> None:
    expect(
        with_node({"type": "probe", "config": config}),
        {
            ("nodes[1].config" + (f".{k}" if k and not k.startswith("[") else k)): v
            for k, v in expected.items()
        },
        PROBE_TYPES,
    )


def test_config_schema_accepts_good_values() -> None:
    config = {
        "req": "r",
        "s": "flagless",
        "num": 10,
        "i": 3.0,
        "b": False,
        "e": "input.x",
        "t": {"k": "{{ input.x }}"},
        "o": {},
        "a": [],
        "any": None,
        "c": "y",
    }
    parse_definition(with_node({"type": "probe", "config": config}), PROBE_TYPES)


def test_open_config_accepts_unknown_keys_but_still_checks_known_ones() -> None:
    parse_definition(with_node({"type": "open", "config": {"known": 1, "free": {"x": [1]}}}), PROBE_TYPES)
    expect(
        with_node({"type": "open", "config": {"known": "1"}}),
        {"nodes[1].config.known": "integer"},
        PROBE_TYPES,
    )


def test_a_check_config_that_crashes_is_reported_only_when_the_schema_found_nothing() -> None:
    expect(
        with_node({"type": "crashy", "config": {"n": "x"}}),
        {"nodes[1].config.n": "must be a number"},
        PROBE_TYPES,
    )
    expect(
        with_node({"type": "crashy", "config": {}}), {"nodes[1].config": "could not be checked"}, PROBE_TYPES
    )
    expect(with_node({"type": "crashy", "config": {"n": 1}}), {"nodes[1].config.n": "small"}, PROBE_TYPES)


# -- the built-in node types --


def test_builtin_declarations() -> None:
    assert set(TYPES) == {
        "start",
        "end",
        "delay",
        "wait",
        "approval",
        "breakpoint",
        "http",
        "transform",
        "condition",
        "switch",
        "for_each",
        "fail",
        "log",
        "subworkflow",
        "task",
    }
    inline = {name for name, node_type in TYPES.items() if node_type.inline}
    assert inline >= {"start", "end", "transform", "condition", "switch", "fail", "log"}
    assert not inline & {"http", "for_each"}
    assert {name for name, node_type in TYPES.items() if node_type.has_body} == {"for_each"}
    assert {name for name, node_type in TYPES.items() if node_type.open_config} == {"task"}
    assert all(name == node_type.type_name for name, node_type in TYPES.items())


VALID_NODES: list[dict[str, Any]] = [
    {"type": "end", "config": {"output": {"total": "{{ nodes.fetch.output.body.total }}"}}},
    {"type": "breakpoint"},
    {"type": "delay", "config": {"seconds": 0}},
    {"type": "delay", "config": {"seconds": 2.5}},
    {"type": "delay", "config": {"until": "2030-01-01T09:00:00Z"}},
    {"type": "delay", "config": {"until": "2030-01-01T09:00:00+02:00"}},
    {"type": "delay", "config": {"until": "{{ input.when }}"}},
    {
        "type": "wait",
        "config": {"timeoutSeconds": 60, "onTimeout": "branch", "display": {"a": "{{ input }}"}},
    },
    {
        "type": "approval",
        "config": {
            "title": "Ship it?",
            "message": "Check the order",
            "timeoutSeconds": 3600,
            "onTimeout": "continue",
            "display": "{{ input.order }}",
            "formFields": [
                {"name": "approved", "type": "boolean", "required": True, "default": False},
                {"name": "note", "label": "Note", "description": "Why", "default": "none"},
                {"name": "amount", "type": "number", "default": 2.5},
                {"name": "tier", "type": "select", "options": ["gold", "silver"], "default": "gold"},
            ],
        },
    },
    {
        "type": "http",
        "config": {
            "method": "POST",
            "url": "https://api.example.com/v1/orders?x=1",
            "headers": {"Authorization": "Bearer {{ input.token }}", "X-Count": 3},
            "query": {"ids": ["1", "{{ input.id }}"], "q": "x"},
            "body": {"id": "{{ input.id }}"},
            "timeoutSeconds": 2,
            "expectStatus": [200, 201, 404],
            "responseType": "text",
        },
    },
    {"type": "http", "config": {"url": "{{ input.baseUrl }}/orders", "headers": "{{ input.headers }}"}},
    {"type": "transform", "config": {"output": {"sum": "{{ sum(input.values) }}", "fixed": [1, 2]}}},
    {"type": "transform", "config": {"output": None}} | {"config": {"output": 0}},
    {"type": "fail", "config": {"message": "bad order {{ input.id }}", "code": "BAD_ORDER"}},
    {"type": "fail"},
    {"type": "log", "config": {"message": "{{ input }}", "level": "warning"}},
    {"type": "subworkflow", "config": {"workflowId": "wf_1", "input": {"a": "{{ input.a }}"}}},
    {"type": "subworkflow", "config": {"workflowPath": "child.yaml", "waitForCompletion": False}},
    {"type": "task", "queue": "browser", "config": {"selector": "#go"}},
]


@pytest.mark.parametrize("node", VALID_NODES)
def test_valid_builtin_nodes(node: dict[str, Any]) -> None:
    parse_definition(with_node(node), TYPES)


FORM = "nodes[1].config.formFields"


@pytest.mark.parametrize(
    ("node", "expected"),
    [
        ({"type": "end", "config": {"output": "{{ x. }}"}}, {"nodes[1].config.output": "invalid expression"}),
        (
            {"type": "breakpoint", "config": {"x": 1}},
            {"nodes[1].config.x": "unknown field (a breakpoint node takes: none)"},
        ),
        ({"type": "delay"}, {"nodes[1].config": 'set "seconds" or "until"'}),
        (
            {"type": "delay", "config": {"seconds": 1, "until": "2030-01-01T00:00:00Z"}},
            {"nodes[1].config.until": "not both"},
        ),
        ({"type": "delay", "config": {"seconds": -1}}, {"nodes[1].config.seconds": "at least 0"}),
        ({"type": "delay", "config": {"until": "tomorrow"}}, {"nodes[1].config.until": "RFC 3339"}),
        (
            {"type": "delay", "config": {"until": "2030-01-01T09:00:00"}},
            {"nodes[1].config.until": "time zone offset"},
        ),
        ({"type": "delay", "config": {"until": 1700000000}}, {"nodes[1].config.until": "must be a string"}),
        (
            {"type": "wait", "config": {"timeoutSeconds": 0}},
            {"nodes[1].config.timeoutSeconds": "greater than 0"},
        ),
        (
            {"type": "wait", "config": {"onTimeout": "explode"}},
            {"nodes[1].config.onTimeout": "fail, continue, branch"},
        ),
        (
            {"type": "wait", "config": {"display": "{{ a b }}"}},
            {"nodes[1].config.display": "invalid expression"},
        ),
        (
            {"type": "approval", "config": {"timeoutSeconds": -1}},
            {"nodes[1].config.timeoutSeconds": "greater than 0"},
        ),
        ({"type": "approval", "config": {"title": 5}}, {"nodes[1].config.title": "must be a string"}),
        ({"type": "approval", "config": {"formFields": {"a": 1}}}, {FORM: "must be an array"}),
        (
            {
                "type": "approval",
                "config": {
                    "formFields": [
                        "text",
                        {"type": "text"},
                        {"name": "1st"},
                        {"name": "ok", "type": "date"},
                        {"name": "ok", "color": "red"},
                        {"name": "pick", "type": "select"},
                        {"name": "pick2", "type": "select", "options": ["a", "a", ""], "default": "b"},
                        {"name": "note", "options": ["a"]},
                        {"name": "n", "type": "number", "default": "3"},
                        {"name": "flag", "type": "boolean", "default": "yes"},
                        {"name": "words", "default": 5, "required": "no", "label": 1, "description": []},
                    ]
                },
            },
            {
                f"{FORM}[0]": "must be an object",
                f"{FORM}[1].name": "required",
                f"{FORM}[2].name": "identifier",
                f"{FORM}[3].type": "text, number, boolean, select",
                f"{FORM}[4].name": "duplicate field name 'ok' (also formFields[3])",
                f"{FORM}[4].color": "unknown field",
                f"{FORM}[5].options": "non-empty array of options",
                f"{FORM}[6].options[1]": "duplicate option 'a'",
                f"{FORM}[6].options[2]": "non-empty string",
                f"{FORM}[6].default": "one of the options",
                f"{FORM}[7].options": "only select fields",
                f"{FORM}[8].default": "must be a number",
                f"{FORM}[9].default": "true or false",
                f"{FORM}[10].default": "must be a string",
                f"{FORM}[10].required": "boolean",
                f"{FORM}[10].label": "must be a string",
                f"{FORM}[10].description": "must be a string",
            },
        ),
        ({"type": "http"}, {"nodes[1].config.url": "required"}),
        (
            {"type": "http", "config": {"url": "ftp://example.com/x"}},
            {"nodes[1].config.url": "absolute http://"},
        ),
        ({"type": "http", "config": {"url": "/relative"}}, {"nodes[1].config.url": "absolute http://"}),
        (
            {"type": "http", "config": {"url": "http://host:99999/"}},
            {"nodes[1].config.url": "not a valid URL"},
        ),
        ({"type": "http", "config": {"url": 5}}, {"nodes[1].config.url": "must be a string"}),
        (
            {"type": "http", "config": {"url": "http://x/{{ a. }}"}},
            {"nodes[1].config.url": "invalid expression"},
        ),
        (
            {"type": "http", "config": {"url": "http://x", "method": "FETCH"}},
            {"nodes[1].config.method": "GET, POST"},
        ),
        (
            {
                "type": "http",
                "config": {"url": "http://x", "headers": {"Bad Name": "1", "X-A": {"o": 1}, "X-B": "a\r\nb"}},
            },
            {
                "nodes[1].config.headers.Bad Name": "not a valid header name",
                "nodes[1].config.headers.X-A": "must be a string",
                "nodes[1].config.headers.X-B": "line breaks",
            },
        ),
        (
            {"type": "http", "config": {"url": "http://x", "headers": {"Authorization": "Bearer {{ t[ }}"}}},
            {"nodes[1].config.headers.Authorization": "invalid expression 't['"},
        ),
        (
            {"type": "http", "config": {"url": "http://x", "headers": ["a"]}},
            {"nodes[1].config.headers": "must be an object"},
        ),
        (
            {"type": "http", "config": {"url": "http://x", "query": {"q": {"a": 1}}}},
            {"nodes[1].config.query.q": "array of them"},
        ),
        (
            {"type": "http", "config": {"url": "http://x", "expectStatus": [99, 200, "201", True]}},
            {
                "nodes[1].config.expectStatus[0]": "100 to 599",
                "nodes[1].config.expectStatus[2]": "100 to 599",
                "nodes[1].config.expectStatus[3]": "100 to 599",
            },
        ),
        (
            {"type": "http", "config": {"url": "http://x", "expectStatus": []}},
            {"nodes[1].config.expectStatus": "at least one"},
        ),
        (
            {"type": "http", "config": {"url": "http://x", "timeoutSeconds": 0}},
            {"nodes[1].config.timeoutSeconds": "greater than 0"},
        ),
        (
            {"type": "http", "config": {"url": "http://x", "responseType": "xml"}},
            {"nodes[1].config.responseType": "json, text"},
        ),
        ({"type": "transform"}, {"nodes[1].config.output": "required"}),
        (
            {"type": "transform", "config": {"output": {"a": ["{{ }}"]}}},
            {"nodes[1].config.output.a[0]": "empty expression"},
        ),
        ({"type": "condition"}, {"nodes[1].config.expression": "required"}),
        (
            {"type": "condition", "config": {"expression": "{{ input.x }}"}},
            {"nodes[1].config.expression": "invalid expression"},
        ),
        ({"type": "switch", "config": {"expression": "input.x"}}, {"nodes[1].config.cases": "required"}),
        (
            {"type": "switch", "config": {"expression": "input.x", "cases": "a"}},
            {"nodes[1].config.cases": "must be an array"},
        ),
        (
            {"type": "switch", "config": {"expression": "input.x", "cases": []}},
            {"nodes[1].config.cases": "at least one"},
        ),
        (
            {"type": "switch", "config": {"expression": "input.x", "cases": ["a", "a", "", 3, "default"]}},
            {
                "nodes[1].config.cases[1]": "duplicate case 'a'",
                "nodes[1].config.cases[2]": "non-empty string",
                "nodes[1].config.cases[3]": "non-empty string",
                "nodes[1].config.cases[4]": "reserved",
            },
        ),
        (
            {"type": "for_each", "body": {"nodes": [{"id": "b", "type": "breakpoint"}]}},
            {"nodes[1].config.items": "required"},
        ),
        (
            {
                "type": "for_each",
                "config": {"items": "input", "concurrency": 0},
                "body": {"nodes": [{"id": "b", "type": "breakpoint"}]},
            },
            {"nodes[1].config.concurrency": "at least 1"},
        ),
        (
            {
                "type": "for_each",
                "config": {"items": "input", "itemName": "x"},
                "body": {"nodes": [{"id": "b", "type": "breakpoint"}]},
            },
            {"nodes[1].config.itemName": "unknown field"},
        ),
        ({"type": "fail", "config": {"code": 5}}, {"nodes[1].config.code": "must be a string"}),
        (
            {"type": "fail", "config": {"message": "{{ 'x }}"}},
            {"nodes[1].config.message": "invalid expression"},
        ),
        ({"type": "log"}, {"nodes[1].config.message": "required"}),
        (
            {"type": "log", "config": {"message": "m", "level": "loud"}},
            {"nodes[1].config.level": "debug, info, warning, error"},
        ),
        ({"type": "subworkflow"}, {"nodes[1].config": 'set "workflowId" or "workflowPath"'}),
        (
            {"type": "subworkflow", "config": {"workflowId": "a", "workflowPath": "b"}},
            {"nodes[1].config.workflowPath": "not both"},
        ),
        (
            {"type": "subworkflow", "config": {"workflowId": " "}},
            {"nodes[1].config.workflowId": "must not be empty"},
        ),
        (
            {"type": "subworkflow", "config": {"workflowId": "a", "waitForCompletion": "no"}},
            {"nodes[1].config.waitForCompletion": "boolean"},
        ),
        # Times a Timestamp could not show, or a timer could not hold, are refused when sent.
        (
            {"type": "wait", "config": {"timeoutSeconds": 1e308}},
            {"nodes[1].config.timeoutSeconds": "at most"},
        ),
        (
            {"type": "approval", "config": {"title": "t", "timeoutSeconds": 4e8}},
            {"nodes[1].config.timeoutSeconds": "at most"},
        ),
        (
            {"type": "http", "config": {"url": "http://x", "timeoutSeconds": 90000}},
            {"nodes[1].config.timeoutSeconds": "at most"},
        ),
        (
            {"type": "delay", "config": {"until": "9999-12-31T23:59:59-01:00"}},
            {"nodes[1].config.until": "ten years from now"},
        ),
        (
            {"type": "delay", "config": {"until": "1900-01-01T00:00:00Z"}},
            {"nodes[1].config.until": "1970-01-01"},
        ),
    ],
)
def test_invalid_builtin_nodes(node: dict[str, Any], expected: dict[str, str]) -> None:
    expect(with_node(node), expected)


def test_switch_labels_follow_its_cases() -> None:
    switch = TYPES["switch"]
    assert switch.branch_labels({"cases": ["a", "b"]}) == frozenset({"a", "b", "default"})
    assert switch.branch_labels({"cases": "broken"}) == frozenset({"default"})
    assert TYPES["condition"].branch_labels({}) == frozenset({"true", "false"})
    assert TYPES["wait"].branch_labels({}) == frozenset({"timeout"})
    assert TYPES["approval"].branch_labels({}) == frozenset({"timeout"})
    assert TYPES["http"].branch_labels({}) is None


# -- plugins --


class Plugin(NodeType):
    type_name = "send_email"


class Impostor(NodeType):
    type_name = "http"


class FakeEntryPoint:
    def __init__(self, name: str, loaded: Any) -> None:
        self.name = name
        self.value = f"plugins:{name}"
        self._loaded = loaded

    def load(self) -> Any:
        if isinstance(self._loaded, Exception):
            raise self._loaded
        return self._loaded


@pytest.fixture
def entry_points(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[FakeEntryPoint]]:
    found: list[FakeEntryPoint] = []

    def fake(*, group: str) -> list[FakeEntryPoint]:
        assert group == "runctl.node_types"
        return found

    monkeypatch.setattr(registry, "entry_points", fake)
    yield found


def test_plugins_add_node_types_but_never_replace_or_crash(
    entry_points: list[FakeEntryPoint], caplog: pytest.LogCaptureFixture
) -> None:
    entry_points += [
        FakeEntryPoint("email", Plugin),
        FakeEntryPoint("impostor", Impostor),
        FakeEntryPoint("broken", ImportError("no module named nowhere")),
        FakeEntryPoint("junk", object),
        FakeEntryPoint("again", Plugin),
    ]
    with caplog.at_level(logging.INFO, logger="runctl_server.nodes.registry"):
        types = load_node_types()
    assert set(types) == {*TYPES, "send_email"}
    assert isinstance(types["send_email"], Plugin)
    assert type(types["http"]) is type(TYPES["http"])
    log_text = caplog.text
    assert "may not replace the built-in type 'http'" in log_text
    assert "broken = plugins:broken failed to load" in log_text
    assert "junk = plugins:junk is not a NodeType subclass" in log_text
    assert "already comes from email = plugins:email" in log_text
    parse_definition(with_node({"type": "send_email"}), types)


# -- loading files --

YAML_EXAMPLE = """
name: Nightly report
description: Build and send the report
nodes:
  - id: start
    type: start
  - id: wait-until
    type: delay
    config:
      until: 2030-01-01T09:00:00Z
  - id: end
    type: end
edges:
  - {from: start, to: wait-until}
  - {from: wait-until, to: end}
"""


def test_yaml_and_json_both_load() -> None:
    from_yaml = load_document(YAML_EXAMPLE, filename="nightly.yaml")
    # Timestamps stay strings: the document must stay plain JSON.
    assert from_yaml["nodes"][1]["config"]["until"] == "2030-01-01T09:00:00Z"
    definition = parse_definition(from_yaml, TYPES)
    assert definition.name == "Nightly report"
    from_json = load_document(json.dumps(from_yaml))
    assert from_json == from_yaml
    assert load_document(DESIGN_EXAMPLE) == design_example()
    # JSON-looking text that is YAML flow style still loads.
    assert load_document("{name: x, nodes: []}") == {"name": "x", "nodes": []}


@pytest.mark.parametrize(
    ("text", "filename", "fragment"),
    [
        ('{"name": "x",\n  "nodes": [}', "", "invalid JSON at line 2, column 13"),
        ('{"name": "x", }', "a.json", "invalid JSON at line 1, column 15"),
        ("name: x\nnodes: [a, b\n", "", "invalid YAML at line 3, column 1"),
        ("name: x\n  bad: indent\n", "w.yml", "invalid YAML at line 2, column 6"),
        ("- a\n- b\n", "", "must be an object with name, nodes and edges; this document is an array"),
        ("", "", "this document is empty"),
        ('"just a string"', "a.json", "this document is a string"),
        ('{"x": NaN}', "a.json", "NaN is not a JSON number"),
        ("x: !!binary aGk=", "", "bytes values are not allowed"),
        ("x: .inf", "", "not a JSON number"),
    ],
)
def test_load_document_reports_where_the_text_is_wrong(text: str, filename: str, fragment: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        load_document(text, filename=filename)
    [violation] = caught.value.violations
    assert violation.field == "document"
    assert fragment in violation.description


def test_yaml_keys_become_strings_and_alias_bombs_are_refused() -> None:
    assert load_document("200: ok\ntrue: yes\n") == {"200": "ok", "true": True}
    bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, "
        f"*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n"
        for i in range(8)
    )
    with pytest.raises(InvalidArgument, match="too large"):
        load_document(bomb)


def test_parse_definition_does_not_mutate_its_input() -> None:
    document = design_example()
    before = copy.deepcopy(document)
    parse_definition(document, TYPES)
    assert document == before


def test_the_model_is_immutable_and_parsing_deterministic() -> None:
    first = parse_definition(design_example(), TYPES)
    assert first == parse_definition(design_example(), TYPES)
    with pytest.raises(dataclasses.FrozenInstanceError):
        first.name = "other"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        first.graph.nodes[0].type = "end"  # type: ignore[misc]
    assert isinstance(first, Definition)


def test_numbers_stay_in_ranges_the_engine_can_compute_with() -> None:
    node = {
        "type": "log",
        "config": {"message": "m", "big": 10**400},
        "timeoutSeconds": 10**400,
        "retry": {"backoffSeconds": 1e12, "backoffMultiplier": 101},
    }
    expect(
        {**with_node(node), "width": 10**400},
        {
            "nodes[1].config.big": "out of range",
            "nodes[1].timeoutSeconds": "at most 315360000",
            "nodes[1].retry.backoffSeconds": "at most 315360000",
            "nodes[1].retry.backoffMultiplier": "at most 100",
            "width": "at most 1000000",
        },
    )
