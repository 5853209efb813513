#!/usr/bin/env bash
# Reproduces the inspect figures in docs/benchmarks.md, all in one run on the same file:
#   appban inspect vs zlib inflate of the same entries (bench/inspect_bench.cc), peak memory of
#   `appban inspect --json`, and androguard 3.4 (Debian) doing the same reading (APK + every DEX
#   parsed + certificates) on the same file.
# Usage: bench/inspect_compare.sh [APK|large]
#   default: io.appium.settings's debug APK from npm (3.1 MB, 9 DEX files)
#   large:   appium-uiautomator2-server's server APK from npm (18 MB, 16 DEX files, 14.5 MB of DEX)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --test
scripts/build.sh release

apk=${1:-}
if [[ "$apk" == large ]]; then
  cache=build/bench-data
  apk=$cache/appium-uiautomator2-server-v10.6.6.apk
  if [[ ! -f "$apk" ]]; then
    mkdir -p "$cache"
    (cd "$cache" && npm pack --silent appium-uiautomator2-server@10.6.6 >/dev/null &&
      tar xzf appium-uiautomator2-server-10.6.6.tgz && cp package/apks/appium-uiautomator2-server-v10.6.6.apk . &&
      rm -rf package appium-uiautomator2-server-*.tgz)
  fi
elif [[ -z "$apk" ]]; then
  cache=build/bench-data
  apk=$cache/settings_apk-debug.apk
  if [[ ! -f "$apk" ]]; then
    mkdir -p "$cache"
    (cd "$cache" && npm pack --silent io.appium.settings@8.0.10 >/dev/null && tar xzf io.appium.settings-8.0.10.tgz &&
      cp package/apks/settings_apk-debug.apk . && rm -rf package io.appium.settings-*.tgz)
  fi
fi

echo "== load before the run: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores"
echo "== appban inspect vs zlib inflate (same process, median of 20 runs)"
build/bench/appban_inspect_bench "$apk" 20 | tee build/inspect_bench.out
dex_bytes=$(awk '/^inflated_dex_bytes/ {print $2}' build/inspect_bench.out)

echo "== peak memory (max RSS) of one 'appban inspect --json' process"
rss_kb=$( { /usr/bin/time -f '%M' build/appban inspect --json "$apk" >/dev/null; } 2>&1 | tail -1)
awk -v rss="$rss_kb" -v dex="$dex_bytes" 'BEGIN {
  printf "max RSS %.1f MB = %.2fx the inflated DEX (%.1f MB)\n", rss/1024, rss*1024/dex, dex/1e6 }'

echo "== wall time of one whole 'appban inspect --json' process (5 runs)"
for i in 1 2 3 4 5; do
  /usr/bin/time -f '%e s' build/appban inspect --json "$apk" 2>&1 >/dev/null | tail -1
done | sort -n | sed -n 3p | sed 's/^/median /'

echo "== directory throughput: every APK that Debian's androguard package ships, -j2 (2 cores)"
examples=/usr/share/doc/androguard/examples
count=$(find "$examples" -name '*.apk' | wc -l)
megabytes=$(find "$examples" -name '*.apk' -printf '%s\n' | awk '{s+=$1} END {printf "%.1f", s/1e6}')
throughput() {  # throughput NAME appban-arguments...
  local name=$1; shift
  local seconds
  # Some of androguard's samples are deliberately broken: a non-zero exit is expected here.
  /usr/bin/time -f '%e' -o build/throughput.time build/appban "$@" >/dev/null 2>&1 || true
  seconds=$(tail -1 build/throughput.time)
  awk -v n="$count" -v mb="$megabytes" -v s="$seconds" -v c="$name" 'BEGIN {
    printf "%-7s %d files (%.1f MB) in %.2f s: %.0f files/s, %.1f MB/s\n", c, n, mb, s, n/s, mb/s }'
}
throughput inspect inspect -j2 --json "$examples"
throughput assess assess -j2 --no-progress --format json "$examples"

echo "== androguard $(/usr/bin/python3 -c 'import androguard; print(androguard.__version__)') on the same file"
/usr/bin/python3 - "$apk" <<'PY'
import sys, time, resource, logging
logging.disable(logging.CRITICAL)
from androguard.core.bytecodes.apk import APK
from androguard.core.bytecodes.dvm import DalvikVMFormat
path = sys.argv[1]
timings = []
for _ in range(3):
    start = time.perf_counter()
    apk = APK(path)
    facts = (apk.get_package(), apk.get_androidversion_code(), apk.get_permissions())
    try:
        label = apk.get_app_name()  # resources.arsc: androguard 3.4 cannot read newer tables
    except Exception as error:
        label = f"unreadable ({error})"
    certs = [c.sha256_fingerprint for c in apk.get_certificates()]
    classes = sum(len(DalvikVMFormat(dex).get_classes()) for dex in apk.get_all_dex())
    timings.append((time.perf_counter() - start) * 1000)
timings.sort()
print(f"androguard APK + DalvikVMFormat: {timings[1]:.0f} ms median of 3 ({classes} classes; label: {label})")
print(f"androguard max RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss/1024:.0f} MB")
PY
