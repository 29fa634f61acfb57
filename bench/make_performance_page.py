#!/usr/bin/env python3
"""Writes docs/performance.md from the speed records in bench/results/ (bench/records.py).

    python3 bench/make_performance_page.py           # rewrites docs/performance.md
    python3 bench/make_performance_page.py --check   # exit status 1 when the page is not what the records give

For each machine (CPU model) and instruction-set level the kernels ran, and each build, two tables: vit3d's
kernels against the FMA peak (records of rounds.py peak) and vit3d against its peers (records of
compare_peers.py); and for each machine, compiler, build type and compile flags, the compile times
(records of compile_time.py) and whether they meet their targets. A row comes from the newest record that
measured its case at its thread count there, and names that record; the list of records at the end gives
each one's file, vit3d commit and date. Smoke runs (--quick) and A/B runs are listed but not tabulated.
The page holds nothing but what the records hold (no time of writing), so the same records always give the
same page.
"""

from __future__ import annotations

import argparse
import difflib
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import records

PAGE = records.REPO_ROOT / "docs" / "performance.md"
COMMAND = "python3 bench/make_performance_page.py"
ISA_ORDER = {"avx512": 0, "avx2": 1, "generic": 2}
PEAK, PEERS, COMPILE = "rounds.py peak", "compare_peers.py", records.COMPILE_TIME
# compile_time.py's targets, set for a 2-core AMD Zen 3: case -> (median seconds below, peak memory in MB
# below or None, the optimisation flag they hold at or None for any).
COMPILE_TARGETS = {"load_model_forward": (15.0, 500.0, "-O2"), "umbrella": (5.0, None, None)}


@dataclass
class Row:
    """The entries of one case at one thread count, all from one record."""

    key: str  # the record's key on the page, R1, R2, ...
    group: str
    id: str
    threads: int
    entries: list[dict]


def machine_key(record: dict) -> tuple:
    cpu = record["machine"]["cpu"]
    return cpu["model_name"], cpu["vendor"], cpu.get("family"), cpu.get("model"), cpu.get("stepping")


def build_name(build: dict) -> str:
    options = build.get("options", {})
    text = f"{build['compiler_id']} {build['compiler_version']}, {build['build_type'] or 'no build type'}"
    flags = build["cxx_flags"] + (" -march=native" if options.get("VIT3D_BENCH_NATIVE") == "ON" else "")
    text += f", `{flags.strip()}`" if flags.strip() else ", no flags"
    if options.get("VIT3D_USE_BLAS") == "ON":
        text += ", linear layers on the BLAS"
    return text


def precision_of(case_id: str) -> str:
    """What a case computes in: its name says int8 and/or bf16, else float32."""
    named = [precision for precision in ("int8", "bf16") if precision in case_id]
    return " and ".join(named) or "float32"


def natural(text: str) -> list:
    """Sort key that puts N:197 before N:1024."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text)]


def number(value: float) -> str:
    if value >= 1000:
        return f"{value:,.0f}"
    return f"{value:.1f}" if value >= 10 else f"{value:.2f}" if value >= 1 else f"{value:.3g}"


def with_range(stats: dict) -> str:
    text = number(stats["median"])
    if stats["repetitions"] > 1:
        text += f" ({number(stats['min'])}–{number(stats['max'])})"
    return text


def percent(spread: dict, ranged: bool = True) -> str:
    text = f"{100 * spread['value']:.1f}%"
    if ranged and spread["min"] != spread["max"]:
        text += f" ({100 * spread['min']:.1f}–{100 * spread['max']:.1f}%)"
    return text


def ratio(spread: dict) -> str:
    text = f"{spread['value']:.2f}× {spread['peer']}"
    if spread["min"] != spread["max"]:
        text += f" ({spread['min']:.2f}–{spread['max']:.2f})"
    return text


def megabytes(entry: dict) -> float:
    return entry["peak_rss_bytes"] / 1e6


def compile_target(entry: dict, opt_level: str) -> str:
    """Whether a compile time meets its target (median seconds, peak memory); "–" where none applies."""
    target = COMPILE_TARGETS.get(entry["id"])
    if target is None or "median" not in entry or target[2] not in (None, opt_level):
        return "–"
    seconds, memory, _ = target
    missed = []
    if entry["median"] >= seconds:
        missed.append(f"{number(entry['median'])} s")
    if memory is not None and megabytes(entry) >= memory:
        missed.append(f"{megabytes(entry):,.0f} MB")
    if missed:
        return "no: " + ", ".join(missed)
    return f"yes (< {seconds:g} s" + (f", < {memory:g} MB)" if memory is not None else ")")


def targets_text() -> str:
    return "; ".join(f"`{case}` under {seconds:g} s" + (f" and {memory:g} MB" if memory is not None else "")
                     + (f" at `{opt}`" if opt else " at any optimisation level")
                     for case, (seconds, memory, opt) in COMPILE_TARGETS.items())


def cell(entry: dict | None) -> str:
    if entry is None:
        return "–"
    return number(entry["median"]) if "median" in entry else entry["note"].replace("|", "/")


def table(header: list[str], rows: list[list[str]], right: int) -> list[str]:
    """A markdown table whose first columns are left-aligned and the last `right` ones right-aligned."""
    align = ["---"] * (len(header) - right - 1) + ["---:"] * right + ["---"]
    return ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|",
            *("| " + " | ".join(r) + " |" for r in rows)]


def compile_build_name(record: dict) -> str:
    """The compiler, build type and the flags a compile_time.py record compiled with (an --opt replaces the
    build type's level, so the build's own flags would not say)."""
    build, flags = record["build"], record["settings"]["flags"]
    return (f"{build['compiler_id']} {build['compiler_version']}, {build['build_type'] or 'no build type'}, "
            + (f"`{flags}`" if flags.strip() else "no flags"))


class Page:
    def __init__(self, by_file: dict[str, dict]):
        # Oldest first, so that a newer record's rows replace an older one's.
        self.order = sorted(by_file, key=lambda name: (by_file[name]["created_utc"], name))
        self.records = by_file
        self.keys = {name: f"R{i + 1}" for i, name in enumerate(self.order)}
        self.groups: dict[str, int] = {}  # group -> order of first appearance
        # (machine, isa, build, tool) -> (group, id, threads) -> Row
        self.sections: dict[tuple, dict[tuple, Row]] = {}
        # compile_time.py: (machine, opt level, compiler, build type and flags) -> case id -> Row
        self.compile_sections: dict[tuple, dict[str, Row]] = {}
        self.compile_cases: dict[str, int] = {}  # case id -> order of first appearance
        for name in self.order:
            record = by_file[name]
            if record["quick"]:
                continue
            if record["tool"] == COMPILE:
                section = self.compile_sections.setdefault(
                    (machine_key(record), record["settings"]["opt_level"], compile_build_name(record)), {})
                for entry in record["cases"]:
                    self.compile_cases.setdefault(entry["id"], len(self.compile_cases))
                    section[entry["id"]] = Row(self.keys[name], entry["group"], entry["id"], 1, [entry])
                continue
            if record["tool"] not in (PEAK, PEERS):
                continue
            for isa, row in self.rows_of(name, record):
                section = (machine_key(record), isa, build_name(record["build"]), record["tool"])
                self.sections.setdefault(section, {})[(row.group, row.id, row.threads)] = row

    def rows_of(self, name: str, record: dict):
        """(isa, Row) for each case and thread count of a record. A compare_peers.py row holds every
        implementation and takes the level vit3d ran; a rounds.py row is one benchmark at one level."""
        rows: dict[tuple, tuple[str, Row]] = {}
        fallback = record["settings"].get("isa_cap") or record["machine"]["isa_supported"]
        for entry in record["cases"]:
            self.groups.setdefault(entry["group"], len(self.groups))
            key = (entry["id"], entry["threads"]) + ((entry.get("isa"),) if record["tool"] == PEAK else ())
            if key not in rows:
                rows[key] = (fallback, Row(self.keys[name], entry["group"], entry["id"], entry["threads"], []))
            isa, row = rows[key]
            row.entries.append(entry)
            if entry["impl"] == "vit3d" and entry.get("isa"):
                rows[key] = (entry["isa"], row)
        return rows.values()

    def status(self, name: str) -> str:
        record = self.records[name]
        if record["quick"]:
            return "smoke run (--quick): not tabulated"
        if record["tool"] not in (PEAK, PEERS, COMPILE):
            return "A/B of two builds: not tabulated"
        key = self.keys[name]
        shown = any(row.key == key for sections in (self.sections, self.compile_sections)
                    for rows in sections.values() for row in rows.values())
        return "tabulated" if shown else "superseded by newer records"

    def render(self) -> str:
        lines = [
            "# Performance",
            "",
            f"<!-- Generated by `{COMMAND}` from bench/results/*.json: do not edit. -->",
            "",
            f"This page is generated: `{COMMAND}` writes it from the speed records in `bench/results/`, and",
            "the test `bench_records` (ctest) fails when the page and the records disagree. To change it, record a",
            "run (`bench/README.md`, \"Recording a run\") and regenerate it; do not edit it by hand.",
            "",
            "How to read it:",
            "",
            "- A figure is the median over the rounds of one run; brackets give the range over the rounds.",
            "- Share of peak: the rate over the threads times one core's FMA peak at the level the kernels ran,",
            "  measured in the same run (`bench_gemm`'s `fma_peak` and `fma_peak_avx2`): in the same round for",
            "  `rounds.py peak`, just before the row for `compare_peers.py`.",
            "- Precision: what the case computes in, float32 unless its name says int8 or bf16. int8 rates are",
            "  GOP/s (two per multiply-add), read against the same float FMA peak: a share above 100% is the",
            "  factor by which the integer path outruns any float product on that core.",
            "- vit3d vs best peer: the fastest peer's median time over vit3d's (above 1: vit3d is faster), and",
            "  its range over the rounds.",
            "- A row comes from the newest record that measured its case at its thread count on that machine,",
            "  level and build; its last column names the record, listed under \"Records\" with its file, vit3d",
            "  commit and date.",
        ]
        if self.compile_sections:
            lines += [
                "- Compile time (`bench/compile_time.py`, cases in `bench/README.md`): the wall seconds of one",
                "  compiler run on one file with the flags a CMake consumer of vit3d::io gets (median over the",
                "  repetitions, and range), and the peak memory of the compiler's processes in MB (10⁶ bytes).",
                f"  Targets, set for a 2-core AMD Zen 3: {targets_text()}.",
                "  The column \"target\" holds the median and the peak memory against them.",
            ]
        if not self.sections and not self.compile_sections:
            lines += ["", "No records are tabulated yet."]
        machines: dict[tuple, list[tuple]] = {}
        for section in [*self.sections, *self.compile_sections]:
            machines.setdefault(section[0], []).append(section)
        for machine in sorted(machines, key=lambda m: [str(part) for part in m]):
            lines += self.render_machine(machine, machines[machine])
        lines += self.render_records()
        return "\n".join(lines) + "\n"

    def rows_of_section(self, section: tuple) -> dict:
        return self.sections[section] if section in self.sections else self.compile_sections[section]

    def render_machine(self, machine: tuple, sections: list[tuple]) -> list[str]:
        model_name, vendor, family, model, stepping = machine
        # The CPU's description from its newest tabulated record.
        newest = max((row.key for s in sections for row in self.rows_of_section(s).values()),
                     key=lambda k: int(k[1:]))
        facts = next(self.records[n] for n, k in self.keys.items() if k == newest)["machine"]
        cpu = facts["cpu"]
        identity = ", ".join(f"{name} {value}" for name, value in
                             (("family", family), ("model", model), ("stepping", stepping)) if value is not None)
        caches = ", ".join(f"{level} {size}" for level, size in cpu.get("caches", {}).items())
        lines = ["", f"## {model_name}" + (f" ({identity})" if identity else ""), "",
                 f"{vendor}; {cpu['cores']} cores, {cpu['logical_cpus']} logical CPUs"
                 + (f"; {caches}" if caches else "") + f"; vit3d's best level here: {facts['isa_supported']}.",
                 f"Flags: {' '.join(cpu['flags']) or 'none listed'}."]
        speed = [s for s in sections if s in self.sections]
        for isa, build in sorted({(s[1], s[2]) for s in speed}, key=lambda ib: (ISA_ORDER.get(ib[0], 9), ib)):
            lines += ["", f"### {isa} kernels; {build}"]
            if ISA_ORDER.get(isa, 9) > ISA_ORDER.get(facts["isa_supported"], 9):
                lines += ["", f"Below this CPU's best level: vit3d capped through `VIT3D_ISA`, and in the peers' "
                              f"table the peers too (`compare_peers.py --isa {isa}`)."]
            for tool, title in ((PEAK, "vit3d's kernels against the FMA peak"), (PEERS, "vit3d against its peers")):
                rows = self.sections.get((machine, isa, build, tool))
                if rows:
                    lines += ["", f"#### {title}"]
                    lines += self.render_peak(rows) if tool == PEAK else self.render_peers(rows)
        for section in sorted(s for s in sections if s in self.compile_sections):
            lines += ["", f"### Compile time; {section[2]}"]
            lines += self.render_compile(self.compile_sections[section], section[1])
        return lines

    def sorted_rows(self, rows: dict[tuple, Row]) -> list[Row]:
        return sorted(rows.values(), key=lambda r: (self.groups[r.group], natural(r.id), r.threads))

    def render_peak(self, rows: dict[tuple, Row]) -> list[str]:
        body = []
        for row in self.sorted_rows(rows):
            entry = row.entries[0]
            value = with_range(entry) + ("" if entry["unit"] == "GFLOP/s" else f" {entry['unit']}") \
                if "median" in entry else entry["note"]
            share = percent(entry["share_of_peak"]) if "share_of_peak" in entry else "–"
            body.append([f"`{row.id}`", str(row.threads), precision_of(row.id), value, share, row.key])
        return [""] + table(["case", "threads", "precision", "GFLOP/s", "share of peak", "record"], body, right=4)

    def render_peers(self, rows: dict[tuple, Row]) -> list[str]:
        lines = []
        by_group: dict[str, list[Row]] = {}
        for row in self.sorted_rows(rows):
            by_group.setdefault(row.group, []).append(row)
        for group, group_rows in by_group.items():
            impls: list[str] = []
            for row in group_rows:
                impls += [e["impl"] for e in row.entries if e["impl"] not in impls]
            seen = list(impls)  # vit3d, then its variants, then the peers, each in the order first met
            impls.sort(key=lambda impl: (impl != "vit3d", not impl.startswith("vit3d"), seen.index(impl)))
            first = next(e for row in group_rows for e in row.entries if e["impl"] == impls[0])
            direction = {"higher": ", higher is better", "lower": ", lower is better"}.get(first["better"], "")
            shares = any("share_of_peak" in e for row in group_rows for e in row.entries if e["impl"] == "vit3d")
            header = ["case", "threads", *impls, "vit3d vs best peer"] + (["vit3d share of peak"] if shares else [])
            body = []
            for row in group_rows:
                by_impl = {e["impl"]: e for e in row.entries}
                # vit3d's main column ("vit3d", or "vit3d-int8" in the low-precision table) holds the ratio.
                vit3d = next((e for e in row.entries if e["impl"].startswith("vit3d") and "vs_best_peer" in e),
                             by_impl.get("vit3d", {}))
                cells = [f"`{row.id}`", str(row.threads), *(cell(by_impl.get(i)) for i in impls),
                         ratio(vit3d["vs_best_peer"]) if "vs_best_peer" in vit3d else "–"]
                if shares:
                    cells.append(percent(vit3d["share_of_peak"], ranged=False) if "share_of_peak" in vit3d else "–")
                body.append(cells + [row.key])
            precisions = sorted({precision_of(row.id) for row in group_rows})
            lines += ["", f"{group} ({', '.join(precisions)}), {first['unit']}{direction}:", ""]
            lines += table(header + ["record"], body, right=len(header) - 1)
        return lines

    def render_compile(self, rows: dict[str, Row], opt_level: str) -> list[str]:
        body = []
        for row in sorted(rows.values(), key=lambda r: self.compile_cases[r.id]):
            entry = row.entries[0]
            measured = "median" in entry
            body.append([f"`{row.id}`", with_range(entry) if measured else entry["note"].replace("|", "/"),
                         f"{megabytes(entry):,.0f}" if measured else "–", compile_target(entry, opt_level), row.key])
        return [""] + table(["case", "seconds", "peak memory, MB", "target", "record"], body, right=3)

    def render_records(self) -> list[str]:
        lines = ["", "## Records", ""]
        if not self.order:
            return lines + ["None yet: `bench/results/` holds no record."]
        body = []
        for name in self.order:
            record = self.records[name]
            commit = record["vit3d"]["commit"][:12] + (" (modified)" if record["vit3d"]["dirty"] else "")
            peaks = "; ".join(f"{level} {with_range(stats)}" for level, stats in record["machine"]["fma_peak"].items())
            peaks = peaks or "–"  # compile_time.py measures none
            date = record["created_utc"].replace("T", " ").removesuffix("Z")
            body.append([self.keys[name], f"`{name}`", record["tool"], f"`{commit}`", date, peaks, self.status(name)])
        return lines + table(["", "file (bench/results/)", "tool", "vit3d commit", "date (UTC)",
                              "FMA peak of one core, GFLOP/s", "on this page"], body, right=0)


def render(results_dir: Path = records.RESULTS_DIR) -> str:
    return Page(records.load_all(results_dir)).render()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results-dir", type=Path, default=records.RESULTS_DIR)
    parser.add_argument("--output", type=Path, default=PAGE)
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 (with a diff) when the page differs from what the records give")
    args = parser.parse_args(argv)
    try:
        text = render(args.results_dir)
    except records.RecordError as error:
        print(f"make_performance_page.py: {error}", file=sys.stderr)
        return 2
    if args.check:
        current = args.output.read_text() if args.output.exists() else ""
        if current == text:
            return 0
        sys.stderr.writelines(difflib.unified_diff(current.splitlines(True), text.splitlines(True),
                                                   str(args.output), "generated"))
        print(f"{args.output} is not what the records give: run {COMMAND}", file=sys.stderr)
        return 1
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
