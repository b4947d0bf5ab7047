"""Seed 002 (action-based automation platform): the Execution object."""

from __future__ import annotations

from runctl_server.http.routing import Endpoint

ENDPOINTS: list[Endpoint] = []
