#!/usr/bin/env bash
# Backup and restore of a populated server (docs/operations.md), against the peer every SQLite
# user reaches for: the sqlite3 shell's `.backup` (the same online backup API, without appban's
# checks). Run from the repository root after scripts/build.sh:
#   bench/backup.sh
# Steps: start `appban server` on loopback in a temp data dir; publish a ban; run `appban simulate`
# with DEVICES devices until every one enrolled, sent its inventory and applied the ban (so the
# database holds devices, inventories, match records, rule states, events and the audit chain);
# then, with the server still running, time (each RUNS times, median and range):
#   appban server backup --to DIR       snapshot + audit chain verified + integrity check + manifest
#   sqlite3 appban.db ".backup FILE"    the peer: the page copy alone
#   appban server restore --check       every hash + integrity + chain, in a temp directory
#   appban server restore               the same, renamed into a new data directory
# Knobs: DEVICES (100000), PROCESSES (6), RUNS (5), APPBAN (build/appban). Needs sqlite3 (Debian
# package sqlite3) for the peer.
set -euo pipefail
cd "$(dirname "$0")/.."
APPBAN=${APPBAN:-build/appban}
DEVICES=${DEVICES:-100000}
PROCESSES=${PROCESSES:-6}
RUNS=${RUNS:-5}
[[ -x "$APPBAN" ]] || { echo "no $APPBAN: run scripts/build.sh first" >&2; exit 1; }
command -v sqlite3 >/dev/null || { echo "the peer needs sqlite3: sudo apt-get install sqlite3" >&2; exit 1; }

source bench/lib.sh
BENCH_SECOND_PERSON=1
bench_start_server backup "max_connections = $(( DEVICES * 21 / 20 + 100 ))" "[devices]
checkin_interval_seconds = 3600
longpoll_timeout_seconds = 300"

second=$(bench_person bob)  # another person: the two-person rule compares identities
api "$admin" POST /v1/admin/rules '{"id":"bench-wechat","title":"WeChat (benchmark)","targets":[{"kind":"deb","value":"wechat"}],"action":"remove","rationale":"benchmark","authority":"bench/backup.sh"}' >/dev/null
for attempt in $(seq 1 50); do  # the server may still be fetching the provider's keys
  api "$second" POST /v1/admin/rules/bench-wechat/approve '{"note":"second person"}' >/dev/null 2>&1 && break
  (( attempt == 50 )) && { echo "bob's approval was refused" >&2; exit 1; }
  sleep 0.2
done
api "$admin" POST /v1/admin/rules/bench-wechat/publish >/dev/null
api "$admin" POST /v1/admin/publish '{}' >/dev/null
echo "+ appban simulate --devices $DEVICES (enrol, inventory, apply the ban)"
"$APPBAN" simulate --server "$url" --devices "$DEVICES" --processes "$PROCESSES" --concurrency 200 \
  --source-addresses 127.0.0.2-127.0.0.21 --banned-fraction 0.1 --state "$work/devices.json" \
  --stop-after-bundles 1 --duration 1800 --json --admin-token "$admin" > "$work/sim.json" 2> "$work/sim.log"
db="$work/data/appban.db"
echo "database: $(du -m "$db" | cut -f1) MiB (+ $(du -m "$db-wal" 2>/dev/null | cut -f1 || echo 0) MiB WAL), $DEVICES devices"

# timed LABEL FUNCTION: RUNS runs of FUNCTION with the run's index (1…RUNS); prints the median and
# the range in seconds, and leaves the last run's output in $work/last.out.
timed() {
  local label=$1 step=$2 times=() i start
  for i in $(seq 1 "$RUNS"); do
    start=$(date +%s%N)
    "$step" "$i" > "$work/last.out" 2>&1 || { echo "$label failed:" >&2; cat "$work/last.out" >&2; exit 1; }
    times+=("$(( ($(date +%s%N) - start) / 1000000 ))")
  done
  python3 - "$label" "${times[@]}" <<'PY'
import statistics, sys
ms = sorted(int(t) for t in sys.argv[2:])
print(f"{sys.argv[1]:<34} median {statistics.median(ms)/1000:6.2f} s   range {ms[0]/1000:.2f}-{ms[-1]/1000:.2f} s   ({len(ms)} runs)")
PY
}
backup() { "$APPBAN" server backup --config "$work/server.toml" --to "$work/backup-$1"; }
peer() { sqlite3 "$db" ".backup '$work/peer-$1.db'"; }
check() { "$APPBAN" server restore --from "$work/backup-$1" --data-dir "$work/restored-$1" --check; }
restore() { "$APPBAN" server restore --from "$work/backup-$1" --data-dir "$work/restored-$1"; }

timed "appban server backup" backup
grep -E "database|audit chain|files" "$work/last.out"
timed "sqlite3 .backup (peer)" peer
timed "appban server restore --check" check
timed "appban server restore" restore
echo "server still serving: $(curl -fs "$url/healthz")"
