"""Every reason the server can put in google.rpc.ErrorInfo is a runctl.v1.ErrorReason value: the
Python vocabulary equals the enum, and a walk over the server's source finds every error it raises
naming a reason of the contract."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path
from typing import get_args

from runctl.v1 import error_pb2
from runctl_server import errors
from runctl_server.api import status
from runctl_server.http import errors as http_errors

SERVER = Path(errors.__file__).parent
PREFIX = "ERROR_REASON_"
ENUM_REASONS = {
    value.name.removeprefix(PREFIX)
    for value in error_pb2.ErrorReason.DESCRIPTOR.values
    if value.number != error_pb2.ERROR_REASON_UNSPECIFIED
}
# Where a reason literal may appear besides `reason=`: the fallback of known_reason.
REASON_KEYWORDS = {"reason", "fallback"}


def error_classes() -> set[str]:
    """Names of RunctlError and every subclass of it defined anywhere in the server."""
    names = {"RunctlError"}
    grown = True
    trees = [ast.parse(path.read_text(), str(path)) for path in SERVER.rglob("*.py")]
    while grown:
        grown = False
        for tree in trees:
            for node in ast.walk(tree):
                if isinstance(node, ast.ClassDef) and node.name not in names:
                    bases = {_name(base) for base in node.bases}
                    if bases & names:
                        names.add(node.name)
                        grown = True
    return names


def _name(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return ""


def _constructed(call: ast.Call) -> str:
    """The class a call constructs: `NotFound(...)`, `errors.NotFound(...)`, `InvalidArgument.single(...)`."""
    func = call.func
    if isinstance(func, ast.Attribute) and func.attr == "single":
        return _name(func.value)
    return _name(func)


def sources() -> Iterator[tuple[Path, ast.AST]]:
    for path in sorted(SERVER.rglob("*.py")):
        yield path, ast.parse(path.read_text(), str(path))


def test_the_python_vocabulary_is_the_enum() -> None:
    assert set(get_args(errors.Reason)) == ENUM_REASONS
    assert errors.REASONS == ENUM_REASONS
    assert status.CONTRACT_REASONS == ENUM_REASONS
    # The naming rule of error.proto: the value's name is the reason with the prefix.
    for reason in ENUM_REASONS:
        assert error_pb2.ErrorReason.Name(error_pb2.ErrorReason.Value(PREFIX + reason)) == PREFIX + reason


def test_every_error_the_server_raises_names_a_reason_of_the_enum() -> None:
    classes = error_classes()
    assert {"NotFound", "InvalidArgument", "PayloadTooLarge"} <= classes
    unnamed: list[str] = []
    unknown: list[str] = []
    literals = 0
    for path, tree in sources():
        where = path.relative_to(SERVER.parent)
        for node in ast.walk(tree):
            # Class-level defaults would let a raise reach a client with a vague reason: none.
            if isinstance(node, ast.ClassDef) and node.name in classes:
                for statement in node.body:
                    targets = statement.targets if isinstance(statement, ast.Assign) else []
                    if isinstance(statement, ast.AnnAssign):
                        targets = [statement.target]
                    if any(_name(target) == "reason" for target in targets):
                        unnamed.append(f"{where}:{statement.lineno}: class-level reason in {node.name}")
            if not isinstance(node, ast.Call):
                continue
            if _constructed(node) in classes and not any(k.arg == "reason" for k in node.keywords):
                unnamed.append(f"{where}:{node.lineno}: {ast.unparse(node)[:100]}")
            is_error_info = _name(node.func) == "ErrorInfo"
            is_error = _constructed(node) in classes or _name(node.func) == "known_reason" or is_error_info
            for keyword in node.keywords:
                if not is_error or keyword.arg not in REASON_KEYWORDS:
                    continue
                if isinstance(keyword.value, ast.Constant):
                    literals += 1
                    if keyword.value.value not in ENUM_REASONS:
                        unknown.append(f"{where}:{node.lineno}: {keyword.value.value!r}")
                elif is_error_info:
                    # The one ErrorInfo built from an error goes through the contract check.
                    assert ast.unparse(keyword.value) == "contract_reason(error)", f"{where}:{node.lineno}"
        # Mappings typed as reasons (say a workflow status to the reason that refuses it).
        for node in ast.walk(tree):
            if isinstance(node, ast.AnnAssign) and "Reason" in ast.unparse(node.annotation):
                for constant in ast.walk(node.value) if node.value else []:
                    if isinstance(constant, ast.Dict):
                        for value in constant.values:
                            assert isinstance(value, ast.Constant), f"{where}:{node.lineno}"
                            literals += 1
                            if value.value not in ENUM_REASONS:
                                unknown.append(f"{where}:{node.lineno}: {value.value!r}")
    assert not unnamed, "errors raised without a reason:\n" + "\n".join(unnamed)
    assert not unknown, "reasons that are not runctl.v1.ErrorReason values:\n" + "\n".join(unknown)
    assert literals > 100  # the walk saw the raises (about 200 today), not an empty tree


def test_an_unknown_reason_is_logged_and_sent_as_unspecified(caplog: object) -> None:
    error = errors.NotFound("gone", reason="EXECUTION_NOT_FOUND")
    assert status.contract_reason(error) == "EXECUTION_NOT_FOUND"
    error.reason = "NO_SUCH_REASON"  # type: ignore[assignment]
    assert status.contract_reason(error) == "UNSPECIFIED"
    assert errors.known_reason("BATCH_ENDED", fallback="INTERNAL") == "BATCH_ENDED"
    assert errors.known_reason("NOT_PAUSED", fallback="INTERNAL") == "INTERNAL"


def test_http_bodies_keep_the_reason_words_they_printed_before_the_enum() -> None:
    assert set(http_errors._RENAMED) <= ENUM_REASONS
    assert http_errors._NAMED_SINCE <= ENUM_REASONS
    cases: list[tuple[errors.RunctlError, str]] = [
        (errors.FailedPrecondition("x", reason="EXECUTION_NOT_PAUSED"), "NOT_PAUSED"),
        (errors.InvalidArgument.single("f", "is required", reason="FIELD_REQUIRED"), "INVALID_ARGUMENT"),
        (errors.InvalidArgument.single("input", "too big", reason="PAYLOAD_TOO_LARGE"), "INVALID_ARGUMENT"),
        (http_errors.PayloadTooLarge("too big", reason="PAYLOAD_TOO_LARGE"), "PAYLOAD_TOO_LARGE"),
        (errors.Unauthenticated("no key", reason="API_KEY_REQUIRED"), "UNAUTHENTICATED"),
        (errors.NotFound("no file", reason="WORKFLOW_PATH_NOT_FOUND"), "NOT_FOUND"),
        (errors.RunctlError("driver failed", reason="INTERNAL"), "RUNCTL_ERROR"),
        (errors.NotFound("no run", reason="EXECUTION_NOT_FOUND"), "EXECUTION_NOT_FOUND"),
        (errors.Unauthenticated("bad", reason="BAD_SECRET"), "BAD_SECRET"),
    ]
    for error, word in cases:
        assert http_errors.details_of(error)[0] == {"reason": word}, error.reason
