"""A real server whose database holds API keys for two workspaces (alpha, beta) and a revoked one.

Shared by tests/test_auth.py and tests/test_workspace_isolation.py; each makes its own module fixture
from `keyed_server`, so each module gets its own server and database.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest

from runctl_server.store.api_keys import create_key, revoke_key
from runctl_server.store.database import create_db_engine
from runctl_server.store.migrate import upgrade_to_head
from tests.support import ServerThread, running_server, settings_for


@dataclass
class Keyed:
    handle: ServerThread
    db_url: str
    alpha: str
    beta: str
    revoked: str

    def meta(self, key: str) -> tuple[tuple[str, str], ...]:
        return (("x-api-key", key),)


@contextmanager
def keyed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Keyed]:
    url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'runctl.db'}"
    database = create_db_engine(url)
    upgrade_to_head(database)
    alpha = create_key(database, "alpha", "a").key
    beta = create_key(database, "beta", "b").key
    revoked = create_key(database, "alpha", "old")
    revoke_key(database, revoked.info.id)
    database.dispose()
    with running_server(settings_for(url)) as handle:
        yield Keyed(handle, url, alpha, beta, revoked.key)
