#!/usr/bin/env bash
# The Debian packages as an administrator meets them (docs/packaging.md), with real tools and
# nothing outside a temporary directory:
#  1. packaging/build-debs.sh builds appban, appban-server and appban-agent (two versions);
#     lintian finds no error or warning in them; systemd-analyze checks the units' hardening.
#  2. packaging/apt-repo.sh lays out a repository signed with a throwaway key; APT (in a scratch
#     configuration) verifies it, offers the newer version and downloads it; a tampered index is
#     refused.
#  3. dpkg installs the packages into a scratch root (--root, maintainer scripts chrootless with
#     DPKG_ROOT); the installed binary runs a server; the installed agent enrols with a token file
#     and runs; the packages are upgraded under the running agent, which keeps its state and
#     enrolment and checks in with the new binary; removing keeps the agent's state, purging
#     deletes it and the APT/dpkg hooks it wrote.
# This machine's dpkg database is compared before and after: untouched.
# Usage: tests/packaging/packages_test.sh APPBAN_BINARY
set -euo pipefail
tree=$(cd "$(dirname "$0")/../.." && pwd)
binary=$(realpath "$1")
tmp=$(mktemp -d)
server_pid=""
agent_pid=""
cleanup() {
  [[ -n "$agent_pid" ]] && kill "$agent_pid" 2>/dev/null || true
  [[ -n "$server_pid" ]] && kill "$server_pid" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT
fail() {
  echo "FAIL: $*" >&2
  exit 1
}
step() { echo "== $*"; }
host_status=$(md5sum < /var/lib/dpkg/status)

step "build two versions of the packages"
"$tree/packaging/build-debs.sh" "$tmp/v1" --binary "$binary" --version 0.1.0-1 >/dev/null
"$tree/packaging/build-debs.sh" "$tmp/v2" --binary "$binary" --version 0.1.0-2 >/dev/null
for package in appban appban-server appban-agent; do
  for version in 1 2; do
    ls "$tmp/v$version/${package}_0.1.0-${version}_"*.deb >/dev/null 2>&1 || fail "no $package 0.1.0-$version"
  done
done
dpkg-deb --field "$tmp"/v1/appban_*.deb Depends | grep -q 'libssl3' || fail "appban does not depend on libssl3"
dpkg-deb --contents "$tmp"/v1/appban_*.deb | grep ' ./usr/share/appban/trackers.json$' >/dev/null ||
  fail "appban lacks its data files"
[[ "$(dpkg-deb --info "$tmp"/v1/appban-server_*.deb conffiles)" == "/etc/appban/server.toml" ]] ||
  fail "server.toml is not a conffile"

step "lintian"
lintian --fail-on error,warning --suppress-tags-from-file /dev/null "$tmp"/v1/*.deb > "$tmp/lintian.txt" 2>&1 || {
  cat "$tmp/lintian.txt" >&2
  fail "lintian found errors or warnings"
}
cat "$tmp/lintian.txt"

step "systemd units"
mkdir -p "$tmp/units"
dpkg-deb -x "$tmp"/v1/appban-server_*.deb "$tmp/units"
dpkg-deb -x "$tmp"/v1/appban-agent_*.deb "$tmp/units"
# The exposure score systemd gives the server (0 = fully confined, 10 = unconfined).
server_exposure=$(systemd-analyze security --offline=yes --no-pager "$tmp/units/lib/systemd/system/appban-server.service" |
  sed -n 's/.*Overall exposure level for .*: \([0-9.]*\).*/\1/p')
echo "appban-server.service exposure: $server_exposure"
[[ -n "$server_exposure" ]] || fail "systemd-analyze security gave no score"
awk -v score="$server_exposure" 'BEGIN { exit !(score <= 2.0) }' ||
  fail "the server unit's exposure $server_exposure is above 2.0"
for setting in DynamicUser=yes ProtectSystem=strict NoNewPrivileges=yes StateDirectory=appban-server CapabilityBoundingSet=; do
  grep -qx "$setting" "$tmp/units/lib/systemd/system/appban-server.service" || fail "server unit lacks $setting"
done
grep -q 'issue' "$tmp/units/lib/systemd/system/appban-agent.service" && fail "the agent unit still names an issue"

step "a signed APT repository"
export GNUPGHOME="$tmp/gnupg"
mkdir -m 0700 "$GNUPGHOME"
gpg --batch --quiet --passphrase '' --quick-gen-key 'appban test repository <repo@example.gov>' ed25519 sign never
gpg --batch --export 'repo@example.gov' > "$tmp/repo-key.gpg"
"$tree/packaging/apt-repo.sh" "$tmp/repo" --key 'repo@example.gov' "$tmp"/v1/*.deb >/dev/null
"$tree/packaging/apt-repo.sh" "$tmp/repo" --key 'repo@example.gov' "$tmp"/v2/*.deb >/dev/null
apt_root="$tmp/apt"
mkdir -p "$apt_root/etc/apt/apt.conf.d" "$apt_root/etc/apt/preferences.d" "$apt_root/etc/apt/trusted.gpg.d" \
  "$apt_root/var/lib/apt/lists/partial" "$apt_root/var/cache/apt/archives/partial" "$apt_root/state"
touch "$apt_root/state/status"
cat > "$apt_root/apt.conf" <<EOF
Dir "$apt_root/";
Dir::State "$apt_root/var/lib/apt";
Dir::State::status "$apt_root/state/status";
Dir::Etc "$apt_root/etc/apt";
Dir::Cache "$apt_root/var/cache/apt";
Dir::Log "$apt_root/log";
APT::Sandbox::User "root";
Debug::NoLocking "true";
APT::Architecture "$(dpkg --print-architecture)";
EOF
echo "deb [signed-by=$tmp/repo-key.gpg] file:$tmp/repo bookworm main" > "$apt_root/etc/apt/sources.list"
export APT_CONFIG="$apt_root/apt.conf"
apt-get update -q -o APT::Update::Error-Mode=any > "$tmp/apt-update.txt" 2>&1 || {
  cat "$tmp/apt-update.txt" >&2
  fail "apt-get update refused the signed repository"
}
candidate=$(apt-cache policy appban-agent | sed -n 's/^ *Candidate: //p')
[[ "$candidate" == "0.1.0-2" ]] || fail "APT offers appban-agent $candidate, not 0.1.0-2"
(cd "$tmp" && apt-get download -q appban-agent >/dev/null) || fail "apt-get download failed"
cmp -s "$tmp"/appban-agent_0.1.0-2_all.deb "$tmp"/v2/appban-agent_0.1.0-2_all.deb || fail "downloaded a different file"
# A repository whose index was changed after signing is refused.
cp -a "$tmp/repo" "$tmp/tampered"
sed -i 's/^Version: 0.1.0-2$/Version: 0.1.0-9/' "$tmp/tampered/dists/bookworm/main/binary-$(dpkg --print-architecture)/Packages"
echo "deb [signed-by=$tmp/repo-key.gpg] file:$tmp/tampered bookworm main" > "$apt_root/etc/apt/sources.list"
rm -rf "$apt_root/var/lib/apt/lists"/*
mkdir -p "$apt_root/var/lib/apt/lists/partial"
if apt-get update -q -o APT::Update::Error-Mode=any > "$tmp/apt-tampered.txt" 2>&1; then
  cat "$tmp/apt-tampered.txt" >&2
  fail "apt-get update accepted a tampered index"
fi
grep -qi 'hash sum mismatch\|File has unexpected size\|Hashes of expected file' "$tmp/apt-tampered.txt" ||
  { cat "$tmp/apt-tampered.txt" >&2; fail "the tampered index was refused for another reason"; }
unset APT_CONFIG

step "install into a scratch root"
root="$tmp/root"
mkdir -p "$root/var/lib/dpkg/info" "$root/var/lib/dpkg/updates" "$root/var/log"
# The dependencies (libc6, libssl3, …) count as installed: this machine has them. Only the
# status file is copied: no maintainer script or trigger of this machine's packages is there to run.
cp /var/lib/dpkg/status "$root/var/lib/dpkg/status"
touch "$root/var/lib/dpkg/available"
dpkg_root() { dpkg --root="$root" --force-script-chrootless --log="$tmp/dpkg.log" "$@"; }
dpkg_root -i "$tmp"/v1/appban_*.deb "$tmp"/v1/appban-server_*.deb "$tmp"/v1/appban-agent_*.deb > "$tmp/dpkg-install.txt" 2>&1 ||
  { cat "$tmp/dpkg-install.txt" >&2; fail "dpkg could not install the packages"; }
for package in appban appban-server appban-agent; do
  [[ "$(dpkg-query --admindir="$root/var/lib/dpkg" -W -f='${Status} ${Version}' "$package")" == "install ok installed 0.1.0-1" ]] ||
    fail "$package is not installed at 0.1.0-1"
done
[[ -x "$root/usr/bin/appban" ]] || fail "no /usr/bin/appban"
[[ -f "$root/lib/systemd/system/appban-server.service" && -f "$root/lib/systemd/system/appban-agent.service" ]] ||
  fail "the systemd units are missing"
grep -qx 'data_dir = "/var/lib/appban-server"' "$root/etc/appban/server.toml" || fail "server.toml has another data_dir"

step "the packaged configuration keeps the first admin token out of the journal"
# /etc/appban/server.toml as installed, its /var/lib/appban-server moved into the scratch directory.
sed "s|/var/lib/appban-server|$tmp/packaged|g" "$root/etc/appban/server.toml" > "$tmp/packaged.toml"
"$root/usr/bin/appban" server --config "$tmp/packaged.toml" --address 127.0.0.1 --port 0 --workers 1 \
  > "$tmp/packaged.log" 2>&1 &
packaged_pid=$!
for _ in $(seq 1 200); do
  grep -q 'Admin API token:' "$tmp/packaged.log" && break
  sleep 0.1
done
kill "$packaged_pid"
wait "$packaged_pid" || true
grep -q "Admin API token: in $tmp/packaged/first-admin-token (mode 0600" "$tmp/packaged.log" ||
  { cat "$tmp/packaged.log" >&2; fail "the packaged server did not say where it wrote the admin token"; }
packaged_token=$(cat "$tmp/packaged/first-admin-token")
[[ "$packaged_token" == t-* ]] || fail "the token file holds no admin token"
[[ "$(stat -c %a "$tmp/packaged/first-admin-token")" == 600 ]] || fail "the token file is not mode 0600"
! grep -qF "$packaged_token" "$tmp/packaged.log" || fail "the admin token was printed (it would be in the journal)"

step "the installed server and agent"
"$root/usr/bin/appban" server --data-dir "$tmp/server" --address 127.0.0.1 --port 0 --workers 1 > "$tmp/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 200); do
  grep -q 'Admin API token:' "$tmp/server.log" && break
  sleep 0.1
done
url=$(sed -n 's/^ *URL: *//p' "$tmp/server.log" | head -1)
admin=$(sed -n 's/^ *Admin API token: *//p' "$tmp/server.log" | head -1)
[[ -n "$url" && -n "$admin" ]] || { cat "$tmp/server.log" >&2; fail "the installed server did not start"; }
api() {
  curl -sS --fail-with-body --cacert "$tmp/server/tls/ca.pem" -H "Authorization: Bearer $admin" \
    -H 'Content-Type: application/json' "$@"
}
api -d '{"max_uses": 2, "ttl_seconds": 3600}' "$url/v1/admin/enrollment-tokens" |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["tokens"][0]["token"])' > "$tmp/enrollment.token"
chmod 0600 "$tmp/enrollment.token"
api -d '{}' "$url/v1/admin/publish" >/dev/null
"$root/usr/bin/appban" agent enroll --server "$url" --ca "$tmp/server/tls/ca.pem" --token-file "$tmp/enrollment.token" \
  --state-dir "$root/var/lib/appban" --hostname packaged-ws > "$tmp/enroll.txt" 2>&1 ||
  { cat "$tmp/enroll.txt" >&2; fail "the installed agent did not enrol"; }
[[ ! -e "$tmp/enrollment.token" ]] || fail "the token file was not deleted"
device_id=$(sed -n 's/^enrolled as \(d-[0-9a-f]*\).*/\1/p' "$tmp/enroll.txt")
[[ -n "$device_id" ]] || fail "no device id in: $(cat "$tmp/enroll.txt")"
agent_flags=(--state-dir "$root/var/lib/appban" --root "$root" --dpkg-admindir "$root/var/lib/dpkg"
  --wake-file "$root/run/appban/dpkg-changed")
"$root/usr/bin/appban" agent run "${agent_flags[@]}" > "$tmp/agent.log" 2>&1 &
agent_pid=$!
for _ in $(seq 1 300); do
  [[ -f "$root/etc/apt/apt.conf.d/50appban" ]] && grep -q '"ok"' "$root/var/lib/appban/status.json" 2>/dev/null && break
  sleep 0.1
done
[[ -f "$root/etc/apt/apt.conf.d/50appban" && -f "$root/etc/apt/preferences.d/appban" ]] ||
  { cat "$tmp/agent.log" >&2; fail "the running agent wrote no APT hook"; }
credential_before=$(md5sum < "$root/var/lib/appban/credential")

step "upgrade under the running agent"
dpkg_root -i "$tmp"/v2/appban_*.deb "$tmp"/v2/appban-server_*.deb "$tmp"/v2/appban-agent_*.deb > "$tmp/dpkg-upgrade.txt" 2>&1 ||
  { cat "$tmp/dpkg-upgrade.txt" >&2; fail "dpkg could not upgrade the packages"; }
[[ "$(dpkg-query --admindir="$root/var/lib/dpkg" -W -f='${Version}' appban-agent)" == "0.1.0-2" ]] || fail "not upgraded"
kill -0 "$agent_pid" || fail "the agent died during the upgrade"
[[ "$(md5sum < "$root/var/lib/appban/credential")" == "$credential_before" ]] || fail "the upgrade changed the credential"
# What systemd's try-restart does after the upgrade: the agent stops and starts with the new binary.
kill -TERM "$agent_pid"
wait "$agent_pid" || true
agent_pid=""
"$root/usr/bin/appban" agent once "${agent_flags[@]}" > "$tmp/once.txt" 2>&1 ||
  { cat "$tmp/once.txt" >&2; fail "the upgraded agent could not check in"; }
api "$url/v1/admin/devices/$device_id" | python3 -c '
import json, sys
device = json.load(sys.stdin)
assert device.get("hostname") == "packaged-ws", device
assert device.get("revoked_at") is None, device
' || fail "the server does not see the upgraded device as enrolled"

step "remove keeps the agent's state; purge deletes it and its hooks"
dpkg_root -r appban-agent > "$tmp/dpkg-remove.txt" 2>&1 || { cat "$tmp/dpkg-remove.txt" >&2; fail "dpkg -r failed"; }
[[ -f "$root/var/lib/appban/credential" ]] || fail "removing the package deleted the agent's state"
[[ ! -e "$root/lib/systemd/system/appban-agent.service" ]] || fail "the removed agent's unit is still there"
dpkg_root --purge appban-agent appban-server appban > "$tmp/dpkg-purge.txt" 2>&1 ||
  { cat "$tmp/dpkg-purge.txt" >&2; fail "dpkg --purge failed"; }
for path in /var/lib/appban /etc/apt/apt.conf.d/50appban /etc/apt/preferences.d/appban /etc/dpkg/dpkg.cfg.d/appban \
  /usr/bin/appban /etc/appban/server.toml /usr/share/appban; do
  [[ ! -e "$root$path" ]] || fail "$path is still there after purging"
done
for package in appban appban-server appban-agent; do
  status=$(dpkg-query --admindir="$root/var/lib/dpkg" -W -f='${Status}' "$package" 2>/dev/null || true)
  [[ -z "$status" || "$status" == "unknown ok not-installed" ]] || fail "$package is still known: $status"
done

[[ "$(md5sum < /var/lib/dpkg/status)" == "$host_status" ]] || fail "this machine's dpkg database changed"
echo "PASS: build, lintian, units, signed repository, install, upgrade under a running agent, remove, purge"
