"""Pure helpers of batches: concurrency, counts, folder listing, event payloads, status words."""

from __future__ import annotations

from pathlib import Path

import pytest
from google.protobuf import json_format

from runctl.v1 import batch_resource_pb2
from runctl_server.api.batch_convert import status_word
from runctl_server.api.convert import filter_words
from runctl_server.engine.batch_creation import DEFAULT_CONCURRENCY, batch_concurrency
from runctl_server.engine.batch_queries import BatchCounts, batch_json, item_json
from runctl_server.engine.batch_sources import folder_entries
from runctl_server.errors import InvalidArgument
from runctl_server.store.records import BatchItemRecord, BatchRecord


def test_concurrency_defaults_and_range() -> None:
    assert batch_concurrency(0) == DEFAULT_CONCURRENCY
    assert (batch_concurrency(1), batch_concurrency(100)) == (1, 100)
    for bad in (-1, 101):
        with pytest.raises(InvalidArgument) as caught:
            batch_concurrency(bad)
        assert [v.field for v in caught.value.violations] == ["concurrency"]


def test_counts_put_paused_runs_among_running_ones() -> None:
    counts = BatchCounts.of({"running": 2, "paused": 1, "queued": 3, "error": 1, "completed": 4})
    assert (counts.running, counts.paused, counts.queued, counts.failed, counts.completed) == (3, 1, 3, 1, 4)
    assert counts.active == 6
    assert BatchCounts.of({"completed": 1, "stopped": 2}).active == 0


def test_folder_entries_sorted_without_hidden_or_other_files(tmp_path: Path) -> None:
    folder = tmp_path / "root" / "set"
    folder.mkdir(parents=True)
    for name in ("b.yml", "a.json", "c.YAML", ".hidden.json", "notes.txt"):
        (folder / name).write_text("{}")
    (folder / "dir.json").mkdir()  # a folder is not a workflow file
    entries = folder_entries(folder, "./set/", [tmp_path / "root"])
    assert [e.file_name for e in entries] == ["a.json", "b.yml", "c.YAML"]
    assert entries[0].workflow_path == "./set/a.json"
    assert entries[0].real_path == str((folder / "a.json").resolve())


def test_folder_entries_refuse_symlinks_leading_out_and_broken_ones(tmp_path: Path) -> None:
    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "set").mkdir(parents=True)
    outside.mkdir()
    (outside / "secret.json").write_text("{}")
    (root / "set" / "fine.json").write_text("{}")
    (root / "set" / "escape.json").symlink_to(outside / "secret.json")
    (root / "set" / "dangling.json").symlink_to(root / "nowhere.json")
    (root / "inside.json").write_text("{}")
    (root / "set" / "sibling.json").symlink_to(root / "inside.json")  # inside the roots: fine
    with pytest.raises(InvalidArgument) as caught:
        folder_entries(root / "set", "set", [root])
    described = sorted(v.description for v in caught.value.violations)
    assert [d.split(":")[0] for d in described] == ["dangling.json", "escape.json"]
    assert {v.field for v in caught.value.violations} == {"folder_path"}


def test_payloads_use_the_proto_json_names() -> None:
    row = BatchRecord(
        id="batch_1",
        workspace_id="default",
        status="completed",
        source_type="folder",
        folder_path="./set",
        total=2,
        concurrency=4,
        input=None,
        created_at=100.0,
        ended_at=101.5,
        request_id=None,
    )
    payload = batch_json(row, BatchCounts.of({"completed": 1, "error": 1}))
    assert payload == {
        "batchId": "batch_1",
        "status": "BATCH_STATUS_COMPLETED",
        "sourceType": "BATCH_SOURCE_TYPE_FOLDER",
        "folderPath": "./set",
        "totalWorkflows": 2,
        "completed": 1,
        "failed": 1,
        "concurrency": 4,
        "startTime": "1970-01-01T00:01:40Z",
        "endTime": "1970-01-01T00:01:41.500000Z",
        "duration": "1.500s",
    }
    assert json_format.ParseDict(payload, batch_resource_pb2.Batch()).duration.ToMilliseconds() == 1500
    item = BatchItemRecord(
        position=0,
        execution_id="exec_1",
        workflow_id=None,
        workflow_file_name="a.json",
        workflow_path="./set/a.json",
        status="error",
        current_node_id=None,
        error='{"message": "boom"}',
        started_at=100.0,
        ended_at=None,
    )
    assert item_json(item) == {
        "executionId": "exec_1",
        "workflowFileName": "a.json",
        "workflowPath": "./set/a.json",
        "status": "EXECUTION_STATUS_ERROR",
        "error": "boom",
        "startTime": "1970-01-01T00:01:40Z",
    }
    assert json_format.ParseDict(item_json(item), batch_resource_pb2.BatchItem()).error == "boom"


def test_status_words() -> None:
    assert status_word(batch_resource_pb2.BATCH_STATUS_UNSPECIFIED) == ""
    assert status_word(batch_resource_pb2.BATCH_STATUS_STOPPED) == "stopped"


def test_status_filter_words() -> None:
    stopped, running = batch_resource_pb2.BATCH_STATUS_STOPPED, batch_resource_pb2.BATCH_STATUS_RUNNING
    assert filter_words([], batch_resource_pb2.BatchStatus, "statuses") == ()
    assert filter_words([stopped, running, stopped], batch_resource_pb2.BatchStatus, "statuses") == (
        "stopped",
        "running",
    )
    for bad in ([running, batch_resource_pb2.BATCH_STATUS_UNSPECIFIED], [running, 42]):
        with pytest.raises(InvalidArgument) as caught:
            filter_words(bad, batch_resource_pb2.BatchStatus, "statuses")
        assert [v.field for v in caught.value.violations] == ["statuses[1]"]
