"""Is the database there: a probe that looks every second, flips gRPC health and refuses calls while
it is gone, and the readiness answer (`/readyz`): database reachable within a short timeout, schema at
the newest migration, not draining."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine as DatabaseEngine

log = logging.getLogger(__name__)

PROBE_SECONDS = 1.0
PROBE_TIMEOUT_SECONDS = 2.0


@dataclass
class Readiness:
    ready: bool
    checks: dict[str, Any] = field(default_factory=dict)


class DatabaseProbe:
    """Reads the schema revision (a round trip and the migration check in one) every second; tells
    `on_change` when the database goes away and when it comes back."""

    def __init__(
        self,
        database: DatabaseEngine,
        head: str | None,
        known: frozenset[str],
        on_change: Callable[[bool], Awaitable[None]],
        *,
        interval: float = PROBE_SECONDS,
        timeout: float = PROBE_TIMEOUT_SECONDS,
    ) -> None:
        self._database = database
        self.head = head
        self.known = known
        self._on_change = on_change
        self._interval = interval
        self._timeout = timeout
        self.up = True
        self.revision: str | None = head
        self.problem = ""
        self._task: asyncio.Task[None] | None = None
        self._pending: asyncio.Future[str | None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._watch(), name="runctl-database-probe")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def _read_revision(self) -> str | None:
        with self._database.connect() as connection:
            return connection.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()

    async def check(self) -> bool:
        """One look, within the timeout; a look still hanging from before is waited on, not repeated
        (a stuck connection attempt must not pile up threads)."""
        if self._pending is None or self._pending.done():
            self._pending = asyncio.ensure_future(asyncio.to_thread(self._read_revision))
        try:
            async with asyncio.timeout(self._timeout):
                self.revision = await asyncio.shield(self._pending)
        except TimeoutError:
            self.problem = f"no answer within {self._timeout:g}s"
            return False
        except Exception as exc:
            self.problem = (
                f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
            )
            return False
        self.problem = ""
        return True

    async def _watch(self) -> None:
        while True:
            reachable = await self.check()
            if reachable != self.up:
                self.up = reachable
                if reachable:
                    log.warning("the database is reachable again")
                else:
                    log.error("the database is unreachable (%s): calls answer UNAVAILABLE", self.problem)
                try:
                    await self._on_change(reachable)
                except Exception:
                    log.exception("could not act on the database's change of state")
            await asyncio.sleep(self._interval)

    async def readiness(self, draining: bool) -> Readiness:
        reachable = await self.check()
        schema_ok, schema = self._schema_verdict() if reachable else (False, "unknown")
        checks: dict[str, Any] = {
            "database": "ok" if reachable else f"unreachable: {self.problem}",
            "migrations": schema,
            "draining": draining,
        }
        return Readiness(reachable and schema_ok and not draining, checks)

    def _schema_verdict(self) -> tuple[bool, str]:
        if self.revision == self.head:
            return True, f"at head ({self.head})"
        if self.revision not in self.known:
            # Upgraded ahead by a newer runctl (a rolling upgrade): migrations only add, so serve on.
            return True, f"revision {self.revision} is newer than this runctl's head {self.head}"
        return False, f"revision {self.revision} is behind the head {self.head}: run `runctl db upgrade`"
