"""Node keys name one node in one loop iteration: `loop[2].inner[0].send`; a top-level node is its id."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def scope_prefix(stack: Sequence[Mapping[str, Any]]) -> str:
    """The key prefix of the loop iteration a stack of {index, parentNodeId, total} frames names."""
    return "".join(f"{frame['parentNodeId']}[{int(frame['index'])}]." for frame in stack)


def node_key(node_id: str, stack: Sequence[Mapping[str, Any]] = ()) -> str:
    return scope_prefix(stack) + node_id


def frame(loop_id: str, index: int, total: int) -> dict[str, Any]:
    """One level of the for-each stack, in the node resume API's shape."""
    return {"index": index, "parentNodeId": loop_id, "total": total}
