#!/usr/bin/python3
"""The Python peer of bench/ios_inspect_compare.sh: what `appban inspect` reads from an IPA, done
with Debian's python3-macholib and the standard library: unzip, Info.plist (plistlib), every
slice's load commands (macholib), and each CodeDirectory's page hashes recomputed (hashlib)."""
import hashlib
import io
import plistlib
import struct
import sys
import zipfile

from macholib.MachO import MachO
from macholib.mach_o import LC_CODE_SIGNATURE


def check_pages(data, offset, sig_off, sig_size):
    blob = data[offset + sig_off: offset + sig_off + sig_size]
    count = struct.unpack(">I", blob[8:12])[0]
    checked = mismatched = 0
    for i in range(count):
        slot, at = struct.unpack(">II", blob[12 + 8 * i: 20 + 8 * i])
        if slot != 0 and not 0x1000 <= slot <= 0x1004:
            continue
        cd = blob[at:]
        hash_off, _, _, n_code = struct.unpack(">IIII", cd[16:32])
        code_limit = struct.unpack(">I", cd[32:36])[0]
        hash_size, hash_type, _, page_shift = cd[36], cd[37], cd[38], cd[39]
        algo = {1: hashlib.sha1, 2: hashlib.sha256, 3: hashlib.sha256, 4: hashlib.sha384}[hash_type]
        page = 1 << page_shift
        for p in range(n_code):
            start = p * page
            chunk = data[offset + start: offset + min(start + page, code_limit)]
            want = cd[hash_off + p * hash_size: hash_off + (p + 1) * hash_size]
            checked += 1
            mismatched += algo(chunk).digest()[:hash_size] != want
    return checked, mismatched


def main(path):
    with zipfile.ZipFile(path) as z:
        names = z.namelist()
        app = sorted({n.split("/")[1] for n in names if n.startswith("Payload/") and n.count("/") >= 2})[0]
        info = plistlib.loads(z.read(f"Payload/{app}/Info.plist"))
        exe = z.read(f"Payload/{app}/{info['CFBundleExecutable']}")
    macho = MachO.__new__(MachO)
    macho.graphident = None
    macho.filename = path
    macho.loader_path = "@loader_path"
    macho.fat = None
    macho.headers = []
    macho.allow_unknown_load_commands = True
    macho.load(io.BytesIO(exe))
    pages = mismatched = 0
    for header in macho.headers:
        for lc, cmd, _ in header.commands:
            if lc.cmd == LC_CODE_SIGNATURE:
                c, m = check_pages(exe, header.offset, cmd.dataoff, cmd.datasize)
                pages, mismatched = pages + c, mismatched + m
    print(f"{info['CFBundleIdentifier']}: {len(macho.headers)} slices, "
          f"{sum(len(h.commands) for h in macho.headers)} load commands, {pages} pages checked, {mismatched} mismatched")


if __name__ == "__main__":
    main(sys.argv[1])
