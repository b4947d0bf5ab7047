"""PostgreSQL LISTEN on one dedicated connection, reconnecting when it drops.

Notifications are wake-ups, never the truth: after every (re)connect `on_connect` runs, so whatever
was notified while the connection was down is found again in the tables.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping

from sqlalchemy.engine import Engine

log = logging.getLogger(__name__)

Handler = Callable[[str], Awaitable[None]]


def conninfo(engine: Engine) -> str:
    """The psycopg connection string of a SQLAlchemy PostgreSQL engine."""
    return engine.url.set(drivername="postgresql").render_as_string(hide_password=False)


class Listener:
    """Calls `handlers[channel](payload)` for each notification, one at a time, in arrival order."""

    def __init__(
        self,
        dsn: str,
        handlers: Mapping[str, Handler],
        on_connect: Callable[[], Awaitable[None]],
    ) -> None:
        self._dsn = dsn
        self._handlers = dict(handlers)
        self._on_connect = on_connect
        self._task: asyncio.Task[None] | None = None
        self.connected = asyncio.Event()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="runctl-listener")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        # The `postgres` extra: imported only where PostgreSQL is in use.
        import psycopg
        from psycopg import sql

        delay = 0.1
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(self._dsn, autocommit=True) as connection:
                    for channel in self._handlers:
                        await connection.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
                    self.connected.set()
                    await self._on_connect()
                    delay = 0.1
                    async for notice in connection.notifies():
                        handler = self._handlers.get(notice.channel)
                        if handler is None:
                            continue
                        try:
                            await handler(notice.payload)
                        except asyncio.CancelledError:
                            raise
                        except Exception:
                            log.exception("handling a %s notification failed", notice.channel)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.connected.clear()
                log.warning("LISTEN connection lost (%s); reconnecting in %.1fs", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
