"""Server configuration from flags and RUNCTL_* environment variables."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

DEFAULT_DB_URL = "sqlite:///./runctl.db"
DEFAULT_GRPC_ADDR = "127.0.0.1:50051"
DEFAULT_HTTP_ADDR = "127.0.0.1:3003"


class SettingsError(ValueError):
    """A configuration value is malformed; the message names the setting."""


@dataclass(frozen=True)
class Address:
    """A host and port to bind; port 0 asks the OS for a free port."""

    host: str
    port: int

    @classmethod
    def parse(cls, text: str, setting: str) -> Address:
        host, sep, port_text = text.strip().rpartition(":")
        if not sep or not host:
            raise SettingsError(f"{setting}: expected HOST:PORT, got {text!r}")
        if host.startswith("[") and host.endswith("]"):
            host = host[1:-1]
        try:
            port = int(port_text)
        except ValueError:
            raise SettingsError(f"{setting}: port must be a number, got {port_text!r}") from None
        if not 0 <= port <= 65535:
            raise SettingsError(f"{setting}: port {port} is out of range 0-65535")
        return cls(host, port)

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


@dataclass(frozen=True)
class Settings:
    """Everything `build_server` needs; tests build one with port 0 and a temp database."""

    db_url: str = DEFAULT_DB_URL
    grpc_addr: Address = field(default_factory=lambda: Address.parse(DEFAULT_GRPC_ADDR, "grpc"))
    http_addr: Address = field(default_factory=lambda: Address.parse(DEFAULT_HTTP_ADDR, "http"))
    workflows_dirs: tuple[Path, ...] = ()
    public_base_url: str = ""
    shutdown_grace_seconds: float = 10.0
    # Events a watcher may fall behind before it is cut off (it resumes from its cursor).
    watch_buffer_events: int = 10_000
    # Larger HTTP request bodies are refused with 413 before they are parsed.
    http_max_body_bytes: int = 1_048_576

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Read RUNCTL_* variables; keyword overrides (from flags) win over the environment."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        if url := env.get("RUNCTL_DB_URL"):
            values["db_url"] = url
        if addr := env.get("RUNCTL_GRPC_ADDR"):
            values["grpc_addr"] = Address.parse(addr, "RUNCTL_GRPC_ADDR")
        if addr := env.get("RUNCTL_HTTP_ADDR"):
            values["http_addr"] = Address.parse(addr, "RUNCTL_HTTP_ADDR")
        if dirs := env.get("RUNCTL_WORKFLOWS_DIR"):
            values["workflows_dirs"] = parse_dirs(dirs)
        if base := env.get("RUNCTL_PUBLIC_BASE_URL"):
            values["public_base_url"] = base
        if grace := env.get("RUNCTL_SHUTDOWN_GRACE_SECONDS"):
            try:
                values["shutdown_grace_seconds"] = float(grace)
            except ValueError:
                raise SettingsError(f"RUNCTL_SHUTDOWN_GRACE_SECONDS: not a number: {grace!r}") from None
        if buffer := env.get("RUNCTL_WATCH_BUFFER_EVENTS"):
            try:
                values["watch_buffer_events"] = int(buffer)
            except ValueError:
                raise SettingsError(f"RUNCTL_WATCH_BUFFER_EVENTS: not a whole number: {buffer!r}") from None
            if values["watch_buffer_events"] < 1:
                raise SettingsError("RUNCTL_WATCH_BUFFER_EVENTS: must be at least 1")
        if limit := env.get("RUNCTL_HTTP_MAX_BODY_BYTES"):
            try:
                values["http_max_body_bytes"] = int(limit)
            except ValueError:
                raise SettingsError(f"RUNCTL_HTTP_MAX_BODY_BYTES: not a whole number: {limit!r}") from None
            if values["http_max_body_bytes"] < 1024:
                raise SettingsError("RUNCTL_HTTP_MAX_BODY_BYTES: must be at least 1024")
        values.update({k: v for k, v in overrides.items() if v is not None})
        return replace(cls(), **values)

    @property
    def base_url(self) -> str:
        """The public URL of the HTTP server, used to build links handed to people."""
        return (self.public_base_url or f"http://{self.http_addr}").rstrip("/")


def parse_dirs(text: str) -> tuple[Path, ...]:
    """Split an os.pathsep-separated list of folders, resolving each to an absolute path."""
    return tuple(Path(part).expanduser().resolve() for part in text.split(os.pathsep) if part.strip())
