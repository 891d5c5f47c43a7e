#!/bin/sh
# Regenerate worker/bridge/eventbus/pubsub_api_pb2*.py(i) from pubsub_api.proto (needs grpcio-tools,
# installed by `make` in .venv). The generated modules are committed so a fresh clone type-checks.
set -eu
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
"$PY" -m grpc_tools.protoc -I worker/bridge/eventbus \
  --python_out=worker/bridge/eventbus --pyi_out=worker/bridge/eventbus \
  --grpc_python_out=worker/bridge/eventbus worker/bridge/eventbus/pubsub_api.proto
# grpc_tools writes an absolute import of the sibling module; make it package-relative.
sed -i 's/^import pubsub_api_pb2 as/from . import pubsub_api_pb2 as/' worker/bridge/eventbus/pubsub_api_pb2_grpc.py
