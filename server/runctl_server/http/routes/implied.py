"""The routes DESIGN.md implies: create, list and get workflows; execute one run; execute a batch."""

from __future__ import annotations

from runctl_server.http.routing import Endpoint

ENDPOINTS: list[Endpoint] = []
