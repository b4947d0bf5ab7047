from __future__ import annotations

import logging
import re
import secrets
import sys
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest

from runctl_server.api.resume_links import LinkClaim, ResumeLinks
from tests.postgres import temporary_database
from tests.support import ServerThread, running_server, settings_for


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    """One real server per test module, on free ports with a temp SQLite database."""
    db = tmp_path_factory.mktemp("db") / "runctl.db"
    with running_server(settings_for(f"sqlite:///{db}")) as handle:
        yield handle


@pytest.fixture(scope="module")
def channel(server: ServerThread) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(server.grpc_target) as chan:
        yield chan


@pytest.fixture
def pg_url() -> Iterator[str]:
    with temporary_database() as url:
        yield url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'runctl.db'}"


# -- no secret in any log line ----------------------------------------------------------------------

CANDIDATES = re.compile(r"[A-Za-z0-9_\-]{20,}")


class SecretWatch(logging.Handler):
    """Every webhook secret, API key, resume link token and link-signing key the in-process servers
    make is noted; every log line any logger emits during the suite is searched for them."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.issued: set[str] = set()
        self.leaks: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage()
        except Exception:  # a malformed record is the logging module's problem, not a leak
            return
        if record.exc_info:
            text += "".join(traceback.format_exception(*record.exc_info))
        for candidate in CANDIDATES.findall(text):
            if candidate in self.issued or candidate.removeprefix("rk_") in self.issued:
                self.leaks.append(f"{record.name} {record.levelname}: {text[:500]}")


@pytest.fixture(scope="session")
def secret_watch() -> Iterator[SecretWatch]:
    watch = SecretWatch()
    make, make_hex = secrets.token_urlsafe, secrets.token_hex

    def noting(generate: Callable[[int | None], str]) -> Callable[[int | None], str]:
        """`generate`, noting what it makes for runctl's server code (secrets, keys, the link key)."""

        def noted(nbytes: int | None = None) -> str:
            value = generate(nbytes)
            if sys._getframe(1).f_globals.get("__name__", "").startswith("runctl_server"):
                watch.issued.add(value)
            return value

        return noted

    secrets.token_urlsafe, secrets.token_hex = noting(make), noting(make_hex)  # type: ignore[assignment]
    sign = ResumeLinks.token

    def noted_token(links: ResumeLinks, claim: LinkClaim) -> str:
        value = sign(links, claim)
        watch.issued.update(part for part in value.split(".") if len(part) >= 20)
        return value

    ResumeLinks.token = noted_token  # type: ignore[method-assign, assignment]
    root = logging.getLogger()
    root.addHandler(watch)
    # Everything runctl logs, at any level, reaches the watch (its servers run in this process).
    levels = {name: logging.getLogger(name).level for name in ("runctl", "runctl_server")}
    for name in levels:
        logging.getLogger(name).setLevel(logging.DEBUG)
    try:
        yield watch
    finally:
        secrets.token_urlsafe = make
        secrets.token_hex = make_hex
        ResumeLinks.token = sign  # type: ignore[method-assign]
        root.removeHandler(watch)
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


@pytest.fixture(autouse=True)
def no_secret_logged(secret_watch: SecretWatch) -> Iterator[None]:
    before = len(secret_watch.leaks)
    yield
    leaked = secret_watch.leaks[before:]
    assert not leaked, "a secret or API key reached a log line:\n" + "\n".join(leaked)
