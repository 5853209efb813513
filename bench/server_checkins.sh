#!/usr/bin/env bash
# Benchmark 1 (issue 5): steady check-ins per second with unchanged inventories, against the same
# request sent to POST /healthz of the same server (its trivial endpoint: the physical limit of
# HTTP on this machine). Run from the repository root after scripts/build.sh:
#   bench/server_checkins.sh
# Knobs (environment): DEVICES (10000), PROCESSES (2), CONCURRENCY (64 connections per process),
# DURATION (20 s per measurement), APPBAN (build/appban); BENCH_DATABASE=postgres (bench/lib.sh),
# and with it BENCH_NODES=2: two nodes on the one database, one simulator process per node with
# half the devices, both at once; the rates are summed.
# The server and the simulator share the machine's cores, as they do in every such loopback test.
set -euo pipefail
cd "$(dirname "$0")/.."
APPBAN=${APPBAN:-build/appban}
DEVICES=${DEVICES:-10000}
PROCESSES=${PROCESSES:-2}
CONCURRENCY=${CONCURRENCY:-64}
DURATION=${DURATION:-20}
[[ -x "$APPBAN" ]] || { echo "no $APPBAN: run scripts/build.sh first" >&2; exit 1; }

source bench/lib.sh
bench_start_server checkins

if [[ -z "$url2" ]]; then
  common=(simulate --server "$url" --devices "$DEVICES" --processes "$PROCESSES" --concurrency "$CONCURRENCY"
          --duration "$DURATION" --mode steady --state "$work/devices.json" --source-addresses 127.0.0.2-127.0.0.9 --json)
  echo "server: $url ($(nproc) cores), $DEVICES devices, $PROCESSES simulator processes x $CONCURRENCY connections, ${DURATION}s each"
  echo "+ $APPBAN ${common[*]} --admin-token … --target checkin"
  "$APPBAN" "${common[@]}" --admin-token "$admin" --target checkin > "$work/checkin-a.json"
  echo "+ $APPBAN ${common[*]} --target healthz"
  "$APPBAN" "${common[@]}" --target healthz > "$work/healthz-a.json"
  nodes=(a)
else
  # One simulator per node, at once: devices enrolled at a node check in there.
  node_args() {  # node_args URL NAME ADDRESSES
    echo simulate --server "$1" --devices $((DEVICES / 2)) --processes $(((PROCESSES + 1) / 2)) --concurrency "$CONCURRENCY" \
      --duration "$DURATION" --mode steady --state "$work/devices-$2.json" --source-addresses "$3" --json
  }
  read -ra args_a <<< "$(node_args "$url" a 127.0.0.2-127.0.0.5)"
  read -ra args_b <<< "$(node_args "$url2" b 127.0.0.6-127.0.0.9)"
  echo "servers: $url $url2 ($(nproc) cores), $DEVICES devices (half per node), ${DURATION}s each"
  for target in checkin healthz; do
    echo "+ $APPBAN ${args_a[*]} --target $target  &  $APPBAN ${args_b[*]} --target $target"
    "$APPBAN" "${args_a[@]}" --admin-token "$admin" --target "$target" > "$work/$target-a.json" &
    first=$!
    "$APPBAN" "${args_b[@]}" --admin-token "$admin" --target "$target" > "$work/$target-b.json"
    wait "$first"
  done
  nodes=(a b)
fi

python3 - "$work" "${nodes[@]}" <<'PY'
import json, sys
work, nodes = sys.argv[1], sys.argv[2:]
def load(target): return [json.load(open(f"{work}/{target}-{n}.json")) for n in nodes]
def line(name, runs):
    rate = sum(r["steady"]["requests_per_second"] for r in runs)
    requests = sum(r["steady"]["requests"] for r in runs)
    p50 = max(r["steady"]["latency_ms"]["p50"] for r in runs)
    p99 = max(r["steady"]["latency_ms"]["p99"] for r in runs)
    errors = [r["errors"] for r in runs if r["errors"]]
    worst = " (the worse node)" if len(runs) > 1 else ""
    print(f"{name:>22}: {rate:>9,.0f} /s   p50 {p50:.2f} ms   p99 {p99:.2f} ms{worst}   requests {requests:,}   "
          f"errors {errors or 'none'}")
    return rate
c = line("POST /v1/checkin", load("checkin"))
h = line("POST /healthz (same)", load("healthz"))
print(f"{'ratio':>22}: {c / h if h else float('nan'):.2f} of the trivial endpoint (target >= 0.50; check-ins target >= 20,000/s)")
PY
