"""The `for_each` node: runs its body once per item, `concurrency` iterations at a time."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from runctl_server.nodes.base import ConfigField, NodeType


class ForEachNode(NodeType):
    """A loop: the body graph runs per item, seeing `item`, `index` and the for-each `stack`."""

    type_name = "for_each"
    config_schema: ClassVar[Mapping[str, ConfigField]] = {
        "items": ConfigField(
            "expression", required=True, description="A JMESPath expression giving an array."
        ),
        "concurrency": ConfigField("integer", minimum=1, description="Iterations run at once (default 1)."),
    }
    has_body = True
    inline = False
