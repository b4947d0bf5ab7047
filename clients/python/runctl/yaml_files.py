"""YAML workflow files (the `runctl[yaml]` extra): importing this module needs PyYAML."""

from __future__ import annotations

from typing import Any

import yaml
from yaml import YAMLError

__all__ = ["YAMLError", "parse"]


class _YamlLoader(yaml.SafeLoader):
    """Safe YAML that keeps timestamps as strings: a workflow document is plain JSON."""


_YamlLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def parse(text: str) -> Any:
    """The document a YAML text holds."""
    # yaml.load with a SafeLoader subclass is safe_load that keeps timestamps as strings.
    return yaml.load(text, Loader=_YamlLoader)  # noqa: S506
