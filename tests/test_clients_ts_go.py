"""The TypeScript and Go clients, generated from proto/, against a real server on free ports.

Each language runs its own test program once per module (clients/typescript/test/live.test.ts under
node's test runner, clients/go/livetest under `go test`) with RUNCTL_GRPC_TARGET pointing at the
server; the tests here read their verdicts: a unary call, an error code, a resumed pause point, and
two server streams (ExecutionService.WatchExecution, WorkerService.PollTasks). The examples run too.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tarfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.golang import DEBIAN_GOPATH, GO_IMPORT_ROOT, go_env, gopath_with_repository
from tests.support import ServerThread

ROOT = Path(__file__).resolve().parent.parent
TS_DIR = ROOT / "clients" / "typescript"
TS_BIN = TS_DIR / "node_modules" / ".bin"
GO_PACKAGE = f"{GO_IMPORT_ROOT}/clients/go"


@dataclass(frozen=True)
class Run:
    """A finished client program: its command line, exit code and combined output."""

    command: str
    returncode: int
    output: str

    def check(self) -> str:
        assert self.returncode == 0, f"{self.command} exited {self.returncode}:\n{self.output}"
        return self.output


def run(command: list[str], cwd: Path, env: Mapping[str, str], timeout: float = 100) -> Run:
    done = subprocess.run(
        command, cwd=cwd, env=dict(env), capture_output=True, text=True, timeout=timeout, check=False
    )
    return Run(" ".join(command), done.returncode, done.stdout + done.stderr)


# --- TypeScript -------------------------------------------------------------------------------


@dataclass(frozen=True)
class TypeScriptRuns:
    typecheck: Run
    live: Run
    example: Run


@pytest.fixture(scope="module")
def typescript(server: ServerThread) -> TypeScriptRuns:
    if not (TS_BIN / "tsx").exists():
        pytest.fail("clients/typescript/node_modules is missing: run `make install`")
    env = {**os.environ, "RUNCTL_GRPC_TARGET": server.grpc_target}
    return TypeScriptRuns(
        typecheck=run([str(TS_BIN / "tsc"), "--noEmit", "-p", "."], TS_DIR, env),
        live=run(["node", "--import", "tsx", "--test", "test/live.test.ts"], TS_DIR, env),
        example=run([str(TS_BIN / "tsx"), "examples/start-and-watch.ts"], TS_DIR, env),
    )


def test_typescript_client_typechecks(typescript: TypeScriptRuns) -> None:
    typescript.typecheck.check()


def test_typescript_live_suite_passes(typescript: TypeScriptRuns) -> None:
    output = typescript.live.check()
    assert "# fail 0" in output


@pytest.mark.parametrize("case", ["unary", "not_found", "resume", "poll_stream"])
def test_typescript_case(typescript: TypeScriptRuns, case: str) -> None:
    assert f"ok {case}" in typescript.live.output, typescript.live.output


def test_typescript_watch_stream(typescript: TypeScriptRuns) -> None:
    if "skip watch" in typescript.live.output:
        pytest.skip("WatchExecution answered UNIMPLEMENTED (PollTasks covers the stream case)")
    assert "ok watch" in typescript.live.output, typescript.live.output


def test_typescript_example_starts_and_watches(typescript: TypeScriptRuns) -> None:
    output = typescript.example.check()
    assert "snapshot " in output
    assert "EXECUTION_COMPLETED" in output
    assert 'finished COMPLETED, output {"greeting":"Hello, Ada!"}' in output


# --- The TypeScript client as a package -----------------------------------------------------

CONSUMER_SCRIPTS = ROOT / "tests" / "node"
CONSUMER_TSCONFIG = {
    "compilerOptions": {
        "module": "NodeNext",
        "moduleResolution": "NodeNext",
        "target": "ES2022",
        "strict": True,
        "noEmit": True,
        "skipLibCheck": True,
        "types": [],
    },
    "files": ["packaged_client_types.ts"],
}


@dataclass(frozen=True)
class PackedClient:
    manifest: dict[str, Any]
    files: list[str]
    install: Run
    typecheck: Run
    live: Run

    def case(self, name: str) -> dict[str, Any]:
        for line in self.live.check().splitlines():
            if line.startswith("{"):
                fields: dict[str, Any] = json.loads(line)
                if fields["case"] == name:
                    return fields
        raise AssertionError(f"no {name!r} case in:\n{self.live.output}")


@pytest.fixture(scope="module")
def packed(server: ServerThread, tmp_path_factory: pytest.TempPathFactory) -> PackedClient:
    """`npm pack` of clients/typescript, installed from the tarball into a plain Node ESM project
    (its dependencies from npm's cache or registry), which then calls the live server."""
    if not (TS_BIN / "tsc").exists():
        pytest.fail("clients/typescript/node_modules is missing: run `make install`")
    destination = tmp_path_factory.mktemp("npm-pack")
    env = {**os.environ, "RUNCTL_GRPC_TARGET": server.grpc_target}
    quiet = ["--no-audit", "--no-fund", "--loglevel=error"]
    packing = subprocess.run(
        ["npm", "pack", "--json", "--pack-destination", str(destination), *quiet],
        cwd=TS_DIR,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert packing.returncode == 0, f"npm pack failed:\n{packing.stdout}{packing.stderr}"
    report = json.loads(packing.stdout)[0]  # prepack's build logs go to stderr
    tarball = destination / report["filename"]
    with tarfile.open(tarball) as archive:
        manifest = json.load(archive.extractfile("package/package.json"))  # type: ignore[arg-type]
    project = tmp_path_factory.mktemp("consumer")
    (project / "package.json").write_text(json.dumps({"name": "consumer", "private": True, "type": "module"}))
    install = run(["npm", "install", str(tarball), "--prefer-offline", *quiet], project, env, timeout=300)
    for script in ("packaged_client.mjs", "packaged_client_types.ts"):
        shutil.copy(CONSUMER_SCRIPTS / script, project / script)
    (project / "tsconfig.json").write_text(json.dumps(CONSUMER_TSCONFIG))
    installed = install.returncode == 0
    return PackedClient(
        manifest=manifest,
        files=[entry["path"] for entry in report["files"]],
        install=install,
        typecheck=run([str(TS_BIN / "tsc"), "-p", "."], project, env) if installed else install,
        live=run(["node", "packaged_client.mjs"], project, env) if installed else install,
    )


def test_typescript_package_ships_javascript_and_declarations(packed: PackedClient) -> None:
    assert "private" not in packed.manifest
    assert packed.manifest["exports"]["."] == {"types": "./dist/index.d.ts", "default": "./dist/index.js"}
    for path in ("dist/index.js", "dist/index.d.ts", "dist/errors.js", "dist/errors.d.ts", "LICENSE"):
        assert path in packed.files, packed.files
    sources = [path for path in packed.files if path.endswith(".ts") and not path.endswith(".d.ts")]
    assert not sources, sources


def test_packed_typescript_client_installs_and_typechecks_in_a_plain_project(packed: PackedClient) -> None:
    packed.install.check()
    packed.typecheck.check()


def test_packed_typescript_client_runs_a_workflow(packed: PackedClient) -> None:
    assert packed.case("run") == {"case": "run", "status": "COMPLETED", "output": {"greeting": "Hello, Ada!"}}


@pytest.mark.parametrize(
    ("case", "code", "reason", "metadata"),
    [
        ("not_found", "NotFound", "EXECUTION_NOT_FOUND", {}),
        ("ended", "FailedPrecondition", "EXECUTION_ENDED", {"status": "completed"}),
        ("stream", "NotFound", "EXECUTION_NOT_FOUND", {}),
    ],
)
def test_packed_typescript_client_decodes_error_info(
    packed: PackedClient, case: str, code: str, reason: str, metadata: dict[str, str]
) -> None:
    failure = packed.case(case)
    assert failure["runctlError"] and failure["connectError"], failure
    assert (failure["code"], failure["reason"], failure["domain"]) == (code, reason, "runctl")
    assert failure["metadata"] == metadata
    assert failure["fieldViolations"] == []


def test_packed_typescript_client_decodes_field_violations(packed: PackedClient) -> None:
    failure = packed.case("bad_input")
    assert (failure["code"], failure["reason"]) == ("InvalidArgument", "FIELD_INVALID")
    assert [violation["field"] for violation in failure["fieldViolations"]] == ["page_size"]
    assert failure["fieldViolations"][0]["description"]


# --- Go ---------------------------------------------------------------------------------------


# bench/loadgen (bench/replicas.py's load client) is vetted with the client it uses.
GO_PACKAGES = [
    *(f"{GO_PACKAGE}/{path}" for path in ("runctl/v1", "livetest", "examples/startwatch")),
    f"{GO_IMPORT_ROOT}/bench/loadgen",
]


@dataclass(frozen=True)
class GoRuns:
    vet: Run
    dependencies: Run
    live: Run
    example: Run


@pytest.fixture(scope="module")
def go(server: ServerThread, tmp_path_factory: pytest.TempPathFactory) -> GoRuns:
    if shutil.which("go") is None:
        # CI installs Go: there a missing toolchain is a failure, never a silent skip.
        assert os.environ.get("CI") != "true", "go is missing in CI: .ci/run should have installed it"
        pytest.skip("go is not installed (apt-get install golang-go golang-google-grpc-dev, as .ci/run does)")
    gopath = gopath_with_repository(tmp_path_factory.mktemp("gopath"))
    env = go_env(gopath, RUNCTL_GRPC_TARGET=server.grpc_target)
    live = run(["go", "test", "-count=1", "-v", f"{GO_PACKAGE}/livetest"], gopath, env)
    if "cannot find package" in live.output:
        pytest.fail(
            "the Go client's dependencies are missing: apt-get install golang-google-grpc-dev "
            f"golang-github-golang-protobuf-1-5-dev\n{live.output}"
        )
    binary = gopath / "startwatch"
    build = run(["go", "build", "-o", str(binary), f"{GO_PACKAGE}/examples/startwatch"], gopath, env)
    example = run([str(binary)], gopath, env) if build.returncode == 0 else build
    vet = run(["go", "vet", *GO_PACKAGES], gopath, env)
    listing = ["go", "list", "-deps", "-test", "-f", "{{if not .Standard}}{{.Dir}}{{end}}", *GO_PACKAGES]
    dependencies = run(listing, gopath, env)
    return GoRuns(vet=vet, live=live, example=example, dependencies=dependencies)


def test_go_vet_is_clean(go: GoRuns) -> None:
    go.vet.check()


def go_mod_requirements() -> dict[str, str]:
    """clients/go/go.mod's requirements: module path -> version."""
    text = (ROOT / "clients" / "go" / "go.mod").read_text()
    found = re.findall(r"^\s*(?:require\s+)?([a-z0-9.-]+\.[a-z]+/\S+)\s+(v\S+)", text, re.MULTILINE)
    return dict(found)


def debian_module_version(package: str) -> str:
    """A Debian package's upstream version as Go writes it: 1:0.7.0+dfsg-1 -> v0.7.0, and a git
    snapshot 0.0~git20200413.b5235f6-3 -> the date and commit a pseudo-version carries."""
    version = subprocess.run(
        ["dpkg-query", "-W", "-f=${Version}", package], capture_output=True, text=True, check=True
    ).stdout
    upstream = version.split(":", 1)[-1].rsplit("-", 1)[0].split("+", 1)[0]
    snapshot = re.fullmatch(r"0\.0~git(\d{8})\.([0-9a-f]+)", upstream)
    return f"{snapshot[1]} {snapshot[2]}" if snapshot else f"v{upstream}"


def test_go_mod_names_the_modules_the_build_uses_at_their_debian_versions(go: GoRuns) -> None:
    """Every module the offline build compiles is required in go.mod, at the version of the Debian
    package that provided it, and go.mod requires nothing else."""
    if shutil.which("dpkg-query") is None:
        pytest.skip("not a Debian system: the offline build's package versions are unknown")
    source_root = Path(DEBIAN_GOPATH) / "src"
    modules: dict[str, str] = {}
    for line in go.dependencies.check().split():
        directory = Path(line).resolve()
        if not directory.is_relative_to(source_root):
            continue  # the client's own packages
        relative = directory.relative_to(source_root).parts
        # Module roots: host/owner/name for github.com, host/name otherwise (golang.org/x/net,
        # google.golang.org/grpc).
        module = "/".join(relative[: 3 if relative[0] in ("github.com", "golang.org") else 2])
        if module not in modules:
            owner = subprocess.run(
                ["dpkg", "-S", str(source_root / module)], capture_output=True, text=True, check=True
            )
            modules[module] = owner.stdout.split(":", 1)[0]
    requirements = go_mod_requirements()
    assert set(requirements) == set(modules), (requirements, modules)
    for module, package in modules.items():
        wanted = debian_module_version(package)
        if " " in wanted:  # a git snapshot: the pseudo-version holds its date and commit
            date, commit = wanted.split()
            assert date in requirements[module] and commit in requirements[module], (module, wanted)
        else:
            assert requirements[module] == wanted, (module, package)


def test_go_live_suite_passes(go: GoRuns) -> None:
    output = go.live.check()
    assert "--- FAIL" not in output


@pytest.mark.parametrize(
    "name", ["TestUnaryStartAndGet", "TestGetMissingIsNotFound", "TestResumePausePoint", "TestPollTasks"]
)
def test_go_case(go: GoRuns, name: str) -> None:
    assert f"--- PASS: {name}" in go.live.output, go.live.output


def test_go_watch_stream(go: GoRuns) -> None:
    if "--- SKIP: TestWatchExecution" in go.live.output:
        pytest.skip("WatchExecution answered UNIMPLEMENTED (PollTasks covers the stream case)")
    assert "--- PASS: TestWatchExecution" in go.live.output, go.live.output


def test_go_example_starts_and_watches(go: GoRuns) -> None:
    output = go.example.check()
    assert "snapshot EXECUTION_STATUS_" in output
    assert "EVENT_TYPE_EXECUTION_COMPLETED" in output
    assert 'finished EXECUTION_STATUS_COMPLETED, output {"greeting":"Hello, Ada!"}' in output
