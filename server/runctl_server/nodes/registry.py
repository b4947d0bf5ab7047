"""The node types a server knows: the built-ins, plus plugins from the `runctl.node_types` entry points."""

from __future__ import annotations

import logging
from importlib.metadata import entry_points

from runctl_server.nodes.approval import ApprovalNode
from runctl_server.nodes.base import NodeType
from runctl_server.nodes.branching import ConditionNode, SwitchNode
from runctl_server.nodes.breakpoint import BreakpointNode
from runctl_server.nodes.delay import DelayNode
from runctl_server.nodes.end import EndNode
from runctl_server.nodes.fail import FailNode
from runctl_server.nodes.for_each import ForEachNode
from runctl_server.nodes.http_request import HttpNode
from runctl_server.nodes.log import LogNode
from runctl_server.nodes.start import StartNode
from runctl_server.nodes.subworkflow import SubworkflowNode
from runctl_server.nodes.task import TaskNode
from runctl_server.nodes.transform import TransformNode
from runctl_server.nodes.wait import WaitNode

ENTRY_POINT_GROUP = "runctl.node_types"

BUILTIN_TYPES: tuple[type[NodeType], ...] = (
    StartNode,
    EndNode,
    DelayNode,
    WaitNode,
    ApprovalNode,
    BreakpointNode,
    HttpNode,
    TransformNode,
    ConditionNode,
    SwitchNode,
    ForEachNode,
    FailNode,
    LogNode,
    SubworkflowNode,
    TaskNode,
)

logger = logging.getLogger(__name__)


def builtin_node_types() -> dict[str, NodeType]:
    """A fresh instance of every built-in node type, by type name."""
    return {cls.type_name: cls() for cls in BUILTIN_TYPES}


def load_node_types() -> dict[str, NodeType]:
    """The built-ins plus every plugin found; a broken or clashing plugin is logged and skipped."""
    types = builtin_node_types()
    builtins = frozenset(types)
    sources: dict[str, str] = {}
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        origin = f"{entry.name} = {entry.value}"
        try:
            loaded = entry.load()
            if isinstance(loaded, type) and issubclass(loaded, NodeType):
                node_type = loaded()
            elif isinstance(loaded, NodeType):
                node_type = loaded
            else:
                logger.error("node type plugin %s is not a NodeType subclass; skipped", origin)
                continue
        except Exception:
            logger.exception("node type plugin %s failed to load; skipped", origin)
            continue
        name = node_type.type_name
        if not isinstance(name, str) or not name.strip():
            logger.error("node type plugin %s has no type_name; skipped", origin)
        elif name in builtins:
            logger.warning("node type plugin %s may not replace the built-in type %r; skipped", origin, name)
        elif name in types:
            logger.warning(
                "node type plugin %s: type %r already comes from %s; skipped", origin, name, sources[name]
            )
        else:
            types[name] = node_type
            sources[name] = origin
            logger.info("loaded node type %r from %s", name, origin)
    return types
