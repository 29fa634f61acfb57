#!/usr/bin/env python3
"""Checks the relative links of README.md and docs/*.md: each must name a file or folder that exists and,
with a #fragment into a Markdown file, one of its headings (as GitHub turns headings into anchors).
Prints each broken link and exits 1 if there is one. Usage: python3 tests/docs/check_links.py"""
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")


def without_code_blocks(text):
    return re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)


def anchors(path):
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens, -1, -2 on repeats."""
    seen, out = {}, set()
    for heading in re.findall(r"^#{1,6} +(.+?) *$", without_code_blocks(path.read_text()), flags=re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")
        out.add(f"{slug}-{seen[slug]}" if slug in seen else slug)
        seen[slug] = seen.get(slug, 0) + 1
    return out


def main():
    broken, checked = [], 0
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for target in LINK.findall(re.sub(r"`[^`\n]*`", "", without_code_blocks(page.read_text()))):
            if re.match(r"[a-z]+:", target):
                continue  # https:, mailto:
            checked += 1
            file, _, fragment = target.partition("#")
            dest = (page.parent / file).resolve() if file else page
            if not dest.exists():
                broken.append(f"{page.relative_to(ROOT)}: {target}: no such file")
            elif fragment and dest.suffix == ".md" and fragment not in anchors(dest):
                broken.append(f"{page.relative_to(ROOT)}: {target}: no heading #{fragment}")
    print("\n".join(broken) if broken else f"{checked} relative links, all resolve")
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
