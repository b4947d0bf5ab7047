"""Routes are declared once, as Endpoints: Starlette routes and the OpenAPI document are made from them.

A handler gets a Call (the parsed request, the services, the caller's credentials) and answers a JSON
value; bad input raises InvalidArgument (400 with a field violation), domain errors raise RunctlError,
and the endpoint's error body style turns either into the compatibility API's error shape.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from runctl_server.api.auth import is_loopback_host
from runctl_server.api.context import current_workspace
from runctl_server.api.servicers import Servicers
from runctl_server.engine.engine import Engine
from runctl_server.errors import InvalidArgument, RunctlError
from runctl_server.http.bridge import RequestT, ResponseT, Services, Streaming, Unary
from runctl_server.http.errors import ErrorBody, PayloadTooLarge, error_response, error_with_details

log = logging.getLogger(__name__)

DEFAULT_MAX_BODY_BYTES = 1_048_576
CREDENTIAL_HEADERS = ("x-api-key", "authorization")


@dataclass(frozen=True)
class Param:
    """A query parameter, for validation messages and the OpenAPI document."""

    name: str
    schema: Mapping[str, Any]
    description: str = ""
    required: bool = False


@dataclass
class Call:
    """One HTTP request on its way to a servicer."""

    request: Request
    services: Services
    max_body_bytes: int

    @property
    def path(self) -> Mapping[str, str]:
        return self.request.path_params

    @property
    def metadata(self) -> dict[str, str]:
        """The caller's credentials, passed on as gRPC metadata would carry them."""
        return {name: value for name in CREDENTIAL_HEADERS if (value := self.request.headers.get(name))}

    async def unary(self, method: Unary[RequestT, ResponseT], message: RequestT) -> ResponseT:
        """Call a servicer method (`call.servicers.executions.GetExecution`) as this HTTP caller."""
        return await self.services.unary(method, message, self.metadata)

    @property
    def servicers(self) -> Servicers:
        return self.services.servicers

    @property
    def engine(self) -> Engine:
        """The engine, for routes whose documented behaviour no gRPC method has (bridge.Services.engine)."""
        if self.services.engine is None:
            raise RuntimeError("this route needs the engine: build Services with it")
        return self.services.engine

    @property
    def workspace_id(self) -> str:
        """The caller's workspace, as the auth middleware resolved it (for direct engine calls)."""
        return current_workspace()

    def stream(self, method: Streaming[RequestT, ResponseT], message: RequestT) -> AsyncIterator[ResponseT]:
        """A server-streaming method's messages, for as long as the caller's credentials hold."""
        client = self.request.client
        return self.services.streaming(
            method,
            message,
            self.metadata,
            loopback=is_loopback_host(client.host if client else None),
        )

    async def json_body(self, *, required: bool = False) -> dict[str, Any]:
        """The body as a JSON object ({} when empty and not required); 400 or 413 otherwise."""
        declared = self.request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > self.max_body_bytes:
            raise _too_large(self.max_body_bytes)
        raw = bytearray()
        async for chunk in self.request.stream():
            raw.extend(chunk)
            if len(raw) > self.max_body_bytes:
                raise _too_large(self.max_body_bytes)
        if not raw.strip():
            if required:
                raise InvalidArgument.single("body", "a JSON object is required", reason="FIELD_INVALID")
            return {}
        try:
            value = json.loads(raw, parse_constant=_not_json, parse_float=_finite)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            where = (
                f" at line {exc.lineno} column {exc.colno}" if isinstance(exc, json.JSONDecodeError) else ""
            )
            raise InvalidArgument.single(
                "body", f"is not valid JSON{where}", reason="FIELD_INVALID"
            ) from None
        except _NotFinite as exc:
            raise InvalidArgument.single(
                "body",
                f"holds {exc}: JSON numbers cannot be NaN or Infinity (or overflow)",
                reason="FIELD_INVALID",
            ) from None
        except RecursionError:  # e.g. 50,000 nested arrays: the decoder's stack runs out
            raise InvalidArgument.single("body", "is nested too deeply", reason="FIELD_INVALID") from None
        except ValueError:  # an integer longer than Python converts (4,300 digits)
            raise InvalidArgument.single(
                "body", "holds a number with too many digits", reason="FIELD_INVALID"
            ) from None
        if not isinstance(value, dict):
            raise InvalidArgument.single("body", "must be a JSON object", reason="FIELD_INVALID")
        return value

    def query(self, name: str) -> str | None:
        return self.request.query_params.get(name)

    def int_query(self, name: str, default: int, *, minimum: int = 0, maximum: int | None = None) -> int:
        text = self.query(name)
        if text is None or text == "":
            return default
        try:
            value = int(text)
        except ValueError:
            raise InvalidArgument.single(
                name, f"must be a whole number, got {text!r}", reason="FIELD_INVALID"
            ) from None
        if value < minimum or (maximum is not None and value > maximum):
            upper = f" and at most {maximum}" if maximum is not None else ""
            raise InvalidArgument.single(
                name, f"must be at least {minimum}{upper}, got {value}", reason="FIELD_INVALID"
            )
        return value


class _NotFinite(ValueError):
    """NaN, Infinity or a number too large for a float: Python's JSON reader takes them, JSON does not."""


def _not_json(constant: str) -> Any:
    raise _NotFinite(constant)


def _finite(text: str) -> float:
    number = float(text)
    if math.isinf(number):
        raise _NotFinite(text)
    return number


def _too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"the request body is larger than {limit} bytes", reason="PAYLOAD_TOO_LARGE")


Handler = Callable[[Call], Awaitable[Any]]

# The compatibility API a route reproduces (docs/compat/), or "implied": a route those APIs assume
# but do not show (creating workflows, starting runs and batches, the resume links, the SSE stream), or
# "console": the operator console's own API (left out of /openapi.json).
Api = Literal[
    "paused executions",
    "local runner",
    "execution object",
    "workflow pause",
    "node resume",
    "implied",
    "console",
]


@dataclass(frozen=True)
class Endpoint:
    """One documented route: how to serve it and how to describe it."""

    method: str
    path: str
    handler: Handler
    summary: str
    source: Api
    query: tuple[Param, ...] = ()
    body: Mapping[str, Any] | None = None  # JSON schema of the request body
    response: Mapping[str, Any] = field(default_factory=lambda: {"type": "object"})
    status: int = 200
    error_statuses: tuple[int, ...] = (400, 404)
    error_body: ErrorBody = error_with_details
    # What the route answers and takes, when not JSON (the approval page: text/html, form posts).
    media_type: str = "application/json"
    body_media_type: str = "application/json"
    error_media_type: str = "application/json"


def starlette_route(endpoint: Endpoint, services: Services, max_body_bytes: int) -> Route:
    async def serve(request: Request) -> Response:
        call = Call(request, services, max_body_bytes)
        try:
            result = await endpoint.handler(call)
        except PayloadTooLarge as exc:
            response = error_response(exc, endpoint.error_body)
            response.status_code = 413
            return response
        except RunctlError as exc:
            return error_response(exc, endpoint.error_body)
        if isinstance(result, Response):
            return result
        return JSONResponse(result, status_code=endpoint.status)

    return Route(endpoint.path, serve, methods=[endpoint.method], name=f"{endpoint.method} {endpoint.path}")
