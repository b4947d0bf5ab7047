"""The server skeleton over real gRPC and HTTP: reflection, health, unimplemented RPCs, shutdown."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.descriptor import MethodDescriptor
from google.protobuf.message import Message
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase
from grpc_status import rpc_status

from runctl.v1.execution_pb2 import DESCRIPTOR as EXECUTION_FILE
from runctl_server.api.services import SERVICES
from runctl_server.app import StartupError
from tests.support import LOOPBACK, ServerThread, running_server, settings_for, spawn_server

ROOT = Path(__file__).resolve().parent.parent
BUF = ROOT / "node_modules" / ".bin" / "buf"

RUNCTL_SERVICES = {
    "runctl.v1.WorkflowService",
    "runctl.v1.ExecutionService",
    "runctl.v1.PausePointService",
    "runctl.v1.BatchService",
    "runctl.v1.EventService",
    "runctl.v1.WorkerService",
}


def test_reflection_lists_every_service(channel: grpc.Channel) -> None:
    database = ProtoReflectionDescriptorDatabase(channel)
    services = set(database.get_services())
    assert services >= RUNCTL_SERVICES | {
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
        "grpc.reflection.v1alpha.ServerReflection",
    }
    # A reflection client can resolve full method signatures without local protos.
    pool = descriptor_pool.DescriptorPool(database)
    service = pool.FindServiceByName("runctl.v1.ExecutionService")
    start = service.methods_by_name["StartExecution"]
    assert start.input_type.full_name == "runctl.v1.StartExecutionRequest"
    assert service.methods_by_name["WatchExecution"].server_streaming


def test_health_is_serving_overall_and_per_service(channel: grpc.Channel) -> None:
    stub = health_pb2_grpc.HealthStub(channel)
    for service in ["", *sorted(RUNCTL_SERVICES)]:
        reply = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING, service
    with pytest.raises(grpc.RpcError) as error:
        stub.Check(health_pb2.HealthCheckRequest(service="no.such.Service"), timeout=5)
    assert error.value.code() == grpc.StatusCode.NOT_FOUND


def _empty_request(method: MethodDescriptor) -> Message:
    return message_factory.GetMessageClass(method.input_type)()


def test_every_rpc_answers_promptly_and_unimplemented_ones_say_so(channel: grpc.Channel) -> None:
    """No RPC hangs: each answers within the deadline; UNIMPLEMENTED names the method."""
    for spec in SERVICES:
        service = spec.messages.DESCRIPTOR.services_by_name[spec.name]
        for method in service.methods:
            path = f"/{service.full_name}/{method.name}"
            request = _empty_request(method)
            serialize = type(request).SerializeToString
            try:
                if method.server_streaming:
                    stream: Any = channel.unary_stream(path, request_serializer=serialize)(request, timeout=3)
                    next(iter(stream), None)
                    stream.cancel()
                else:
                    channel.unary_unary(path, request_serializer=serialize)(request, timeout=3)
            except grpc.RpcError as error:
                assert error.code() != grpc.StatusCode.DEADLINE_EXCEEDED, path
                assert error.code() != grpc.StatusCode.INTERNAL, path
                if error.code() == grpc.StatusCode.UNIMPLEMENTED:
                    assert f"{service.full_name}/{method.name} is not implemented" in (error.details() or "")
                    status = rpc_status.from_call(error)
                    assert status is not None and status.details, "UNIMPLEMENTED carries ErrorInfo"


def test_http_health_and_json_errors(server: ServerThread) -> None:
    with httpx.Client(base_url=server.http_url, timeout=5) as client:
        reply = client.get("/healthz")
        assert reply.status_code == 200
        assert reply.json()["status"] == "SERVING"
        missing = client.get("/no/such/route")
        assert missing.status_code == 404
        assert missing.json() == {"error": "Not Found", "details": []}
        wrong_method = client.delete("/healthz")
        assert wrong_method.status_code == 405
        assert "error" in wrong_method.json()


def test_grpcurl_lists_services_by_reflection(server: ServerThread) -> None:
    grpcurl = shutil.which("grpcurl", path=str(Path(sys.executable).parent))
    assert grpcurl, "grpcurl comes with the dev dependencies"
    listing = subprocess.run(
        [grpcurl, "-plaintext", server.grpc_target, "list"], capture_output=True, text=True, timeout=60
    )
    assert listing.returncode == 0, listing.stderr
    assert set(listing.stdout.split()) >= RUNCTL_SERVICES | {"grpc.health.v1.Health"}
    health = subprocess.run(
        [grpcurl, "-plaintext", server.grpc_target, "grpc.health.v1.Health/Check"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert '"status": "SERVING"' in health.stdout


def buf_curl(server: ServerThread, *args: str) -> subprocess.CompletedProcess[str]:
    """`buf curl` over plaintext HTTP/2, reading the schema by grpc.reflection.v1 only."""
    command = [str(BUF), "curl", "--protocol", "grpc", "--http2-prior-knowledge"]
    command += ["--reflect-protocol", "grpc-v1", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)


def test_buf_curl_reads_the_schema_by_reflection_v1(server: ServerThread) -> None:
    listing = buf_curl(server, "--list-methods", f"http://{server.grpc_target}")
    assert listing.returncode == 0, listing.stderr
    methods = set(listing.stdout.split())
    execution_methods = {
        f"runctl.v1.ExecutionService/{method.name}"
        for method in EXECUTION_FILE.services_by_name["ExecutionService"].methods
    }
    assert execution_methods <= methods
    assert "grpc.reflection.v1.ServerReflection/ServerReflectionInfo" in methods
    # One service's method, called with its request encoded from the reflected schema alone.
    called = buf_curl(
        server,
        "-d",
        '{"pageSize": 1}',
        f"http://{server.grpc_target}/runctl.v1.WorkflowService/ListWorkflows",
    )
    assert called.returncode == 0, called.stderr
    assert called.stdout.strip().startswith("{")


def test_reflection_v1_describes_its_own_service(channel: grpc.Channel) -> None:
    info = channel.stream_stream(
        "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
        request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
        response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
    )
    symbol = "grpc.reflection.v1.ServerReflection"
    request = reflection_pb2.ServerReflectionRequest(file_containing_symbol=symbol)
    reply = next(iter(info(iter([request]), timeout=10)))
    assert not reply.HasField("error_response"), reply.error_response
    files = reply.file_descriptor_response.file_descriptor_proto
    file = descriptor_pb2.FileDescriptorProto.FromString(files[0])
    assert (file.name, file.package) == ("grpc/reflection/v1/reflection.proto", "grpc.reflection.v1")
    method = file.service[0].method[0]
    assert method.input_type == ".grpc.reflection.v1.ServerReflectionRequest"


def test_taken_port_is_a_clear_startup_error(sqlite_url: str) -> None:
    with socket.socket() as taken:
        taken.bind((LOOPBACK, 0))
        taken.listen()
        port = taken.getsockname()[1]
        settings = settings_for(sqlite_url)
        settings = type(settings)(
            **{**settings.__dict__, "http_addr": type(settings.http_addr)(LOOPBACK, port)}
        )
        with (
            pytest.raises(StartupError, match=f"cannot bind HTTP to 127.0.0.1:{port}"),
            running_server(settings),
        ):
            pass


def test_sigterm_flips_health_then_exits_cleanly(tmp_path: Path) -> None:
    proc = spawn_server(f"sqlite:///{tmp_path / 'runctl.db'}", tmp_path)
    try:
        with grpc.insecure_channel(proc.grpc_target) as chan:
            watch = health_pb2_grpc.HealthStub(chan).Watch(health_pb2.HealthCheckRequest(), timeout=20)
            assert next(watch).status == health_pb2.HealthCheckResponse.SERVING
            proc.process.send_signal(signal.SIGTERM)
            assert next(watch).status == health_pb2.HealthCheckResponse.NOT_SERVING
        assert proc.process.wait(timeout=20) == 0
        log = proc.log()
        assert "runctl serving gRPC on" in log
        assert "runctl stopped" in log
    finally:
        if proc.process.poll() is None:
            proc.process.kill()


def test_cli_reports_bad_settings_without_a_traceback(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "runctl.cli", "serve", "--grpc-addr", "nonsense"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert result.returncode == 2
    assert "--grpc-addr: expected HOST:PORT" in result.stderr
    assert "Traceback" not in result.stderr
