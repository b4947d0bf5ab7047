"""`runctl workflows ...`: store workflows, list them, pause, resume or cancel one."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.text import Text

from runctl.cli.commands_runs import JsonOption
from runctl.cli.context import RunctlGroup, fail, print_json, state
from runctl.cli.render import (
    STYLES,
    verdict_json,
    verdict_view,
    workflow_status,
    workflow_view,
    workflows_table,
)
from runctl.cli.validate import ServerNotInstalled, validate_file
from runctl.cli.values import enum_value
from runctl.v1 import workflow_pb2

workflows_app = typer.Typer(
    name="workflows",
    help="Stored workflows: create, ls, get, delete, validate, pause, resume, cancel, rotate-secret.",
    no_args_is_help=True,
    cls=RunctlGroup,
)


def _print_workflow(ctx: typer.Context, verb: str, workflow: workflow_pb2.Workflow, as_json: bool) -> None:
    if as_json:
        print_json(workflow)
        return
    status = workflow_status(workflow.status)
    state(ctx).out.print(
        Text.assemble(
            f"{verb} ", (workflow.id, "bold"), f" ({workflow.name}): ", (status, STYLES.get(status, ""))
        )
    )


@workflows_app.command("create")
def create(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="A local workflow file (JSON or YAML).")],
    as_json: JsonOption = False,
) -> None:
    """Store a workflow; prints the id the server gave it and its webhook secret (shown this once)."""
    st = state(ctx)
    with st.client() as client:
        workflow = client.create_workflow(file)
    if as_json:
        print_json(workflow)
        return
    st.out.print(
        Text.assemble("created ", (workflow.id, "bold"), f" ({workflow.name}), version {workflow.version}")
    )
    st.out.print(
        Text.assemble("webhook secret: ", (workflow.webhook_secret, "bold"), ("  (shown only now)", "dim"))
    )


def list_workflows(
    ctx: typer.Context,
    status: Annotated[
        list[str] | None,
        typer.Option(
            "--status",
            "-s",
            help="Only workflows in this status (repeatable or comma-separated): active, paused, cancelled.",
        ),
    ] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, max=1000, help="At most this many.")] = 50,
    as_json: JsonOption = False,
) -> None:
    """List stored workflows, most recently updated first."""
    st = state(ctx)
    names = [name for item in status or () for name in item.split(",") if name.strip()]
    wanted = [
        workflow_pb2.WorkflowStatus.ValueType(
            enum_value(workflow_pb2.WorkflowStatus, "WORKFLOW_STATUS_", name, "--status")
        )
        for name in names
    ]
    with st.client() as client:
        reply = client.list_workflows(statuses=wanted, page_size=limit)
    if as_json:
        print_json(reply)
    elif reply.workflows:
        st.out.print(workflows_table(reply.workflows))
    else:
        st.out.print("no workflows", style="dim")


workflows_app.command("ls")(list_workflows)
workflows_app.command("list", hidden=True)(list_workflows)


@workflows_app.command("get")
def get(
    ctx: typer.Context,
    workflow_id: Annotated[str, typer.Argument(help="The workflow.")],
    version: Annotated[int, typer.Option(min=0, help="This version; 0 (the default) = the latest.")] = 0,
    as_json: JsonOption = False,
) -> None:
    """Show a stored workflow: status, version, nodes; --json gives its whole definition."""
    st = state(ctx)
    with st.client() as client:
        workflow = client.get_workflow(workflow_id, version=version)
    if as_json:
        print_json(workflow)
        return
    st.out.print(workflow_view(workflow))


@workflows_app.command("delete")
def delete(
    ctx: typer.Context,
    workflow_id: Annotated[str, typer.Argument(help="The workflow.")],
    force: Annotated[
        bool, typer.Option(help="Stop its queued, running and paused runs first (else they keep it).")
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete a stored workflow and all its versions (its finished runs are kept). Cannot be undone."""
    st = state(ctx)
    if not yes:
        typer.confirm(f"Delete workflow {workflow_id} and all its versions?", abort=True, err=True)
    with st.client() as client:
        client.delete_workflow(workflow_id, force=force)
    st.out.print(Text.assemble("deleted ", (workflow_id, "bold")))


@workflows_app.command("validate")
def validate(
    ctx: typer.Context,
    files: Annotated[list[Path], typer.Argument(help="Local workflow files (JSON or YAML).")],
    as_json: JsonOption = False,
) -> None:
    """Check workflow files offline with the server's own validator; print every problem.

    Needs the runctl server package installed (no server needs to run). Exit code 1 when a file has
    a problem.
    """
    st = state(ctx)
    try:
        verdicts = [validate_file(file) for file in files]
    except ServerNotInstalled as exc:
        fail(ctx, str(exc))
    if as_json:
        print_json([verdict_json(verdict) for verdict in verdicts])
    else:
        for verdict in verdicts:
            st.out.print(verdict_view(verdict))
    if not all(verdict.valid for verdict in verdicts):
        raise typer.Exit(1)


@workflows_app.command("pause")
def pause(
    ctx: typer.Context,
    workflow_id: Annotated[str, typer.Argument(help="The workflow.")],
    reason: Annotated[str, typer.Option(help="Why (recorded on its events).")] = "",
    as_json: JsonOption = False,
) -> None:
    """Pause a workflow: running nodes finish, no new node starts in any of its runs."""
    with state(ctx).client() as client:
        workflow = client.pause_workflow(workflow_id, reason=reason)
    _print_workflow(ctx, "paused", workflow, as_json)


@workflows_app.command("resume")
def resume(
    ctx: typer.Context,
    workflow_id: Annotated[str, typer.Argument(help="The workflow.")],
    as_json: JsonOption = False,
) -> None:
    """Resume a paused workflow: its runs go on."""
    with state(ctx).client() as client:
        workflow = client.resume_workflow(workflow_id)
    _print_workflow(ctx, "resumed", workflow, as_json)


@workflows_app.command("cancel")
def cancel(
    ctx: typer.Context,
    workflow_id: Annotated[str, typer.Argument(help="The workflow.")],
    reason: Annotated[str, typer.Option(help="Why (recorded on its events and stopped runs).")] = "",
    as_json: JsonOption = False,
) -> None:
    """Cancel a workflow for good: its runs stop and new runs are refused."""
    with state(ctx).client() as client:
        workflow = client.cancel_workflow(workflow_id, reason=reason)
    _print_workflow(ctx, "cancelled", workflow, as_json)


@workflows_app.command("rotate-secret")
def rotate_secret(
    ctx: typer.Context,
    workflow_id: Annotated[str, typer.Argument(help="The workflow.")],
    overlap: Annotated[
        float | None,
        typer.Option(
            "--overlap",
            min=0,
            help="Seconds the old secret keeps working (the server's default, 24 h, when left out).",
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Replace a workflow's webhook secret; prints the new one (shown this once)."""
    st = state(ctx)
    with st.client() as client:
        reply = client.rotate_webhook_secret(workflow_id, overlap_seconds=overlap)
    if as_json:
        print_json(reply)
        return
    st.out.print(
        Text.assemble(
            "webhook secret: ", (reply.workflow.webhook_secret, "bold"), ("  (shown only now)", "dim")
        )
    )
    if reply.HasField("previous_secret_expire_time"):
        until = reply.previous_secret_expire_time.ToDatetime().strftime("%Y-%m-%d %H:%M:%S UTC")
        st.out.print(Text.assemble("the old secret keeps working until ", (until, "bold")))
    else:
        st.out.print("the old secret no longer works")
