"""Seed 000 (human-in-the-loop builder): paused executions, the resume apiUrl, the approval page."""

from __future__ import annotations

from runctl_server.http.routing import Endpoint

ENDPOINTS: list[Endpoint] = []
