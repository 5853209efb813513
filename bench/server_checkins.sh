#!/usr/bin/env bash
# Benchmark 1 (issue 5): steady check-ins per second with unchanged inventories, against the same
# request sent to POST /healthz of the same server (its trivial endpoint: the physical limit of
# HTTP on this machine). Run from the repository root after scripts/build.sh:
#   bench/server_checkins.sh
# Knobs (environment): DEVICES (10000), PROCESSES (2), CONCURRENCY (64 connections per process),
# DURATION (20 s per measurement), APPBAN (build/appban).
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

common=(simulate --server "$url" --devices "$DEVICES" --processes "$PROCESSES" --concurrency "$CONCURRENCY"
        --duration "$DURATION" --mode steady --state "$work/devices.json" --source-addresses 127.0.0.2-127.0.0.9 --json)
echo "server: $url ($(nproc) cores), $DEVICES devices, $PROCESSES simulator processes x $CONCURRENCY connections, ${DURATION}s each"
echo "+ $APPBAN ${common[*]} --admin-token … --target checkin"
"$APPBAN" "${common[@]}" --admin-token "$admin" --target checkin > "$work/checkin.json"
echo "+ $APPBAN ${common[*]} --target healthz"
"$APPBAN" "${common[@]}" --target healthz > "$work/healthz.json"

python3 - "$work/checkin.json" "$work/healthz.json" <<'PY'
import json, sys
checkin, healthz = (json.load(open(p)) for p in sys.argv[1:3])
def line(name, r):
    s = r["steady"]
    print(f"{name:>22}: {s['requests_per_second']:>9,.0f} /s   p50 {s['latency_ms']['p50']:.2f} ms   "
          f"p99 {s['latency_ms']['p99']:.2f} ms   requests {s['requests']:,}   errors {r['errors'] or 'none'}")
line("POST /v1/checkin", checkin)
line("POST /healthz (same)", healthz)
c, h = checkin["steady"]["requests_per_second"], healthz["steady"]["requests_per_second"]
print(f"{'ratio':>22}: {c / h if h else float('nan'):.2f} of the trivial endpoint (target >= 0.50; check-ins target >= 20,000/s)")
PY
