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
