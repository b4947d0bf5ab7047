"""API keys in the database: create (the secret is answered once), list, revoke, look up by hash.

Synchronous on purpose: the `runctl keys` commands call these directly, and the server calls them
through `asyncio.to_thread` (api/auth.py) so the event loop never waits on the database.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.engine import Connection, Engine, Row

from runctl_server.errors import NotFound
from runctl_server.store.tables import api_keys, workspaces

KEY_PREFIX = "rk_"
# Enough of the key to tell keys apart in a listing, far too little to guess the rest from.
SHOWN_PREFIX_CHARS = len(KEY_PREFIX) + 6


def hash_key(key: str) -> str:
    """The stored form of a key: SHA-256 hex. Keys are 256 random bits, so no slow hash is needed."""
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True)
class KeyInfo:
    """A key as listed: never the secret, only its first characters."""

    id: str
    workspace_id: str
    workspace_name: str
    name: str
    prefix: str
    created_at: datetime
    revoked_at: datetime | None


@dataclass(frozen=True)
class CreatedKey:
    """A new key: `key` is the secret, available only in this value."""

    info: KeyInfo
    key: str


def _now() -> datetime:
    return datetime.now(UTC)


def ensure_workspace(connection: Connection, name: str) -> str:
    """The id of the workspace called `name`, created when missing (its id is its name)."""
    found = connection.execute(select(workspaces.c.id).where(workspaces.c.name == name)).scalar()
    if found is not None:
        return str(found)
    connection.execute(insert(workspaces).values(id=name, name=name, created_at=_now()))
    return name


def create_key(engine: Engine, workspace_name: str, name: str = "") -> CreatedKey:
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    with engine.begin() as connection:
        workspace_id = ensure_workspace(connection, workspace_name)
        key_id = f"key_{secrets.token_hex(8)}"
        connection.execute(
            insert(api_keys).values(
                id=key_id,
                workspace_id=workspace_id,
                name=name,
                key_hash=hash_key(key),
                prefix=key[:SHOWN_PREFIX_CHARS],
                created_at=_now(),
            )
        )
        info = _key_info(connection, key_id)
    assert info is not None
    return CreatedKey(info, key)


def _key_info(connection: Connection, key_id: str) -> KeyInfo | None:
    row = connection.execute(_KEYS_WITH_WORKSPACE.where(api_keys.c.id == key_id)).first()
    return None if row is None else _info(row)


# Keys with their workspace's name (a key whose workspace is gone is shown with the workspace id).
_KEYS_WITH_WORKSPACE = select(
    api_keys, func.coalesce(workspaces.c.name, api_keys.c.workspace_id).label("workspace_name")
).select_from(api_keys.outerjoin(workspaces, workspaces.c.id == api_keys.c.workspace_id))


def list_keys(engine: Engine) -> list[KeyInfo]:
    with engine.connect() as connection:
        rows = connection.execute(_KEYS_WITH_WORKSPACE.order_by(api_keys.c.created_at, api_keys.c.id))
        return [_info(row) for row in rows]


def revoke_key(engine: Engine, key_id: str) -> KeyInfo:
    """Mark the key revoked (idempotent); NotFound when no key has this id."""
    with engine.begin() as connection:
        connection.execute(
            update(api_keys)
            .where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
            .values(revoked_at=_now())
        )
        info = _key_info(connection, key_id)
    if info is None:
        raise NotFound(f"no API key {key_id!r}", reason="API_KEY_NOT_FOUND")
    return info


@dataclass(frozen=True)
class KeySnapshot:
    """What authentication needs: every usable key by hash, and whether any key was ever made.

    A workspace whose keys are all revoked stays locked: dev mode is only for a database that never
    had a key, so revoking the last key cannot quietly open the server to keyless callers.
    """

    active: dict[str, tuple[str, str]]  # key hash -> (key id, workspace id)
    any_key: bool


def key_snapshot(engine: Engine) -> KeySnapshot:
    """One small read (a row per key), taken as a whole and cached briefly by the server."""
    with engine.connect() as connection:
        rows = connection.execute(
            select(api_keys.c.key_hash, api_keys.c.id, api_keys.c.workspace_id, api_keys.c.revoked_at)
        ).all()
    active = {key_hash: (key_id, ws) for key_hash, key_id, ws, revoked_at in rows if revoked_at is None}
    return KeySnapshot(active, bool(rows))


def _info(row: Row[Any]) -> KeyInfo:
    return KeyInfo(
        row.id,
        row.workspace_id,
        row.workspace_name,
        row.name,
        row.prefix,
        _utc(row.created_at),
        None if row.revoked_at is None else _utc(row.revoked_at),
    )


def _utc(moment: datetime) -> datetime:
    """The columns hold naive UTC (DateTime without zone); answer aware times."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
