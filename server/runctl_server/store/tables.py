"""SQLModel tables. Tables are not API messages: converters live at the api edge."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

DEFAULT_WORKSPACE_ID = "default"


class Workspace(SQLModel, table=True):
    """A tenant: every workflow, run, batch and event belongs to one."""

    __tablename__ = "workspaces"

    id: str = Field(primary_key=True, max_length=64)
    name: str = Field(unique=True, max_length=200)
    created_at: datetime


class ApiKey(SQLModel, table=True):
    """A workspace API key. Only the SHA-256 of the secret is stored; `prefix` tells keys apart."""

    __tablename__ = "api_keys"

    id: str = Field(primary_key=True, max_length=64)
    workspace_id: str = Field(foreign_key="workspaces.id", index=True, max_length=64)
    name: str = Field(max_length=200)
    key_hash: str = Field(unique=True, max_length=64)
    prefix: str = Field(max_length=16)
    created_at: datetime
    revoked_at: datetime | None = None
