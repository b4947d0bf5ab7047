"""Building this repository's Go code offline: GOPATH mode over Debian's Go packages (golang-go,
golang-google-grpc-dev and friends), with no module proxy. Used by the Go client's tests and by
bench/replicas.py's load client."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parent.parent
GO_IMPORT_ROOT = "github.com/runctl/runctl"  # the repository root, as a GOPATH import path
DEBIAN_GOPATH = "/usr/share/gocode"  # golang-google-grpc-dev and friends install their source here


def gopath_with_repository(gopath: Path) -> Path:
    """A GOPATH folder in which the repository is importable as GO_IMPORT_ROOT (a symlink)."""
    link = gopath / "src" / GO_IMPORT_ROOT
    link.parent.mkdir(parents=True, exist_ok=True)
    if not link.exists():
        link.symlink_to(REPOSITORY, target_is_directory=True)
    return gopath


def go_env(gopath: Path, **extra: str) -> dict[str, str]:
    """The environment for `go` commands over `gopath` and Debian's packages."""
    paths = [str(gopath), DEBIAN_GOPATH, *filter(None, [os.environ.get("GOPATH")])]
    return {
        **os.environ,
        "GO111MODULE": "off",
        "GOPATH": os.pathsep.join(paths),
        "GOFLAGS": "",
        # Shared across runs and xdist workers (Go's cache is safe for concurrent use): only the
        # first run on a machine compiles grpc-go.
        "GOCACHE": os.environ.get("GOCACHE") or str(Path(tempfile.gettempdir()) / "runctl-go-build-cache"),
        **extra,
    }
