#!/usr/bin/env bash
# Writes seeds for the signing fuzzer into OUTDIR, cut from androguard's copies of apksig's test
# APKs: APK Signing Blocks (v2, v3, lineage, unknown pairs), v1 PKCS#7 signature block files
# (RSA, DSA, EC, two SignerInfos, non-DER certificate) and a bare certificate.
# Usage: fuzz/seeds/make_signing.sh OUTDIR
set -euo pipefail
out=${1:?usage: make_signing.sh OUTDIR}
mkdir -p "$out"
apksig=/usr/share/doc/androguard/examples/signing/apksig
[[ -d $apksig ]] || exit 0
command -v python3 >/dev/null || exit 0
python3 - "$apksig" "$out" <<'PY'
import os, struct, sys, zipfile
apksig, out = sys.argv[1], sys.argv[2]

def signing_block(data):
    eocd = data.rfind(b'PK\x05\x06')
    if eocd < 0:
        return None
    cd = struct.unpack('<I', data[eocd + 16:eocd + 20])[0]
    if cd < 24 or data[cd - 16:cd] != b'APK Sig Block 42':
        return None
    size = struct.unpack('<Q', data[cd - 24:cd - 16])[0]
    start = cd - size - 8
    return data[start:cd] if 0 <= start < cd else None

blocks = ['golden-unaligned-v2v3-lineage-out.apk', 'golden-unaligned-v1v2v3-out.apk',
          'v2-only-unknown-pair-in-apk-sig-block.apk', 'v2-only-two-signers.apk',
          'v3-only-with-ecdsa-sha256-p256.apk', 'v2-only-with-dsa-sha256-1024.apk',
          'v2-only-apk-sig-block-size-mismatch.apk']
for name in blocks:
    path = os.path.join(apksig, name)
    if os.path.exists(path):
        block = signing_block(open(path, 'rb').read())
        if block and len(block) <= 16384:
            open(os.path.join(out, 'block-' + name[:-4]), 'wb').write(block)

v1 = ['v1-only-with-rsa-1024.apk', 'v1-only-with-dsa-sha256-1.2.840.10040.4.1-1024.apk',
      'v1-only-with-ecdsa-sha256-1.2.840.10045.4.3.2-p256.apk', 'v1-only-pkcs7-cert-bag-first-cert-not-used.apk',
      'v1-only-with-rsa-1024-cert-not-der.apk', 'v1-only-with-signed-attrs-signerInfo1-good-signerInfo2-good.apk']
for name in v1:
    path = os.path.join(apksig, name)
    if not os.path.exists(path):
        continue
    with zipfile.ZipFile(path) as z:
        for entry in z.namelist():
            if entry.startswith('META-INF/') and entry.endswith(('.RSA', '.DSA', '.EC')):
                open(os.path.join(out, 'pkcs7-' + name[:-4]), 'wb').write(z.read(entry))
                break
PY
if command -v openssl >/dev/null && [[ -f $apksig/ec-p256.x509.pem ]]; then
  openssl x509 -in "$apksig/ec-p256.x509.pem" -outform DER -out "$out/cert-ec-p256.der"
fi
exit 0
