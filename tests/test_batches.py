"""BatchService over the real gRPC API, on SQLite and on PostgreSQL: starting from folders, files and
stored workflows, the concurrency limit, counts and items, stop, stop all, list, clear, and refusals."""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from sqlalchemy import bindparam, text

from runctl.messages import as_definition
from runctl.v1 import batch_pb2, batch_pb2_grpc, batch_resource_pb2, common_pb2, execution_pb2, workflow_pb2
from runctl_server.store.database import create_db_engine
from tests.engine_helpers import Client, linear, to_struct
from tests.postgres import temporary_database
from tests.support import running_server, settings_for

B = batch_pb2
E = execution_pb2


@dataclass
class Env:
    """A server reached through the generated stubs, its workflows root and a folder outside it."""

    client: Client
    batches: batch_pb2_grpc.BatchServiceStub
    root: Path
    outside: Path
    db_url: str

    def node_states(self, execution_ids: list[str]) -> int:
        """How many node-state rows the database holds for these runs."""
        engine = create_db_engine(self.db_url)
        try:
            with engine.connect() as connection:
                statement = text("SELECT COUNT(*) FROM node_states WHERE execution_id IN :ids").bindparams(
                    bindparam("ids", expanding=True)
                )
                return int(connection.execute(statement, {"ids": execution_ids}).scalar_one())
        finally:
            engine.dispose()

    def folder(self, files: dict[str, Any]) -> str:
        """A fresh folder under the root holding `files` (documents or raw text); answers its path."""
        name = f"batch-{uuid.uuid4().hex[:8]}"
        write_files(self.root / name, files)
        return name

    def start(self, **kwargs: Any) -> batch_resource_pb2.Batch:
        return self.batches.StartBatch(B.StartBatchRequest(**kwargs), timeout=20).batch

    def get(self, batch_id: str) -> batch_resource_pb2.Batch:
        return self.batches.GetBatch(B.GetBatchRequest(batch_id=batch_id), timeout=10).batch

    def wait(
        self, batch_id: str, done: Callable[[batch_resource_pb2.Batch], bool], timeout: float = 20
    ) -> batch_resource_pb2.Batch:
        deadline = time.monotonic() + timeout
        while True:
            batch = self.get(batch_id)
            if done(batch):
                return batch
            if time.monotonic() > deadline:
                raise TimeoutError(f"batch {batch_id} is still {batch}")
            time.sleep(0.03)

    def wait_ended(self, batch_id: str) -> batch_resource_pb2.Batch:
        return self.wait(batch_id, lambda b: b.status != batch_resource_pb2.BATCH_STATUS_RUNNING)

    def reset(self) -> None:
        """Stop whatever earlier tests of this module left active, so counts here are exact."""
        self.client.executions.StopAllExecutions(E.StopAllExecutionsRequest(), timeout=20)


def write_files(folder: Path, files: dict[str, Any]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        (folder / name).write_text(content if isinstance(content, str) else json.dumps(content))


def quick(name: str = "quick") -> dict[str, Any]:
    doc = linear({"id": "echo", "type": "transform", "config": {"output": "{{ input.who }}"}}, name=name)
    doc["nodes"][-1]["config"] = {"output": "{{ nodes.echo.output }}"}
    return doc


def delay(seconds: float) -> dict[str, Any]:
    return linear({"id": "nap", "type": "delay", "config": {"seconds": seconds}}, name="nap")


def waiting() -> dict[str, Any]:
    return linear({"id": "hold", "type": "wait"}, name="waits")


def failing() -> dict[str, Any]:
    return linear({"id": "boom", "type": "fail", "config": {"message": "boom"}}, name="fails")


def violations(error: grpc.RpcError) -> list[error_details_pb2.BadRequest.FieldViolation]:
    status = rpc_status.from_call(error)
    assert status is not None
    found = []
    for detail in status.details:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad_request = error_details_pb2.BadRequest()
            detail.Unpack(bad_request)
            found.extend(bad_request.field_violations)
    return found


def refused(call: Callable[[], Any], code: grpc.StatusCode) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        call()
    assert caught.value.code() == code, caught.value.details()
    return caught.value


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def env(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    root = tmp_path_factory.mktemp("workflows")
    outside = tmp_path_factory.mktemp("outside")
    write_files(outside, {"secret.json": quick()})

    def serve(url: str) -> Iterator[Env]:
        with (
            running_server(settings_for(url, workflows_dirs=(root,))) as handle,
            Client(handle.grpc_target) as client,
        ):
            yield Env(client, client.batches, root, outside, url)

    if request.param == "sqlite":
        yield from serve(f"sqlite:///{tmp_path_factory.mktemp('db') / 'runctl.db'}")
    else:
        with temporary_database() as url:
            yield from serve(url)


# -- running batches --------------------------------------------------------------------------------


def test_folder_batch_completes_with_counts_and_items(env: Env) -> None:
    folder = env.folder(
        {
            "b.json": quick("second"),
            "a.json": quick("first"),
            "c.yaml": json.dumps(quick("third")),  # JSON is YAML too
            "notes.txt": "not a workflow",
            ".hidden.json": "{ not even json",
        }
    )
    started = env.start(folder_path=folder, input=to_struct({"who": "batch"}))
    assert started.status == batch_resource_pb2.BATCH_STATUS_RUNNING
    assert (started.source_type, started.folder_path) == (batch_resource_pb2.BATCH_SOURCE_TYPE_FOLDER, folder)
    assert (started.total_workflows, started.concurrency) == (3, 4)
    batch = env.wait_ended(started.batch_id)
    assert batch.status == batch_resource_pb2.BATCH_STATUS_COMPLETED
    assert (batch.completed, batch.running, batch.queued, batch.failed, batch.stopped) == (3, 0, 0, 0, 0)
    assert batch.HasField("end_time") and batch.duration.ToNanoseconds() > 0
    assert batch.end_time.ToNanoseconds() >= batch.start_time.ToNanoseconds()
    assert [item.workflow_file_name for item in batch.executions] == ["a.json", "b.json", "c.yaml"]
    assert [item.workflow_path for item in batch.executions] == [
        f"{folder}/a.json",
        f"{folder}/b.json",
        f"{folder}/c.yaml",
    ]
    for item in batch.executions:
        assert item.status == common_pb2.EXECUTION_STATUS_COMPLETED
        assert item.HasField("start_time") and item.HasField("end_time")
        execution = env.client.get(item.execution_id)
        assert execution.batch_id == batch.batch_id
        assert execution.output.string_value == "batch"
    names = [env.client.get(item.execution_id).workflow_name for item in batch.executions]
    assert names == ["first", "second", "third"]


def test_concurrency_limit_is_never_exceeded(env: Env) -> None:
    folder = env.folder({f"w{i}.json": delay(0.2) for i in range(5)})
    batch_id = env.start(folder_path=folder, concurrency=2).batch_id
    seen_running: set[int] = set()

    def check(batch: batch_resource_pb2.Batch) -> bool:
        assert batch.running <= 2, batch
        assert batch.completed + batch.running + batch.queued == 5
        seen_running.add(batch.running)
        return batch.status != batch_resource_pb2.BATCH_STATUS_RUNNING

    batch = env.wait(batch_id, check)
    assert batch.status == batch_resource_pb2.BATCH_STATUS_COMPLETED and batch.completed == 5
    assert 2 in seen_running
    # Released in source order: each run starts no earlier than the one before it.
    starts = [item.start_time.ToNanoseconds() for item in batch.executions]
    assert starts == sorted(starts)


def test_a_failing_run_counts_as_failed_and_the_batch_still_completes(env: Env) -> None:
    folder = env.folder({"ok.json": quick(), "fails.json": failing()})
    batch = env.start(workflow_paths=B.WorkflowPathList(paths=[f"{folder}/ok.json", f"{folder}/fails.json"]))
    assert batch.source_type == batch_resource_pb2.BATCH_SOURCE_TYPE_FILES and batch.folder_path == ""
    batch = env.wait_ended(batch.batch_id)
    assert batch.status == batch_resource_pb2.BATCH_STATUS_COMPLETED
    assert (batch.completed, batch.failed) == (1, 1)
    ok, fails = batch.executions
    assert (ok.workflow_path, ok.status) == (f"{folder}/ok.json", common_pb2.EXECUTION_STATUS_COMPLETED)
    assert (fails.workflow_file_name, fails.status) == ("fails.json", common_pb2.EXECUTION_STATUS_ERROR)
    assert fails.error == "boom"


def test_paused_runs_hold_their_slot(env: Env) -> None:
    folder = env.folder({"one.json": waiting(), "two.json": waiting()})
    batch_id = env.start(folder_path=folder, concurrency=1).batch_id
    batch = env.wait(batch_id, lambda b: b.paused == 1)
    assert (batch.running, batch.paused, batch.queued) == (1, 1, 1)
    assert batch.executions[0].status == common_pb2.EXECUTION_STATUS_PAUSED
    assert batch.executions[1].status == common_pb2.EXECUTION_STATUS_QUEUED
    assert not batch.executions[1].HasField("start_time")
    # Going on from the wait frees the slot: the next run starts (and pauses in turn).
    env.client.executions.ControlPause(
        E.ControlPauseRequest(execution_id=batch.executions[0].execution_id, action=E.PAUSE_ACTION_CONTINUE),
        timeout=10,
    )
    batch = env.wait(batch_id, lambda b: b.completed == 1 and b.paused == 1)
    assert batch.executions[1].status == common_pb2.EXECUTION_STATUS_PAUSED
    env.batches.StopBatch(B.StopBatchRequest(batch_id=batch_id), timeout=20)


def test_stored_workflows_run_and_request_id_is_idempotent(env: Env) -> None:
    workflow = env.client.workflows.CreateWorkflow(
        workflow_pb2.CreateWorkflowRequest(definition=as_definition(quick("stored"))), timeout=10
    ).workflow
    request_id = f"req-{uuid.uuid4().hex}"
    ids = B.WorkflowIdList(ids=[workflow.id, workflow.id])
    first = env.start(workflow_ids=ids, request_id=request_id, input=to_struct({"who": "ids"}))
    again = env.start(workflow_ids=ids, request_id=request_id)
    assert again.batch_id == first.batch_id and again.request_id == request_id
    batch = env.wait_ended(first.batch_id)
    assert (batch.source_type, batch.total_workflows, batch.completed) == (
        batch_resource_pb2.BATCH_SOURCE_TYPE_WORKFLOWS,
        2,
        2,
    )
    assert [item.workflow_id for item in batch.executions] == [workflow.id, workflow.id]
    assert all(item.workflow_file_name == "" for item in batch.executions)
    runs = env.client.executions.ListExecutions(E.ListExecutionsRequest(batch_id=batch.batch_id), timeout=10)
    assert runs.total_size == 2


# -- stopping ---------------------------------------------------------------------------------------


def test_stop_batch_stops_running_and_cancels_queued(env: Env) -> None:
    folder = env.folder({f"w{i}.json": delay(600) for i in range(5)})
    batch_id = env.start(folder_path=folder, concurrency=2).batch_id
    env.wait(batch_id, lambda b: b.running == 2)
    reply = env.batches.StopBatch(B.StopBatchRequest(batch_id=batch_id, reason="enough"), timeout=20)
    assert reply.batch_id == batch_id
    assert (reply.running_stopped, reply.queued_cancelled) == (2, 3)
    # Committed before the answer.
    batch = env.get(batch_id)
    assert batch.status == batch_resource_pb2.BATCH_STATUS_STOPPED and batch.HasField("end_time")
    assert (batch.stopped, batch.running, batch.queued) == (5, 0, 0)
    assert all(item.status == common_pb2.EXECUTION_STATUS_STOPPED for item in batch.executions)
    error = refused(
        lambda: env.batches.StopBatch(B.StopBatchRequest(batch_id=batch_id), timeout=10),
        grpc.StatusCode.FAILED_PRECONDITION,
    )
    assert "already ended" in (error.details() or "")


def test_stop_all_stops_every_batch_and_lone_run(env: Env) -> None:
    env.reset()
    first = env.start(folder_path=env.folder({f"w{i}.json": delay(600) for i in range(3)}), concurrency=1)
    second = env.start(folder_path=env.folder({f"w{i}.json": delay(600) for i in range(2)}), concurrency=2)
    lone = env.client.start(delay(600)).id
    env.wait(first.batch_id, lambda b: b.running == 1)
    env.wait(second.batch_id, lambda b: b.running == 2)
    env.client.wait(lone, until=(common_pb2.EXECUTION_STATUS_RUNNING,))
    reply = env.client.executions.StopAllExecutions(E.StopAllExecutionsRequest(), timeout=20)
    assert len(reply.batch_ids) == 2
    assert sorted(reply.batch_ids) == sorted([first.batch_id, second.batch_id])
    assert (reply.running_stopped, reply.queued_cancelled) == (4, 2)
    for batch_id in (first.batch_id, second.batch_id):
        batch = env.get(batch_id)
        assert batch.status == batch_resource_pb2.BATCH_STATUS_STOPPED and batch.running + batch.queued == 0
    assert env.client.get(lone).status == common_pb2.EXECUTION_STATUS_STOPPED


# -- listing and clearing ---------------------------------------------------------------------------


def test_list_batches_filters_and_pages(env: Env) -> None:
    folder = env.folder({"a.json": quick()})
    done = [env.wait_ended(env.start(folder_path=folder).batch_id).batch_id for _ in range(3)]
    running = env.start(folder_path=env.folder({"long.json": delay(600)})).batch_id

    everything = env.batches.ListBatches(B.ListBatchesRequest(page_size=100), timeout=10)
    ids = [b.batch_id for b in everything.batches]
    assert ids[:4] == [running, *reversed(done)]  # newest first
    assert everything.total_size == len(ids) and not everything.next_page_token
    assert all(not b.executions for b in everything.batches)  # lists stay light
    assert everything.batches[1].completed == 1 and everything.batches[1].HasField("end_time")

    walked: list[str] = []
    token = ""
    while True:
        reply = env.batches.ListBatches(B.ListBatchesRequest(page_size=2, page_token=token), timeout=10)
        assert len(reply.batches) <= 2 and reply.total_size == len(ids)
        walked.extend(b.batch_id for b in reply.batches)
        token = reply.next_page_token
        if not token:
            break
    assert walked == ids
    first = env.batches.ListBatches(B.ListBatchesRequest(page_size=1), timeout=10)
    other_filter = B.ListBatchesRequest(
        statuses=[batch_resource_pb2.BATCH_STATUS_COMPLETED], page_token=first.next_page_token
    )
    refused(partial(env.batches.ListBatches, other_filter, timeout=10), grpc.StatusCode.INVALID_ARGUMENT)

    completed = env.batches.ListBatches(
        B.ListBatchesRequest(statuses=[batch_resource_pb2.BATCH_STATUS_COMPLETED]), timeout=10
    )
    assert set(done) <= {b.batch_id for b in completed.batches}
    assert all(b.status == batch_resource_pb2.BATCH_STATUS_COMPLETED for b in completed.batches)
    only_running = env.batches.ListBatches(
        B.ListBatchesRequest(statuses=[batch_resource_pb2.BATCH_STATUS_RUNNING]), timeout=10
    )
    assert [b.batch_id for b in only_running.batches] == [running]
    assert only_running.total_size == 1 and only_running.batches[0].running == 1

    for request in (
        B.ListBatchesRequest(page_size=-1),
        B.ListBatchesRequest(page_token="garbage"),
    ):
        refused(partial(env.batches.ListBatches, request, timeout=10), grpc.StatusCode.INVALID_ARGUMENT)
    env.batches.StopBatch(B.StopBatchRequest(batch_id=running), timeout=20)


def test_clear_batches_deletes_ended_ones_and_skips_running(env: Env) -> None:
    env.reset()
    env.batches.ClearBatches(B.ClearBatchesRequest(), timeout=20)
    ended = env.wait_ended(env.start(folder_path=env.folder({"a.json": quick(), "b.json": quick()})).batch_id)
    running = env.start(folder_path=env.folder({"long.json": delay(600)})).batch_id
    for item in ended.executions:  # ended runs read once are served from memory: a clear must drop them
        env.client.get(item.execution_id)
    ended_ids = [item.execution_id for item in ended.executions]
    assert env.node_states(ended_ids) > 0
    reply = env.batches.ClearBatches(B.ClearBatchesRequest(), timeout=20)
    assert (reply.batches_deleted, reply.executions_deleted) == (1, 2)
    assert list(reply.skipped_batch_ids) == [running]
    refused(lambda: env.get(ended.batch_id), grpc.StatusCode.NOT_FOUND)
    for item in ended.executions:
        refused(partial(env.client.get, item.execution_id), grpc.StatusCode.NOT_FOUND)
    assert env.node_states(ended_ids) == 0  # no foreign key cascades them: the clear removes them
    assert env.get(running).status == batch_resource_pb2.BATCH_STATUS_RUNNING
    env.batches.StopBatch(B.StopBatchRequest(batch_id=running), timeout=20)
    again = env.batches.ClearBatches(B.ClearBatchesRequest(), timeout=20)
    assert (again.batches_deleted, again.executions_deleted, list(again.skipped_batch_ids)) == (1, 1, [])


# -- refusals ---------------------------------------------------------------------------------------


def test_paths_outside_the_roots_are_refused(env: Env) -> None:
    linked = env.root / f"linked-{uuid.uuid4().hex[:8]}"
    linked.symlink_to(env.outside, target_is_directory=True)
    mixed = env.folder({"fine.json": quick()})
    (env.root / mixed / "escape.json").symlink_to(env.outside / "secret.json")
    for folder in (
        "../" + env.outside.name,
        str(env.outside),
        linked.name,
        f"{mixed}/../../{env.outside.name}",
    ):
        error = refused(partial(env.start, folder_path=folder), grpc.StatusCode.INVALID_ARGUMENT)
        assert [v.field for v in violations(error)] == ["folder_path"], folder
    error = refused(lambda: env.start(folder_path=mixed), grpc.StatusCode.INVALID_ARGUMENT)
    assert ["escape.json" in v.description for v in violations(error)] == [True]
    paths = B.WorkflowPathList(paths=[f"{mixed}/fine.json", f"../{env.outside.name}/secret.json"])
    error = refused(lambda: env.start(workflow_paths=paths), grpc.StatusCode.INVALID_ARGUMENT)
    assert [v.field for v in violations(error)] == ["workflow_paths.paths[1]"]


def test_invalid_workflow_files_refuse_the_whole_batch(env: Env) -> None:
    before = env.client.executions.ListExecutions(E.ListExecutionsRequest(), timeout=10).total_size
    broken = {"nodes": [{"id": "start", "type": "start"}], "edges": [{"from": "start", "to": "nowhere"}]}
    folder = env.folder({"a-good.json": quick(), "b-bad.json": "{ nope", "c-bad.json": broken})
    error = refused(lambda: env.start(folder_path=folder), grpc.StatusCode.INVALID_ARGUMENT)
    described = [v.description for v in violations(error)]
    assert any(d.startswith("b-bad.json: ") for d in described)
    assert any(d.startswith("c-bad.json: ") for d in described)
    assert not any("a-good.json" in d for d in described)
    after = env.client.executions.ListExecutions(E.ListExecutionsRequest(), timeout=10).total_size
    assert after == before  # nothing half-started


def test_bad_requests(env: Env) -> None:
    invalid, not_found = grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND
    folder = env.folder({"a.json": quick()})
    empty = env.folder({"readme.txt": "nothing to run"})
    refused(lambda: env.start(), invalid)
    refused(lambda: env.start(folder_path=empty), invalid)
    refused(lambda: env.start(workflow_paths=B.WorkflowPathList()), invalid)
    refused(lambda: env.start(workflow_ids=B.WorkflowIdList()), invalid)
    refused(lambda: env.start(workflow_ids=B.WorkflowIdList(ids=[""])), invalid)
    for concurrency in (-1, 101):
        error = refused(partial(env.start, folder_path=folder, concurrency=concurrency), invalid)
        assert [v.field for v in violations(error)] == ["concurrency"]
    refused(lambda: env.start(folder_path=f"{folder}/missing"), not_found)
    refused(lambda: env.start(workflow_paths=B.WorkflowPathList(paths=[f"{folder}/missing.json"])), not_found)
    refused(lambda: env.start(workflow_ids=B.WorkflowIdList(ids=["wf_missing"])), not_found)
    refused(lambda: env.get(""), invalid)
    refused(lambda: env.get("batch_missing"), not_found)
    refused(
        lambda: env.batches.StopBatch(B.StopBatchRequest(batch_id="batch_missing"), timeout=10), not_found
    )
    refused(lambda: env.batches.StopBatch(B.StopBatchRequest(), timeout=10), invalid)

    workflow = env.client.workflows.CreateWorkflow(
        workflow_pb2.CreateWorkflowRequest(definition=as_definition(quick())), timeout=10
    ).workflow
    env.client.workflows.CancelWorkflow(
        workflow_pb2.CancelWorkflowRequest(workflow_id=workflow.id), timeout=10
    )
    refused(
        lambda: env.start(workflow_ids=B.WorkflowIdList(ids=[workflow.id])),
        grpc.StatusCode.FAILED_PRECONDITION,
    )


# -- restart ----------------------------------------------------------------------------------------


def test_a_restart_fills_free_slots_and_cancels_runs_of_batches_never_committed(tmp_path: Path) -> None:
    """A run that ended while nobody released the next one (a crash in between) is caught up at start;
    runs queued for a batch whose row never committed are cancelled."""
    root = tmp_path / "workflows"
    write_files(root / "set", {"a.json": waiting(), "b.json": quick()})
    db = tmp_path / "runctl.db"
    settings = settings_for(f"sqlite:///{db}", workflows_dirs=(root,))
    with running_server(settings) as handle, Client(handle.grpc_target) as client:
        env = Env(client, client.batches, root, tmp_path, f"sqlite:///{db}")
        batch_id = env.start(folder_path="set", concurrency=1).batch_id
        first = env.wait(batch_id, lambda b: b.paused == 1).executions[0].execution_id
        lost = env.start(folder_path="set", concurrency=1)
        lost_queued = env.wait(lost.batch_id, lambda b: b.paused == 1).executions[1].execution_id
    with sqlite3.connect(db) as connection:
        # The paused run is marked ended behind the server's back ...
        connection.execute(
            "UPDATE executions SET status = 'stopped', ended_at = :t WHERE id = :id",
            {"t": time.time(), "id": first},
        )
        # ... and the other batch looks as if the server died before committing it.
        connection.execute("DELETE FROM batches WHERE id = :id", {"id": lost.batch_id})
    with running_server(settings) as handle, Client(handle.grpc_target) as client:
        env = Env(client, client.batches, root, tmp_path, f"sqlite:///{db}")
        batch = env.wait_ended(batch_id)
        assert batch.status == batch_resource_pb2.BATCH_STATUS_COMPLETED
        assert (batch.stopped, batch.completed) == (1, 1)
        assert env.client.get(lost_queued).status == common_pb2.EXECUTION_STATUS_STOPPED
