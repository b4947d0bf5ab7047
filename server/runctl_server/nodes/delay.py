"""The `delay` node: a durable timer, for a number of seconds or until a point in time."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from runctl_server.nodes.base import (
    MAX_WAIT_SECONDS,
    ConfigField,
    NodeContext,
    NodeFailure,
    NodeResult,
    NodeType,
    WaitUntil,
)

EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)


def rfc3339_problem(text: str) -> str | None:
    """Why `text` is not an RFC 3339 time with a zone offset (say 2030-01-01T09:00:00Z) between 1970 and
    ten years from now (a time already past fires at once); None if it is."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return "must be an RFC 3339 time such as 2030-01-01T09:00:00Z"
    if moment.tzinfo is None:
        return "must include a time zone offset, such as Z or +02:00"
    try:
        latest = datetime.now(UTC) + timedelta(seconds=MAX_WAIT_SECONDS)
        if not EARLIEST <= moment <= latest:
            return f"must be between 1970-01-01 and ten years from now ({latest:%Y-%m-%d})"
    except OverflowError:  # an offset that pushes it past year 9999
        return "must be between 1970-01-01 and ten years from now"
    return None


TEN_YEARS = MAX_WAIT_SECONDS


class DelayNode(NodeType):
    """Waits `seconds`, or `until` a time; the timer lives in the database and survives restarts."""

    type_name = "delay"
    config_schema: ClassVar[Mapping[str, ConfigField]] = {
        "seconds": ConfigField("number", minimum=0, maximum=TEN_YEARS, description="How long to wait."),
        "until": ConfigField(
            "template", description="An RFC 3339 time to wait for (may embed {{ expressions }})."
        ),
    }
    inline = True

    def check_config(self, config: Mapping[str, Any]) -> list[tuple[str, str]]:
        seconds, until = config.get("seconds"), config.get("until")
        if seconds is None and until is None:
            return [("", 'set "seconds" or "until"')]
        if seconds is not None and until is not None:
            return [("until", 'set either "seconds" or "until", not both')]
        if until is not None:
            if not isinstance(until, str):
                return [("until", "must be a string holding an RFC 3339 time")]
            if "{{" not in until and (problem := rfc3339_problem(until)):
                return [("until", problem)]
        return []

    async def execute(self, ctx: NodeContext) -> NodeResult:
        config = ctx.node.config
        if config.get("seconds") is not None:
            wake_at = datetime.now(UTC) + timedelta(seconds=float(config["seconds"]))
        else:
            until = ctx.render(config["until"])
            problem = rfc3339_problem(until) if isinstance(until, str) else "must be a string"
            if problem:
                raise NodeFailure(f"until: {problem}", code="BAD_TIME", retryable=False)
            wake_at = datetime.fromisoformat(until)
        return NodeResult(suspend=WaitUntil(wake_at=wake_at))
