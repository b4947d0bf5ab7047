"""Seed 001 (local automation runner): status, active runs, stop, batches, continue, pause control."""

from __future__ import annotations

from runctl_server.http.routing import Endpoint

ENDPOINTS: list[Endpoint] = []
