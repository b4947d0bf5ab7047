"""Page sizes and opaque page tokens (AIP-158) shared by every list call.

A token holds the position after the last item shown and, when the list has filters, a digest of them:
a token sent with other filters than the call that produced it is INVALID_ARGUMENT rather than a page of
some other list."""

from __future__ import annotations

import base64
import hashlib
import json
import math
from collections.abc import Mapping
from typing import Any

from runctl_server.errors import InvalidArgument

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000


def page_size(requested: int, default: int = DEFAULT_PAGE_SIZE) -> int:
    """Zero means the default, negative is an error, too large is clamped."""
    if requested < 0:
        raise InvalidArgument.single("page_size", "must not be negative", reason="FIELD_INVALID")
    return min(requested or default, MAX_PAGE_SIZE)


def _digest(filters: Mapping[str, Any]) -> str:
    text = json.dumps(filters, sort_keys=True, separators=(",", ":"), default=sorted)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def encode_token(position: dict[str, Any], filters: Mapping[str, Any] | None = None) -> str:
    if filters is not None:
        position = {**position, "f": _digest(filters)}
    return base64.urlsafe_b64encode(json.dumps(position, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_token(
    token: str,
    expected_keys: tuple[str, ...],
    numbers: tuple[str, ...] = ("t",),
    filters: Mapping[str, Any] | None = None,
) -> dict[str, Any] | None:
    """The position a page token holds: `numbers` are finite numbers (times, sequences), the other keys
    strings (ids). Anything else is INVALID_ARGUMENT, never a query with odd values; so is a token made
    for other `filters` (sets given as sets or sorted, so their order does not matter)."""
    if not token:
        return None
    if filters is not None:
        expected_keys = (*expected_keys, "f")
    try:
        position = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (ValueError, UnicodeDecodeError):
        position = None
    if not isinstance(position, dict) or set(position) != set(expected_keys):
        raise InvalidArgument.single(
            "page_token", "is not a token this server handed out", reason="PAGE_TOKEN_INVALID"
        )
    if not all(_is_number(v) if k in numbers else isinstance(v, str) for k, v in position.items()):
        raise InvalidArgument.single(
            "page_token", "is not a token this server handed out", reason="PAGE_TOKEN_INVALID"
        )
    if filters is not None and position.pop("f") != _digest(filters):
        raise InvalidArgument.single(
            "page_token",
            "was handed out for other filters: send the filters of the call that produced it",
            reason="PAGE_TOKEN_INVALID",
        )
    return position


def _is_number(value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return math.isfinite(value) and abs(value) < 2**63
