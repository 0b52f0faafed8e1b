#!/usr/bin/env bash
# Starts a cluster of three durable nodes on 127.0.0.1 sharing one task hub
# directory, runs the sample app across them, kills one node with SIGKILL,
# and shows that its work is finished by the two others.
#
#   examples/cluster/run.sh            # data in ./cluster-data (removed first)
#
# Nodes: HTTP on 127.0.0.1:7071..7073, cluster ports 127.0.0.1:7101..7103.
set -euo pipefail
cd "$(dirname "$0")/../.."
data=${DATA:-cluster-data}
tmp=$(mktemp -d)
bin=$tmp/durable
go build -o "$bin" ./cmd/durable
rm -rf "$data"
peers=127.0.0.1:7101,127.0.0.1:7102,127.0.0.1:7103
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
for i in 1 2 3; do
  "$bin" serve --addr 127.0.0.1:707$i --data "$data" --cluster-addr 127.0.0.1:710$i \
    --cluster-peers "$peers" --log-level warn 2>"$tmp/node$i.log" &
  pids+=($!)
done
for i in 1 2 3; do
  until curl -sf http://127.0.0.1:707$i/healthz >/dev/null; do sleep 0.2; done
done
echo "three nodes up; every partition placed (logs in $tmp)"

node() { DURABLE_ADDR=http://127.0.0.1:707$1 "$bin" "${@:2}"; }
# waitdone N ID: poll ID's status through node N until it has finished.
waitdone() {
  until node "$1" status "$2" --json | grep -Eq '"runtimeStatus": *"(Completed|Failed|Terminated)"'; do sleep 0.2; done
  node "$1" status "$2"
}
echo "-- HelloCities started through node 1, waited for through node 3"
node 1 start HelloCities --id hello-1 >/dev/null
node 3 status hello-1 --json >/dev/null
node 3 start HelloCities --id hello-2 --wait
echo "-- Tally (a sub-orchestration, an entity signal and an entity call) through node 2"
node 2 start Tally '"demo"' --id tally-1 --wait
echo "-- WaitForApproval started through node 1; node 2 is killed before the approval"
node 1 start WaitForApproval --id approval-1 >/dev/null
node 1 start FanOutFanIn 100 --id fanout-1 >/dev/null
kill -KILL "${pids[1]}"
echo "node 2 killed (SIGKILL)"
node 3 raise approval-1 Approval true
waitdone 1 approval-1
waitdone 3 fanout-1
node 1 signal Counter demo add 41
node 3 entity Counter demo
echo "-- every instance, listed through node 3"
node 3 list
