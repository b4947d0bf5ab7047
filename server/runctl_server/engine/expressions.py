"""JMESPath expressions and `{{ expression }}` string templates, compiled once and rendered often.

Only JMESPath is evaluated: a workflow can read and reshape its data context, never run code.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from functools import lru_cache, partial
from typing import TYPE_CHECKING, Any

import jmespath
from jmespath import exceptions as jmespath_errors
from jmespath.functions import Functions
from jmespath.parser import ParsedResult
from jmespath.visitor import TreeInterpreter

if TYPE_CHECKING:
    from jmespath.visitor import _TreeNode

__all__ = [
    "ExpressionError",
    "Template",
    "compile_expression",
    "compile_template",
    "evaluate",
    "render",
    "template_errors",
]

OPEN, CLOSE = "{{", "}}"
MAX_EXPRESSION_LENGTH = 10_000
# Parsing and evaluating recurse once per level: deeper expressions are refused before either runs.
MAX_EXPRESSION_DEPTH = 100


class ExpressionError(ValueError):
    """An expression or template that does not compile, or that fails when evaluated."""


# One interpreter for every search: it holds no per-search state, and building one per call (as
# ParsedResult.search does) costs a visitor method cache and a Functions instance each time.
_FUNCTIONS = Functions()
_INTERPRETER = TreeInterpreter(jmespath.Options(custom_functions=_FUNCTIONS))


def _syntax_message(text: str, exc: jmespath_errors.JMESPathError) -> str:
    if isinstance(exc, jmespath_errors.EmptyExpressionError) or not text.strip():
        return "empty expression"
    if isinstance(exc, jmespath_errors.IncompleteExpressionError):
        return f"invalid expression {text!r}: incomplete expression"
    if isinstance(exc, jmespath_errors.LexerError):
        detail = exc.message[:1].lower() + exc.message[1:]
        return f"invalid expression {text!r}: {detail} at column {exc.lexer_position + 1}"
    if isinstance(exc, jmespath_errors.ParseError):
        detail = exc.msg
        if detail in ("Invalid jmespath expression", "invalid token"):
            detail = f"unexpected {exc.token_value!r}"
        detail = detail[:1].lower() + detail[1:]
        return f"invalid expression {text!r}: {detail} at column {exc.lex_position + 1}"
    return f"invalid expression {text!r}: {exc}"


def _bracket_depth(text: str) -> int:
    """How deeply (), [] and {} nest in the text, outside quoted strings and literals."""
    depth = deepest = 0
    quote = ""
    escaped = False
    for char in text:
        if quote:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == quote:
                quote = ""
        elif char in "'\"`":
            quote = char
        elif char in "([{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in ")]}":
            depth = max(0, depth - 1)
    return deepest


def _too_deep(text: str) -> ExpressionError:
    return ExpressionError(
        f"invalid expression {text[:60]!r}{'...' if len(text) > 60 else ''}: nested more than "
        f"{MAX_EXPRESSION_DEPTH} levels deep"
    )


def _check_functions(text: str, node: _TreeNode) -> None:
    """Unknown functions and wrong argument counts fail at compile time, not halfway through a run;
    so does a tree deeper than evaluation may recurse."""
    pending = [(node, 1)]
    while pending:
        current, depth = pending.pop()
        if depth > MAX_EXPRESSION_DEPTH:
            raise _too_deep(text)
        if current["type"] == "function_expression":
            name = current["value"]
            spec = _FUNCTIONS.FUNCTION_TABLE.get(name)
            if spec is None:
                known = ", ".join(sorted(_FUNCTIONS.FUNCTION_TABLE))
                raise ExpressionError(
                    f"invalid expression {text!r}: unknown function {name}() (known: {known})"
                )
            signature = spec["signature"]
            given = len(current["children"])
            if signature and signature[-1].get("variadic"):
                if given < len(signature):
                    raise ExpressionError(
                        f"invalid expression {text!r}: {name}() takes at least {len(signature)} "
                        f"argument(s), got {given}"
                    )
            elif given != len(signature):
                raise ExpressionError(
                    f"invalid expression {text!r}: {name}() takes {len(signature)} argument(s), got {given}"
                )
        pending.extend((child, depth + 1) for child in current.get("children", ()) if isinstance(child, dict))


@lru_cache(maxsize=4096)
def compile_expression(text: str) -> ParsedResult:
    """Compile a JMESPath expression; raise ExpressionError with a readable message when it is bad."""
    if not isinstance(text, str):
        raise ExpressionError(f"an expression must be a string, got {type(text).__name__}")
    if len(text) > MAX_EXPRESSION_LENGTH:
        raise ExpressionError(
            f"expression is too long ({len(text)} characters, at most {MAX_EXPRESSION_LENGTH})"
        )
    if _bracket_depth(text) > MAX_EXPRESSION_DEPTH:
        raise _too_deep(text)
    try:
        parsed = jmespath.compile(text)
    except jmespath_errors.JMESPathError as exc:
        raise ExpressionError(_syntax_message(text, exc)) from None
    except RecursionError:
        raise _too_deep(text) from None
    _check_functions(text, parsed.parsed)
    return parsed


def _search(parsed: ParsedResult, data: Any) -> Any:
    try:
        return _INTERPRETER.visit(parsed.parsed, data)
    except (jmespath_errors.JMESPathError, TypeError, ValueError) as exc:
        raise ExpressionError(f"expression {parsed.expression!r} failed: {exc}") from None


def _lookup(keys: tuple[str, ...], data: Any) -> Any:
    value = data
    for key in keys:
        try:
            value = value.get(key)
        except AttributeError:
            return None
    return value


Evaluator = Callable[[Any], Any]


@lru_cache(maxsize=4096)
def _evaluator(text: str) -> Evaluator:
    """A function of the data context that evaluates `text`.

    Most expressions in workflows are plain paths (`nodes.fetch.output.body`); those skip the JMESPath
    interpreter and become dict lookups with the same meaning (a missing key or a non-object gives None).
    """
    parsed = compile_expression(text)
    tree = parsed.parsed
    fields = (
        [tree] if tree["type"] == "field" else tree["children"] if tree["type"] == "subexpression" else []
    )
    if fields and all(node["type"] == "field" for node in fields):
        return partial(_lookup, tuple(node["value"] for node in fields))
    return partial(_search, parsed)


def evaluate(expression: str, data: Any) -> Any:
    """Evaluate a JMESPath expression over `data`."""
    return _evaluator(expression)(data)


_COMPACT = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, default=str)


def _to_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if value is True or value is False:
        return "true" if value else "false"
    if type(value) is int:
        return str(value)
    return _COMPACT.encode(value)


class Template:
    """A compiled template value; `render(data)` produces a fresh value for one data context."""

    __slots__ = ()

    def render(self, data: Any) -> Any:
        raise NotImplementedError

    @property
    def static(self) -> bool:
        """True when the template embeds no expression: rendering it gives back its value."""
        return True


class _Constant(Template):
    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def render(self, data: Any) -> Any:
        return self.value


class _Single(Template):
    """A string that is exactly one `{{ expression }}`: renders to the raw result (number, object, ...)."""

    __slots__ = ("evaluate",)

    def __init__(self, evaluate: Evaluator) -> None:
        self.evaluate = evaluate

    def render(self, data: Any) -> Any:
        return self.evaluate(data)

    @property
    def static(self) -> bool:
        return False


class _Interpolated(Template):
    """Text with embedded expressions: each result is converted to text."""

    __slots__ = ("parts",)

    def __init__(self, parts: tuple[str | Evaluator, ...]) -> None:
        self.parts = parts

    def render(self, data: Any) -> str:
        return "".join([part if isinstance(part, str) else _to_text(part(data)) for part in self.parts])

    @property
    def static(self) -> bool:
        return False


class _Object(Template):
    __slots__ = ("items",)

    def __init__(self, items: tuple[tuple[Any, Template], ...]) -> None:
        self.items = items

    def render(self, data: Any) -> dict[Any, Any]:
        return {key: template.render(data) for key, template in self.items}

    @property
    def static(self) -> bool:
        return all(template.static for _, template in self.items)


class _Array(Template):
    __slots__ = ("items",)

    def __init__(self, items: tuple[Template, ...]) -> None:
        self.items = items

    def render(self, data: Any) -> list[Any]:
        return [template.render(data) for template in self.items]

    @property
    def static(self) -> bool:
        return all(template.static for template in self.items)


def _find_close(text: str, start: int) -> int:
    """Index of the `}}` closing an expression whose body starts at `start`, or -1.

    Braces of JMESPath multi-select hashes and quoted strings inside the body do not close it, so
    `{{ {a: {b: c}} }}` works.
    """
    depth = 0
    i, n = start, len(text)
    while i < n:
        ch = text[i]
        if ch in "'\"`":
            i += 1
            while i < n and text[i] != ch:
                i += 2 if text[i] == "\\" else 1
        elif ch == "{":
            depth += 1
        elif ch == "}":
            if depth == 0 and text.startswith(CLOSE, i):
                return i
            depth = max(depth - 1, 0)
        i += 1
    return -1


def _parse(text: str) -> list[tuple[bool, str]]:
    """The pieces of a string in order: (False, literal text) and (True, expression body)."""
    pieces: list[tuple[bool, str]] = []
    position = 0
    while True:
        opening = text.find(OPEN, position)
        if opening < 0:
            if position < len(text):
                pieces.append((False, text[position:]))
            return pieces
        if opening > position:
            pieces.append((False, text[position:opening]))
        closing = _find_close(text, opening + 2)
        if closing < 0:
            # An unbalanced quote or brace swallowed the `}}`: cut at the first one so that compiling
            # the body reports the real problem (say, an unclosed quote) instead of "unterminated".
            closing = text.find(CLOSE, opening + 2)
        if closing < 0:
            raise ExpressionError(f"unterminated {OPEN!r} at column {opening + 1}: no matching {CLOSE!r}")
        pieces.append((True, text[opening + 2 : closing].strip()))
        position = closing + 2


@lru_cache(maxsize=8192)
def _compile_string(text: str) -> Template:
    if OPEN not in text:
        return _Constant(text)
    pieces = _parse(text)
    expressions = [body for is_expression, body in pieces if is_expression]
    if len(expressions) == 1 and all(is_expression or not body.strip() for is_expression, body in pieces):
        return _Single(_evaluator(expressions[0]))
    return _Interpolated(tuple(_evaluator(body) if is_expression else body for is_expression, body in pieces))


def compile_template(value: Any) -> Template:
    """Compile a template value: strings are cached; dicts and lists are compiled item by item."""
    if isinstance(value, str):
        return _compile_string(value)
    if isinstance(value, Mapping):
        return _Object(tuple((key, compile_template(item)) for key, item in value.items()))
    if isinstance(value, list | tuple):
        return _Array(tuple(compile_template(item) for item in value))
    return _Constant(value)


def render(value: Any, data: Any) -> Any:
    """Render a template value over `data`. Keys are never templated; non-string scalars pass through."""
    if isinstance(value, str):
        if OPEN not in value:
            return value
        return _compile_string(value).render(data)
    if isinstance(value, Mapping):
        return {key: render(item, data) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [render(item, data) for item in value]
    return value


def _join(path: str, key: Any) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else str(key)


def _string_errors(text: str) -> list[str]:
    try:
        pieces = _parse(text)
    except ExpressionError as exc:
        return [str(exc)]
    errors: list[str] = []
    for is_expression, body in pieces:
        if is_expression:
            try:
                compile_expression(body)
            except ExpressionError as exc:
                errors.append(str(exc))
    return errors


def template_errors(value: Any, path: str = "") -> list[tuple[str, str]]:
    """(sub-path, message) for every bad embedded expression in a template value; empty when fine.

    Sub-paths look like `headers.Authorization` or `[2].name`; "" is the value itself.
    """
    if isinstance(value, str):
        if OPEN not in value:
            return []
        return [(path, message) for message in _string_errors(value)]
    errors: list[tuple[str, str]] = []
    if isinstance(value, Mapping):
        for key, item in value.items():
            errors.extend(template_errors(item, _join(path, key)))
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            errors.extend(template_errors(item, _join(path, index)))
    return errors
