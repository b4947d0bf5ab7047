#!/usr/bin/env bash
# Regenerates the Python client stubs of the runctl.v1 contract into clients/python/runctl/v1/:
#   *_pb2.py        messages           (protoc --python_out)
#   *_pb2_grpc.py   service stubs      (grpc_tools --grpc_python_out)
#   *_pb2.pyi       message types      (mypy-protobuf protoc-gen-mypy)
#   *_pb2_grpc.pyi  service types      (mypy-protobuf protoc-gen-mypy_grpc)
# and clients/python/runctl/client.py from runctl/aio.py (scripts/unasync_client.py).
#
# Uses grpc_tools.protoc from the Python environment (no protoc binary needed). Only proto/ is
# generated: google.api / google.rpc modules come from the googleapis-common-protos package at
# run time, google.protobuf from protobuf. The output is deterministic; CI runs this script and
# fails on any diff (git diff --exit-code clients/python).
#
# Then the other client languages, with buf (node_modules/.bin/buf) and local plugins only:
#   clients/typescript/src/gen/   buf.gen.yaml: protoc-gen-es from clients/typescript/node_modules
#   clients/go/runctl/v1/         buf.gen.go.yaml: protoc-gen-go and protoc-gen-go-grpc, only when
#                                 both are on PATH (Debian packages; .ci/run installs them), so a
#                                 machine without Go still regenerates everything else
#
# Usage: bash scripts/generate.sh            (PYTHON=/path/to/python to use another interpreter)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

PYTHON="${PYTHON:-.venv/bin/python}"
OUT=clients/python
PKG="$OUT/runctl/v1"

# protoc-gen-mypy and protoc-gen-mypy_grpc are console scripts of that environment.
SCRIPTS_DIR="$("$PYTHON" -c 'import sysconfig; print(sysconfig.get_path("scripts"))')"
export PATH="$SCRIPTS_DIR:$PATH"
for plugin in protoc-gen-mypy protoc-gen-mypy_grpc; do
  command -v "$plugin" >/dev/null || {
    echo "generate.sh: $plugin not found (pip install mypy-protobuf into $PYTHON's environment)" >&2
    exit 1
  }
done

mkdir -p "$PKG"
find "$PKG" -maxdepth 1 -type f \( -name '*_pb2.py' -o -name '*_pb2.pyi' \
  -o -name '*_pb2_grpc.py' -o -name '*_pb2_grpc.pyi' \) -delete

# Sorted file list, so the run does not depend on the shell's glob order or locale.
mapfile -t PROTOS < <(LC_ALL=C ls proto/runctl/v1/*.proto | LC_ALL=C sort)

"$PYTHON" -m grpc_tools.protoc \
  -I proto \
  -I third_party \
  --python_out="$OUT" \
  --grpc_python_out="$OUT" \
  --mypy_out=quiet:"$OUT" \
  --mypy_grpc_out=quiet:"$OUT" \
  "${PROTOS[@]}"

# Package markers (kept if present: they are hand-written, not generated).
[ -f "$OUT/runctl/__init__.py" ] || printf '"""runctl Python client."""\n' > "$OUT/runctl/__init__.py"
[ -f "$PKG/__init__.py" ] || printf '"""Generated runctl.v1 stubs (scripts/generate.sh); do not edit."""\n' > "$PKG/__init__.py"
[ -f "$OUT/runctl/py.typed" ] || : > "$OUT/runctl/py.typed"

echo "generated ${#PROTOS[@]} protos into $PKG"

# The sync client, runctl/client.py, from the asyncio one, runctl/aio.py (unasync, then ruff).
"$PYTHON" scripts/unasync_client.py

BUF="${BUF:-node_modules/.bin/buf}"

# TypeScript: the generator comes from the client's own lock file, so it matches its runtime.
ES_PLUGIN=clients/typescript/node_modules/.bin/protoc-gen-es
[ -x "$ES_PLUGIN" ] || {
  echo "generate.sh: $ES_PLUGIN not found (make install, or npm ci --prefix clients/typescript)" >&2
  exit 1
}
rm -rf clients/typescript/src/gen
"$BUF" generate --template buf.gen.yaml
echo "generated TypeScript into clients/typescript/src/gen"

# Go: optional, so that a machine without Go can still run `make generate`.
if command -v protoc-gen-go >/dev/null && command -v protoc-gen-go-grpc >/dev/null; then
  find clients/go/runctl/v1 -maxdepth 1 -type f -name '*.pb.go' -delete 2>/dev/null || true
  "$BUF" generate --template buf.gen.go.yaml
  echo "generated Go into clients/go/runctl/v1"
else
  echo "generate.sh: protoc-gen-go or protoc-gen-go-grpc not on PATH; clients/go/runctl/v1 left as committed" >&2
fi
