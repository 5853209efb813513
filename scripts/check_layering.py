#!/usr/bin/env python3
"""Fails when an include runs back up the dependency graph.

Each part of src/appban/ is declared in the top CMakeLists.txt as `appban_part(NAME DEPS...)`,
where DEPS name the parts it builds on (appban_X). A file of part P may include headers of P and
of every part P depends on, directly or through another part; anything else is an arrow pointing
the wrong way (or a dependency missing from CMakeLists.txt) and is reported with file and line.
Usage: scripts/check_layering.py [SOURCE_DIR]
"""
import pathlib
import re
import sys

root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else pathlib.Path(__file__).resolve().parent.parent)
cmake = (root / "CMakeLists.txt").read_text()

direct = {}
for match in re.finditer(r"^appban_part\((\w+)([^)]*)\)", cmake, re.MULTILINE):
    name, args = match.group(1), match.group(2)
    direct[name] = {dep[len("appban_"):] for dep in args.split() if dep.startswith("appban_")}
if not direct:
    sys.exit(f"layering: no appban_part(...) declarations found in {root / 'CMakeLists.txt'}")

def closure(part, seen=None):
    seen = set() if seen is None else seen
    for dep in direct.get(part, ()):
        if dep not in seen:
            seen.add(dep)
            closure(dep, seen)
    return seen

# A cycle in the declarations is itself a violation: arrows must point one way.
problems = []
for part in direct:
    if part in closure(part):
        problems.append(f"CMakeLists.txt: part '{part}' depends on itself through {sorted(direct[part])}")

include = re.compile(r'^\s*#\s*include\s+"appban/(\w+)/')
src = root / "src" / "appban"
checked = 0
for path in sorted(src.rglob("*")):
    if path.suffix not in (".h", ".cc") or path.parent == src:
        continue
    part = path.relative_to(src).parts[0]
    if part not in direct:
        problems.append(f"{path.relative_to(root)}: folder '{part}' is not declared with appban_part")
        continue
    allowed = closure(part) | {part}
    for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
        m = include.match(line)
        if m and m.group(1) not in allowed:
            problems.append(f"{path.relative_to(root)}:{number}: part '{part}' includes '{m.group(1)}', "
                            f"which it does not depend on (allowed: {', '.join(sorted(allowed))})")
    checked += 1

for problem in problems:
    print(problem)
print(f"layering: {checked} files, {len(direct)} parts, {len(problems)} violations")
sys.exit(1 if problems else 0)
