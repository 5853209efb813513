#!/usr/bin/env bash
# Reproduces the iOS inspect figures in docs/benchmarks.md, all in one run on the same files:
# `appban inspect --json` of an IPA and of a bare universal Mach-O against
#   - the floor: reading the bytes once (`unzip -p` inflating the IPA; `cat` of the Mach-O);
#   - Debian's llvm-objdump --macho --private-headers (load commands of every slice only: no
#     signature, no page hashes);
#   - a Python peer (bench/ios_python_peer.py: python3-macholib + plistlib + hashlib), doing the
#     same reading appban does short of the CMS check: unzip, Info.plist, load commands of every
#     slice, every page hash recomputed.
# The input is sentry-cli from npm (tests/fixtures/ios/npm: 29 MB universal x86_64 + arm64,
# Developer ID signed, 6,931 code pages), wrapped as Payload/SentryCli.app/ in an IPA.
# Usage: bench/ios_inspect_compare.sh
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --test
scripts/build.sh release

macho=tests/fixtures/ios/npm/node_modules/@sentry/cli-darwin/bin/sentry-cli
work=build/bench-data/ios
ipa=$work/SentryCli.ipa
mkdir -p "$work/Payload/SentryCli.app"
cp "$macho" "$work/Payload/SentryCli.app/sentry-cli"
cat > "$work/Payload/SentryCli.app/Info.plist" <<'PLIST'
<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
	<key>CFBundleIdentifier</key><string>io.sentry.cli</string>
	<key>CFBundleExecutable</key><string>sentry-cli</string>
	<key>CFBundleShortVersionString</key><string>3.8.0</string>
</dict>
</plist>
PLIST
rm -f "$ipa"
(cd "$work" && zip -qr SentryCli.ipa Payload)

# Median wall time of 7 runs of a command, in milliseconds.
median_ms() {
  local runs=()
  for _ in 1 2 3 4 5 6 7; do
    local start end
    start=$(date +%s%N)
    "$@" >/dev/null 2>&1
    end=$(date +%s%N)
    runs+=($(((end - start) / 1000000)))
  done
  printf '%s\n' "${runs[@]}" | sort -n | sed -n 4p
}

echo "== IPA $(stat -c %s "$ipa") bytes, Mach-O $(stat -c %s "$macho") bytes (median of 7 runs, ms)"
floor_ipa=$(median_ms unzip -p "$ipa")
floor_macho=$(median_ms cat "$macho")
appban_ipa=$(median_ms build/appban inspect --json "$ipa")
appban_macho=$(median_ms build/appban inspect --json "$macho")
objdump=$(median_ms llvm-objdump --macho --private-headers --universal-headers "$macho")
python=$(median_ms /usr/bin/python3 bench/ios_python_peer.py "$ipa")
printf 'unzip -p (inflate floor)            %6d\n' "$floor_ipa"
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / (b > 0 ? b : 1) }'; }
printf 'appban inspect --json IPA           %6d  (%sx the floor)\n' "$appban_ipa" "$(ratio "$appban_ipa" "$floor_ipa")"
printf 'python peer (macholib+plistlib+hashlib) %2d  (appban %sx faster)\n' "$python" "$(ratio "$python" "$appban_ipa")"
printf 'cat Mach-O (read floor)             %6d\n' "$floor_macho"
printf 'appban inspect --json Mach-O        %6d\n' "$appban_macho"
printf 'llvm-objdump --private-headers      %6d  (load commands only)\n' "$objdump"
echo "== what each read"
/usr/bin/python3 bench/ios_python_peer.py "$ipa"
build/appban inspect "$ipa" | grep -E 'signature|chain|arm64|x86_64'
