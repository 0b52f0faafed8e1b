#!/usr/bin/env bash
# Builds durable, starts a node with the gRPC sidecar on 127.0.0.1:4001 (in
# memory), runs the JavaScript worker and client against it, and stops the
# node.
set -euo pipefail
cd "$(dirname "$0")"
tmp=$(mktemp -d)
go build -o "$tmp/durable" ../../cmd/durable
"$tmp/durable" serve --memory --addr 127.0.0.1:7071 --grpc 127.0.0.1:4001 >/dev/null 2>"$tmp/log" &
node_pid=$!
trap 'kill $node_pid 2>/dev/null || true; wait $node_pid 2>/dev/null || true; rm -rf "$tmp"' EXIT
for _ in $(seq 1 100); do
  grep -q "sidecar gRPC listening" "$tmp/log" && break
  sleep 0.2
done
[ -d node_modules ] || npm ci --no-audit --no-fund --loglevel=error
DURABLE_GRPC=127.0.0.1:4001 node app.js
