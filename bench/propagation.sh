#!/usr/bin/env bash
# Benchmarks 2 and 3 (issue 5): ban propagation to 100,000 connected devices, and server memory
# per connected device. Run from the repository root after scripts/build.sh:
#   bench/propagation.sh
# Steps: start `appban server` on loopback (plain HTTP, relaxed enrolment rate limit, long-polls
# of 300 s so none expires during the ramp) in a temp data dir; start `appban simulate` with
# DEVICES devices in PROCESSES processes over 20 loopback source addresses; wait until the
# server's gauge appban_longpolls_waiting reaches DEVICES; propose a rule banning deb:wechat,
# approve it with a SECOND admin token (two-person rule), publish the rule and the bundle; wait
# for every simulated device to apply it, remove wechat and check in; print the simulator's and
# the server's (GET /v1/admin/compliance) times to 99% / 100% compliance and the server's memory
# (PSS summed over the supervisor and its workers) per connected device.
# Knobs: DEVICES (100000), PROCESSES (6), CONCURRENCY (200 devices starting at once per process),
# BANNED_FRACTION (0.1), APPBAN (build/appban), TIMEOUT (1800 s for the whole ramp);
# BENCH_DATABASE=postgres (bench/lib.sh), and with it BENCH_NODES=2: two server nodes on the one
# database, half the devices (and simulator processes, and source addresses) on each, the ban
# published on the first; times are then given per node and for the two together.
set -euo pipefail
cd "$(dirname "$0")/.."
APPBAN=${APPBAN:-build/appban}
DEVICES=${DEVICES:-100000}
PROCESSES=${PROCESSES:-6}
CONCURRENCY=${CONCURRENCY:-200}
BANNED_FRACTION=${BANNED_FRACTION:-0.1}
TIMEOUT=${TIMEOUT:-1800}
[[ -x "$APPBAN" ]] || { echo "no $APPBAN: run scripts/build.sh first" >&2; exit 1; }

source bench/lib.sh
BENCH_SECOND_PERSON=1
bench_start_server propagation "max_connections = $(( DEVICES * 21 / 20 + 100 ))" "[devices]
checkin_interval_seconds = 3600
longpoll_timeout_seconds = 300
[timeouts]
idle_seconds = 600"

gauge() {  # summed over the nodes
  local node total=0 value
  for node in "${urls[@]}"; do
    value=$({ curl -fs "$node/metrics" || true; } | awk -v name="$1" '$1 == name { printf "%d\n", $2 }')
    total=$((total + ${value:-0}))
  done
  echo "$total"
}
server_pss_kib() {  # supervisors + workers, proportional set size (shared pages counted once)
  local total=0 pid
  for pid in "$server_pid" $(pgrep -P "$server_pid") ${server2_pid:+"$server2_pid" $(pgrep -P "$server2_pid")}; do
    total=$((total + $(awk '/^Pss:/ { print $2 }' "/proc/$pid/smaps_rollup" 2>/dev/null || echo 0)))
  done
  echo "$total"
}

second=$(bench_person bob)  # another person: the two-person rule compares identities
sleep 1
pss_before=$(server_pss_kib)
echo "server: ${urls[*]}, $(pgrep -P "$server_pid" | wc -l) workers per node, PSS ${pss_before} KiB before devices connect"

simulate() {  # simulate URL DEVICES PROCESSES ADDRESSES NAME: runs in the background
  local sim=("$APPBAN" simulate --server "$1" --devices "$2" --processes "$3" --concurrency "$CONCURRENCY"
             --source-addresses "$4" --banned-fraction "$BANNED_FRACTION" --state "$work/devices-$5.json"
             --stop-after-bundles 1 --duration "$TIMEOUT" --json)
  echo "+ ${sim[*]} --admin-token …"
  "${sim[@]}" --admin-token "$admin" > "$work/sim-$5.json" 2> "$work/sim-$5.log" &
}
start=$(date +%s)
if [[ -n "$url2" ]]; then
  simulate "$url" $((DEVICES / 2)) $((PROCESSES / 2)) 127.0.0.2-127.0.0.11 a
  sim_pid=$!
  simulate "$url2" $((DEVICES - DEVICES / 2)) $((PROCESSES - PROCESSES / 2)) 127.0.0.12-127.0.0.21 b
  sim2_pid=$!
  sims=(a b)
else
  simulate "$url" "$DEVICES" "$PROCESSES" 127.0.0.2-127.0.0.21 a
  sim_pid=$!
  sims=(a)
fi
while :; do
  waiting=$(gauge appban_longpolls_waiting); waiting=${waiting:-0}
  (( waiting >= DEVICES )) && break
  for pid in $sim_pid ${sim2_pid:-}; do
    kill -0 "$pid" 2>/dev/null || { echo "a simulator exited early:" >&2; cat "$work"/sim-*.log "$work"/sim-*.json >&2; exit 1; }
  done
  (( $(date +%s) - start > TIMEOUT )) && { echo "timed out with $waiting long-polls waiting" >&2; exit 1; }
  sleep 2
done
ramp=$(( $(date +%s) - start ))
sleep 2
pss_after=$(server_pss_kib)
echo "all $DEVICES devices long-polling after ${ramp}s (enrolment + first check-in with full inventory); server PSS ${pss_after} KiB"

rule="bench-wechat-$(date +%s)"
api "$admin" POST /v1/admin/rules "{\"id\":\"$rule\",\"title\":\"WeChat (benchmark)\",\"targets\":[{\"kind\":\"deb\",\"value\":\"wechat\"}],\"action\":\"remove\",\"rationale\":\"benchmark\",\"authority\":\"bench/propagation.sh\"}" >/dev/null
api "$second" POST "/v1/admin/rules/$rule/approve" '{"note":"second admin"}' >/dev/null
api "$admin" POST "/v1/admin/rules/$rule/publish" >/dev/null
publish_ms=$(date +%s%3N)
version=$(api "$admin" POST /v1/admin/publish '{}' | json_get 'd["version"]')
echo "published bundle version $version at $publish_ms (Unix ms)"
wait "$sim_pid" || true
sim_pid=""
if [[ -n "${sim2_pid:-}" ]]; then wait "$sim2_pid" || true; sim2_pid=""; fi
sleep 1
api "$admin" GET /v1/admin/compliance > "$work/compliance.json"

sim_files=()
for name in "${sims[@]}"; do sim_files+=("$work/sim-$name.json"); done
python3 - "$work/compliance.json" "$publish_ms" "$version" "$rule" "$DEVICES" "$pss_before" "$pss_after" "${sim_files[@]}" <<'PY'
import json, sys
comp = json.load(open(sys.argv[1]))
publish_ms, version, rule, n = int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], int(sys.argv[5])
before, after = int(sys.argv[6]), int(sys.argv[7])
sims = [json.load(open(path)) for path in sys.argv[8:]]
worst = {}  # over the nodes: the time by which every node's devices reached the share
for node, sim in zip("AB", sims):
    b = next((b for b in sim["bundles"] if b["version"] == version), None)
    if b is None:
        sys.exit(f"the simulator of node {node} saw no bundle version {version}: {json.dumps(sim)}")
    offset = (b["first_received_unix_ms"] - publish_ms) / 1000
    def since_publish(v): return None if v is None else v + offset
    def shown(v): return "n/a" if v is None else f"{v:.2f} s"
    times = {"received 50%": since_publish(b.get("received_seconds_to_50_percent")),
             "received 99%": since_publish(b.get("received_seconds_to_99_percent")),
             "acknowledged 50%": since_publish(b["seconds_to_50_percent"]),
             "acknowledged 99%": since_publish(b["seconds_to_99_percent"]),
             "acknowledged 100%": since_publish(b["seconds_to_100_percent"])}
    for key, value in times.items():
        if value is not None: worst[key] = max(worst.get(key, value), value)
    label = f"simulator (node {node})" if len(sims) > 1 else "simulator"
    print(f"{label}: first device had the bundle {offset:.2f} s after the publish call began; "
          f"acknowledged by {b['acknowledged']:,} of {b.get('devices', sim.get('devices', '?'))}")
    print(f"{label}: devices had the bundle: 50% {shown(times['received 50%'])}, 99% {shown(times['received 99%'])} after publish")
    print(f"{label}: 50% {shown(times['acknowledged 50%'])}, 99% {shown(times['acknowledged 99%'])}, "
          f"100% {shown(times['acknowledged 100%'])} after publish (target: 99% within 10 s)")
    print(f"{label} errors: {sim['errors'] or 'none'}; bundle signature checks: {sim['bundle_verifications']}")
if len(sims) > 1:
    print("both nodes (the later of the two, so at least the share over all devices): " +
          ", ".join(f"{key} {value:.2f} s" for key, value in worst.items()) + " after publish")
r = next((r for r in comp.get("rules", []) if r.get("rule_id") == rule), None)
if r:
    t = r.get("time_to_compliance", {})
    print(f"server compliance: targeted {r.get('targeted')}, compliant {r.get('compliant')}, remediated {r.get('remediated')}, "
          f"pending {r.get('pending')}, mismatch {r.get('mismatch')}; time to compliance median {t.get('median_seconds')} s, p95 {t.get('p95_seconds')} s, "
          f"max {t.get('max_seconds')} s (from the bundle's issue time, whole seconds)")
else:
    print("server compliance: rule not found in", json.dumps(comp)[:400])
print(f"server memory: PSS {before:,} KiB before, {after:,} KiB with {n:,} devices connected and long-polling: "
      f"{(after - before) * 1024 / n:,.0f} bytes per connected device")
PY
