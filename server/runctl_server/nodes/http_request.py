"""The `http` node: a real HTTP request, with templated URL, headers, query and body."""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from typing import Any, ClassVar
from urllib.parse import urlsplit

import httpx

from runctl_server.nodes.base import ConfigField, NodeContext, NodeFailure, NodeResult, NodeType
from runctl_server.observe import tracing

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
DEFAULT_TIMEOUT_SECONDS = 30.0
# A request that may take longer belongs to a task node and a worker.
MAX_HTTP_TIMEOUT_SECONDS = 24 * 3600.0
# RFC 9110 token characters: what a header name may hold.
HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


def _is_scalar(value: Any) -> bool:
    return isinstance(value, str | int | float | bool)


def _url_problems(url: Any) -> list[tuple[str, str]]:
    if not isinstance(url, str):
        return [("url", "must be a string: an http(s) URL, which may embed {{ expressions }}")]
    if "{{" in url:
        return []
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as exc:
        return [("url", f"is not a valid URL: {exc}")]
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return [("url", "must be an absolute http:// or https:// URL")]
    return []


def _header_problems(headers: Any) -> list[tuple[str, str]]:
    if isinstance(headers, str) and "{{" in headers:
        return []  # computed at run time: "{{ input.headers }}"
    if not isinstance(headers, Mapping):
        return [("headers", "must be an object of header name -> value")]
    problems: list[tuple[str, str]] = []
    for name, value in headers.items():
        if not HEADER_NAME.fullmatch(name):
            problems.append((f"headers.{name}", "is not a valid header name"))
        elif not _is_scalar(value):
            problems.append((f"headers.{name}", "must be a string (which may embed {{ expressions }})"))
        elif isinstance(value, str) and ("\r" in value or "\n" in value):
            problems.append((f"headers.{name}", "must not contain line breaks"))
    return problems


def _query_problems(query: Any) -> list[tuple[str, str]]:
    if isinstance(query, str) and "{{" in query:
        return []
    if not isinstance(query, Mapping):
        return [("query", "must be an object of parameter name -> value")]
    problems: list[tuple[str, str]] = []
    for name, value in query.items():
        values = value if isinstance(value, list) else [value]
        if not all(_is_scalar(item) for item in values):
            problems.append((f"query.{name}", "must be a string, number, boolean, or an array of them"))
    return problems


def _status_problems(statuses: Any) -> list[tuple[str, str]]:
    if not isinstance(statuses, list):
        return []  # the schema reports it
    if not statuses:
        return [("expectStatus", "must list at least one status code (leave it out to accept any 2xx)")]
    return [
        (f"expectStatus[{index}]", "must be an integer from 100 to 599")
        for index, status in enumerate(statuses)
        if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599
    ]


class HttpNode(NodeType):
    """Sends a request; the output holds the status, headers and body (parsed when it is JSON)."""

    type_name = "http"
    config_schema: ClassVar[Mapping[str, ConfigField]] = {
        "method": ConfigField("string", choices=METHODS, description='Default "GET".'),
        "url": ConfigField(
            "template", required=True, description="An absolute http(s) URL; may embed {{ expressions }}."
        ),
        "headers": ConfigField("template", description="Header name -> value; values may embed {{ }}."),
        "query": ConfigField("template", description="Query parameter name -> value(s); may embed {{ }}."),
        "body": ConfigField("template", description="Sent as JSON (a string is sent as-is)."),
        "timeoutSeconds": ConfigField(
            "number", maximum=MAX_HTTP_TIMEOUT_SECONDS, description=f"Default {DEFAULT_TIMEOUT_SECONDS:g}."
        ),
        "expectStatus": ConfigField("array", description="Status codes that succeed (default: any 2xx)."),
        "responseType": ConfigField(
            "string", choices=("json", "text"), description="Default: json when the response says JSON."
        ),
    }
    inline = False

    def check_config(self, config: Mapping[str, Any]) -> list[tuple[str, str]]:
        problems: list[tuple[str, str]] = []
        if config.get("url") is not None:
            problems.extend(_url_problems(config["url"]))
        if config.get("headers") is not None:
            problems.extend(_header_problems(config["headers"]))
        if config.get("query") is not None:
            problems.extend(_query_problems(config["query"]))
        problems.extend(_status_problems(config.get("expectStatus")))
        timeout = config.get("timeoutSeconds")
        if isinstance(timeout, int | float) and not isinstance(timeout, bool) and timeout <= 0:
            problems.append(("timeoutSeconds", "must be greater than 0"))
        return problems

    async def execute(self, ctx: NodeContext) -> NodeResult:
        config = ctx.node.config
        method = str(config.get("method", "GET"))
        url = ctx.render(config["url"])
        if not isinstance(url, str) or urlsplit(url).scheme not in ("http", "https"):
            raise NodeFailure(
                f"url must render to an absolute http(s) URL, got {url!r}", code="BAD_URL", retryable=False
            )
        headers = {str(k): str(v) for k, v in (ctx.render(config.get("headers")) or {}).items()}
        # Stable across attempts and restarts: the receiver can tell a repeat from a new request.
        headers.setdefault("Idempotency-Key", ctx.idempotency_key)
        if not any(name.lower() == "traceparent" for name in headers):
            tracing.inject(headers)  # the called service's spans join the run's trace
        query = ctx.render(config.get("query")) or {}
        body = ctx.render(config["body"]) if "body" in config else None
        timeout = float(config.get("timeoutSeconds", DEFAULT_TIMEOUT_SECONDS))
        client: httpx.AsyncClient = ctx.service("http")
        content = body if isinstance(body, str) else None
        started = time.monotonic()
        try:
            response = await client.request(
                method,
                url,
                headers=headers,
                params=query,
                content=content,
                json=body if body is not None and content is None else None,
                timeout=timeout,
            )
        except httpx.TimeoutException:
            raise NodeFailure(f"{method} {url} timed out after {timeout:g}s", code="HTTP_TIMEOUT") from None
        except httpx.HTTPError as exc:
            raise NodeFailure(f"{method} {url} failed: {exc}", code="HTTP_ERROR") from None
        elapsed_ms = round((time.monotonic() - started) * 1000, 1)
        if ctx.trace:
            ctx.log(
                f"{method} {url} -> {response.status_code}",
                request={"method": method, "url": url, "headers": _redacted(headers), "body": body},
                response={"status": response.status_code, "bytes": len(response.content)},
                elapsedMs=elapsed_ms,
            )
        output = {
            "status": response.status_code,
            "headers": dict(response.headers),
            "body": _body(response, config),
        }
        expected = config.get("expectStatus")
        ok = response.status_code in expected if expected else 200 <= response.status_code < 300
        if not ok:
            # Client errors will not change on a retry; server errors and throttling may.
            retryable = response.status_code >= 500 or response.status_code in (408, 429)
            raise NodeFailure(
                f"{method} {url} answered {response.status_code}", code="HTTP_STATUS", retryable=retryable
            )
        return NodeResult(output=output)


def _redacted(headers: Mapping[str, str]) -> dict[str, str]:
    secret = {"authorization", "cookie", "x-api-key", "proxy-authorization"}
    return {k: ("<redacted>" if k.lower() in secret else v) for k, v in headers.items()}


def _body(response: httpx.Response, config: Mapping[str, Any]) -> Any:
    wanted = config.get("responseType")
    is_json = "json" in response.headers.get("content-type", "")
    if wanted == "json" or (wanted is None and is_json):
        try:
            return response.json()
        except ValueError:
            if wanted == "json":
                raise NodeFailure("response body is not valid JSON", code="BAD_RESPONSE") from None
    return response.text
