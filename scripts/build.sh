#!/usr/bin/env bash
# Configures and builds appban. Usage: scripts/build.sh [release|sanitize|fuzz]  (default release)
# Build trees: build/ (release), build-sanitize/ (ASan+UBSan), build-fuzz/ (clang, libFuzzer).
set -euo pipefail
cd "$(dirname "$0")/.."
flavour=${1:-release}
case "$flavour" in
  release)  dir=build;          flags=(-DCMAKE_BUILD_TYPE=RelWithDebInfo) ;;
  sanitize) dir=build-sanitize; flags=(-DCMAKE_BUILD_TYPE=Debug -DAPPBAN_SANITIZE=ON -DAPPBAN_BENCH=OFF) ;;
  fuzz)     dir=build-fuzz;     flags=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DAPPBAN_FUZZ=ON -DAPPBAN_TESTS=OFF
                                       -DAPPBAN_BENCH=OFF -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_C_COMPILER=clang) ;;
  *) echo "usage: $0 [release|sanitize|fuzz]" >&2; exit 2 ;;
esac
if [[ ! -f "$dir/build.ninja" ]]; then
  cmake -S . -B "$dir" -G Ninja "${flags[@]}" >/dev/null
fi
cmake --build "$dir" -- --quiet -j"$(nproc)"
