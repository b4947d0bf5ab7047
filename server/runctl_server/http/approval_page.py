"""The approval page (the `uiUrl`): plain server-rendered HTML, one small stylesheet, no script.

The form is an ordinary HTML form that posts back to its own address, so it works in any browser and
with curl. Everything shown comes from workflow documents and run data, so every value is escaped.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC
from html import escape
from typing import Any

from google.protobuf import struct_pb2, timestamp_pb2

from runctl.v1 import common_pb2, execution_pb2, pause_point_pb2
from runctl_server.api.convert import struct_to_dict
from runctl_server.engine.forms import DECISION
from runctl_server.errors import FieldViolation
from runctl_server.http.approval_form import CONTEXT_FIELD, DECISION_FIELD

DEFAULT_TITLES = {common_pb2.PAUSE_REASON_APPROVAL: "Approval Required"}
STATUS_TITLES = {
    400: "Bad request",
    401: "This link cannot be used",
    404: "Not found",
    409: "Not possible",
    413: "Too large",
}

STYLESHEET = """
:root { color-scheme: light dark; --accent: #1f5fbf; --bad: #b3261e; --good: #1e7b34; --line: #8884; }
* { box-sizing: border-box; }
body { margin: 0; font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
header { padding: .75rem 1.25rem; border-bottom: 1px solid var(--line); font-weight: 600; }
main { max-width: 42rem; margin: 0 auto; padding: 1.5rem 1.25rem 3rem; }
h1 { font-size: 1.6rem; margin: 0 0 .5rem; line-height: 1.25; }
h2 { font-size: 1.3rem; margin: 2rem 0 .5rem; }
.message { white-space: pre-line; font-size: 1.05rem; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: .25rem 1rem; margin: 1rem 0;
  padding: .75rem 1rem; border: 1px solid var(--line); border-radius: .5rem; }
dl.facts dt { font-weight: 600; }
dl.facts dd { margin: 0; overflow-wrap: anywhere; }
code { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: .9em; }
.field { margin: 1rem 0; }
.field > label, .field > .label { display: block; font-weight: 600; margin-bottom: .25rem; }
.check label { display: inline; font-weight: 600; margin-left: .4rem; }
.required { color: var(--bad); }
input[type=text], input[type=number], select { width: 100%; font: inherit; padding: .45rem .6rem;
  border: 1px solid #888; border-radius: .35rem; }
input[type=checkbox] { width: 1.15rem; height: 1.15rem; vertical-align: -.2rem; }
:focus-visible { outline: 3px solid var(--accent); outline-offset: 2px; }
input[aria-invalid=true], select[aria-invalid=true] { border-color: var(--bad); border-width: 2px; }
.hint { margin: .25rem 0 0; font-size: .9rem; opacity: .8; }
.error { margin: .25rem 0 0; color: var(--bad); font-weight: 600; }
.errors:not(:empty) { border: 2px solid var(--bad); border-radius: .5rem; padding: .5rem 1rem;
  margin: 1rem 0; }
.errors p { margin: .25rem 0; font-weight: 600; }
fieldset.decision { border: 1px solid var(--line); border-radius: .5rem; margin: 1.5rem 0 0;
  padding: .75rem 1rem; }
fieldset.decision legend { font-weight: 600; padding: 0 .35rem; }
button { font: inherit; font-weight: 600; padding: .55rem 1.4rem; border-radius: .35rem; cursor: pointer;
  border: 2px solid transparent; margin: .25rem .5rem .25rem 0; }
button.approve { background: var(--good); color: #fff; }
button.reject { background: transparent; color: var(--bad); border-color: var(--bad); }
.outcome { border-left: 6px solid var(--good); padding: .25rem 1rem; }
.outcome.rejected, .outcome.problem { border-left-color: var(--bad); }
.outcome.neutral { border-left-color: #888; }
"""


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def reason_word(reason: common_pb2.PauseReason.ValueType) -> str:
    return common_pb2.PauseReason.Name(reason).removeprefix("PAUSE_REASON_").lower().replace("_", " ")


def title_of(point: pause_point_pb2.PausePoint) -> str:
    """The request's heading: its own title, else what kind of answer it waits for."""
    return point.response.display_data.title or DEFAULT_TITLES.get(point.reason, "Input needed")


def _status_word(status: common_pb2.ExecutionStatus.ValueType) -> str:
    return common_pb2.ExecutionStatus.Name(status).removeprefix("EXECUTION_STATUS_").lower()


def _when(stamp: timestamp_pb2.Timestamp) -> str:
    moment = stamp.ToDatetime(tzinfo=UTC)
    iso = moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    return f'<time datetime="{iso}">{moment.strftime("%Y-%m-%d %H:%M:%S")} UTC</time>'


def layout(title: str, main: str) -> str:
    return (
        "<!doctype html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<meta name="robots" content="noindex">\n<meta name="referrer" content="no-referrer">\n'
        f"<title>{_e(title)} &middot; runctl</title>\n<style>{STYLESHEET}</style>\n</head>\n"
        f'<body>\n<header>runctl</header>\n<main id="main">\n{main}\n</main>\n</body>\n</html>\n'
    )


def _run_facts(
    execution: execution_pb2.Execution,
    point: pause_point_pb2.PausePoint | None,
    *,
    with_status: bool = False,
) -> str:
    run = f"<code>{_e(execution.id)}</code>"
    if execution.workflow_name:
        run += f" &middot; {_e(execution.workflow_name)}"
    rows = [("Run", run)]
    if point is not None:
        if point.node_id:
            rows.append(("Step", f"<code>{_e(point.node_id)}</code>"))
        rows.append(("Paused", _when(point.create_time)))
        if point.HasField("expire_time"):
            rows.append(("Expires", _when(point.expire_time)))
    elif with_status:
        rows.append(("Status", _e(_status_word(execution.status))))
    return '<dl class="facts">' + "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in rows) + "</dl>"


# -- the request and its form ---------------------------------------------------------------------------


def _field_id(point: pause_point_pb2.PausePoint, name: str) -> str:
    return f"{point.context_id}-{name}"


def plain(value: struct_pb2.Value) -> Any:
    """A protobuf Value as plain JSON, whole numbers as ints."""
    return struct_to_dict(struct_pb2.Struct(fields={"v": value}))["v"]


def _default_text(field: pause_point_pb2.FormField) -> str:
    if not field.HasField("default_value"):
        return ""
    value = plain(field.default_value)
    if isinstance(value, bool):
        return "true" if value else ""
    return "" if value is None else str(value)


def _input(
    point: pause_point_pb2.PausePoint,
    field: pause_point_pb2.FormField,
    raw: str | None,
    problem: str | None,
    *,
    focus: bool = False,
) -> str:
    """One labelled input, its hint and its error; `focus` puts the cursor in it (the first bad one)."""
    name, field_id = field.name, _field_id(point, field.name)
    text = _default_text(field) if raw is None else raw
    described = []
    hint = error = ""
    if field.description:
        described.append(f"{field_id}-hint")
        hint = f'<p class="hint" id="{_e(field_id)}-hint">{_e(field.description)}</p>'
    if problem is not None:
        described.append(f"{field_id}-error")
        error = f'<p class="error" id="{_e(field_id)}-error">{_e(problem)}</p>'
    attributes = f'id="{_e(field_id)}" name="{_e(name)}"'
    if described:
        attributes += f' aria-describedby="{_e(" ".join(described))}"'
    if problem is not None:
        attributes += ' aria-invalid="true"'
    if focus:
        attributes += " autofocus"
    marker = ' <span class="required" aria-hidden="true">*</span>' if field.required else ""
    label = f'<label for="{_e(field_id)}">{_e(field.label or name)}{marker}</label>'
    required = " required" if field.required else ""
    kind = field.type
    if kind == pause_point_pb2.FORM_FIELD_TYPE_BOOLEAN:
        # An unticked box posts nothing, which the server reads as false, so false is an answer too:
        # the box is never `required` (that would force it ticked).
        checked = " checked" if text.strip().lower() in ("true", "on", "yes", "1") else ""
        box = f'<input type="checkbox" value="true" {attributes}{checked}>'
        return f'<div class="field check">{box}{label}{hint}{error}</div>'
    if kind == pause_point_pb2.FORM_FIELD_TYPE_SELECT:
        options = (
            [] if field.required and text in field.options else ['<option value="">Choose&hellip;</option>']
        )
        options += [
            f'<option value="{_e(option)}"{" selected" if option == text else ""}>{_e(option)}</option>'
            for option in field.options
        ]
        control = f"<select {attributes}{required}>{''.join(options)}</select>"
    elif kind == pause_point_pb2.FORM_FIELD_TYPE_NUMBER and problem is None:
        control = f'<input type="number" step="any" {attributes} value="{_e(text)}"{required}>'
    elif kind == pause_point_pb2.FORM_FIELD_TYPE_NUMBER:
        # What the person typed is not a number: a number input would blank it, so show it as text.
        control = f'<input type="text" inputmode="decimal" {attributes} value="{_e(text)}"{required}>'
    else:
        control = f'<input type="text" {attributes} value="{_e(text)}"{required}>'
    return f'<div class="field">{label}{control}{hint}{error}</div>'


def _posted(
    field: pause_point_pb2.FormField,
    form: Mapping[str, str],
    submitted: tuple[Mapping[str, str], Sequence[FieldViolation]] | None,
) -> str | None:
    """What to show in an input: the posted text after a failed post, else None (the default)."""
    if submitted is None:
        return None
    if field.type == pause_point_pb2.FORM_FIELD_TYPE_BOOLEAN:
        return form.get(field.name, "")  # an unticked box posts nothing: keep it unticked
    return form.get(field.name)


def _problems_by_name(violations: Iterable[FieldViolation]) -> tuple[dict[str, str], list[str]]:
    """Violations of `values.<name>` by field name, and the others as messages."""
    by_name: dict[str, str] = {}
    others: list[str] = []
    for violation in violations:
        name = violation.field.removeprefix("values.")
        if name != violation.field and name not in by_name:
            by_name[name] = violation.description
        else:
            others.append(f"{violation.field} {violation.description}")
    return by_name, others


def _request_section(
    execution: execution_pb2.Execution,
    point: pause_point_pb2.PausePoint,
    heading: str,
    submitted: tuple[Mapping[str, str], Sequence[FieldViolation]] | None,
) -> str:
    form, violations = submitted if submitted is not None else ({}, [])
    problems, others = _problems_by_name(violations)
    display = point.response.display_data
    title = title_of(point)
    fields = [field for field in point.response.form_fields if field.name != DECISION]
    shown = {field.name for field in fields}
    # Problems of posted names the form does not show (unknown fields) go to the summary.
    others += [f"{name}: {text}" for name, text in problems.items() if name not in shown and name != DECISION]

    summary = ""
    if problems or others:
        items = [
            f'<li><a href="#{_e(_field_id(point, f.name))}">{_e(f.label or f.name)}</a>: '
            f"{_e(problems[f.name])}</li>"
            for f in fields
            if f.name in problems
        ]
        if DECISION in problems:
            items.append(f"<li>Decision: {_e(problems[DECISION])}</li>")
        items += [f"<li>{_e(text)}</li>" for text in others]
        count = len(items)
        summary = (
            f"<p>{count} {'thing needs' if count == 1 else 'things need'} fixing before this can be sent:</p>"
            f"<ul>{''.join(items)}</ul>"
        )
    decision_error = decision_described = ""
    if DECISION in problems:
        decision_described = f' aria-describedby="{_e(point.context_id)}-decision-error"'
        decision_error = (
            f'<p class="error" id="{_e(point.context_id)}-decision-error">{_e(problems[DECISION])}</p>'
        )
    first_bad = next((f.name for f in fields if f.name in problems), None)
    inputs = "".join(
        _input(point, f, _posted(f, form, submitted), problems.get(f.name), focus=f.name == first_bad)
        for f in fields
    )
    # The form has no action: it posts to the page's own address, under whatever prefix a proxy serves it.
    tag = "h1" if heading == "h1" else "h2"
    section_id = f"request-{point.context_id}"
    return f"""<section class="request" aria-labelledby="{_e(section_id)}">
<{tag} id="{_e(section_id)}">{_e(title)}</{tag}>
{f'<p class="message">{_e(display.message)}</p>' if display.message else ""}
{_run_facts(execution, point)}
<form method="post">
<input type="hidden" name="{CONTEXT_FIELD}" value="{_e(point.context_id)}">
<!-- The form's default button is disabled, so pressing Enter in a field never approves or rejects. -->
<button type="submit" disabled hidden aria-hidden="true" tabindex="-1"></button>
<div class="errors" id="{_e(point.context_id)}-errors" role="alert" aria-live="assertive">{summary}</div>
{inputs}
<fieldset class="decision"{decision_described}>
<legend>Your decision</legend>
{decision_error}
<button type="submit" class="approve" name="{DECISION_FIELD}" value="approve">Approve</button>
<button type="submit" class="reject" name="{DECISION_FIELD}" value="reject">Reject</button>
</fieldset>
</form>
</section>"""


def request_page(
    execution: execution_pb2.Execution,
    points: Sequence[pause_point_pb2.PausePoint],
    *,
    submitted: Mapping[str, tuple[Mapping[str, str], Sequence[FieldViolation]]] | None = None,
) -> str:
    """The open requests of a run, each with its form; `submitted` re-fills one after a failed post."""
    submitted = submitted or {}
    if len(points) == 1:
        point = points[0]
        section = _request_section(execution, point, "h1", submitted.get(point.context_id))
        return layout(title_of(point), section)
    sections = "\n".join(
        _request_section(execution, point, "h2", submitted.get(point.context_id)) for point in points
    )
    heading = f"<h1>{len(points)} requests are waiting</h1>"
    return layout(f"{len(points)} requests are waiting", f"{heading}\n{sections}")


# -- outcomes -----------------------------------------------------------------------------------------


def _values_list(point: pause_point_pb2.PausePoint, values: Mapping[str, Any]) -> str:
    """What was submitted, by the form's labels in the form's order, then anything else."""
    labels = {field.name: field.label or field.name for field in point.response.form_fields}
    names = [name for name in labels if name in values] + [name for name in values if name not in labels]
    rows = "".join(
        f"<dt>{_e(labels.get(name, name))}</dt><dd>{_e(_shown(values[name]))}</dd>"
        for name in names
        if name != DECISION
    )
    return f'<dl class="facts">{rows}</dl>' if rows else ""


def _shown(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    return "" if value is None else str(value)


def _outcome(title: str, kind: str, body: str) -> str:
    return layout(
        title, f'<section class="outcome {kind}" role="status">\n<h1>{_e(title)}</h1>\n{body}\n</section>'
    )


def confirmation_page(execution: execution_pb2.Execution, point: pause_point_pb2.PausePoint) -> str:
    values = struct_to_dict(point.resume_data) if point.HasField("resume_data") else {}
    decision = values.get(DECISION)
    if decision is True:
        title, kind = "Approved", "approved"
    elif decision is False:
        title, kind = "Rejected", "rejected"
    else:
        title, kind = "Sent", "approved"
    request = title_of(point)
    body = (
        f"<p>Thank you: your answer to &ldquo;{_e(request)}&rdquo; was recorded and the run goes on.</p>"
        f"{_values_list(point, values)}{_run_facts(execution, None)}"
    )
    return _outcome(title, kind, body)


def handled_page(execution: execution_pb2.Execution, point: pause_point_pb2.PausePoint, reason: str) -> str:
    """A post for a pause point that is no longer waiting: nothing was changed."""
    request = title_of(point)
    who = f" by {_e(point.resolved_by)}" if point.resolved_by else ""
    when = f" at {_when(point.resolve_time)}" if point.HasField("resolve_time") else ""
    body = (
        f"<p>&ldquo;{_e(request)}&rdquo; was already handled ({_e(reason)}){who}{when}. "
        "Nothing was changed.</p>"
        f"{_run_facts(execution, None)}"
    )
    return _outcome("Already handled", "neutral", body)


def nothing_waiting_page(
    execution: execution_pb2.Execution, others: Sequence[pause_point_pb2.PausePoint]
) -> str:
    """A run with no open approval or wait: say so, and how it is paused when it is."""
    held = sorted({reason_word(point.reason) for point in others})
    how = f" It is paused at a {', '.join(held)}, which an operator continues." if held else ""
    body = (
        f"<p>Run <code>{_e(execution.id)}</code> is not waiting for anyone&rsquo;s answer.{how}</p>"
        + _run_facts(execution, None, with_status=True)
    )
    return _outcome("Nothing to approve", "neutral", body)


def error_page(status: int, message: str) -> str:
    title = STATUS_TITLES.get(status, "Something went wrong")
    return _outcome(title, "problem", f'<p role="alert">{_e(message)}</p>')
