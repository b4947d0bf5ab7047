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
class Limits:
    """Sizes a request may not exceed; each is refused before anything is stored."""

    # gRPC refuses larger request messages itself, with RESOURCE_EXHAUSTED.
    max_grpc_message_bytes: int = 4 * 1024 * 1024
    # Nodes of one workflow document, loop bodies included (INVALID_ARGUMENT on `nodes`).
    max_workflow_nodes: int = 1_000
    # A run's input, and the values of a resume, as compact JSON (INVALID_ARGUMENT).
    max_input_bytes: int = 1_000_000
    max_resume_bytes: int = 1_000_000

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Limits:
        values: dict[str, int] = {}
        for name, variable, minimum in _LIMIT_VARIABLES:
            if text := env.get(variable):
                try:
                    values[name] = int(text)
                except ValueError:
                    raise SettingsError(f"{variable}: not a whole number: {text!r}") from None
                if values[name] < minimum:
                    raise SettingsError(f"{variable}: must be at least {minimum}")
        return cls(**values)


_LIMIT_VARIABLES = (
    ("max_grpc_message_bytes", "RUNCTL_MAX_GRPC_MESSAGE_BYTES", 1024),
    ("max_workflow_nodes", "RUNCTL_MAX_WORKFLOW_NODES", 1),
    ("max_input_bytes", "RUNCTL_MAX_INPUT_BYTES", 2),
    ("max_resume_bytes", "RUNCTL_MAX_RESUME_BYTES", 2),
)


MIN_LINK_KEY_CHARS = 32


@dataclass(frozen=True)
class Settings:
    """Everything `build_server` needs; tests build one with port 0 and a temp database."""

    db_url: str = DEFAULT_DB_URL
    grpc_addr: Address = field(default_factory=lambda: Address.parse(DEFAULT_GRPC_ADDR, "grpc"))
    http_addr: Address = field(default_factory=lambda: Address.parse(DEFAULT_HTTP_ADDR, "http"))
    workflows_dirs: tuple[Path, ...] = ()
    public_base_url: str = ""
    shutdown_grace_seconds: float = 10.0
    # On SIGTERM: health says NOT_SERVING while calls are still served for this long, so load balancers
    # see it and send new calls elsewhere; then streams end and in-flight calls get the grace period.
    drain_seconds: float = 5.0
    # Events a watcher may fall behind before it is cut off (it resumes from its cursor).
    watch_buffer_events: int = 10_000
    # Ended runs whose views are kept in memory for reads (engine/ended_runs.py); 0 = none.
    ended_runs_kept: int = 1024
    # Larger HTTP request bodies are refused with 413 before they are parsed.
    http_max_body_bytes: int = 1_048_576
    # PEM files: with both, gRPC and HTTP serve TLS only; with neither, plaintext.
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    limits: Limits = field(default_factory=Limits)
    # How long a rotated-out webhook secret keeps working when RotateWebhookSecret does not say.
    secret_overlap_seconds: float = 24 * 3600.0
    # Keys that sign resume links, oldest first: the last signs, all verify. Empty: a key the server
    # makes and keeps in its database.
    resume_link_keys: tuple[str, ...] = ()
    # Replicas (PostgreSQL): a replica silent for this long is dead and its runs are taken over.
    lease_ttl_seconds: float = 10.0
    # This replica's name in the replicas table and logs; default "<host>:<gRPC port>". A replica that
    # starts under a name takes over its previous incarnation's runs at once (a restart).
    replica_name: str = ""
    # SQLite durability: "FULL" (an acknowledged change survives a power loss) or "NORMAL" (it survives
    # a crash of the process, not of the machine; faster on slow disks).
    sqlite_synchronous: str = "FULL"
    # Prometheus metrics at /metrics; off, nothing is counted (and /metrics answers 404).
    metrics: bool = True
    # Ended runs older than this many seconds are removed in the background; None keeps everything.
    retention_seconds: float | None = None
    # Server logs: "text" or "json" (one object per line), and the level.
    log_format: str = "text"
    log_level: str = "INFO"

    def __post_init__(self) -> None:
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            given, missing = ("certificate", "key") if self.tls_key_file is None else ("key", "certificate")
            raise SettingsError(
                f"TLS needs both a certificate (--tls-cert / RUNCTL_TLS_CERT) and a key (--tls-key / "
                f"RUNCTL_TLS_KEY): a {given} is set but no {missing}"
            )

    @property
    def tls(self) -> bool:
        """Whether both servers speak TLS."""
        return self.tls_cert_file is not None

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
        if drain := env.get("RUNCTL_DRAIN_SECONDS"):
            try:
                values["drain_seconds"] = float(drain)
            except ValueError:
                raise SettingsError(f"RUNCTL_DRAIN_SECONDS: not a number: {drain!r}") from None
            if not 0 <= values["drain_seconds"] <= 300:
                raise SettingsError("RUNCTL_DRAIN_SECONDS: must be between 0 and 300")
        if buffer := env.get("RUNCTL_WATCH_BUFFER_EVENTS"):
            try:
                values["watch_buffer_events"] = int(buffer)
            except ValueError:
                raise SettingsError(f"RUNCTL_WATCH_BUFFER_EVENTS: not a whole number: {buffer!r}") from None
            if values["watch_buffer_events"] < 1:
                raise SettingsError("RUNCTL_WATCH_BUFFER_EVENTS: must be at least 1")
        if kept := env.get("RUNCTL_ENDED_RUNS_KEPT"):
            try:
                values["ended_runs_kept"] = int(kept)
            except ValueError:
                raise SettingsError(f"RUNCTL_ENDED_RUNS_KEPT: not a whole number: {kept!r}") from None
            if values["ended_runs_kept"] < 0:
                raise SettingsError("RUNCTL_ENDED_RUNS_KEPT: must be 0 or more")
        if limit := env.get("RUNCTL_HTTP_MAX_BODY_BYTES"):
            try:
                values["http_max_body_bytes"] = int(limit)
            except ValueError:
                raise SettingsError(f"RUNCTL_HTTP_MAX_BODY_BYTES: not a whole number: {limit!r}") from None
            if values["http_max_body_bytes"] < 1024:
                raise SettingsError("RUNCTL_HTTP_MAX_BODY_BYTES: must be at least 1024")
        if overlap := env.get("RUNCTL_SECRET_OVERLAP_SECONDS"):
            try:
                values["secret_overlap_seconds"] = float(overlap)
            except ValueError:
                raise SettingsError(f"RUNCTL_SECRET_OVERLAP_SECONDS: not a number: {overlap!r}") from None
            if not 0 <= values["secret_overlap_seconds"] <= 30 * 24 * 3600:
                raise SettingsError("RUNCTL_SECRET_OVERLAP_SECONDS: must be between 0 and 2592000 (30 days)")
        if ttl := env.get("RUNCTL_LEASE_TTL_SECONDS"):
            try:
                values["lease_ttl_seconds"] = float(ttl)
            except ValueError:
                raise SettingsError(f"RUNCTL_LEASE_TTL_SECONDS: not a number: {ttl!r}") from None
            if not 0.5 <= values["lease_ttl_seconds"] <= 300:
                raise SettingsError("RUNCTL_LEASE_TTL_SECONDS: must be between 0.5 and 300")
        if sync := env.get("RUNCTL_SQLITE_SYNCHRONOUS"):
            if sync.upper() not in ("FULL", "NORMAL"):
                raise SettingsError(f"RUNCTL_SQLITE_SYNCHRONOUS: {sync!r} is not FULL or NORMAL")
            values["sqlite_synchronous"] = sync.upper()
        if name := env.get("RUNCTL_REPLICA_NAME"):
            if len(name) > 200:
                raise SettingsError("RUNCTL_REPLICA_NAME: at most 200 characters")
            values["replica_name"] = name
        if keys := env.get("RUNCTL_RESUME_LINK_KEYS"):
            values["resume_link_keys"] = tuple(key.strip() for key in keys.split(",") if key.strip())
            if any(len(key) < MIN_LINK_KEY_CHARS for key in values["resume_link_keys"]):
                raise SettingsError(
                    f"RUNCTL_RESUME_LINK_KEYS: each key must be at least {MIN_LINK_KEY_CHARS} characters "
                    "(e.g. `openssl rand -hex 32`)"
                )
        if flag := env.get("RUNCTL_METRICS"):
            values["metrics"] = parse_switch(flag, "RUNCTL_METRICS")
        if retention := env.get("RUNCTL_RETENTION"):
            values["retention_seconds"] = parse_duration(retention, "RUNCTL_RETENTION")
        if log_format := env.get("RUNCTL_LOG_FORMAT"):
            values["log_format"] = log_format
        if log_level := env.get("RUNCTL_LOG_LEVEL"):
            values["log_level"] = log_level
        if cert := env.get("RUNCTL_TLS_CERT"):
            values["tls_cert_file"] = Path(cert).expanduser()
        if key := env.get("RUNCTL_TLS_KEY"):
            values["tls_key_file"] = Path(key).expanduser()
        values["limits"] = Limits.from_env(env)
        values.update({k: v for k, v in overrides.items() if v is not None})
        settings = replace(cls(), **values)
        settings.check_logging()
        return settings

    def check_logging(self) -> None:
        if self.log_format not in ("text", "json"):
            raise SettingsError(
                f"log format (--log-format / RUNCTL_LOG_FORMAT): {self.log_format!r} is not text or json"
            )
        if self.log_level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
            raise SettingsError(
                f"log level (--log-level / RUNCTL_LOG_LEVEL): {self.log_level!r} is not one of "
                "DEBUG, INFO, WARNING, ERROR, CRITICAL"
            )

    @property
    def base_url(self) -> str:
        """The public URL of the HTTP server, used to build links handed to people."""
        scheme = "https" if self.tls else "http"
        return (self.public_base_url or f"{scheme}://{self.http_addr}").rstrip("/")


def parse_dirs(text: str) -> tuple[Path, ...]:
    """Split an os.pathsep-separated list of folders, resolving each to an absolute path."""
    return tuple(Path(part).expanduser().resolve() for part in text.split(os.pathsep) if part.strip())


_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}


def parse_duration(text: str, setting: str) -> float:
    """`30d`, `12h`, `90m`, `45s`, `2w` (or plain seconds) as seconds; at least one second."""
    value = text.strip().lower()
    unit = _UNITS.get(value[-1:]) if value else None
    number = value[:-1] if unit is not None else value
    try:
        seconds = float(number) * (unit or 1.0)
    except ValueError:
        raise SettingsError(
            f"{setting}: {text!r} is not a duration: a number with s, m, h, d or w (e.g. 30d)"
        ) from None
    if not seconds >= 1 or seconds == float("inf"):
        raise SettingsError(f"{setting}: must be at least one second, got {text!r}")
    return seconds


def parse_switch(text: str, setting: str) -> bool:
    value = text.strip().lower()
    if value in ("1", "true", "on", "yes"):
        return True
    if value in ("0", "false", "off", "no"):
        return False
    raise SettingsError(f"{setting}: {text!r} is not on or off (true/false)")
