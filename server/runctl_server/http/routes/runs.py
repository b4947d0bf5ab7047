"""Seed 004 (workflow runs API): resume a waiting node with the webhook secret."""

from __future__ import annotations

from runctl_server.http.routing import Endpoint

ENDPOINTS: list[Endpoint] = []
