"""The `runctl` command line against the real server, driven as a person would: the installed command
in a subprocess (typer's CliRunner only where a test needs a fake server in process)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from concurrent import futures
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
from typer.testing import CliRunner, Result

from runctl.cli import app
from runctl.cli.render import event_line
from runctl.client import Client
from runctl.messages import to_dict
from runctl.v1 import common_pb2, event_pb2, execution_pb2
from tests.engine_helpers import linear
from tests.support import ServerThread, free_port, running_server, settings_for

PAUSED = common_pb2.EXECUTION_STATUS_PAUSED
HELLO = linear(
    {"id": "greet", "type": "transform", "config": {"output": "Hello, {{ input.name }}!"}},
    {"id": "shout", "type": "log", "config": {"message": "{{ nodes.greet.output }}"}},
    name="hello",
)
FAILS = linear({"id": "boom", "type": "fail", "config": {"message": "kaboom"}}, name="fails")
BREAKS = linear(
    {"id": "careful", "type": "transform", "config": {"output": 1}, "breakpoint": True}, name="breaks"
)
APPROVAL = linear(
    {
        "id": "ask",
        "type": "approval",
        "config": {
            "title": "Ship it?",
            "formFields": [
                {"name": "approved", "type": "boolean", "required": True},
                {"name": "count", "type": "number"},
                {"name": "note", "type": "text"},
            ],
        },
    },
    name="approval",
)
WAITS = linear({"id": "confirm", "type": "wait"}, name="waits")


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("workflows")
    for name, document in [
        ("hello", HELLO),
        ("fails", FAILS),
        ("breaks", BREAKS),
        ("approval", APPROVAL),
        ("waits", WAITS),
    ]:
        (root / f"{name}.json").write_text(json.dumps(document))
    (root / "three").mkdir()
    for index in range(3):
        (root / "three" / f"flow-{index}.json").write_text(json.dumps({**HELLO, "name": f"flow {index}"}))
    (root / "mixed").mkdir()
    shutil.copy(root / "hello.json", root / "mixed" / "a.json")
    shutil.copy(root / "fails.json", root / "mixed" / "b.json")
    return root


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, files: Path) -> Iterator[ServerThread]:
    url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'runctl.db'}"
    with running_server(settings_for(url, workflows_dirs=(files,))) as handle:
        yield handle


@pytest.fixture(scope="module")
def client(server: ServerThread) -> Iterator[Client]:
    with Client(server.grpc_target) as runctl:
        yield runctl


@dataclass(frozen=True)
class Ran:
    """What a person at a terminal sees of one `runctl` command."""

    exit_code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


RUNCTL = str(Path(sys.executable).parent / "runctl")


def cli(server: ServerThread, *args: str) -> Ran:
    """`runctl --addr <server> ARGS...`: the installed command, in a subprocess."""
    done = subprocess.run(
        [RUNCTL, "--addr", server.grpc_target, *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "NO_COLOR": "1", "COLUMNS": "120"},
        check=False,
    )
    return Ran(done.returncode, done.stdout, done.stderr)


def as_json(result: Ran | Result) -> Any:
    return json.loads(result.stdout)


def test_run_watch_shows_the_nodes_and_exits_0_when_completed(server: ServerThread, files: Path) -> None:
    result = cli(server, "run", str(files / "hello.json"), "--input", '{"name": "Ada"}', "--watch")
    assert result.exit_code == 0, result.output
    for node in ("start", "greet", "shout", "end"):
        assert node in result.stdout
    assert "completed" in result.stdout and "Hello, Ada!" in result.stdout


def test_a_failing_run_exits_1_with_its_error(server: ServerThread, files: Path) -> None:
    result = cli(server, "run", str(files / "fails.json"), "--watch")
    assert result.exit_code == 1
    assert "kaboom" in result.stdout


def test_run_without_watch_prints_the_run_and_json_is_parseable(server: ServerThread, files: Path) -> None:
    started = cli(server, "run", str(files / "hello.json"), "-i", '{"name": "Bo"}', "--json")
    assert started.exit_code == 0
    execution = as_json(started)
    assert execution["id"].startswith("exec") and execution["input"] == {"name": "Bo"}

    listed = cli(server, "ls", "--json", "--limit", "5")
    assert listed.exit_code == 0
    assert any(run["id"] == execution["id"] for run in as_json(listed)["executions"])

    status = cli(server, "status", execution["id"], "--json")
    assert as_json(status)["id"] == execution["id"]
    table = cli(server, "ls", "--status", "completed,error", "--limit", "3")
    assert table.exit_code == 0 and "STATUS" in table.stdout


def test_detach_on_pause_exits_3_and_stop_then_watch_exits_2(
    server: ServerThread, files: Path, client: Client
) -> None:
    paused = cli(server, "run", str(files / "breaks.json"), "--watch", "--detach-on-pause")
    assert paused.exit_code == 3
    assert "breakpoint" in paused.stdout and "runctl continue" in paused.stdout
    run_id = paused.stdout.split()[0]  # the header line starts with the run's id
    assert client.get(run_id).status == PAUSED

    latest = cli(server, "status")  # no id: the most recent run
    assert latest.exit_code == 0 and run_id in latest.stdout

    stopped = cli(server, "stop", run_id, "--reason", "test")
    assert stopped.exit_code == 0 and "was running" in stopped.stdout
    watched = cli(server, "watch", run_id)  # an ended run: its snapshot, then the exit code
    assert watched.exit_code == 2 and "stopped" in watched.stdout
    replayed = cli(server, "watch", run_id, "--after", "0")  # its events from the start
    assert replayed.exit_code == 2 and "EXECUTION_STOPPED" in replayed.stdout


def test_continue_resumes_a_breakpoint(server: ServerThread, files: Path, client: Client) -> None:
    run = client.start(files / "breaks.json")
    client.wait(run.id, until={PAUSED}, timeout=20)
    result = cli(server, "continue", run.id)
    assert result.exit_code == 0 and "continued" in result.stdout
    assert client.wait(run.id, timeout=20).status == common_pb2.EXECUTION_STATUS_COMPLETED


def test_continue_without_an_id_picks_the_most_recently_paused_run(
    server: ServerThread, files: Path, client: Client
) -> None:
    older, newer = client.start(files / "breaks.json"), client.start(files / "breaks.json")
    for run in (older, newer):
        client.wait(run.id, until={PAUSED}, timeout=20)
    result = cli(server, "continue")  # the CLI asks for the latest paused run, then names it
    assert result.exit_code == 0 and newer.id in result.stdout, result.stderr
    assert client.wait(newer.id, timeout=20).status == common_pb2.EXECUTION_STATUS_COMPLETED
    assert client.get(older.id).status == PAUSED
    client.stop(older.id)


def test_approve_with_set_resumes_an_approval_with_typed_values(
    server: ServerThread, files: Path, client: Client
) -> None:
    run = client.start(files / "approval.json")
    context_id = client.wait(run.id, until={PAUSED}, timeout=20).pause_points[0].context_id

    wrong = cli(server, "approve", context_id, "--set", "approved=maybe")
    assert wrong.exit_code == 1
    assert "INVALID_ARGUMENT" in wrong.stderr and "values.approved" in wrong.stderr

    result = cli(
        server, "approve", context_id, "--set", "approved=true", "--set", "count=3", "--set", "note=ok"
    )
    assert result.exit_code == 0, result.output
    assert "resumed" in result.stdout
    done = client.wait(run.id, timeout=20)
    assert to_dict(done.data)["nodes"]["ask"]["output"] == {"approved": True, "count": 3, "note": "ok"}

    again = cli(server, "approve", context_id, "--set", "approved=true")
    assert again.exit_code == 0 and "skipped" in again.stdout


def test_resume_a_waiting_node_with_the_webhook_secret(
    server: ServerThread, files: Path, client: Client
) -> None:
    created = cli(server, "workflows", "create", str(files / "waits.json"), "--json")
    workflow = as_json(created)
    run = as_json(cli(server, "run", "--workflow", workflow["id"], "--json"))
    client.wait(run["id"], until={PAUSED}, timeout=20)

    denied = cli(server, "resume", run["id"], "confirm", "--data", '{"ok": true}', "--secret", "wrong")
    assert denied.exit_code == 1 and "UNAUTHENTICATED" in denied.stderr
    resumed = cli(
        server,
        "resume",
        run["id"],
        "confirm",
        "--data",
        '{"ok": true}',
        "--secret",
        workflow["webhookSecret"],
    )
    assert resumed.exit_code == 0 and "resumed" in resumed.stdout
    watched = cli(server, "watch", run["id"], "--after", "0")
    assert watched.exit_code == 0 and "EXECUTION_COMPLETED" in watched.stdout
    assert '{"ok":true}' in watched.stdout  # the node's output: the resume payload


def test_rotate_the_webhook_secret(server: ServerThread, files: Path, client: Client) -> None:
    workflow = as_json(cli(server, "workflows", "create", str(files / "waits.json"), "--json"))
    rotated = cli(server, "workflows", "rotate-secret", workflow["id"], "--overlap", "0")
    assert rotated.exit_code == 0, rotated.stderr
    assert "the old secret no longer works" in rotated.stdout
    new_secret = rotated.stdout.split("webhook secret: ")[1].split()[0]
    kept = as_json(cli(server, "workflows", "rotate-secret", workflow["id"], "--json"))
    assert kept["previousSecretExpireTime"] and kept["workflow"]["webhookSecret"] not in (new_secret, "")
    run = as_json(cli(server, "run", "--workflow", workflow["id"], "--json"))
    client.wait(run["id"], until={PAUSED}, timeout=20)
    first = ("resume", run["id"], "confirm", "--data", "{}", "--secret")
    assert cli(server, *first, workflow["webhookSecret"]).exit_code == 1  # retired at once
    assert cli(server, *first, new_secret).exit_code == 0  # replaced, but within its overlap
    negative = cli(server, "workflows", "rotate-secret", workflow["id"], "--overlap", "-1")
    assert negative.exit_code == 2  # refused by the command before any call


def test_workflows_create_ls_pause_resume_cancel(server: ServerThread, files: Path) -> None:
    created = cli(server, "workflows", "create", str(files / "hello.json"))
    assert created.exit_code == 0 and "webhook secret" in created.stdout
    workflow_id = created.stdout.split()[1]

    listed = as_json(cli(server, "workflows", "ls", "--json"))
    assert workflow_id in [w["id"] for w in listed["workflows"]]
    assert cli(server, "workflows", "pause", workflow_id).exit_code == 0
    twice = cli(server, "workflows", "pause", workflow_id)
    assert twice.exit_code == 1 and "FAILED_PRECONDITION" in twice.stderr
    assert "resumed" in cli(server, "workflows", "resume", workflow_id).stdout
    assert "cancelled" in cli(server, "workflows", "cancel", workflow_id).stdout


def test_batch_shows_progress_and_exit_codes(server: ServerThread, files: Path) -> None:
    result = cli(server, "batch", str(files / "three"), "--concurrency", "2")
    assert result.exit_code == 0, result.output
    assert "3/3" in result.stdout
    for index in range(3):
        assert f"flow-{index}.json" in result.stdout

    mixed = cli(server, "batch", str(files / "mixed"), "--json")
    assert mixed.exit_code == 1
    batch = as_json(mixed)
    assert (batch["completed"], batch["failed"]) == (1, 1)


def test_expected_failures_are_friendly(server: ServerThread, files: Path, tmp_path: Path) -> None:
    unknown = cli(server, "status", "exec_missing")
    assert unknown.exit_code == 1
    assert "NOT_FOUND" in unknown.stderr and "Traceback" not in unknown.output

    invalid = tmp_path / "invalid.json"
    invalid.write_text(json.dumps({**HELLO, "edges": [{"from": "start", "to": "nowhere"}]}))
    refused = cli(server, "run", str(invalid))
    assert refused.exit_code == 1 and "INVALID_ARGUMENT" in refused.stderr and "edges[0]" in refused.stderr

    for args in (
        ["run", str(tmp_path / "missing.json")],
        ["run", str(files / "hello.json"), "--input", "[1]"],
        ["approve", "ctx_x", "--set", "novalue"],
        ["ls", "--status", "sideways"],
    ):
        bad = cli(server, *args)
        assert bad.exit_code == 1, args
        assert "error:" in bad.stderr and "Traceback" not in bad.output

    for command in (["ls"], ["watch", "exec_x"]):
        nowhere = CliRunner().invoke(app, ["--addr", f"127.0.0.1:{free_port()}", *command])
        assert nowhere.exit_code == 1
        assert "cannot reach runctl at 127.0.0.1:" in nowhere.stderr and "Traceback" not in nowhere.output

    no_ca = cli(server, "--tls-ca", str(tmp_path / "missing-ca.pem"), "ls")
    assert no_ca.exit_code == 1 and "cannot read TLS root certificates" in no_ca.stderr


def runctl_command() -> list[str]:
    script = Path(sys.executable).parent / "runctl"
    return [str(script)] if script.exists() else [sys.executable, "-m", "runctl.cli"]


def test_the_installed_command(server: ServerThread, files: Path) -> None:
    env = {**os.environ, "NO_COLOR": "1"}
    done = subprocess.run(
        [
            *runctl_command(),
            "--addr",
            server.grpc_target,
            "run",
            str(files / "hello.json"),
            "-i",
            "{}",
            "--watch",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    assert "greet" in done.stdout
    missing = subprocess.run(
        [*runctl_command(), "--addr", server.grpc_target, "stop", "exec_missing"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert missing.returncode == 1
    assert "NOT_FOUND" in missing.stderr and "Traceback" not in missing.stderr + missing.stdout
    serve_help = subprocess.run(
        [*runctl_command(), "serve", "--help"], capture_output=True, text=True, timeout=60, env=env
    )
    assert serve_help.returncode == 0 and "--db-url" in serve_help.stdout


def test_watch_prints_events_as_they_happen(server: ServerThread, files: Path, client: Client) -> None:
    # The run waits until the command has shown its snapshot (so it is subscribed): the rest of the
    # run then happens while it is watched.
    run = client.start(files / "waits.json")
    context_id = client.wait(run.id, until={PAUSED}, timeout=20).pause_points[0].context_id
    process = subprocess.Popen(
        [RUNCTL, "--addr", server.grpc_target, "watch", run.id],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "NO_COLOR": "1", "COLUMNS": "120"},
    )
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline().rstrip("\n")]
        client.approve(context_id, {"ok": True})
        rest, _ = process.communicate(timeout=60)
    finally:
        process.kill()
    lines += rest.splitlines()
    assert process.returncode == 0, lines
    assert run.id in lines[0]  # the snapshot's header, then the events
    assert any("NODE_COMPLETED" in line and "confirm" in line for line in lines)
    assert "EXECUTION_COMPLETED" in rest and lines[-1] == "run completed"


def get_finished(
    request: execution_pb2.GetExecutionRequest, context: grpc.ServicerContext
) -> execution_pb2.GetExecutionResponse:
    execution = execution_pb2.Execution(id=request.execution_id, status=common_pb2.EXECUTION_STATUS_COMPLETED)
    return execution_pb2.GetExecutionResponse(execution=execution)


def get_history(
    request: execution_pb2.GetExecutionHistoryRequest, context: grpc.ServicerContext
) -> execution_pb2.GetExecutionHistoryResponse:
    events = [
        event_pb2.Event(sequence=7, type=event_pb2.EVENT_TYPE_NODE_COMPLETED, node_id="only"),
        event_pb2.Event(sequence=8, type=event_pb2.EVENT_TYPE_EXECUTION_COMPLETED),
    ]
    return execution_pb2.GetExecutionHistoryResponse(
        events=[e for e in events if e.sequence > request.after_sequence]
    )


def test_watch_falls_back_to_history_on_servers_without_the_stream() -> None:
    """A server from before WatchExecution (only GetExecution and the history): the CLI polls."""
    handlers: dict[str, grpc.RpcMethodHandler[Any, Any]] = {
        "GetExecution": grpc.unary_unary_rpc_method_handler(
            get_finished,
            request_deserializer=execution_pb2.GetExecutionRequest.FromString,
            response_serializer=execution_pb2.GetExecutionResponse.SerializeToString,
        ),
        "GetExecutionHistory": grpc.unary_unary_rpc_method_handler(
            get_history,
            request_deserializer=execution_pb2.GetExecutionHistoryRequest.FromString,
            response_serializer=execution_pb2.GetExecutionHistoryResponse.SerializeToString,
        ),
    }
    old = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    old.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler("runctl.v1.ExecutionService", handlers),)
    )
    port = old.add_insecure_port("127.0.0.1:0")
    old.start()
    try:
        result = CliRunner().invoke(app, ["--addr", f"127.0.0.1:{port}", "watch", "exec_old"])
    finally:
        old.stop(0)
    assert result.exit_code == 0, result.output
    for shown in ("#7", "NODE_COMPLETED", "only", "EXECUTION_COMPLETED"):
        assert shown in result.stdout


def test_event_lines_show_the_typed_attributes() -> None:
    """`watch` prints the one detail worth seeing of each event, read from its typed attributes."""
    failed = event_pb2.Event(
        sequence=3,
        type=event_pb2.EVENT_TYPE_NODE_FAILED,
        node_id="call",
        node_failed_attributes=event_pb2.NodeFailedAttributes(
            error=common_pb2.NodeError(message="GET http://x: 503", code="HTTP_STATUS"), attempt=2
        ),
    )
    completed = event_pb2.Event(sequence=4, type=event_pb2.EVENT_TYPE_NODE_COMPLETED, node_id="sum")
    completed.node_completed_attributes.output.struct_value.update({"total": 120})
    created = event_pb2.Event(
        sequence=5,
        type=event_pb2.EVENT_TYPE_PAUSE_POINT_CREATED,
        node_id="approve",
        pause_point_created_attributes=event_pb2.PausePointCreatedAttributes(
            context_id="ctx_4f9c2a1124c3e57e1cc7", kind=common_pb2.PAUSE_REASON_APPROVAL
        ),
    )
    logged = event_pb2.Event(
        sequence=6,
        type=event_pb2.EVENT_TYPE_NODE_LOG,
        node_id="note",
        node_log_attributes=event_pb2.NodeLogAttributes(level=common_pb2.LOG_LEVEL_INFO, message="hello"),
    )
    assert "GET http://x: 503" in event_line(failed).plain
    assert '{"total":120}' in event_line(completed).plain
    assert "ctx_4f9c2a1124c3e57e1cc7" in event_line(created).plain
    assert event_line(logged).plain.endswith("hello")
