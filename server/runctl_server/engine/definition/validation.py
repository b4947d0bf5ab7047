"""Validation of a workflow document: every problem found, each with a proto-JSON style field path
(`nodes[2].config.url`, `edges[1].to`), reported at once; a valid document becomes a Definition."""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from runctl_server.engine.definition.model import (
    BODY_KEYS,
    DEFAULT_NAME,
    EDGE_KEYS,
    MAX_CANVAS,
    MAX_LOOP_DEPTH,
    MAX_NAME_LENGTH,
    MAX_SAFE_INTEGER,
    MAX_SECONDS,
    MAX_VALUE_DEPTH,
    NODE_ID,
    NODE_KEYS,
    POSITION_KEYS,
    RETRY_KEYS,
    TOP_KEYS,
    Definition,
)
from runctl_server.engine.expressions import ExpressionError, compile_expression, template_errors
from runctl_server.errors import FieldViolation, InvalidArgument, describe
from runctl_server.nodes.base import ConfigField, NodeType
from runctl_server.nodes.spec import EdgeSpec, Graph, NodeSpec, RetryPolicy


def _is_number(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    # No math.isfinite on ints: a huge JSON integer overflows a float.
    return isinstance(value, int) or (isinstance(value, float) and math.isfinite(value))


def _is_integer(value: Any) -> bool:
    return _is_number(value) and (isinstance(value, int) or value.is_integer())


def _fmt(number: float) -> str:
    return str(int(number)) if float(number).is_integer() else str(number)


def _join(base: str, sub: str) -> str:
    if not sub or not base:
        return base or sub
    return f"{base}{sub}" if sub.startswith("[") else f"{base}.{sub}"


@dataclass
class _Node:
    """What graph-level checks need of one node entry that has a usable id."""

    path: str
    id: str
    type: str
    node_type: NodeType | None
    config: dict[str, Any]
    spec: NodeSpec


class _Parser:
    def __init__(self, node_types: Mapping[str, NodeType], max_nodes: int) -> None:
        self.node_types = node_types
        self.max_nodes = max_nodes
        self.violations: list[FieldViolation] = []
        # Every node id in the document and where it lives (None: top level, else the loop's id), so
        # an edge to a node of another level can say where that node is.
        self.homes: dict[str, str | None] = {}
        self.first_path: dict[str, str] = {}

    def add(self, path: str, description: str) -> None:
        self.violations.append(FieldViolation(path, description))

    # -- small typed readers; each reports its own problem and answers None when the value is bad --

    def unknown_keys(self, raw: Mapping[str, Any], allowed: frozenset[str], prefix: str) -> None:
        for key in raw:
            if key not in allowed:
                self.add(_join(prefix, str(key)), "unknown field")

    def string(self, raw: Mapping[str, Any], key: str, path: str, *, required: bool = False) -> str | None:
        value = raw.get(key)
        if value is None:
            if required:
                self.add(path, "required")
            return None
        if not isinstance(value, str):
            self.add(path, f"must be a string, not {describe(value)}")
            return None
        return value

    def number(
        self,
        raw: Mapping[str, Any],
        key: str,
        path: str,
        *,
        minimum: float | None = None,
        exclusive: bool = False,
        maximum: float | None = None,
        integer: bool = False,
    ) -> float | None:
        value = raw.get(key)
        if value is None:
            return None
        if integer and not _is_integer(value):
            self.add(path, f"must be an integer, not {describe(value)}")
            return None
        if not _is_number(value):
            self.add(path, f"must be a number, not {describe(value)}")
            return None
        if minimum is not None and exclusive and value <= minimum:
            self.add(path, f"must be greater than {_fmt(minimum)}")
            return None
        if minimum is not None and value < minimum:
            self.add(path, f"must be at least {_fmt(minimum)}")
            return None
        if maximum is not None and value > maximum:
            self.add(path, f"must be at most {_fmt(maximum)}")
            return None
        return int(value) if integer else value

    def boolean(self, raw: Mapping[str, Any], key: str, path: str) -> bool | None:
        value = raw.get(key)
        if value is None:
            return None
        if not isinstance(value, bool):
            self.add(path, f"must be a boolean (true or false), not {describe(value)}")
            return None
        return value

    def json_value(self, value: Any, path: str, depth: int = 0) -> tuple[bool, Any]:
        """A plain-JSON copy of `value` (dicts with string keys, lists, finite numbers...)."""
        if value is None or isinstance(value, str | bool):
            return True, value
        if isinstance(value, int | float):
            if isinstance(value, float) and not math.isfinite(value):
                self.add(path, "must be a finite number")
                return False, None
            if isinstance(value, int) and abs(value) > MAX_SAFE_INTEGER:
                self.add(path, "is out of range: integers must lie within +/-2^53")
                return False, None
            return True, value
        if depth >= MAX_VALUE_DEPTH:
            self.add(path, f"nested too deeply (at most {MAX_VALUE_DEPTH} levels)")
            return False, None
        ok = True
        if isinstance(value, Mapping):
            copied: dict[str, Any] = {}
            for key, item in value.items():
                if not isinstance(key, str):
                    self.add(path, f"object keys must be strings, not {describe(key)}")
                    ok = False
                    continue
                item_ok, copied[key] = self.json_value(item, _join(path, key), depth + 1)
                ok = ok and item_ok
            return ok, copied
        if isinstance(value, list | tuple):
            items: list[Any] = []
            for index, item in enumerate(value):
                item_ok, plain = self.json_value(item, f"{path}[{index}]", depth + 1)
                items.append(plain)
                ok = ok and item_ok
            return ok, items
        self.add(path, f"must be a JSON value, not {type(value).__name__}")
        return False, None

    # -- the document --

    def collect_ids(self, nodes: Any, home: str | None, depth: int) -> int:
        """Record every node id (bodies included) and answer how many node entries there are."""
        if not isinstance(nodes, list) or depth > MAX_LOOP_DEPTH:
            return 0
        count = len(nodes)
        for raw in nodes:
            if not isinstance(raw, Mapping):
                continue
            node_id = raw.get("id")
            if isinstance(node_id, str):
                self.homes.setdefault(node_id, home)
                body = raw.get("body")
                if isinstance(body, Mapping):
                    count += self.collect_ids(body.get("nodes"), node_id, depth + 1)
        return count

    def document(self, raw: Mapping[str, Any]) -> Definition | None:
        self.unknown_keys(raw, TOP_KEYS, "")
        normalized: dict[str, Any] = {}

        name = self.string(raw, "name", "name")
        if name is not None and len(name) > MAX_NAME_LENGTH:
            self.add("name", f"must be at most {MAX_NAME_LENGTH} characters")
        name = name if name and name.strip() else DEFAULT_NAME
        normalized["name"] = name
        description = self.string(raw, "description", "description") or ""
        if description:
            normalized["description"] = description

        nodes_raw = raw.get("nodes")
        total = self.collect_ids(nodes_raw, None, 0)
        if total > self.max_nodes:
            self.add("nodes", f"too many nodes: {total} (a workflow may have at most {self.max_nodes})")
            return None  # checking every node of an oversized document would only cost time
        graph, graph_doc = self.graph(nodes_raw, raw.get("edges"), "", None, 0)
        normalized.update(graph_doc)

        positions = self.positions(raw.get("positions"), graph_doc.get("nodes", []))
        normalized["positions"] = {key: {"x": x, "y": y} for key, (x, y) in positions.items()}
        width = self.number(raw, "width", "width", minimum=0, maximum=MAX_CANVAS, integer=True)
        height = self.number(raw, "height", "height", minimum=0, maximum=MAX_CANVAS, integer=True)
        if width is not None:
            normalized["width"] = int(width)
        if height is not None:
            normalized["height"] = int(height)

        if self.violations or graph is None:
            return None
        return Definition(
            name=name,
            description=description,
            graph=graph,
            positions=positions,
            width=int(width or 0),
            height=int(height or 0),
            document=normalized,
        )

    def positions(self, raw: Any, top_nodes: list[dict[str, Any]]) -> dict[str, tuple[float, float]]:
        if raw is None:
            return {}
        if not isinstance(raw, Mapping):
            self.add("positions", f"must be an object of node id -> {{x, y}}, not {describe(raw)}")
            return {}
        top_ids = {node.get("id") for node in top_nodes}
        positions: dict[str, tuple[float, float]] = {}
        for key, value in raw.items():
            path = f"positions.{key}"
            if key not in top_ids:
                self.add(path, f"no top-level node {key!r}")
                continue
            if not isinstance(value, Mapping):
                self.add(path, f"must be an object {{x, y}}, not {describe(value)}")
                continue
            self.unknown_keys(value, POSITION_KEYS, path)
            coordinates: list[float] = []
            for axis in ("x", "y"):
                if value.get(axis) is None:
                    self.add(f"{path}.{axis}", "required")
                number = self.number(value, axis, f"{path}.{axis}", minimum=-MAX_CANVAS, maximum=MAX_CANVAS)
                if number is not None:
                    coordinates.append(number)
            if len(coordinates) == 2:
                positions[key] = (coordinates[0], coordinates[1])
        return positions

    # -- graphs --

    def graph(
        self, nodes_raw: Any, edges_raw: Any, prefix: str, loop: str | None, depth: int
    ) -> tuple[Graph | None, dict[str, Any]]:
        """Parse one level; answers its Graph (None when anything in it is invalid) and normalized form."""
        before = len(self.violations)
        nodes_path = f"{prefix}nodes"
        doc_nodes: list[dict[str, Any]] = []
        doc_edges: list[dict[str, Any]] = []
        nodes: list[_Node] = []
        if nodes_raw is None:
            self.add(
                nodes_path, "required: a workflow needs at least one node" if loop is None else "required"
            )
        elif not isinstance(nodes_raw, list):
            self.add(nodes_path, f"must be an array of nodes, not {describe(nodes_raw)}")
        elif not nodes_raw:
            self.add(nodes_path, "must not be empty")
        else:
            for index, raw in enumerate(nodes_raw):
                node, node_doc = self.node(raw, f"{nodes_path}[{index}]", loop, depth)
                if node_doc is not None:
                    doc_nodes.append(node_doc)
                if node is not None:
                    nodes.append(node)

        by_id = {node.id: node for node in nodes}
        # When some node or edge could not be read, "unreachable" and "no such node" would mostly
        # repeat that problem in other words: leave them out.
        nodes_known = isinstance(nodes_raw, list) and len(nodes) == len(nodes_raw) > 0
        edges, edges_complete = self.edges(
            edges_raw, prefix, loop, by_id if nodes_known or nodes else None, doc_edges
        )
        self.graph_rules(nodes, edges, prefix, loop, complete=nodes_known and edges_complete)

        normalized = {"nodes": doc_nodes, "edges": doc_edges}
        if len(self.violations) != before:
            return None, normalized
        specs = tuple(node.spec for node in nodes)
        return Graph(specs, tuple(edge for _, edge in edges)), normalized

    def node(
        self, raw: Any, path: str, loop: str | None, depth: int
    ) -> tuple[_Node | None, dict[str, Any] | None]:
        if not isinstance(raw, Mapping):
            self.add(path, f"must be an object, not {describe(raw)}")
            return None, None
        self.unknown_keys(raw, NODE_KEYS, path)

        node_id = self.string(raw, "id", f"{path}.id", required=True)
        if node_id is not None:
            if not NODE_ID.fullmatch(node_id):
                self.add(f"{path}.id", "must be 1-128 letters, digits, '_' or '-'")
                node_id = None
            elif node_id in self.first_path:
                self.add(
                    f"{path}.id", f"duplicate node id {node_id!r} (first used at {self.first_path[node_id]})"
                )
                node_id = None
            else:
                self.first_path[node_id] = path
        type_name = self.string(raw, "type", f"{path}.type", required=True)
        if type_name is not None and not type_name.strip():
            self.add(f"{path}.type", "must not be empty")
            type_name = None
        name = self.string(raw, "name", f"{path}.name")
        breakpoint_ = self.boolean(raw, "breakpoint", f"{path}.breakpoint")
        retry, retry_doc = self.retry(raw.get("retry"), f"{path}.retry")
        timeout = self.number(
            raw, "timeoutSeconds", f"{path}.timeoutSeconds", minimum=0, exclusive=True, maximum=MAX_SECONDS
        )
        queue = self.string(raw, "queue", f"{path}.queue")

        config_raw = raw.get("config")
        config: dict[str, Any] = {}
        config_ok = True
        if config_raw is not None:
            if not isinstance(config_raw, Mapping):
                self.add(f"{path}.config", f"must be an object, not {describe(config_raw)}")
                config_ok = False
            else:
                config_ok, config = self.json_value(config_raw, f"{path}.config")

        node_type = self.node_types.get(type_name) if type_name is not None else None
        if type_name is not None:
            if type_name == "start" and loop is not None:
                self.add(
                    f"{path}.type", "a start node belongs at the top level of a workflow, not in a loop body"
                )
            if node_type is None and not (queue and queue.strip()):
                builtins = ", ".join(sorted(self.node_types))
                self.add(
                    f"{path}.type",
                    f'unknown node type {type_name!r}: set "queue" to hand it to external workers, '
                    f"or use a built-in type ({builtins})",
                )
            if node_type is not None and config_ok:
                self.config(node_type, config, f"{path}.config")
            if node_type is not None and getattr(node_type, "needs_queue", False):
                config_queue = config.get("queue")
                queue = queue or (config_queue if isinstance(config_queue, str) else None)
                # A config.queue of the wrong type is already reported by the schema.
                if not queue and not (config_queue is not None and not isinstance(config_queue, str)):
                    self.add(
                        f"{path}.queue",
                        f'a {type_name} node needs a queue: set "queue" (or config.queue) to the queue '
                        "its workers poll",
                    )

        body: Graph | None = None
        body_doc: dict[str, Any] | None = None
        body_raw = raw.get("body")
        takes_body = node_type is not None and node_type.has_body
        if body_raw is not None and type_name is not None and not takes_body:
            self.add(f"{path}.body", f"a {type_name} node takes no body (only loops such as for_each do)")
        elif takes_body:
            body, body_doc = self.body(body_raw, f"{path}.body", node_id, depth)

        node_doc: dict[str, Any] = {"id": raw.get("id"), "type": raw.get("type")}
        if name is not None:
            node_doc["name"] = name
        if config:
            node_doc["config"] = config
        if breakpoint_:
            node_doc["breakpoint"] = True
        if retry_doc:
            node_doc["retry"] = retry_doc
        if timeout is not None:
            node_doc["timeoutSeconds"] = timeout
        if raw.get("queue") is not None:
            node_doc["queue"] = raw.get("queue")
        if body_doc is not None:
            node_doc["body"] = body_doc

        if node_id is None or type_name is None:
            return None, node_doc
        spec = NodeSpec(
            id=node_id,
            type=type_name,
            name=name or node_id,
            config=config,
            breakpoint=bool(breakpoint_),
            retry=retry,
            timeout_seconds=timeout,
            queue=queue or None,
            body=body,
        )
        return _Node(path, node_id, type_name, node_type, config, spec), node_doc

    def body(
        self, raw: Any, path: str, loop: str | None, depth: int
    ) -> tuple[Graph | None, dict[str, Any] | None]:
        if raw is None:
            self.add(path, "required: the nodes and edges to run for each item")
            return None, None
        if not isinstance(raw, Mapping):
            self.add(path, f"must be an object with nodes and edges, not {describe(raw)}")
            return None, None
        if depth + 1 > MAX_LOOP_DEPTH:
            self.add(path, f"loops nest too deeply (at most {MAX_LOOP_DEPTH} levels)")
            return None, None
        self.unknown_keys(raw, BODY_KEYS, path)
        # A body whose loop has a bad id still gets checked; its nodes just cannot name their loop.
        return self.graph(raw.get("nodes"), raw.get("edges"), f"{path}.", loop or "?", depth + 1)

    def retry(self, raw: Any, path: str) -> tuple[RetryPolicy, dict[str, Any]]:
        if raw is None:
            return RetryPolicy(), {}
        if not isinstance(raw, Mapping):
            self.add(path, f"must be an object, not {describe(raw)}")
            return RetryPolicy(), {}
        self.unknown_keys(raw, RETRY_KEYS, path)
        default = RetryPolicy()
        attempts = self.number(
            raw, "maxAttempts", f"{path}.maxAttempts", minimum=1, maximum=100, integer=True
        )
        backoff = self.number(raw, "backoffSeconds", f"{path}.backoffSeconds", minimum=0, maximum=MAX_SECONDS)
        multiplier = self.number(
            raw, "backoffMultiplier", f"{path}.backoffMultiplier", minimum=1, maximum=100
        )
        max_backoff = self.number(
            raw, "maxBackoffSeconds", f"{path}.maxBackoffSeconds", minimum=0, maximum=MAX_SECONDS
        )
        policy = RetryPolicy(
            max_attempts=int(attempts) if attempts is not None else default.max_attempts,
            backoff_seconds=backoff if backoff is not None else default.backoff_seconds,
            backoff_multiplier=multiplier if multiplier is not None else default.backoff_multiplier,
            max_backoff_seconds=max_backoff if max_backoff is not None else default.max_backoff_seconds,
        )
        given = {"maxAttempts": attempts, "backoffSeconds": backoff, "backoffMultiplier": multiplier}
        given["maxBackoffSeconds"] = max_backoff
        return policy, {key: value for key, value in given.items() if value is not None}

    def config(self, node_type: NodeType, config: dict[str, Any], path: str) -> None:
        before = len(self.violations)
        schema = node_type.config_schema
        for key, spec in schema.items():
            value = config.get(key)
            if value is None:
                if spec.required:
                    self.add(f"{path}.{key}", "required")
                continue
            self.config_value(spec, value, f"{path}.{key}")
        if not node_type.open_config:
            for key in config:
                if key not in schema:
                    known = ", ".join(schema) or "none"
                    self.add(f"{path}.{key}", f"unknown field (a {node_type.type_name} node takes: {known})")
        try:
            problems = node_type.check_config(config)
        except Exception as exc:
            # A check that trips over a value the schema already rejected adds nothing; any other
            # crash is the node type's bug, shown rather than hidden.
            if len(self.violations) == before:
                self.add(path, f"could not be checked: {type(exc).__name__}: {exc}")
            return
        for sub, description in problems:
            self.add(_join(path, sub), description)

    def config_value(self, spec: ConfigField, value: Any, path: str) -> None:
        kind = spec.kind
        if kind == "string" and not isinstance(value, str):
            self.add(path, f"must be a string, not {describe(value)}")
            return
        if kind == "number" and not _is_number(value):
            self.add(path, f"must be a number, not {describe(value)}")
            return
        if kind == "integer" and not _is_integer(value):
            self.add(path, f"must be an integer, not {describe(value)}")
            return
        if kind == "boolean" and not isinstance(value, bool):
            self.add(path, f"must be a boolean (true or false), not {describe(value)}")
            return
        if kind == "object" and not isinstance(value, Mapping):
            self.add(path, f"must be an object, not {describe(value)}")
            return
        if kind == "array" and not isinstance(value, list):
            self.add(path, f"must be an array, not {describe(value)}")
            return
        if kind == "expression":
            if not isinstance(value, str):
                self.add(path, f"must be a string holding a JMESPath expression, not {describe(value)}")
                return
            try:
                compile_expression(value)
            except ExpressionError as exc:
                self.add(path, str(exc))
                return
        if kind == "template":
            for sub, description in template_errors(value):
                self.add(_join(path, sub), description)
        if spec.choices and value not in spec.choices:
            self.add(path, f"must be one of: {', '.join(spec.choices)}")
            return
        if _is_number(value) and kind in ("number", "integer"):
            if spec.minimum is not None and value < spec.minimum:
                self.add(path, f"must be at least {_fmt(spec.minimum)}")
            elif spec.maximum is not None and value > spec.maximum:
                self.add(path, f"must be at most {_fmt(spec.maximum)}")

    # -- edges and graph rules --

    def edges(
        self,
        raw: Any,
        prefix: str,
        loop: str | None,
        nodes: Mapping[str, _Node] | None,
        doc_edges: list[dict[str, Any]],
    ) -> tuple[list[tuple[int, EdgeSpec]], bool]:
        """The well-formed edges of one level with their index in the document, and whether all were.

        `nodes` is None when the level's node list itself is unusable: endpoints are then not looked up.
        """
        path = f"{prefix}edges"
        if raw is None:
            return [], True
        if not isinstance(raw, list):
            self.add(path, f"must be an array of edges, not {describe(raw)}")
            return [], False
        complete = True
        edges: list[tuple[int, EdgeSpec]] = []
        seen: dict[tuple[str, str, str | None], int] = {}
        for index, edge_raw in enumerate(raw):
            edge_path = f"{path}[{index}]"
            if not isinstance(edge_raw, Mapping):
                self.add(edge_path, f"must be an object with from and to, not {describe(edge_raw)}")
                complete = False
                continue
            self.unknown_keys(edge_raw, EDGE_KEYS, edge_path)
            source = self.endpoint(edge_raw, "from", edge_path, loop, nodes)
            target = self.endpoint(edge_raw, "to", edge_path, loop, nodes)
            when = self.string(edge_raw, "when", f"{edge_path}.when") or None
            edge_doc: dict[str, Any] = {"from": edge_raw.get("from"), "to": edge_raw.get("to")}
            if when is not None:
                edge_doc["when"] = when
            doc_edges.append(edge_doc)
            if source is None or target is None:
                complete = False
                continue
            if source.id == target.id:
                self.add(f"{edge_path}.to", f"an edge cannot lead from node {source.id!r} to itself")
            if target.type == "start":
                self.add(f"{edge_path}.to", f"no edge may lead into the start node {target.id!r}")
            if source.type == "end":
                self.add(f"{edge_path}.from", f"no edge may leave the end node {source.id!r}")
            if when is not None:
                self.when(source, when, f"{edge_path}.when")
            key = (source.id, target.id, when)
            if key in seen:
                self.add(edge_path, f"duplicate of {path}[{seen[key]}]")
                continue
            seen[key] = index
            edges.append((index, EdgeSpec(source.id, target.id, when)))
        return edges, complete

    def endpoint(
        self,
        raw: Mapping[str, Any],
        key: str,
        edge_path: str,
        loop: str | None,
        nodes: Mapping[str, _Node] | None,
    ) -> _Node | None:
        path = f"{edge_path}.{key}"
        node_id = self.string(raw, key, path, required=True)
        if node_id is None or nodes is None:
            return None
        node = nodes.get(node_id)
        if node is not None:
            return node
        if node_id in self.homes:
            home = self.homes[node_id]
            if home != loop:
                where = "at the top level" if home is None else f"in the body of {home!r}"
                self.add(path, f"node {node_id!r} is {where}: an edge must connect nodes of the same graph")
            # else: a node of this graph whose entry was rejected; its own violation says why
        else:
            close = difflib.get_close_matches(node_id, list(nodes), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            self.add(path, f"no node {node_id!r}{hint}")
        return None

    def when(self, source: _Node, when: str, path: str) -> None:
        if source.node_type is None:
            self.add(path, f'edges from {source.id!r} (type {source.type!r}) take no "when"')
            return
        try:
            labels = source.node_type.branch_labels(source.config)
        except Exception:
            return  # its config is broken, which is reported on the node already
        if labels is None:
            self.add(path, f'edges from {source.id!r} (type {source.type!r}) take no "when"')
        elif when not in labels:
            allowed = ", ".join(repr(label) for label in sorted(labels))
            self.add(path, f"{when!r} is not a branch of {source.id!r}: use one of {allowed}")

    def graph_rules(
        self,
        nodes: list[_Node],
        edges: list[tuple[int, EdgeSpec]],
        prefix: str,
        loop: str | None,
        *,
        complete: bool,
    ) -> None:
        types = {node.id: node.type for node in nodes}
        outgoing: dict[str, list[tuple[int, EdgeSpec]]] = {node.id: [] for node in nodes}
        for index, edge in edges:
            # Edges already reported as leading into start or out of end would only add a cycle report.
            if edge.source != edge.target and types[edge.target] != "start" and types[edge.source] != "end":
                outgoing[edge.source].append((index, edge))
        self.cycles(nodes, outgoing, prefix)
        successors: dict[str, list[str]] = {node.id: [] for node in nodes}
        for _, edge in edges:
            successors[edge.source].append(edge.target)
        if loop is not None:
            return
        starts = [node for node in nodes if node.type == "start"]
        if not starts and nodes:
            self.add(f"{prefix}nodes", "no start node: a workflow needs exactly one node of type 'start'")
        for extra in starts[1:]:
            self.add(f"{extra.path}.type", f"more than one start node (the first is {starts[0].path})")
        if len(starts) != 1 or not complete:
            return
        reached = {starts[0].id}
        pending = [starts[0].id]
        while pending:
            for target in successors[pending.pop()]:
                if target not in reached:
                    reached.add(target)
                    pending.append(target)
        for node in nodes:
            if node.id not in reached:
                self.add(node.path, f"node {node.id!r} is not reachable from the start node {starts[0].id!r}")

    def cycles(
        self, nodes: list[_Node], outgoing: Mapping[str, list[tuple[int, EdgeSpec]]], prefix: str
    ) -> None:
        """Report each edge that closes a cycle, with the cycle's node ids in order."""
        done: set[str] = set()
        for root in nodes:
            if root.id in done:
                continue
            path: list[str] = [root.id]
            on_path = {root.id: 0}
            stack = [iter(outgoing[root.id])]
            while stack:
                step = next(stack[-1], None)
                if step is None:
                    stack.pop()
                    finished = path.pop()
                    del on_path[finished]
                    done.add(finished)
                    continue
                index, edge = step
                if edge.target in on_path:
                    cycle = [*path[on_path[edge.target] :], edge.target]
                    self.add(f"{prefix}edges[{index}]", "closes a cycle: " + " -> ".join(cycle))
                elif edge.target not in done:
                    on_path[edge.target] = len(path)
                    path.append(edge.target)
                    stack.append(iter(outgoing[edge.target]))


def subworkflow_paths(document: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, str]]:
    """(field path of the node, its workflowPath) for every sub-workflow node that names a file, loop
    bodies included."""
    for index, node in enumerate(document.get("nodes") or []):
        if not isinstance(node, Mapping):
            continue
        where = f"{prefix}nodes[{index}]"
        config = node.get("config")
        path = config.get("workflowPath") if isinstance(config, Mapping) else None
        if node.get("type") == "subworkflow" and isinstance(path, str) and path and "{{" not in path:
            yield where, path
        body = node.get("body")
        if isinstance(body, Mapping):
            yield from subworkflow_paths(body, f"{where}.body.")


def parse_definition(
    document: Mapping[str, Any], node_types: Mapping[str, NodeType], *, max_nodes: int = 1000
) -> Definition:
    """Validate a workflow document and build its Definition.

    Raises InvalidArgument listing every problem found, each with a proto-JSON style field path
    (`nodes[2].config.url`, `edges[1].to`, `nodes[3].body.nodes[0].type`).
    """
    if not isinstance(document, Mapping):
        raise InvalidArgument.single(
            "document", f"must be an object, not {describe(document)}", reason="WORKFLOW_DEFINITION_INVALID"
        )
    parser = _Parser(node_types, max_nodes)
    definition = parser.document(document)
    if definition is None or parser.violations:
        count = len(parser.violations)
        noun = "problem" if count == 1 else "problems"
        raise InvalidArgument(
            f"workflow definition is invalid: {count} {noun}",
            parser.violations,
            reason="WORKFLOW_DEFINITION_INVALID",
        )
    return definition
