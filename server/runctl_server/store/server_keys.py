"""Keys the server itself holds (the one that signs resume links), made at first start.

Kept in the database rather than in a file so every process serving one database signs and checks
the same links, and a restart does not void the links already sent to people.
"""

from __future__ import annotations

import secrets
import time

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

RESUME_LINKS = "resume-links"

_server_keys = sa.table(
    "server_keys",
    sa.column("name", sa.String),
    sa.column("secret", sa.String),
    sa.column("created_at", sa.Float),
)


def server_key(database: Engine, name: str) -> bytes:
    """The key called `name`, made (256 random bits) the first time any process asks for it."""
    select = sa.select(_server_keys.c.secret).where(_server_keys.c.name == name)
    with database.connect() as connection:
        found = connection.execute(select).scalar()
    if found is None:
        try:
            with database.begin() as connection:
                connection.execute(
                    _server_keys.insert().values(
                        name=name, secret=secrets.token_hex(32), created_at=time.time()
                    )
                )
        except IntegrityError:
            pass  # another process made it first: use theirs
        with database.connect() as connection:
            found = connection.execute(select).scalar_one()
    return bytes.fromhex(found)
