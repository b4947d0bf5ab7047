"""JMESPath expressions and {{ }} templates: compiling, rendering, and reporting bad ones."""

from __future__ import annotations

import re
from typing import Any

import jmespath
import pytest

from runctl_server.engine.expressions import (
    ExpressionError,
    Template,
    compile_expression,
    compile_template,
    evaluate,
    render,
    template_errors,
)

DATA: dict[str, Any] = {
    "input": {"orderId": 42, "name": "Ada", "tags": ["a", "b"], "missing": None, "ok": True, "price": 9.5},
    "nodes": {"fetch": {"output": {"body": {"total": 150, "items": [{"sku": "x"}, {"sku": "y"}]}}}},
    "item": {"email": "ada@example.com"},
    "index": 3,
}


# -- compile_expression --


def test_compile_expression_returns_a_cached_parsed_result() -> None:
    first = compile_expression("input.orderId")
    assert first is compile_expression("input.orderId")
    assert first.search(DATA) == 42


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("input.", "invalid expression 'input.'"),
        ("foo[", "incomplete expression"),
        ("a b", "unexpected token: b at column 3"),
        ("$", "unknown token $ at column 1"),
        ("'unclosed", "unclosed ' delimiter"),
        ("", "empty expression"),
        ("   ", "empty expression"),
    ],
)
def test_syntax_errors_have_a_readable_one_line_message(text: str, fragment: str) -> None:
    with pytest.raises(ExpressionError) as caught:
        compile_expression(text)
    message = str(caught.value)
    assert fragment in message
    assert "\n" not in message


def test_unknown_functions_and_wrong_arity_fail_at_compile_time() -> None:
    with pytest.raises(ExpressionError, match=r"unknown function shell\(\)"):
        compile_expression("shell('rm -rf /')")
    with pytest.raises(ExpressionError, match=r"length\(\) takes 1 argument\(s\), got 2"):
        compile_expression("length(a, b)")
    with pytest.raises(ExpressionError, match=r"not_null\(\) takes at least 1"):
        compile_expression("not_null()")
    # Nested calls are checked too.
    with pytest.raises(ExpressionError, match=r"unknown function nope\(\)"):
        compile_expression("length(nope(a))")
    assert compile_expression("join(', ', sort(input.tags))").search(DATA) == "a, b"


def test_python_is_not_reachable() -> None:
    with pytest.raises(ExpressionError):
        compile_expression("__import__('os')")
    # A field name is only ever a dictionary key, never an attribute.
    assert evaluate("input.__class__", DATA) is None
    assert evaluate("input.name.__class__", DATA) is None


# -- evaluate --


@pytest.mark.parametrize(
    "expression",
    [
        "input.orderId",
        "input.name",
        "input.absent",
        "input.absent.deeper",
        "input.name.length",
        "input.tags.x",
        'nodes.fetch.output."body".total',
        "nodes.fetch.output.body.items[].sku",
        "nodes.fetch.output.body.total > `100`",
        "input",
        "index",
        "{id: input.orderId, who: input.name}",
        "input.missing || 'fallback'",
    ],
)
def test_evaluate_agrees_with_jmespath(expression: str) -> None:
    assert evaluate(expression, DATA) == jmespath.search(expression, DATA)


def test_evaluate_raises_expression_error_on_runtime_type_errors() -> None:
    with pytest.raises(ExpressionError, match=r"expression 'length\(input.orderId\)' failed"):
        evaluate("length(input.orderId)", DATA)


# -- render --


def test_a_string_without_braces_is_returned_as_is() -> None:
    text = "plain text, with } and { but no template"
    assert render(text, DATA) is text


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{{ input.orderId }}", 42),
        ("{{input.orderId}}", 42),
        ("  {{ input.tags }}\n", ["a", "b"]),
        ("{{ input.missing }}", None),
        ("{{ input.ok }}", True),
        ("{{ nodes.fetch.output.body }}", DATA["nodes"]["fetch"]["output"]["body"]),
        ("{{ {id: input.orderId, nested: {n: input.name}} }}", {"id": 42, "nested": {"n": "Ada"}}),
        ("{{ '}}' }}", "}}"),
    ],
)
def test_a_single_expression_yields_the_raw_value(template: str, expected: Any) -> None:
    assert render(template, DATA) == expected


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("/orders/{{ input.orderId }}", "/orders/42"),
        ("Hi {{ input.name }}!", "Hi Ada!"),
        ("[{{ input.missing }}]", "[]"),
        ("tags={{ input.tags }}", 'tags=["a","b"]'),
        ("ok={{ input.ok }} price={{ input.price }}", "ok=true price=9.5"),
        ("{{ item.email }} #{{ index }}", "ada@example.com #3"),
        ("obj={{ {a: input.name} }}", 'obj={"a":"Ada"}'),
        ("{{ input.name }}{{ input.orderId }}", "Ada42"),
    ],
)
def test_mixed_text_interpolates_each_result(template: str, expected: str) -> None:
    assert render(template, DATA) == expected


def test_dicts_and_lists_render_recursively_and_keys_stay_literal() -> None:
    value = {
        "{{ input.name }}": "{{ input.name }}",
        "list": ["{{ input.orderId }}", 7, None, False, {"deep": "id-{{ input.orderId }}"}],
        "number": 1.5,
    }
    rendered = render(value, DATA)
    assert rendered == {
        "{{ input.name }}": "Ada",
        "list": [42, 7, None, False, {"deep": "id-42"}],
        "number": 1.5,
    }
    rendered["list"].append("changed")
    assert value["list"] == ["{{ input.orderId }}", 7, None, False, {"deep": "id-{{ input.orderId }}"}]


def test_non_string_scalars_pass_through() -> None:
    for value in (3, 2.5, True, None):
        assert render(value, DATA) is value


def test_compiled_templates_render_like_render_and_know_if_they_are_static() -> None:
    value = {"url": "/x/{{ input.orderId }}", "list": ["{{ input.tags }}", "plain"], "n": 1}
    template = compile_template(value)
    assert isinstance(template, Template)
    assert template.render(DATA) == render(value, DATA)
    assert not template.static
    static = compile_template({"a": ["b", 1], "c": "d"})
    assert static.static
    assert static.render(DATA) == {"a": ["b", 1], "c": "d"}
    assert compile_template("{{ input.name }}") is compile_template("{{ input.name }}")


def test_rendering_a_bad_template_raises() -> None:
    with pytest.raises(ExpressionError, match=re.escape("unterminated '{{' at column 6")):
        render("oops {{ input.name", DATA)
    with pytest.raises(ExpressionError, match="invalid expression"):
        render("{{ input. }}", DATA)


# -- template_errors --


def test_template_errors_reports_every_bad_expression_with_its_path() -> None:
    value = {
        "url": "http://x/{{ input.id }}",
        "headers": {"Authorization": "Bearer {{ nodes.login.output.token[ }}", "Accept": "json"},
        "list": ["fine", "{{ ok }}", "{{ a b }} and {{ c d }}", {"name": "{{ }}"}],
        "open": "text {{ never closed",
        "count": 3,
    }
    errors = template_errors(value)
    assert [path for path, _ in errors] == [
        "headers.Authorization",
        "list[2]",
        "list[2]",
        "list[3].name",
        "open",
    ]
    messages = dict(errors)
    assert "token[" in messages["headers.Authorization"]
    assert messages["list[3].name"] == "empty expression"
    assert "unterminated" in messages["open"]


def test_template_errors_on_arrays_and_plain_values() -> None:
    assert template_errors(["a", "b", "{{ x[ }}"]) == [
        ("[2]", "invalid expression 'x[': incomplete expression")
    ]
    assert template_errors("{{ input.id }} / {{ input.name }}") == []
    assert template_errors({"a": 1, "b": None, "c": [True]}) == []
    assert template_errors("{{ nope(a) }}")[0][1].startswith("invalid expression 'nope(a)': unknown function")


@pytest.mark.parametrize(
    "text",
    [
        "(" * 3000 + "a" + ")" * 3000,  # the parser would recurse past Python's limit
        "[" * 150 + "]" * 150,
        "{a: " * 120 + "b" + "}" * 120,
        "not_null(" * 120 + "a" + ")" * 120,
    ],
)
def test_expressions_nested_too_deeply_are_refused_at_compile_time(text: str) -> None:
    with pytest.raises(ExpressionError, match="nested more than 100 levels deep"):
        compile_expression(text)


def test_deep_but_allowed_expressions_and_quoted_brackets_compile() -> None:
    assert evaluate("(" * 90 + "a" + ")" * 90, {"a": 1}) == 1
    assert evaluate("'" + "(" * 500 + "'", {}) == "(" * 500  # brackets inside a string do not nest
    assert evaluate("a" + ".a" * 2000, {"a": {"a": 1}}) is None  # long chains are flat, not deep
