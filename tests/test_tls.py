"""TLS: with a certificate and key configured, gRPC and HTTP speak TLS only, verified by that certificate;
the settings refuse half a configuration and the server refuses files it cannot use."""

from __future__ import annotations

import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from typer.testing import CliRunner

from runctl.cli import app as cli_app
from runctl.client import Client
from runctl.v1 import execution_pb2, execution_pb2_grpc
from runctl_server.app import RunctlServer, StartupError
from runctl_server.settings import Settings, SettingsError
from tests.support import ServerThread, running_server, settings_for


def make_certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for localhost and 127.0.0.1, and its key (PEM files)."""
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost,IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_certificate(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, certificate: tuple[Path, Path]
) -> Iterator[ServerThread]:
    db = tmp_path_factory.mktemp("db") / "runctl.db"
    cert, key = certificate
    settings = settings_for(f"sqlite:///{db}", tls_cert_file=cert, tls_key_file=key)
    with running_server(settings) as handle:
        yield handle


def list_request() -> execution_pb2.ListExecutionsRequest:
    return execution_pb2.ListExecutionsRequest()


def test_grpc_over_tls_verified_by_the_certificate(
    server: ServerThread, certificate: tuple[Path, Path]
) -> None:
    credentials = grpc.ssl_channel_credentials(root_certificates=certificate[0].read_bytes())
    with grpc.secure_channel(server.grpc_target, credentials) as channel:
        health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
        assert health.status == health_pb2.HealthCheckResponse.SERVING
        stub = execution_pb2_grpc.ExecutionServiceStub(channel)
        assert stub.ListExecutions(list_request(), timeout=10).total_size == 0


def test_grpc_in_plaintext_is_refused(server: ServerThread) -> None:
    with grpc.insecure_channel(server.grpc_target) as channel:
        stub = execution_pb2_grpc.ExecutionServiceStub(channel)
        with pytest.raises(grpc.RpcError) as raised:
            stub.ListExecutions(list_request(), timeout=5)
    assert raised.value.code() == grpc.StatusCode.UNAVAILABLE


def test_grpc_with_other_roots_is_refused(server: ServerThread, tmp_path: Path) -> None:
    stranger, _ = make_certificate(tmp_path)
    credentials = grpc.ssl_channel_credentials(root_certificates=stranger.read_bytes())
    with grpc.secure_channel(server.grpc_target, credentials) as channel:
        stub = execution_pb2_grpc.ExecutionServiceStub(channel)
        with pytest.raises(grpc.RpcError) as raised:
            stub.ListExecutions(list_request(), timeout=5)
    assert raised.value.code() == grpc.StatusCode.UNAVAILABLE


def test_http_over_tls_verified_by_the_certificate(
    server: ServerThread, certificate: tuple[Path, Path]
) -> None:
    assert server.http_url.startswith("https://")
    verify = ssl.create_default_context(cafile=str(certificate[0]))
    response = httpx.get(f"{server.http_url}/healthz", verify=verify, timeout=10)
    assert response.status_code == 200
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{server.http_url}/healthz", timeout=10)  # the system roots do not know it
    plain = server.http_url.replace("https://", "http://")
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"{plain}/healthz", timeout=10)


def test_the_python_client_connects_with_the_ca(server: ServerThread, certificate: tuple[Path, Path]) -> None:
    with Client(server.grpc_target, tls_ca=certificate[0]) as client:
        assert client.executions.ListExecutions(list_request(), timeout=10).total_size == 0


def test_links_use_https(server: ServerThread) -> None:
    assert server.server.settings.base_url.startswith("https://")


# -- settings and start-up ------------------------------------------------------------------------


def test_tls_settings_from_the_environment(certificate: tuple[Path, Path]) -> None:
    cert, key = certificate
    settings = Settings.from_env({"RUNCTL_TLS_CERT": str(cert), "RUNCTL_TLS_KEY": str(key)})
    assert (settings.tls_cert_file, settings.tls_key_file) == (cert, key)
    assert settings.tls and settings.base_url == "https://127.0.0.1:3003"
    assert not Settings.from_env({}).tls and Settings.from_env({}).base_url == "http://127.0.0.1:3003"


@pytest.mark.parametrize("only", ["RUNCTL_TLS_CERT", "RUNCTL_TLS_KEY"])
def test_half_a_tls_configuration_is_a_settings_error(only: str) -> None:
    with pytest.raises(SettingsError, match="TLS needs both a certificate"):
        Settings.from_env({only: "/etc/runctl/some.pem"})


def test_serve_with_a_certificate_but_no_key_exits_2(certificate: tuple[Path, Path]) -> None:
    result = CliRunner().invoke(cli_app, ["serve", "--tls-cert", str(certificate[0])], env={})
    assert result.exit_code == 2
    assert "TLS needs both a certificate" in result.output


async def test_unreadable_files_stop_the_start(tmp_path: Path, certificate: tuple[Path, Path]) -> None:
    cert, _ = certificate
    db = f"sqlite:///{tmp_path / 'runctl.db'}"
    missing = RunctlServer(settings_for(db, tls_cert_file=cert, tls_key_file=tmp_path / "nope.pem"))
    with pytest.raises(StartupError, match=r"cannot read the TLS key .*nope\.pem"):
        await missing.start()
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a key")
    broken = RunctlServer(settings_for(db, tls_cert_file=cert, tls_key_file=garbage))
    with pytest.raises(StartupError, match="not a usable PEM pair"):
        await broken.start()
    assert not (tmp_path / "runctl.db").exists()  # refused before the database was opened
