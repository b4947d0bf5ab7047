"""Settings parsing (pure functions)."""

from __future__ import annotations

from pathlib import Path

import pytest

from runctl_server.settings import Address, Settings, SettingsError
from runctl_server.store.database import normalize_db_url


def test_defaults_match_the_documented_ports() -> None:
    settings = Settings.from_env({})
    assert str(settings.grpc_addr) == "127.0.0.1:50051"
    assert str(settings.http_addr) == "127.0.0.1:3003"
    assert settings.db_url == "sqlite:///./runctl.db"
    assert settings.base_url == "http://127.0.0.1:3003"


def test_environment_is_read_and_flags_win(tmp_path: Path) -> None:
    env = {
        "RUNCTL_DB_URL": "postgresql://postgres@127.0.0.1/x",
        "RUNCTL_GRPC_ADDR": "0.0.0.0:6000",
        "RUNCTL_HTTP_ADDR": "[::1]:7000",
        "RUNCTL_WORKFLOWS_DIR": f"{tmp_path}/a:{tmp_path}/b",
    }
    settings = Settings.from_env(env, grpc_addr=Address("127.0.0.1", 9))
    assert settings.db_url == env["RUNCTL_DB_URL"]
    assert str(settings.grpc_addr) == "127.0.0.1:9"
    assert settings.http_addr == Address("::1", 7000)
    assert str(settings.http_addr) == "[::1]:7000"
    assert settings.workflows_dirs == (tmp_path / "a", tmp_path / "b")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("localhost", "expected HOST:PORT"),
        ("h:abc", "port must be a number"),
        ("h:70000", "port 70000 is out of range"),
    ],
)
def test_bad_addresses_name_the_setting(text: str, message: str) -> None:
    with pytest.raises(SettingsError, match=f"RUNCTL_GRPC_ADDR: {message}"):
        Settings.from_env({"RUNCTL_GRPC_ADDR": text})


def test_database_urls_are_normalized() -> None:
    assert normalize_db_url("postgres://u@h/db").drivername == "postgresql+psycopg"
    assert normalize_db_url("postgresql://u@h/db").drivername == "postgresql+psycopg"
    assert normalize_db_url("sqlite:///x.db").drivername == "sqlite"
    with pytest.raises(SettingsError, match="unsupported database 'mysql'"):
        normalize_db_url("mysql://u@h/db")
    with pytest.raises(SettingsError, match="not a database URL"):
        normalize_db_url("nonsense")
