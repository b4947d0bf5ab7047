"""The approval page in a real browser: Debian's headless Chromium, driven by playwright-core from Node.

The server has API keys; the person in the browser has none, only the uiUrl (its token is the
credential). tests/browser/approval.mjs opens it, reads the request, submits a bad number once (the
error shows beside the field, the other values stay), fixes it and approves, then opens the link
again (spent: refused). This test then checks over gRPC that the run completed and that the approval
node's output holds what was entered.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from runctl.messages import as_definition
from runctl.v1 import common_pb2, execution_pb2, workflow_pb2
from runctl_server.settings import Address
from tests.engine_helpers import Client, linear, output, to_struct
from tests.support import (
    LOOPBACK,
    ServerThread,
    create_api_key,
    free_port,
    running_server,
    settings_for,
)

BROWSER_DIR = Path(__file__).resolve().parent / "browser"
CHROMIUM = Path("/usr/bin/chromium")
APPROVAL = {
    "id": "approve",
    "type": "approval",
    "config": {
        "title": "Ship order {{ input.order }}?",
        "message": "Customer {{ input.customer }} asks for express delivery.",
        "formFields": [
            {"name": "note", "type": "text", "label": "Note", "required": True},
            {"name": "amount", "type": "number", "label": "Amount", "default": 10},
            {"name": "express", "type": "boolean", "label": "Express"},
            {"name": "tier", "type": "select", "label": "Tier", "options": ["standard", "priority"]},
        ],
    },
}


def browser_available() -> None:
    """Skip without Chromium on a developer's machine; in CI its absence is a failure."""
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} is missing: `apt-get install chromium` (.ci/run installs it)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    if not (BROWSER_DIR / "node_modules" / "playwright-core").is_dir():
        pytest.fail("tests/browser/node_modules is missing: run `make install`")
    if shutil.which("node") is None:
        pytest.fail("node is not on PATH")


@dataclasses.dataclass
class Keyed:
    handle: ServerThread
    key: str


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Keyed]:
    # The links must be the server's real address: the browser opens the uiUrl as given.
    port = free_port()
    url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'runctl.db'}"
    key = create_api_key(url, "shipping")
    settings = settings_for(url, public_base_url=f"http://{LOOPBACK}:{port}")
    with running_server(dataclasses.replace(settings, http_addr=Address(LOOPBACK, port))) as handle:
        yield Keyed(handle, key)


@pytest.fixture(scope="module")
def client(server: Keyed) -> Iterator[Client]:
    with Client(server.handle.grpc_target, api_key=server.key) as client:
        yield client


def test_a_person_approves_in_the_browser(server: Keyed, client: Client) -> None:
    browser_available()
    request = workflow_pb2.CreateWorkflowRequest(definition=as_definition(linear(APPROVAL, name="Shipping")))
    workflow_id = client.workflows.CreateWorkflow(request, timeout=10).workflow.id
    start = execution_pb2.StartExecutionRequest(
        workflow_id=workflow_id, input=to_struct({"order": 1042, "customer": "Ada & Co"})
    )
    run = client.executions.StartExecution(start, timeout=10).execution.id
    [point] = client.wait(run, until=(common_pb2.EXECUTION_STATUS_PAUSED,)).pause_points
    ui_url = point.resume_links.ui_url
    assert ui_url.startswith(f"{server.handle.http_url}/resume/{workflow_id}/{run}?token=")
    # Without the token the page is closed to a person with no key.
    bare = httpx.get(ui_url.partition("?")[0], timeout=10)
    assert bare.status_code == 401

    done = subprocess.run(
        ["node", "approval.mjs", ui_url],
        cwd=BROWSER_DIR,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, f"the browser script failed:\n{done.stderr}\n{done.stdout}"
    seen: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])

    assert seen["openStatus"] == 200
    assert seen["title"] == "Ship order 1042?"
    assert seen["documentTitle"].startswith("Ship order 1042?")
    assert seen["message"] == "Customer Ada & Co asks for express delivery."
    assert run in seen["facts"] and "approve" in seen["facts"] and "UTC" in seen["facts"]
    assert seen["legend"] == "Your decision"
    assert seen["enterKeptThePage"] is True

    assert "must be a number, got '12abc'" in seen["errorSummary"]
    assert seen["amountInvalid"] == "true" and seen["focused"] == "amount"
    assert seen["amountError"] == "must be a number, got '12abc'"
    assert (seen["keptNote"], seen["keptAmount"], seen["keptExpress"], seen["keptTier"]) == (
        "Ship it <fast>",
        "12abc",
        True,
        "priority",
    )

    assert seen["outcome"] == "Approved"
    assert "Ship it <fast>" in seen["outcomeText"] and "1500" in seen["outcomeText"]
    assert seen["afterwardsStatus"] == 401
    assert seen["afterwards"] == "This link cannot be used"
    assert "already resumed" in seen["afterwardsText"]
    # The page's policy let its own stylesheet apply and refused nothing else on it; framed by another
    # page, the browser would not show it.
    assert seen["styled"] == "#1f5fbf" and seen["refusals"] == [], seen
    assert seen["framingRefused"] and "This link cannot be used" not in seen["framedText"], seen

    execution = client.wait(run)
    assert execution.status == common_pb2.EXECUTION_STATUS_COMPLETED
    approval = output(execution.data)["nodes"]["approve"]["output"]
    assert approval == {
        "approved": True,
        "note": "Ship it <fast>",
        "amount": 1500,
        "express": True,
        "tier": "priority",
    }
