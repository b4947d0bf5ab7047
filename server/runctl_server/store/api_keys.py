"""API keys in the database: create (the secret is answered once), list, revoke, look up by hash.

Synchronous on purpose: the `runctl keys` commands call these directly, and the server calls them
through `asyncio.to_thread` (api/auth.py) so the event loop never waits on the database.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from runctl_server.errors import NotFound
from runctl_server.store.tables import ApiKey, Workspace

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


def ensure_workspace(session: Session, name: str) -> Workspace:
    """The workspace called `name`, created when missing (its id is its name)."""
    workspace = session.exec(select(Workspace).where(Workspace.name == name)).first()
    if workspace is None:
        workspace = Workspace(id=name, name=name, created_at=_now())
        session.add(workspace)
        session.flush()
    return workspace


def create_key(engine: Engine, workspace_name: str, name: str = "") -> CreatedKey:
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    with Session(engine) as session:
        workspace = ensure_workspace(session, workspace_name)
        row = ApiKey(
            id=f"key_{secrets.token_hex(8)}",
            workspace_id=workspace.id,
            name=name,
            key_hash=hash_key(key),
            prefix=key[:SHOWN_PREFIX_CHARS],
            created_at=_now(),
        )
        session.add(row)
        session.commit()
        return CreatedKey(_info(row, workspace.name), key)


def list_keys(engine: Engine) -> list[KeyInfo]:
    with Session(engine) as session:
        rows = session.exec(
            select(ApiKey, Workspace.name)
            .join(Workspace, Workspace.id == ApiKey.workspace_id)  # type: ignore[arg-type]
            .order_by(ApiKey.created_at, ApiKey.id)  # type: ignore[arg-type]
        ).all()
        return [_info(row, workspace_name) for row, workspace_name in rows]


def revoke_key(engine: Engine, key_id: str) -> KeyInfo:
    """Mark the key revoked (idempotent); NotFound when no key has this id."""
    with Session(engine) as session:
        row = session.get(ApiKey, key_id)
        if row is None:
            raise NotFound(f"no API key {key_id!r}", reason="API_KEY_NOT_FOUND")
        if row.revoked_at is None:
            row.revoked_at = _now()
            session.add(row)
            session.commit()
            session.refresh(row)
        workspace = session.get(Workspace, row.workspace_id)
        return _info(row, workspace.name if workspace else row.workspace_id)


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
    with Session(engine) as session:
        rows = session.exec(select(ApiKey.key_hash, ApiKey.id, ApiKey.workspace_id, ApiKey.revoked_at)).all()
    active = {key_hash: (key_id, ws) for key_hash, key_id, ws, revoked_at in rows if revoked_at is None}
    return KeySnapshot(active, bool(rows))


def _info(row: ApiKey, workspace_name: str) -> KeyInfo:
    return KeyInfo(
        row.id, row.workspace_id, workspace_name, row.name, row.prefix, row.created_at, row.revoked_at
    )
