"""Generate the synchronous client, clients/python/runctl/client.py, from the asyncio one, aio.py.

The token rewriting is the `unasync` package's (async/await dropped, AsyncIterator -> Iterator,
__aenter__ -> __enter__, ...), plus the names below; docstrings are plain text, so the few phrases
that speak of asyncio are rewritten by SUBS, as encode/httpcore's scripts/unasync.py does. The
result is put through ruff (import order, then format), so it is what `make lint` expects.

Run by scripts/generate.sh (`make generate`); CI regenerates and fails on any diff.
Usage: python scripts/unasync_client.py [--check]
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from pathlib import Path

import unasync

PACKAGE = Path(__file__).resolve().parent.parent / "clients" / "python" / "runctl"
SOURCE = PACKAGE / "aio.py"
TARGET = PACKAGE / "client.py"

# Names unasync does not know: the asyncio module's sleep becomes time's, the stream helpers and
# the channel their sync twins, and the class is `Client` (not unasync's default `SyncClient`).
REPLACEMENTS = {
    "AsyncClient": "Client",
    "asyncio": "time",
    "aio_channel": "sync_channel",
    "follow_async": "follow",
}

# Docstring text, which unasync leaves alone.
SUBS = [
    (
        re.compile(r'^"""The runctl client for asyncio, over grpc\.aio: the one written by hand\.'),
        (
            '"""The runctl client, synchronous (see runctl.aio for asyncio).\n\n'
            "GENERATED from runctl/aio.py by scripts/unasync_client.py: do not edit, edit aio.py."
        ),
    ),
    (re.compile(r"\n\nrunctl\.client\.Client, the synchronous client.*?never that one\.\n", re.S), "\n"),
    (re.compile(r"\bAsyncClient\b"), "Client"),
    (re.compile(r"\basync (with|for) "), r"\1 "),
    (re.compile(r"\bawait "), ""),
    # `(await call(...)).field` loses its await, and the parentheses are no longer needed.
    (re.compile(r"\((self\.\w+\.\w+\(request, timeout=self\.timeout\))\)"), r"\1"),
]


def generate() -> str:
    """The text of client.py, formatted."""
    with tempfile.TemporaryDirectory() as scratch:
        source = Path(scratch) / "_async" / "client.py"
        source.parent.mkdir()
        source.write_text(SOURCE.read_text())
        rule = unasync.Rule(fromdir="/_async/", todir="/_sync/", additional_replacements=REPLACEMENTS)
        unasync.unasync_files([str(source)], rules=[rule])
        text = (Path(scratch) / "_sync" / "client.py").read_text()
    for pattern, replacement in SUBS:
        text = pattern.sub(replacement, text)
    return _ruff(["format"], _ruff(["check", "--fix", "--quiet"], text))


def _ruff(command: list[str], text: str) -> str:
    result = subprocess.run(  # noqa: S603 (our own ruff on our own text)
        [sys.executable, "-m", "ruff", *command, "--stdin-filename", str(TARGET), "-"],
        input=text,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        sys.exit(f"ruff {command[0]} on the generated client failed:\n{result.stdout}{result.stderr}")
    return result.stdout


def main() -> None:
    text = generate()
    if "--check" in sys.argv[1:]:
        if TARGET.read_text() != text:
            sys.exit(f"{TARGET} is stale: run scripts/unasync_client.py (make generate)")
        return
    TARGET.write_text(text)
    print(f"generated {TARGET.relative_to(PACKAGE.parent.parent.parent)} from {SOURCE.name}")


if __name__ == "__main__":
    main()
