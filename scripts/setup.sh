#!/usr/bin/env bash
# Installs every Debian package that building, running and testing appban needs.
# Idempotent: when everything is present it prints nothing and touches nothing.
# Usage: scripts/setup.sh [--run|--test|--package]  (--run adds the sample APKs the main job
#        inspects; --test adds the tools the test suite uses; --package the packaging tools)
set -euo pipefail

build_packages=(
  cmake ninja-build g++ pkg-config ccache
  libssl-dev zlib1g-dev libdeflate-dev libsqlite3-dev libjemalloc-dev
  nlohmann-json3-dev libcli11-dev libspdlog-dev libfmt-dev libtomlplusplus-dev libboost-dev
  # The PostgreSQL backend of the store links libpq (docs/postgresql.md).
  libpq-dev
)
test_packages=(
  clang libclang-rt-14-dev libgtest-dev libgmock-dev libbenchmark-dev
  # scripts/format.sh --check pins this version: another one formats some constructs differently.
  clang-format-14
  # Real Android tools for building and cross-checking fixtures, and androguard's example APKs.
  # (Debian's "dx" package is OpenDX, not the Android dexer: DEX fixtures are assembled with smali.)
  androguard apktool aapt apksigner zipalign dexdump libsmali-java android-framework-res openjdk-17-jdk-headless
  zip unzip openssl python3 python3-jsonschema
  # Apple's device-management schema (YAML) the MDM emulator validates commands and profiles with.
  libyaml-cpp-dev
  # The agent's tests: real dpkg/APT in scratch roots, dpkg-scanpackages for a local repository,
  # and a real Flatpak user installation built offline.
  dpkg-dev flatpak
  # Rendering the HTML report, and the web console's browser test (tests/console), in a real browser.
  chromium
  # iOS fixtures (tests/fixtures/ios/build.sh): ld64.lld links and signs Mach-O ad hoc, llvm-lipo
  # makes universal files, llvm-objdump/llvm-nm cross-check them.
  lld-14 llvm-14
  # bench/ios_inspect_compare.sh's Python peer (macholib reads Mach-O load commands).
  python3-macholib
  # plistutil (libplist, an independent plist implementation): the plist reader is cross-checked
  # against its binary and XML output (src/appban/plist/plist_test.cc).
  libplist-utils
  # The store tests start a private PostgreSQL 15 (initdb/pg_ctl in a temp directory, Unix socket
  # only; as root they run it as `nobody`): src/appban/store/postgres_test_cluster.h.
  postgresql-15
  # The SQLite locking test reads the server's database from another process, as an operator would.
  sqlite3
)
# Building the Debian packages and their APT repository (packaging/, docs/packaging.md); the
# test suite builds, lints, installs and purges them.
package_packages=(dpkg-dev binutils lintian apt-utils gnupg curl systemd)
test_packages+=("${package_packages[@]}")
# The identity tests run a real OpenID Connect provider (oidc-provider from npm, versions pinned in
# tests/oidc/package-lock.json) with node; Debian's nodejs and npm unless a node is already there.
if [[ "${1:-}" == "--test" ]] && ! command -v node >/dev/null; then
  test_packages+=(nodejs npm)
fi

# Installs each test tree's node_modules exactly as its lock file says (npm ci), once per lock file:
# tests/oidc (oidc-provider, the identity tests), tests/console (puppeteer-core, which drives
# Debian's chromium in the web console's browser test) and tests/fixtures/ios/npm (real
# Apple-signed files the iOS tests read: the darwin binaries of sentry-cli and esbuild, and
# Smartlook's SDK xcframeworks from its React Native wrapper; the darwin packages say
# "os": ["darwin"], so npm ci needs --force there to unpack them on Linux; nothing in them is run).
install_test_node_modules() {
  local root tests_dir dir force
  root="$(cd "$(dirname "$0")/.." && pwd)"
  for tests_dir in "$root/tests/oidc" "$root/tests/console" "$root/tests/fixtures/ios/npm"; do
    dir="$tests_dir/node_modules"
    force=()
    [[ "$tests_dir" == */ios/npm ]] && force=(--force)
    if [[ ! -f "$dir/.package-lock.json" ]] || ! cmp -s <(sed -n '/"packages"/,$p' "$tests_dir/package-lock.json" | sha256sum) "$dir/.appban-lock-hash" 2>/dev/null; then
      echo "setup: npm ci in ${tests_dir#"$root"/}" >&2
      (cd "$tests_dir" && npm ci "${force[@]}" --no-audit --no-fund --loglevel=error >/dev/null)
      sed -n '/"packages"/,$p' "$tests_dir/package-lock.json" | sha256sum > "$dir/.appban-lock-hash"
    fi
  done
}

wanted=("${build_packages[@]}")
if [[ "${1:-}" == "--run" ]]; then
  wanted+=(androguard)
fi
if [[ "${1:-}" == "--test" ]]; then
  wanted+=("${test_packages[@]}")
fi
if [[ "${1:-}" == "--package" ]]; then
  wanted+=("${package_packages[@]}")
fi

missing=()
for pkg in "${wanted[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$pkg")
done
if ((${#missing[@]} == 0)); then
  [[ "${1:-}" == "--test" ]] && install_test_node_modules
  exit 0
fi

echo "setup: installing ${missing[*]}" >&2
sudo_cmd=()
[[ $(id -u) -eq 0 ]] || sudo_cmd=(sudo)
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
[[ "${1:-}" == "--test" ]] && install_test_node_modules
exit 0
