"""The client distribution on its own: its wheel, installed alone into a fresh virtual environment,
brings nothing of the server and drives a live server (started from the development environment).

The install is offline: the wheelhouse holds the client's wheel, built here, and the wheels of exactly
the dependencies its metadata declares, at the versions installed in this environment (fetched once with
`pip download`, which needs only the package registry). A dependency the client uses but does not
declare, or one it declares but should not bring, shows up here.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import venv
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from email.parser import Parser
from importlib.metadata import distribution
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.support import ServerProcess, spawn_server

ROOT = Path(__file__).resolve().parents[1]
CLIENT_SOURCE = ROOT / "clients" / "python"
HELLO = ROOT / "examples" / "hello.json"
BRANCHING = ROOT / "examples" / "branching.yaml"
# Installing the client with its YAML extra, as the README tells users to.
CLIENT_EXTRAS = ("yaml",)

# Building, downloading and installing take a while on a busy machine.
pytestmark = pytest.mark.timeout(600)


def wheel_requirements(wheel: Path) -> list[str]:
    """The Requires-Dist lines of a wheel's own metadata."""
    with zipfile.ZipFile(wheel) as archive:
        (metadata,) = [name for name in archive.namelist() if name.endswith(".dist-info/METADATA")]
        return Parser().parsestr(archive.read(metadata).decode()).get_all("Requires-Dist") or []


def dependency_pins(requirements: list[str], extras: tuple[str, ...] = ()) -> dict[str, str]:
    """Every distribution these requirements (with `extras` asked for) need, transitively, pinned at
    the version installed here: {canonical name: version}."""
    pins: dict[str, str] = {}
    pending: list[tuple[list[str], frozenset[str]]] = [(requirements, frozenset(extras))]
    seen: set[tuple[str, frozenset[str]]] = set()
    while pending:
        lines, wanted = pending.pop()
        for line in lines:
            requirement = Requirement(line)
            environments = [{"extra": extra} for extra in wanted] or [{"extra": ""}]
            if requirement.marker and not any(requirement.marker.evaluate(env) for env in environments):
                continue
            dependency = canonicalize_name(requirement.name)
            pins[dependency] = distribution(dependency).version
            if (dependency, frozenset(requirement.extras)) not in seen:
                seen.add((dependency, frozenset(requirement.extras)))
                pending.append((distribution(dependency).requires or [], frozenset(requirement.extras)))
    return pins


def run(command: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False, **kwargs)  # type: ignore[call-overload]
    assert isinstance(done, subprocess.CompletedProcess)
    return done


def checked(command: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    done = run(command, **kwargs)
    assert done.returncode == 0, f"{command} failed:\n{done.stdout}\n{done.stderr}"
    return done


@dataclass(frozen=True)
class ClientOnly:
    """A fresh virtual environment holding the client distribution and its dependencies only."""

    root: Path
    env: dict[str, str]

    @property
    def python(self) -> str:
        return str(self.root / "bin" / "python")

    @property
    def runctl(self) -> str:
        return str(self.root / "bin" / "runctl")

    def command(self, *args: str) -> subprocess.CompletedProcess[str]:
        return run([self.runctl, *args], env=self.env, cwd=self.root)

    def python_code(self, code: str) -> subprocess.CompletedProcess[str]:
        return run([self.python, "-c", code], env=self.env, cwd=self.root)


@pytest.fixture(scope="module")
def client_only(tmp_path_factory: pytest.TempPathFactory) -> ClientOnly:
    work = tmp_path_factory.mktemp("packaging")
    # Built from a copy, so the build leaves nothing in the checkout (CI fails on untracked files there).
    source = work / "source"
    shutil.copytree(
        CLIENT_SOURCE, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__")
    )
    wheelhouse = work / "wheelhouse"
    # The build backend (setuptools) of this environment, not one fetched into an isolated one.
    checked(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(wheelhouse),
            str(source),
        ]
    )
    (client_wheel,) = wheelhouse.glob("runctl-*.whl")

    pins = dependency_pins(wheel_requirements(client_wheel), CLIENT_EXTRAS)
    assert "sqlalchemy" not in pins and "runctl-server" not in pins, pins
    checked(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--only-binary=:all:",
            "--dest",
            str(wheelhouse),
            *(f"{name}=={version}" for name, version in sorted(pins.items())),
        ]
    )

    root = work / "client-only"
    venv.create(root, with_pip=False)
    # Nothing of this checkout or of the development environment may leak in.
    env = {
        "PATH": f"{root / 'bin'}:/usr/bin:/bin",
        "HOME": str(work),
        "NO_COLOR": "1",
        "COLUMNS": "200",
        "PIP_CONFIG_FILE": os.devnull,
    }
    checked(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(root / "bin" / "python"),
            "install",
            "--no-index",
            "--find-links",
            str(wheelhouse),
            f"{client_wheel}[{','.join(CLIENT_EXTRAS)}]",
        ],
        env={**os.environ, "PIP_CONFIG_FILE": os.devnull},
    )
    return ClientOnly(root, env)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """`runctl serve` of the development environment (client and server installed)."""
    workdir = tmp_path_factory.mktemp("server")
    handle = spawn_server(f"sqlite:///{workdir / 'runctl.db'}", workdir)
    try:
        yield handle
    finally:
        handle.process.terminate()
        handle.process.wait(30)


def test_the_client_alone_has_nothing_of_the_server(client_only: ClientOnly) -> None:
    for module in ("runctl_server", "sqlalchemy", "alembic", "psycopg", "starlette", "uvicorn"):
        missing = client_only.python_code(f"import {module}")
        assert missing.returncode != 0, f"{module} is importable beside the client alone"
        assert f"No module named '{module}'" in missing.stderr

    version = client_only.command("--version")
    assert version.returncode == 0, version.stderr
    assert version.stdout.strip() == f"runctl {distribution('runctl').version}"

    # The server's commands answer with how to install it, whatever followed them.
    for args in (["serve"], ["keys", "ls"], ["db", "upgrade"], ["prune", "--older-than", "1d"]):
        hint = client_only.command(*args)
        assert hint.returncode == 1, args
        assert "pip install runctl-server" in hint.stderr and "Traceback" not in hint.stderr, hint.stderr
    offline = client_only.command("workflows", "validate", str(HELLO))
    assert offline.returncode == 1
    assert "runctl server is not installed here (pip install runctl-server)" in offline.stderr


def test_the_client_alone_drives_a_live_server(client_only: ClientOnly, server: ServerProcess) -> None:
    ran = client_only.command(
        "--addr", server.grpc_target, "run", str(HELLO), "-i", '{"name": "wheel"}', "--watch"
    )
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "Hello, wheel!" in ran.stdout

    listed = client_only.command("--addr", server.grpc_target, "ls", "--json")
    assert listed.returncode == 0, listed.stderr
    (execution,) = json.loads(listed.stdout)["executions"]
    assert (execution["workflowName"], execution["status"]) == ("Hello", "EXECUTION_STATUS_COMPLETED")

    # The library as a program would use it, on a YAML file (the [yaml] extra).
    program = (
        "from runctl.client import Client\nfrom runctl.messages import to_dict\n"
        f"with Client({server.grpc_target!r}) as client:\n"
        f"    run = client.start({str(BRANCHING)!r}, input={{'total': 250, 'region': 'eu'}})\n"
        "    print(to_dict(client.wait(run.id, timeout=60).output)['route'])\n"
    )
    library = client_only.python_code(program)
    assert library.returncode == 0, library.stderr
    assert library.stdout.strip() == "ship from Rotterdam"


def test_postgresql_without_the_postgres_extra_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from runctl_server.settings import SettingsError
    from runctl_server.store.database import normalize_db_url

    monkeypatch.setitem(sys.modules, "psycopg", None)  # as where runctl-server[postgres] is not installed
    with pytest.raises(SettingsError, match=re.escape("pip install 'runctl-server[postgres]'")):
        normalize_db_url("postgresql://postgres@127.0.0.1/test")
    assert normalize_db_url("sqlite:///x.db").drivername == "sqlite"  # SQLite needs nothing more
