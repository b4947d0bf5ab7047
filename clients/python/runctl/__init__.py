"""runctl Python client: `Client` (synchronous) and `AsyncClient` (asyncio), the same methods."""

from runctl.aio import AsyncClient
from runctl.client import Client

__all__ = ["AsyncClient", "Client"]
