"""Schemathesis over the shim's own OpenAPI document, against the real server: no 5xx, and no answer
that contradicts the document (status codes, content types, response bodies)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.support import running_server, settings_for

CHECKS = ",".join(
    (
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_schema_conformance",
    )
)


def test_the_shim_holds_to_its_openapi_document(tmp_path: Path) -> None:
    flows = tmp_path / "flows"
    flows.mkdir()
    url = f"sqlite:///{tmp_path / 'runctl.db'}"
    with running_server(settings_for(url, workflows_dirs=(flows,))) as handle:
        schemathesis = Path(sys.executable).parent / "schemathesis"
        result = subprocess.run(
            [
                str(schemathesis),
                "run",
                f"{handle.http_url}/openapi.json",
                "--checks",
                CHECKS,
                "--max-examples",
                "15",
                "--seed",
                "20261123",
                "--request-timeout",
                "10",
            ],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=600,
            env={**os.environ, "NO_COLOR": "1"},
            check=False,
        )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
