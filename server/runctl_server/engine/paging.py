"""Page sizes and opaque page tokens (AIP-158) shared by every list call."""

from __future__ import annotations

import base64
import json
from typing import Any

from runctl_server.errors import InvalidArgument

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000


def page_size(requested: int, default: int = DEFAULT_PAGE_SIZE) -> int:
    """Zero means the default, negative is an error, too large is clamped."""
    if requested < 0:
        raise InvalidArgument.single("page_size", "must not be negative")
    return min(requested or default, MAX_PAGE_SIZE)


def encode_token(position: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(position, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_token(token: str, expected_keys: tuple[str, ...]) -> dict[str, Any] | None:
    if not token:
        return None
    try:
        position = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (ValueError, UnicodeDecodeError):
        position = None
    if not isinstance(position, dict) or set(position) != set(expected_keys):
        raise InvalidArgument.single("page_token", "is not a token this server handed out")
    return position
