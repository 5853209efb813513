#!/usr/bin/env bash
# Writes binary-XML seeds for the axml fuzzer into OUTDIR: the AndroidManifest.xml of androguard's
# small example APKs and androguard's collection of analyser-breaking manifests (tampered headers,
# string pools and namespaces). Usage: fuzz/seeds/make_axml.sh OUTDIR
set -euo pipefail
out=${1:?usage: make_axml.sh OUTDIR}
mkdir -p "$out"
examples=/usr/share/doc/androguard/examples
[[ -d $examples ]] || exit 0
for apk in com.politedroid_4 hello-world duplicate.permisssions_9999999 com.test.intent_filter a2dp.Vol_137 \
           com.example.android.wearable.wear.weardrawers; do
  [[ -f $examples/tests/$apk.apk ]] && unzip -p "$examples/tests/$apk.apk" AndroidManifest.xml >"$out/seed-$apk.axml"
done
for xml in "$examples"/axml/*.xml; do
  (($(stat -c %s "$xml") <= 32768)) && cp "$xml" "$out/seed-$(basename "$xml" .xml).axml"
done
exit 0
