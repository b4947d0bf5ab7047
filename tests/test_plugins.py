"""A package adds a node type through the `runctl.node_types` entry point, without touching the engine."""

from __future__ import annotations

from pathlib import Path

from tests.engine_helpers import Client, linear, node_status, output
from tests.support import spawn_server

PLUGIN = """
from runctl_server.nodes.base import ConfigField, NodeResult, NodeType


class Shout(NodeType):
    type_name = "shout"
    config_schema = {"text": ConfigField("template", required=True)}

    async def execute(self, ctx):
        return NodeResult(output=str(ctx.render(ctx.node.config["text"])).upper() + "!")
"""


def _install(site: Path, name: str, entry_points: str, module: str) -> None:
    (site / f"{name}.py").write_text(module)
    info = site / f"{name}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[runctl.node_types]\n{entry_points}\n")


def test_plugin_node_type_runs_and_a_broken_plugin_is_skipped(tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    _install(site, "shout_plugin", "shout = shout_plugin:Shout", PLUGIN)
    _install(
        site, "broken_plugin", "broken = broken_plugin:Missing", "raise ImportError('broken on purpose')\n"
    )
    server = spawn_server(f"sqlite:///{tmp_path / 'runctl.db'}", tmp_path, {"PYTHONPATH": str(site)})
    try:
        with Client(server.grpc_target) as client:
            doc = linear({"id": "loud", "type": "shout", "config": {"text": "hi {{ input.who }}"}})
            execution = client.run(doc, {"who": "ada"})
            assert node_status(execution)["loud"] == "completed"
            assert output(execution.nodes[1].output) == "HI ADA!"
        assert "broken" in server.log()
    finally:
        server.process.terminate()
        server.process.wait(20)
