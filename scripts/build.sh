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
# ccache keeps compiled objects outside the clone (~/.cache/ccache), so a fresh clone, another
# work tree or CI on the same machine reuses them. Paths are made relative to the tree and the
# build directory is left out of the hash, so two clones share every hit.
if command -v ccache >/dev/null; then
  export CCACHE_DIR=${CCACHE_DIR:-$HOME/.cache/ccache}
  export CCACHE_BASEDIR=$PWD CCACHE_NOHASHDIR=1 CCACHE_MAXSIZE=${CCACHE_MAXSIZE:-20G}
  flags+=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)
fi
if [[ ! -f "$dir/build.ninja" ]]; then
  cmake -S . -B "$dir" -G Ninja "${flags[@]}" >/dev/null
fi
cmake --build "$dir" -- --quiet -j"$(nproc)"
