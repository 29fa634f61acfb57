#!/usr/bin/env python3
"""Checks that the C++ program of README.md's quickstart ("3. Call it from C++") is, line for line, the file
bench/compile_time/load_model_forward.cpp (after its leading comment and the blank line that ends it), whose
compile time bench/compile_time.py
measures: the figure the docs give is then the program the README shows. Exits 1 naming the first difference.
Usage: python3 tests/docs/check_quickstart.py"""
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CASE = ROOT / "bench" / "compile_time" / "load_model_forward.cpp"


def main():
    readme = (ROOT / "README.md").read_text()
    section = readme.find("### 3. Call it from C++")
    block = re.search(r"^```cpp\n(.*?)^```", readme[section:], flags=re.S | re.M) if section >= 0 else None
    if not block:
        print("README.md: no ```cpp block under \"### 3. Call it from C++\"")
        return 1
    shown = block.group(1).splitlines()
    measured = CASE.read_text().splitlines()
    while measured and measured[0].startswith("//"):
        measured.pop(0)
    if measured and not measured[0].strip():
        measured.pop(0)
    for number, (a, b) in enumerate(zip(shown, measured), start=1):
        if a != b:
            print(f"line {number} of the program differs:\n  README.md: {a}\n  {CASE.relative_to(ROOT)}: {b}")
            return 1
    if len(shown) != len(measured):
        print(f"README.md's program has {len(shown)} lines, {CASE.relative_to(ROOT)} {len(measured)}")
        return 1
    print(f"README.md's quickstart program is {CASE.relative_to(ROOT)} ({len(shown)} lines)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
