"""The `runctl` commands for events, pausing and skipping, batches and stored workflows, and the
offline validator: the installed command in a subprocess against a real server."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pytest

from runctl.client import Client
from runctl.v1 import batch_resource_pb2, common_pb2
from tests.engine_helpers import linear
from tests.support import ServerThread, running_server, settings_for
from tests.test_cli import HELLO, RUNCTL, WAITS, Ran, as_json, cli

PAUSED = common_pb2.EXECUTION_STATUS_PAUSED
RUNNING = common_pb2.EXECUTION_STATUS_RUNNING
COMPLETED = common_pb2.EXECUTION_STATUS_COMPLETED
BREAKS = linear({"id": "careful", "type": "breakpoint"}, name="breaks")
SLOW = linear({"id": "nap", "type": "delay", "config": {"seconds": 600}}, name="slow")
# Four problems (a missing url, a second "fetch", an unknown type, an edge to nowhere) that the
# validator must report together, each at its own field path.
BROKEN = {
    "name": "broken",
    "nodes": [
        {"id": "start", "type": "start"},
        {"id": "fetch", "type": "http", "config": {}},
        {"id": "fetch", "type": "no-such-type"},
        {"id": "end", "type": "end"},
    ],
    "edges": [{"from": "start", "to": "fetch"}, {"from": "fetch", "to": "ghost"}],
}


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("workflows")
    for name, document in [("hello", HELLO), ("waits", WAITS), ("breaks", BREAKS), ("slow", SLOW)]:
        (root / f"{name}.json").write_text(json.dumps(document))
    (root / "broken.json").write_text(json.dumps(BROKEN))
    for folder, document in [("done", HELLO), ("held", WAITS)]:
        (root / folder).mkdir()
        for index in range(2):
            (root / folder / f"{folder}-{index}.json").write_text(
                json.dumps({**document, "name": f"{folder} {index}"})
            )
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


def cli_with_input(server: ServerThread, text: str, *args: str) -> Ran:
    done = subprocess.run(
        [RUNCTL, "--addr", server.grpc_target, *args],
        input=text,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "NO_COLOR": "1", "COLUMNS": "120"},
        check=False,
    )
    return Ran(done.returncode, done.stdout, done.stderr)


def spawn(server: ServerThread, *args: str) -> subprocess.Popen[str]:
    """A long-running `runctl` command whose output is read line by line as it comes."""
    return subprocess.Popen(
        [RUNCTL, "--addr", server.grpc_target, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "NO_COLOR": "1", "COLUMNS": "120"},
    )


def read_until(stream: IO[str] | None, wanted: str) -> list[dict[str, Any]]:
    """JSON lines read until one whose type is `wanted` (the test's timeout bounds the wait)."""
    assert stream is not None
    events: list[dict[str, Any]] = []
    for line in stream:
        events.append(json.loads(line))
        if events[-1]["type"] == wanted:
            return events
    raise AssertionError(f"the stream ended before {wanted}: {events}")


# --- run FILE_OR_ID -------------------------------------------------------------------------


def test_run_takes_a_stored_workflow_id_as_well_as_a_file(
    server: ServerThread, files: Path, client: Client
) -> None:
    workflow = client.create_workflow(files / "hello.json")
    by_id = cli(server, "run", workflow.id, "--input", '{"name": "Ida"}', "--watch")
    assert by_id.exit_code == 0, by_id.output
    assert "Hello, Ida!" in by_id.stdout
    started = as_json(cli(server, "run", workflow.id, "--json"))
    assert started["workflowId"] == workflow.id


def test_run_names_what_it_could_not_find(server: ServerThread, tmp_path: Path) -> None:
    missing_file = cli(server, "run", str(tmp_path / "nope.json"))
    assert missing_file.exit_code == 1
    assert "nope.json: no such file" in missing_file.stderr
    missing_id = cli(server, "run", "wf_nothing_here")
    assert missing_id.exit_code == 1
    assert "NOT_FOUND" in missing_id.stderr and "wf_nothing_here" in missing_id.stderr
    both = cli(server, "run", str(tmp_path / "nope.json"), "--workflow", "wf_x")
    assert both.exit_code == 1 and "one of them" in both.stderr


# --- events ---------------------------------------------------------------------------------


def test_events_prints_a_runs_history_in_order(server: ServerThread, files: Path, client: Client) -> None:
    run = client.start(files / "hello.json", input={"name": "Al"})
    client.wait(run.id, timeout=20)
    lines = cli(server, "events", run.id, "--json")
    assert lines.exit_code == 0, lines.output
    events = [json.loads(line) for line in lines.stdout.splitlines()]
    sequences = [int(event["sequence"]) for event in events]
    assert sequences == sorted(sequences) and len(set(sequences)) == len(sequences)
    assert {event["executionId"] for event in events} == {run.id}
    assert events[0]["type"] == "EVENT_TYPE_EXECUTION_STARTED"
    assert events[-1]["type"] == "EVENT_TYPE_EXECUTION_COMPLETED"

    after = cli(server, "events", run.id, "--json", "--after", str(sequences[-2]))
    assert [json.loads(line)["sequence"] for line in after.stdout.splitlines()] == [str(sequences[-1])]
    only = cli(server, "events", run.id, "--type", "node_completed", "--json")
    assert {json.loads(line)["type"] for line in only.stdout.splitlines()} == {"EVENT_TYPE_NODE_COMPLETED"}
    table = cli(server, "events", run.id)
    assert table.exit_code == 0 and "EXECUTION_COMPLETED" in table.stdout and "greet" in table.stdout


def test_events_follow_prints_a_run_live_until_it_ends(
    server: ServerThread, files: Path, client: Client
) -> None:
    run = client.start(files / "waits.json")
    process = spawn(server, "events", run.id, "--follow", "--json")
    try:
        waiting = read_until(process.stdout, "EVENT_TYPE_PAUSE_POINT_CREATED")
        context_id = waiting[-1]["pausePointCreatedAttributes"]["contextId"]
        client.approve(context_id, {"ok": True})
        rest = read_until(process.stdout, "EVENT_TYPE_EXECUTION_COMPLETED")
        assert process.wait(timeout=30) == 0  # the run's exit code, as `runctl watch`
    finally:
        process.kill()
        process.communicate()
    sequences = [int(event["sequence"]) for event in waiting + rest]
    assert sequences == sorted(set(sequences)), "no event twice, none out of order"


def test_events_of_the_log_filter_by_workflow_and_follow_until_interrupted(
    server: ServerThread, files: Path, client: Client
) -> None:
    workflow = client.create_workflow(files / "hello.json")
    first = client.start(workflow_id=workflow.id)
    client.wait(first.id, timeout=20)
    client.wait(client.start(files / "hello.json").id, timeout=20)  # another workflow's run

    history = cli(server, "events", "--workflow", workflow.id, "--type", "execution_completed", "--json")
    assert history.exit_code == 0, history.output
    assert [json.loads(line)["executionId"] for line in history.stdout.splitlines()] == [first.id]

    process = spawn(
        server, "events", "--workflow", workflow.id, "--type", "execution_completed", "--follow", "--json"
    )
    try:
        second = client.start(workflow_id=workflow.id)
        seen = read_until(process.stdout, "EVENT_TYPE_EXECUTION_COMPLETED")  # the first run's, from history
        if seen[-1]["executionId"] == first.id:
            seen = read_until(process.stdout, "EVENT_TYPE_EXECUTION_COMPLETED")
        assert seen[-1]["executionId"] == second.id
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 130
    finally:
        process.kill()
        process.communicate()


def test_ctrl_c_ends_a_followed_stream_every_time(server: ServerThread, files: Path, client: Client) -> None:
    """SIGINT while `events --follow` waits for its next message exits 130 at once, every time: grpc
    left a channel closed after such an interrupt waiting for the interrupted call, about one time
    in ten, and the command never ended."""
    workflow = client.create_workflow(files / "hello.json")
    for attempt in range(20):
        process = spawn(
            server, "events", "--workflow", workflow.id, "--type", "execution_completed", "-f", "--json"
        )
        try:
            client.start(workflow_id=workflow.id)
            read_until(process.stdout, "EVENT_TYPE_EXECUTION_COMPLETED")
            process.send_signal(signal.SIGINT)
            assert process.wait(timeout=15) == 130, f"attempt {attempt}"
        finally:
            process.kill()
            process.communicate()


def test_events_of_an_unknown_run_is_not_found(server: ServerThread) -> None:
    result = cli(server, "events", "exec_missing", "--follow")
    assert result.exit_code == 1
    assert "NOT_FOUND" in result.stderr and result.stdout == ""


# --- pause and skip -------------------------------------------------------------------------


def test_pause_holds_a_running_run_and_continue_lifts_it(
    server: ServerThread, files: Path, client: Client
) -> None:
    run = client.start(files / "slow.json")
    client.wait(run.id, until={RUNNING}, timeout=20)
    paused = cli(server, "pause", run.id, "--reason", "maintenance")
    assert paused.exit_code == 0, paused.output
    assert f"paused {run.id}" in paused.stdout and f"runctl continue {run.id}" in paused.stdout
    held = client.get(run.id)
    assert held.status == PAUSED and held.pause_reason == common_pb2.PAUSE_REASON_MANUAL

    again = cli(server, "pause", run.id)
    assert again.exit_code == 1 and "FAILED_PRECONDITION" in again.stderr
    assert cli(server, "continue", run.id).exit_code == 0
    assert client.get(run.id).status == RUNNING
    client.stop(run.id)
    ended = cli(server, "pause", run.id)
    assert ended.exit_code == 1 and "FAILED_PRECONDITION" in ended.stderr


def test_skip_passes_over_the_node_a_run_is_paused_at(
    server: ServerThread, files: Path, client: Client
) -> None:
    run = client.start(files / "breaks.json")
    client.wait(run.id, until={PAUSED}, timeout=20)
    skipped = cli(server, "skip", run.id, "--json")
    assert skipped.exit_code == 0, skipped.output
    assert as_json(skipped)["id"] == run.id
    done = client.wait(run.id, timeout=20)
    assert done.status == COMPLETED
    node = next(node for node in done.nodes if node.node_id == "careful")
    assert node.status == common_pb2.NODE_STATUS_SKIPPED
    not_paused = cli(server, "skip", run.id)
    assert not_paused.exit_code == 1 and "FAILED_PRECONDITION" in not_paused.stderr


# --- batches --------------------------------------------------------------------------------


def finished_batch(client: Client, folder: Path) -> batch_resource_pb2.Batch:
    batch = client.start_batch(str(folder))
    seen: list[str] = []
    watching = threading.Thread(
        target=lambda: seen.extend(m.WhichOneof("kind") or "" for m in client.watch_batch(batch.batch_id)),
        daemon=True,
    )
    watching.start()
    watching.join(60)  # the stream ends with the batch
    current = client.get_batch(batch.batch_id)
    assert not watching.is_alive(), f"WatchBatch did not end; it sent {seen}; the batch now: {current}"
    return current


def test_batches_ls_get_and_stop(server: ServerThread, files: Path, client: Client) -> None:
    done = finished_batch(client, files / "done")
    assert done.status == batch_resource_pb2.BATCH_STATUS_COMPLETED
    held = client.start_batch(str(files / "held"))

    listed = as_json(cli(server, "batches", "ls", "--json"))
    assert {done.batch_id, held.batch_id} <= {batch["batchId"] for batch in listed["batches"]}
    alias = as_json(cli(server, "batches", "list", "--json", "--status", "running"))
    assert held.batch_id in {batch["batchId"] for batch in alias["batches"]}
    assert done.batch_id not in {batch["batchId"] for batch in alias["batches"]}
    table = cli(server, "batches", "ls")
    assert table.exit_code == 0 and done.batch_id in table.stdout and "completed" in table.stdout

    shown = cli(server, "batches", "get", done.batch_id)
    assert shown.exit_code == 0 and "done-0.json" in shown.stdout and "2 completed" in shown.stdout

    stopped = cli(server, "batches", "stop", held.batch_id, "--reason", "enough")
    assert stopped.exit_code == 0, stopped.output
    assert f"stopped {held.batch_id}" in stopped.stdout
    assert client.get_batch(held.batch_id).status == batch_resource_pb2.BATCH_STATUS_STOPPED
    ended = cli(server, "batches", "stop", done.batch_id)
    assert ended.exit_code == 1 and "FAILED_PRECONDITION" in ended.stderr


def test_batches_clear_asks_first_then_deletes_finished_batches(
    server: ServerThread, files: Path, client: Client
) -> None:
    done = finished_batch(client, files / "done")
    declined = cli_with_input(server, "n\n", "batches", "clear")
    assert declined.exit_code == 1 and "Aborted" in declined.stderr
    assert client.get_batch(done.batch_id).batch_id == done.batch_id

    cleared = cli(server, "batches", "clear", "--yes")
    assert cleared.exit_code == 0, cleared.output
    assert "deleted" in cleared.stdout
    gone = cli(server, "batches", "get", done.batch_id)
    assert gone.exit_code == 1 and "NOT_FOUND" in gone.stderr


# --- workflows get, delete, validate ----------------------------------------------------------


def test_workflows_get_shows_the_definition(server: ServerThread, files: Path, client: Client) -> None:
    workflow = client.create_workflow(files / "hello.json")
    shown = cli(server, "workflows", "get", workflow.id)
    assert shown.exit_code == 0, shown.output
    assert workflow.id in shown.stdout and "version 1" in shown.stdout
    for node in ("greet", "shout", "transform"):
        assert node in shown.stdout
    document = as_json(cli(server, "workflows", "get", workflow.id, "--json"))
    assert [node["id"] for node in document["definition"]["nodes"]] == ["start", "greet", "shout", "end"]
    assert "webhookSecret" not in document or not document["webhookSecret"]
    listed = as_json(cli(server, "workflows", "list", "--json"))  # `list` is `ls`
    assert workflow.id in {item["id"] for item in listed["workflows"]}


def test_workflows_delete_refuses_with_unfinished_runs_unless_forced(
    server: ServerThread, files: Path, client: Client
) -> None:
    workflow = client.create_workflow(files / "waits.json")
    run = client.start(workflow_id=workflow.id)
    client.wait(run.id, until={PAUSED}, timeout=20)
    refused = cli(server, "workflows", "delete", workflow.id, "--yes")
    assert refused.exit_code == 1 and "FAILED_PRECONDITION" in refused.stderr
    declined = cli_with_input(server, "n\n", "workflows", "delete", workflow.id, "--force")
    assert declined.exit_code == 1 and "Aborted" in declined.stderr

    deleted = cli(server, "workflows", "delete", workflow.id, "--force", "--yes")
    assert deleted.exit_code == 0, deleted.output
    assert client.get(run.id).status == common_pb2.EXECUTION_STATUS_STOPPED
    gone = cli(server, "workflows", "get", workflow.id)
    assert gone.exit_code == 1 and "NOT_FOUND" in gone.stderr


def runctl_offline(*args: str) -> Ran:
    """`runctl ARGS` with no server anywhere: --addr points at a closed port."""
    done = subprocess.run(
        [RUNCTL, "--addr", "127.0.0.1:1", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "NO_COLOR": "1", "COLUMNS": "200"},
        check=False,
    )
    return Ran(done.returncode, done.stdout, done.stderr)


def test_workflows_validate_reports_every_problem_offline(files: Path) -> None:
    result = runctl_offline("workflows", "validate", str(files / "hello.json"), str(files / "broken.json"))
    assert result.exit_code == 1
    assert f"valid {files / 'hello.json'} (4 nodes)" in result.stdout
    assert "broken.json: 4 problems" in result.stdout
    for field in ("nodes[1].config.url", "nodes[2].id", "nodes[2].type", "edges[1].to"):
        assert f"- {field}:" in result.stdout

    verdicts = json.loads(
        runctl_offline("workflows", "validate", str(files / "broken.json"), "--json").stdout
    )
    assert verdicts[0]["valid"] is False
    assert len(verdicts[0]["problems"]) == 4
    assert runctl_offline("workflows", "validate", str(files / "hello.json")).exit_code == 0


def test_workflows_validate_reports_unreadable_files(tmp_path: Path) -> None:
    (tmp_path / "torn.json").write_text('{"name": "torn", "nodes": [')
    result = runctl_offline("workflows", "validate", str(tmp_path / "torn.json"), str(tmp_path / "none.yaml"))
    assert result.exit_code == 1
    assert "torn.json: invalid JSON" in result.stdout
    assert "none.yaml: no such file" in result.stdout


def test_workflows_validate_says_when_the_server_package_is_missing(files: Path) -> None:
    # The client alone: importing the server package fails as it does where it is not installed.
    program = (
        "import sys; sys.modules['runctl_server'] = None; "
        "from runctl.cli import app; sys.argv[0] = 'runctl'; app()"
    )
    done = subprocess.run(
        [sys.executable, "-c", program, "workflows", "validate", str(files / "hello.json")],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "NO_COLOR": "1", "COLUMNS": "200"},
        check=False,
    )
    assert done.returncode == 1
    assert "runctl server is not installed here (pip install runctl-server)" in done.stderr
    assert "Traceback" not in done.stderr


# --- one verb for listings ------------------------------------------------------------------


@pytest.mark.parametrize("group", [(), ("workflows",), ("batches",), ("keys",)])
def test_ls_is_the_listing_verb_and_list_its_hidden_alias(group: tuple[str, ...]) -> None:
    shown = runctl_offline(*group, "--help")
    assert shown.exit_code == 0
    commands = [
        line.split()[1]
        for line in shown.stdout.splitlines()
        if line.startswith("│ ") and len(line.split()) > 1
    ]
    assert "ls" in commands and "list" not in commands
    alias = runctl_offline(*group, "list", "--help")
    assert alias.exit_code == 0 and "Usage:" in alias.stdout
