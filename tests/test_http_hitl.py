"""The paused executions API over real HTTP: paused executions of a workflow, the resume apiUrl and the
approval page.

The list is compared with the API's documented example field by field (key sets, types, casing); runs are
set up over gRPC through the generated stubs, as a client of both faces would.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from runctl.messages import as_definition
from runctl.v1 import common_pb2, execution_pb2, workflow_pb2
from runctl_server.http.approval_form import parse_number
from tests.engine_helpers import Client, linear, output, to_struct
from tests.support import ServerThread, running_server, settings_for, wait_for

BASE = "https://runctl.example"
ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
PAUSED = (common_pb2.EXECUTION_STATUS_PAUSED,)

# The API's documented example answer, with its values' types.
DOCUMENTED_PAUSED_EXECUTION = {
    "id": str,
    "workflowId": str,
    "executionId": str,
    "status": str,
    "totalPauseCount": int,
    "resumedCount": int,
    "pausedAt": str,
    "updatedAt": str,
    "expiresAt": type(None),
    "metadata": type(None),
    "triggerIds": list,
    "pausePoints": list,
}
DOCUMENTED_PAUSE_POINT = {
    "contextId": str,
    "blockId": str,
    "registeredAt": str,
    "resumeStatus": str,
    "snapshotReady": bool,
    "resumeLinks": dict,
    "response": dict,
}
DOCUMENTED_LINKS = {"apiUrl", "uiUrl", "contextId", "executionId", "workflowId"}
FORM_FIELD_KEYS = {"name", "type", "label", "description", "required", "default", "options"}

FIELDS = [
    {"name": "note", "type": "text", "label": "Note", "required": True},
    {"name": "amount", "type": "number", "label": "Amount", "default": 10},
    {"name": "rush", "type": "boolean", "label": "Rush"},
    {"name": "tier", "type": "select", "options": ["gold", "silver"], "required": True},
]
APPROVAL = {
    "id": "approve",
    "type": "approval",
    "config": {
        "title": "Approval Required",
        "message": "Please review order {{ input.order }}",
        "formFields": FIELDS,
    },
}
VALID = {"note": "ok", "amount": 12, "rush": True, "tier": "gold", "approved": True}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'runctl.db'}"
    with running_server(settings_for(url, public_base_url=BASE)) as handle:
        yield handle


@pytest.fixture(scope="module")
def http(server: ServerThread) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.http_url, timeout=10) as client:
        yield client


@pytest.fixture(scope="module")
def client(server: ServerThread) -> Iterator[Client]:
    with Client(server.grpc_target) as client:
        yield client


def create_workflow(client: Client, document: dict[str, Any]) -> str:
    request = workflow_pb2.CreateWorkflowRequest(definition=as_definition(document))
    return str(client.workflows.CreateWorkflow(request, timeout=10).workflow.id)


def start_paused(client: Client, workflow_id: str, order: int = 1) -> str:
    request = execution_pb2.StartExecutionRequest(workflow_id=workflow_id, input=to_struct({"order": order}))
    execution_id = str(client.executions.StartExecution(request, timeout=10).execution.id)
    client.wait(execution_id, until=PAUSED)
    return execution_id


def node_output(execution: execution_pb2.Execution, node_id: str) -> Any:
    return output(execution.data)["nodes"][node_id]["output"]


def local(url: str) -> str:
    """A link's path: links carry the public base URL, the test talks to the server directly."""
    assert url.startswith(BASE + "/")
    return url.removeprefix(BASE)


TOKEN = re.compile(r"\?token=[\w.-]+$")


def untokened(url: str) -> str:
    """A link without its resume token (which tests/test_resume_links.py covers)."""
    assert TOKEN.search(url), url
    return TOKEN.sub("", url)


@pytest.fixture(scope="module")
def workflow_id(client: Client) -> str:
    return create_workflow(client, linear(APPROVAL, name="Order approval"))


@pytest.fixture(scope="module")
def paused_run(client: Client, workflow_id: str) -> str:
    return start_paused(client, workflow_id, order=42)


def paused_list(http: httpx.Client, workflow_id: str, **params: str) -> list[dict[str, Any]]:
    reply = http.get(f"/api/workflows/{workflow_id}/paused", params=params, headers={"X-API-Key": "key"})
    assert reply.status_code == 200, reply.text
    assert set(reply.json()) == {"pausedExecutions"}
    items: list[dict[str, Any]] = reply.json()["pausedExecutions"]
    return items


def find(items: list[dict[str, Any]], execution_id: str) -> dict[str, Any] | None:
    return next((item for item in items if item["executionId"] == execution_id), None)


# -- GET /api/workflows/{id}/paused ------------------------------------------------------------------


def test_the_documented_request_answers_the_documented_shape(
    http: httpx.Client, workflow_id: str, paused_run: str
) -> None:
    # curl -X GET "https://www.sim.ai/api/workflows/{id}/paused?status=paused" -H "X-API-Key: YOUR_API_KEY"
    item = find(paused_list(http, workflow_id, status="paused"), paused_run)
    assert item is not None
    assert set(item) == set(DOCUMENTED_PAUSED_EXECUTION)
    for key, kind in DOCUMENTED_PAUSED_EXECUTION.items():
        assert isinstance(item[key], kind), (key, item[key])
    assert item["id"].startswith("pe_") and item["id"] != paused_run
    assert item["workflowId"] == workflow_id and item["executionId"] == paused_run
    assert item["status"] == "paused"
    assert (item["totalPauseCount"], item["resumedCount"]) == (1, 0)
    assert ISO_UTC.match(item["pausedAt"]) and ISO_UTC.match(item["updatedAt"])
    assert item["expiresAt"] is None and item["metadata"] is None and item["triggerIds"] == []

    [point] = item["pausePoints"]
    assert set(point) == set(DOCUMENTED_PAUSE_POINT)
    for key, kind in DOCUMENTED_PAUSE_POINT.items():
        assert isinstance(point[key], kind), (key, point[key])
    assert point["contextId"].startswith("ctx_")
    assert point["blockId"] == "approve"
    assert ISO_UTC.match(point["registeredAt"])
    assert point["resumeStatus"] == "paused" and point["snapshotReady"] is True

    links = point["resumeLinks"]
    assert set(links) == DOCUMENTED_LINKS
    context_id = point["contextId"]
    assert untokened(links["apiUrl"]) == f"{BASE}/api/resume/{workflow_id}/{paused_run}/{context_id}"
    assert untokened(links["uiUrl"]) == f"{BASE}/resume/{workflow_id}/{paused_run}"
    assert (links["contextId"], links["executionId"], links["workflowId"]) == (
        context_id,
        paused_run,
        workflow_id,
    )

    response = point["response"]
    assert set(response) == {"displayData", "formFields"}
    assert response["displayData"] == {"title": "Approval Required", "message": "Please review order 42"}
    fields = response["formFields"]
    assert [field["name"] for field in fields] == ["note", "amount", "rush", "tier"]
    assert all(set(field) == FORM_FIELD_KEYS for field in fields)
    assert fields[1] == {
        "name": "amount",
        "type": "number",
        "label": "Amount",
        "description": "",
        "required": False,
        "default": 10,
        "options": [],
    }
    assert fields[3]["type"] == "select" and fields[3]["options"] == ["gold", "silver"]
    assert fields[3]["label"] == "tier"  # no label: the name


def test_the_status_filter(http: httpx.Client, client: Client, workflow_id: str) -> None:
    resumed_run = start_paused(client, workflow_id)
    [point] = find(paused_list(http, workflow_id), resumed_run)["pausePoints"]  # type: ignore[index]
    assert http.post(local(point["resumeLinks"]["apiUrl"]), json=VALID).json()["action"] == "resumed"
    still = start_paused(client, workflow_id)

    paused = paused_list(http, workflow_id, status="paused")
    resumed = paused_list(http, workflow_id, status="resumed")
    everything = paused_list(http, workflow_id)
    assert find(paused, still) is not None and find(paused, resumed_run) is None
    assert find(resumed, resumed_run) is not None and find(resumed, still) is None
    assert {item["status"] for item in resumed} == {"resumed"}
    item = find(resumed, resumed_run)
    assert item is not None and (item["totalPauseCount"], item["resumedCount"]) == (1, 1)
    assert item["pausePoints"][0]["resumeStatus"] == "resumed"
    assert find(everything, still) is not None and find(everything, resumed_run) is not None
    assert paused_list(http, workflow_id, status="expired") == []
    assert paused_list(http, workflow_id, status="") == everything  # empty: any status
    # Most recently paused first.
    assert [item["executionId"] for item in everything].index(still) < [
        item["executionId"] for item in everything
    ].index(resumed_run)


def test_paging_travels_in_a_header(http: httpx.Client, client: Client) -> None:
    workflow_id = create_workflow(client, linear(APPROVAL, name="paging"))
    runs = {start_paused(client, workflow_id) for _ in range(3)}
    first = http.get(f"/api/workflows/{workflow_id}/paused", params={"limit": 2})
    token = first.headers["x-next-page-token"]
    second = http.get(f"/api/workflows/{workflow_id}/paused", params={"limit": 2, "pageToken": token})
    assert "x-next-page-token" not in second.headers
    seen = [
        item["executionId"] for item in first.json()["pausedExecutions"] + second.json()["pausedExecutions"]
    ]
    assert len(seen) == 3 and set(seen) == runs


def test_unknown_workflow_and_bad_status(http: httpx.Client, workflow_id: str) -> None:
    missing = http.get("/api/workflows/wf_missing/paused", params={"status": "paused"})
    assert missing.status_code == 404
    assert set(missing.json()) == {"error", "details"} and "wf_missing" in missing.json()["error"]
    for word in ("bogus", "PAUSED ", "0"):
        bad = http.get(f"/api/workflows/{workflow_id}/paused", params={"status": word})
        assert bad.status_code == 400, word
        assert set(bad.json()) == {"error", "details"}
        assert {"field": "status", "description": bad.json()["details"][1]["description"]} in bad.json()[
            "details"
        ]
    for limit in ("-1", "x", "0", "5000"):
        assert http.get(f"/api/workflows/{workflow_id}/paused", params={"limit": limit}).status_code == 400


# -- POST apiUrl ------------------------------------------------------------------------------------


def test_resume_over_the_api_url(http: httpx.Client, client: Client, workflow_id: str) -> None:
    run = start_paused(client, workflow_id)
    [point] = find(paused_list(http, workflow_id), run)["pausePoints"]  # type: ignore[index]
    api_url = local(point["resumeLinks"]["apiUrl"])

    bad = http.post(
        api_url, json={"note": 3, "amount": "a lot", "rush": "yes", "colour": "red", "approved": 1}
    )
    assert bad.status_code == 400
    body = bad.json()
    assert set(body) == {"error", "details"}
    violations = {d["field"]: d["description"] for d in body["details"] if "field" in d}
    assert violations == {
        "values.note": "must be a string, got a number",
        "values.amount": "must be a number, got a string",
        "values.rush": "must be true or false, got a string",
        "values.tier": "is required",
        "values.colour": "is not a field of this form (fields: note, amount, rush, tier)",
        "values.approved": "must be true or false, got a number",
    }
    assert client.get(run).status == common_pb2.EXECUTION_STATUS_PAUSED  # nothing happened

    once = {"note": "fine", "tier": "silver", "approved": False}
    first = http.post(api_url, json=once, headers={"Idempotency-Key": "req-1"})
    assert first.status_code == 200
    answer = first.json()
    assert set(answer) == {"action", "reason", "values", "pausePoint"}
    assert (answer["action"], answer["reason"]) == ("resumed", "")
    assert answer["values"] == {"note": "fine", "tier": "silver", "amount": 10, "approved": False}
    assert set(answer["pausePoint"]) == set(DOCUMENTED_PAUSE_POINT)
    assert answer["pausePoint"]["resumeStatus"] == "resumed"

    retry = http.post(api_url, json=once, headers={"Idempotency-Key": "req-1"})
    assert (retry.status_code, retry.json()["action"]) == (200, "resumed")
    # The link's token is spent; without it (dev mode here, else with an API key) a later call is
    # answered "skipped" as the node resume API answers.
    replay = http.post(api_url, json={"note": "again", "tier": "gold"})
    assert replay.status_code == 401
    second = http.post(untokened(api_url), json={"note": "again", "tier": "gold"})
    assert second.status_code == 200
    assert (second.json()["action"], second.json()["reason"]) == ("skipped", "already resumed")
    assert second.json()["values"] == answer["values"]  # the winner's

    done = client.wait(run)
    assert done.status == common_pb2.EXECUTION_STATUS_COMPLETED
    output = node_output(done, "approve")
    assert output == {"note": "fine", "tier": "silver", "amount": 10, "approved": False}


def test_resume_api_url_errors(http: httpx.Client, client: Client, workflow_id: str, paused_run: str) -> None:
    [point] = find(paused_list(http, workflow_id), paused_run)["pausePoints"]  # type: ignore[index]
    context_id = point["contextId"]
    for path in (
        f"/api/resume/{workflow_id}/{paused_run}/ctx_missing",
        f"/api/resume/wf_other/{paused_run}/{context_id}",
        f"/api/resume/{workflow_id}/exec_other/{context_id}",
        f"/api/resume/-/{paused_run}/{context_id}",
    ):
        missing = http.post(path, json=VALID)
        assert missing.status_code == 404, path
        assert set(missing.json()) == {"error", "details"}
    api_url = f"/api/resume/{workflow_id}/{paused_run}/{context_id}"
    broken = http.post(api_url, content=b"{nope", headers={"content-type": "application/json"})
    assert broken.status_code == 400 and "JSON" in broken.json()["error"]
    assert http.post(api_url, json=["not", "an", "object"]).status_code == 400
    assert http.post(api_url, content=b"{" + b" " * 2_000_000 + b"}").status_code == 413
    deep = http.post(api_url, content=b'{"a":' * 40 + b"1" + b"}" * 40)
    assert deep.status_code == 400 and "nests deeper" in deep.json()["error"]
    for number in (b"NaN", b"Infinity", b"1e400"):
        odd = http.post(
            api_url, content=b'{"a": [' + number + b"]}", headers={"content-type": "application/json"}
        )
        assert odd.status_code == 400 and "NaN or Infinity" in odd.json()["error"], number
    assert client.get(paused_run).status == common_pb2.EXECUTION_STATUS_PAUSED


def test_a_run_without_a_stored_workflow_uses_a_dash(http: httpx.Client, client: Client) -> None:
    run = client.start(
        linear(
            {
                "id": "hold",
                "type": "wait",
                "config": {"display": {"title": "Waiting", "message": "Send data"}},
            }
        )
    ).id
    execution = client.wait(run, until=PAUSED)
    [point] = execution.pause_points
    api_url = local(point.resume_links.api_url)
    assert untokened(api_url) == f"/api/resume/-/{run}/{point.context_id}"
    page = http.get(local(point.resume_links.ui_url))
    assert page.status_code == 200 and "Waiting" in page.text
    answer = http.post(api_url, json={"anything": [1, 2]}).json()
    assert answer["action"] == "resumed"
    assert answer["pausePoint"]["resumeLinks"]["workflowId"] == "-"
    assert node_output(client.wait(run), "hold") == {"anything": [1, 2]}


# -- the approval page (plain HTTP; tests/test_approval_page.py drives it in a browser) ---------------


def form_post(http: httpx.Client, path: str, data: dict[str, str]) -> httpx.Response:
    return http.post(path, data=data)


def test_the_page_escapes_what_workflows_say(http: httpx.Client, client: Client) -> None:
    hostile = {
        "id": "approve",
        "type": "approval",
        "config": {
            "title": "<script>alert(1)</script>",
            "message": 'Order {{ input.order }} & "more"',
            "formFields": [{"name": "note", "label": "<img src=x onerror=alert(1)>", "default": '"><b>'}],
        },
    }
    workflow_id = create_workflow(client, linear(hostile, name="<i>name</i>"))
    run = start_paused(client, workflow_id, order=7)
    page = http.get(f"/resume/{workflow_id}/{run}")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    text = page.text
    assert "<script>" not in text and "<img" not in text and "<i>name" not in text and '"><b>' not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "Order 7 &amp; &quot;more&quot;" in text
    assert 'value="&quot;&gt;&lt;b&gt;"' in text


def test_the_page_renders_the_form(http: httpx.Client, workflow_id: str, paused_run: str) -> None:
    text = http.get(f"/resume/{workflow_id}/{paused_run}").text
    assert "<h1" in text and "Approval Required" in text and "Please review order 42" in text
    assert paused_run in text and "<code>approve</code>" in text and "<time datetime=" in text
    assert re.search(r'<label for="ctx_\w+-note">Note', text)
    assert re.search(r'<input type="text" id="ctx_\w+-note" name="note" value="" required>', text)
    assert re.search(r'<input type="number" step="any" id="ctx_\w+-amount" name="amount" value="10">', text)
    assert re.search(r'<input type="checkbox" value="true" id="ctx_\w+-rush" name="rush">', text)
    assert '<option value="gold">gold</option>' in text and "<select" in text
    assert "<legend>Your decision</legend>" in text
    assert (
        'name="runctl.decision" value="approve"' in text and 'name="runctl.decision" value="reject"' in text
    )
    assert 'aria-live="assertive"' in text


def test_the_page_form_post(http: httpx.Client, client: Client, workflow_id: str) -> None:
    run = start_paused(client, workflow_id, order=5)
    [point] = client.get(run).pause_points
    page = f"/resume/{workflow_id}/{run}"
    base = {"runctl.contextId": point.context_id, "note": "kept <text>", "tier": "gold"}

    bad = form_post(http, page, {**base, "amount": "12abc", "runctl.decision": "approve"})
    assert bad.status_code == 400 and bad.headers["content-type"].startswith("text/html")
    assert "must be a number, got &#x27;12abc&#x27;" in bad.text
    assert 'value="kept &lt;text&gt;"' in bad.text and 'value="12abc"' in bad.text
    assert 'aria-invalid="true"' in bad.text
    assert '<option value="gold" selected>' in bad.text

    undecided = form_post(http, page, {**base, "amount": "3"})
    assert undecided.status_code == 400 and "choose Approve or Reject" in undecided.text

    missing = form_post(http, page, {**base, "note": "", "amount": "3", "runctl.decision": "approve"})
    assert missing.status_code == 400 and "is required" in missing.text

    done = form_post(http, page, {**base, "amount": "1e3", "rush": "true", "runctl.decision": "reject"})
    assert done.status_code == 200, done.text
    assert "<h1>Rejected</h1>" in done.text and "kept &lt;text&gt;" in done.text

    again = form_post(http, page, {**base, "amount": "3", "runctl.decision": "approve"})
    assert again.status_code == 200 and "Already handled" in again.text and "already resumed" in again.text

    output = node_output(client.wait(run), "approve")
    assert output == {"note": "kept <text>", "tier": "gold", "amount": 1000, "rush": True, "approved": False}
    assert "Nothing to approve" in http.get(page).text


def test_a_run_waiting_at_two_places_shows_two_forms(http: httpx.Client, client: Client) -> None:
    def ask(node_id: str, title: str) -> dict[str, Any]:
        return {"id": node_id, "type": "approval", "config": {"title": title}}

    document = {
        "name": "two approvals",
        "nodes": [
            {"id": "start", "type": "start"},
            ask("legal", "Legal OK?"),
            ask("finance", "Finance OK?"),
            {"id": "end", "type": "end"},
        ],
        "edges": [
            {"from": "start", "to": "legal"},
            {"from": "start", "to": "finance"},
            {"from": "legal", "to": "end"},
            {"from": "finance", "to": "end"},
        ],
    }
    run = client.start(document).id
    wait_for(lambda: len(client.get(run).pause_points) >= 2, what="the run to reach both approvals")
    points = {point.node_id: point for point in client.get(run).pause_points}
    page = f"/resume/-/{run}"
    text = http.get(page).text
    assert "<h1>2 requests are waiting</h1>" in text
    assert text.count("<form method=") == 2 and "Legal OK?" in text and "Finance OK?" in text

    legal = {"runctl.contextId": points["legal"].context_id, "runctl.decision": "approve"}
    assert "<h1>Approved</h1>" in form_post(http, page, legal).text
    left = http.get(page).text
    assert "<h1 id=" in left and "Finance OK?" in left and "Legal OK?" not in left
    finance = {"runctl.contextId": points["finance"].context_id, "runctl.decision": "reject"}
    assert "<h1>Rejected</h1>" in form_post(http, page, finance).text
    done = client.wait(run)
    assert node_output(done, "legal") == {"approved": True}
    assert node_output(done, "finance") == {"approved": False}


@pytest.mark.parametrize(
    ("text", "number"),
    [
        ("12", 12),
        (" -3 ", -3),
        ("0.5", 0.5),
        (".5", 0.5),
        ("1e3", 1000.0),
        ("+7", 7),
        ("12abc", None),
        ("", None),
        ("nan", None),
        ("inf", None),
        ("1e999", None),
        ("1_000", None),
        ("0x10", None),
        ("٣", None),
    ],
)
def test_posted_numbers(text: str, number: float | None) -> None:
    assert parse_number(text) == number


def test_every_page_forbids_script_and_framing(
    http: httpx.Client, client: Client, workflow_id: str, paused_run: str
) -> None:
    """The page, its error pages and a refused form post all carry a policy that allows no script, no
    framing and no stylesheet but the page's own (by hash), plus nosniff; JSON answers carry nosniff."""
    page = http.get(f"/resume/{workflow_id}/{paused_run}")
    missing = http.get(f"/resume/{workflow_id}/exec_missing")
    refused = form_post(http, f"/resume/{workflow_id}/{paused_run}", {"runctl.decision": "approve"})
    for answer in (page, missing, refused):
        assert answer.headers["content-type"].startswith("text/html"), answer.status_code
        policy = {
            directive.split()[0]: directive.split()[1:]
            for directive in answer.headers["content-security-policy"].split("; ")
        }
        assert policy["default-src"] == ["'none'"] and "script-src" not in policy
        assert policy["frame-ancestors"] == ["'none'"] and policy["form-action"] == ["'self'"]
        (style,) = re.findall(r"<style>(.*?)</style>", answer.text, re.DOTALL)
        digest = base64.b64encode(hashlib.sha256(style.encode()).digest()).decode()
        assert policy["style-src"] == [f"'sha256-{digest}'"]
        assert "<script" not in answer.text.lower()
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert answer.headers["x-frame-options"] == "DENY"
        assert answer.headers["referrer-policy"] == "no-referrer"
    as_json = http.get(f"/api/workflows/{workflow_id}/paused")
    assert as_json.headers["x-content-type-options"] == "nosniff"
    assert "content-security-policy" not in as_json.headers


def test_page_errors(http: httpx.Client, client: Client, workflow_id: str, paused_run: str) -> None:
    assert http.get(f"/resume/{workflow_id}/exec_missing").status_code == 404
    assert http.get(f"/resume/wf_other/{paused_run}").status_code == 404
    assert http.get(f"/resume/-/{paused_run}").status_code == 404
    page = f"/resume/{workflow_id}/{paused_run}"
    no_context = form_post(http, page, {"runctl.decision": "approve"})
    assert no_context.status_code == 400 and "runctl.contextId" in no_context.text
    unknown = form_post(http, page, {"runctl.contextId": "ctx_missing", "runctl.decision": "approve"})
    assert unknown.status_code == 404 and unknown.headers["content-type"].startswith("text/html")
    as_json = http.post(page, json={"runctl.contextId": "x"})
    assert as_json.status_code == 400 and "form post" in as_json.text
    assert client.get(paused_run).status == common_pb2.EXECUTION_STATUS_PAUSED

    breakpoint_run = client.start(
        linear({"id": "look", "type": "log", "config": {"message": "hi"}, "breakpoint": True})
    ).id
    client.wait(breakpoint_run, until=PAUSED)
    held = http.get(f"/resume/-/{breakpoint_run}")
    assert held.status_code == 200 and "Nothing to approve" in held.text and "breakpoint" in held.text


def test_the_openapi_document_lists_the_routes(http: httpx.Client) -> None:
    paths = http.get("/openapi.json").json()["paths"]
    listed = paths["/api/workflows/{id}/paused"]["get"]
    assert [p["name"] for p in listed["parameters"]][:2] == ["id", "status"]
    assert "post" in paths["/api/resume/{workflowId}/{executionId}/{contextId}"]
    page = paths["/resume/{workflowId}/{executionId}"]
    assert "text/html" in page["get"]["responses"]["200"]["content"]
    assert "application/x-www-form-urlencoded" in page["post"]["requestBody"]["content"]
