#!/usr/bin/env bash
# Writes small DEX seeds for the dex fuzzer into OUTDIR: androguard's small example DEX files and
# the classes.dex of its smallest example APK. Usage: fuzz/seeds/make_dex.sh OUTDIR
set -euo pipefail
out=${1:?usage: make_dex.sh OUTDIR}
examples=/usr/share/doc/androguard/examples
mkdir -p "$out"
[[ -d $examples ]] || exit 0
for dex in tests/Switch.dex tests/InterfaceCls.dex tests/FieldsTest.dex tests/StringTests.dex \
           tests/ExceptionHandling.dex dalvik/test/bin/classes.dex obfu/classes_tc_proguard.dex; do
  [[ -f $examples/$dex ]] && cp "$examples/$dex" "$out/seed-$(basename "$(dirname "$dex")")-$(basename "$dex")"
done
if [[ -f $examples/android/TC/bin/TC-debug.apk ]]; then
  unzip -p "$examples/android/TC/bin/TC-debug.apk" classes.dex >"$out/seed-tc-apk-classes.dex" 2>/dev/null || true
fi
exit 0
