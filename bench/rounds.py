#!/usr/bin/env python3
"""Google Benchmark runs in interleaved rounds, for a shared machine whose speed moves from minute to minute.

Two uses, both printing medians over rounds and writing one record to bench/results/ (bench/records.py):

  share of peak: each round runs bench_gemm's FMA peak and the chosen benches in the same minute, and every
  result is read against that round's peak (AVX-512 peak for the avx512 level, AVX2 peak for avx2), times
  the benchmark's threads:

    python3 bench/rounds.py peak --build build-bench --rounds 5 --isa avx512 avx2 \\
        --bench bench_gemm='vit3d_packed/.*threads:1' \\
        --bench bench_attention='attention/fused/B:1/N:(1024|4096)/threads:[12]/'

  A/B: the same benches from two build directories, alternating which goes first, and the ratio B/A of
  each round (for the counter given, GFLOPs by default; real_time if the bench has no such counter); the
  FMA peak is measured once a round, with build B:

    python3 bench/rounds.py ab --builds OLD_BUILD NEW_BUILD --rounds 6 --bench bench_gemm='vit3d_packed_cold/'

Run it alone on the machine, like every bench.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

import records

# Units and direction of the counters the benches write, for the record.
COUNTER_UNITS = {"GFLOPs": ("GFLOP/s", "higher"), "GOPs": ("GOP/s", "higher"),
                 "ms_per_image": ("ms per image", "lower"), "s_per_volume": ("s per volume", "lower"),
                 "tokens_per_s": ("tokens/s", "higher"), "GB/s": ("GB/s", "higher")}


def run_bench(build: Path, bench: str, pattern: str, min_time: float,
              env: dict[str, str]) -> tuple[dict[str, dict], dict]:
    """The benchmarks of one run (names without '/real_time') and the run's context."""
    exe = build / "bench" / bench
    if not exe.exists():
        sys.exit(f"rounds.py: {exe} does not exist (build the target {bench} in {build})")
    proc = subprocess.run([str(exe), f"--benchmark_filter={pattern}", "--benchmark_format=json",
                           f"--benchmark_min_time={min_time:g}"], env={**os.environ, **env},
                          capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"rounds.py: {exe.name} failed ({proc.returncode}): {proc.stderr.strip()[-400:]}")
    try:
        output = json.loads(proc.stdout)
        benchmarks = output["benchmarks"]
    except (json.JSONDecodeError, KeyError):
        sys.exit(f"rounds.py: {exe.name} --benchmark_filter={pattern} printed no JSON results")
    return {b["name"].removesuffix("/real_time"): b for b in benchmarks}, output.get("context", {})


def value(entry: dict, counter: str) -> float:
    return float(entry[counter]) if counter in entry else float(entry["real_time"])


def unit_of(entry: dict, counter: str) -> tuple[str, str | None]:
    if counter in entry:
        return COUNTER_UNITS.get(counter, (counter, None))
    return entry.get("time_unit", "ns"), "lower"


def parse_benches(items: list[str]) -> list[tuple[str, str]]:
    benches = []
    for item in items:
        name, sep, pattern = item.partition("=")
        if not sep or not name or not pattern:
            sys.exit(f"rounds.py: --bench expects EXECUTABLE=REGEX, got {item!r}")
        benches.append((name, pattern))
    return benches


class Peaks:
    """The FMA peaks measured during the run: level -> GFLOP/s of each measurement, and the CPU's best
    level as the benches report it."""

    def __init__(self):
        self.samples: dict[str, list[float]] = {}
        self.isa_supported = "unknown"

    def measure(self, build: Path, min_time: float, env: dict[str, str]) -> dict[str, float]:
        entries, context = run_bench(build, "bench_gemm", "^fma_peak(_avx2)?/", min_time, env)
        self.isa_supported = records.benchmark_isa(context)[1] or self.isa_supported
        peaks = records.fma_peaks(entries)
        for level, gflops in peaks.items():
            self.samples.setdefault(level, []).append(gflops)
        return peaks

    def record(self) -> dict:
        return {level: records.stats(samples) for level, samples in self.samples.items()}


class Case:
    """One benchmark at one level (and, in an A/B, one build): its value in every round."""

    def __init__(self, name: str, isa: str | None, build: str | None, unit: tuple[str, str | None]):
        self.name, self.isa, self.build, self.unit = name, isa, build, unit
        self.values: list[float] = []
        self.shares: list[float] = []
        self.iterations = 0

    def add(self, entry: dict, counter: str, peak: float | None, threads: int) -> None:
        self.values.append(value(entry, counter))
        self.iterations += int(entry.get("iterations", 0))
        # int8 GOP/s (2 per multiply-add) are read against the float FMA peak too: a share above 100% is
        # the factor by which the integer path outruns any float product.
        if peak and counter in entry and counter in ("GFLOPs", "GOPs"):
            self.shares.append(self.values[-1] / (threads * peak))

    def record(self) -> dict:
        case_id, threads = records.threads_of(self.name)
        entry = {"id": case_id, "group": case_id.split("/")[0], "impl": "vit3d", "label": self.name,
                 "threads": threads, "isa": self.isa, "unit": self.unit[0], "better": self.unit[1],
                 **records.stats(self.values), "calls": self.iterations}
        if self.build:
            entry["build"] = self.build
        if self.shares:
            entry["share_of_peak"] = records.spread(self.shares)
        return entry


def case_for(cases: dict, name: str, entry: dict, context: dict, counter: str, build: str | None) -> Case:
    isa = records.benchmark_isa(context)[0]
    key = (name, isa, build)
    if key not in cases:
        cases[key] = Case(name, isa, build, unit_of(entry, counter))
    return cases[key]


def peak_shares(args) -> dict:
    peaks = Peaks()
    cases: dict[tuple, Case] = {}
    for round_index in range(args.rounds):
        for isa in args.isa:
            env = {"VIT3D_ISA": isa}
            peak = peaks.measure(args.build, args.min_time, env)
            for bench, pattern in args.bench:
                entries, context = run_bench(args.build, bench, pattern, args.min_time, env)
                # The peak of the level the kernels ran, which the cap names unless the CPU lacks it.
                level_peak = peak.get(records.benchmark_isa(context)[0] or isa)
                for name, entry in entries.items():
                    threads = records.threads_of(name)[1]
                    counter = "GOPs" if "GOPs" in entry else "GFLOPs"
                    case_for(cases, name, entry, context, counter, None).add(entry, counter, level_peak, threads)
        print(f"round {round_index + 1}/{args.rounds} done", file=sys.stderr, flush=True)
    print("| level | bench | GFLOP/s (GOP/s for int8), median | share of threads × the same round's FMA peak: "
          "median (range) |")
    print("|---|---|---:|---:|")
    for (name, isa, _), case in cases.items():
        share = (f"{100 * statistics.median(case.shares):.1f}% ({100 * min(case.shares):.1f}–"
                 f"{100 * max(case.shares):.1f}%)" if case.shares else "–")
        print(f"| {isa} | {name} | {statistics.median(case.values):.1f} | {share} |")
    return {"tool": "rounds.py peak", "build": records.build_facts(args.build), "baseline_build": None,
            "peaks": peaks, "cases": [c.record() for c in cases.values()],
            "settings": {"isa_levels": args.isa, "isa_cap": None}}


def ab(args) -> dict:
    a, b = args.builds
    peaks = Peaks()
    cases: dict[tuple, Case] = {}
    for round_index in range(args.rounds):
        peaks.measure(b, args.min_time, {})
        # Labelled by position, not by path: the same directory given twice is still an A and a B.
        for label, build in ((("A", a), ("B", b)) if round_index % 2 == 0 else (("B", b), ("A", a))):
            for bench, pattern in args.bench:
                entries, context = run_bench(build, bench, pattern, args.min_time, {})
                for name, entry in entries.items():
                    case_for(cases, name, entry, context, args.counter, label).add(entry, args.counter, None, 1)
        print(f"round {round_index + 1}/{args.rounds} done", file=sys.stderr, flush=True)
    print(f"| bench | A = {a}, median | B = {b}, median | B / A per round: median (range) |")
    print("|---|---:|---:|---:|")
    entries = []
    for (name, isa, label), case in cases.items():
        entry = case.record()
        # A build from before the benches named their level in the context has no level: it is the same
        # bench run on the same machine, so it pairs by name.
        base = cases.get((name, isa, "A")) or cases.get((name, None, "A"))
        if label == "B" and base is None and isa is None:
            base = next((c for (n, _, l), c in cases.items() if n == name and l == "A"), None)
        if label == "B" and base is not None:
            ratios = [y / x for x, y in zip(base.values, case.values)]
            entry["vs_baseline"] = records.spread(ratios)
            print(f"| {name} | {statistics.median(base.values):.2f} | "
                  f"{statistics.median(case.values):.2f} | {statistics.median(ratios):.3f} "
                  f"({min(ratios):.3f}–{max(ratios):.3f}) |")
        entries.append(entry)
    return {"tool": "rounds.py ab", "build": records.build_facts(b), "baseline_build": records.build_facts(a),
            "peaks": peaks, "cases": entries,
            "settings": {"counter": args.counter, "isa_cap": os.environ.get("VIT3D_ISA") or None}}


def make_record(result: dict, args, argv: list[str], load_average: list[float]) -> dict:
    build = result["build"]
    settings = {"threads": sorted({c["threads"] for c in result["cases"]}), "rounds": args.rounds,
                "min_time": args.min_time, "benches": [{"executable": e, "filter": f} for e, f in args.bench],
                **result["settings"]}
    record = {
        "schema": records.SCHEMA, "tool": result["tool"], "command": ["bench/rounds.py", *argv],
        "created_utc": records.utc_now(), "quick": args.quick,
        "vit3d": {"commit": build["commit"], "dirty": build["dirty"]},
        "machine": records.machine_facts(result["peaks"].isa_supported, result["peaks"].record(), load_average),
        "build": build, "settings": settings, "cases": result["cases"],
    }
    if result["baseline_build"]:
        record["baseline_build"] = result["baseline_build"]
    return record


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="mode", required=True)
    for mode in ("peak", "ab"):
        p = sub.add_parser(mode)
        p.add_argument("--rounds", type=int, default=5)
        p.add_argument("--min-time", type=float, default=0.3, help="--benchmark_min_time per bench, seconds")
        p.add_argument("--bench", action="append", required=True, metavar="EXECUTABLE=REGEX",
                       help="an executable in BUILD/bench and a --benchmark_filter (repeatable)")
        p.add_argument("--quick", action="store_true",
                       help="a smoke test: --min-time 0.05, and the record is marked quick (never tabulated)")
        p.add_argument("--results-dir", type=Path, default=records.RESULTS_DIR,
                       help="where the record goes (default bench/results)")
        p.add_argument("--no-record", action="store_true", help="print the table only")
        if mode == "peak":
            p.add_argument("--build", type=Path, required=True)
            p.add_argument("--isa", nargs="+", choices=("avx512", "avx2"), default=["avx512"],
                           help="levels to run, through VIT3D_ISA (the CPU must have them)")
        else:
            p.add_argument("--builds", type=Path, nargs=2, required=True, metavar=("A", "B"))
            p.add_argument("--counter", default="GFLOPs", help="counter to compare (default GFLOPs)")
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error(f"--rounds: expected an integer >= 1, got {args.rounds}")
    if args.quick:
        args.min_time = 0.05
    args.bench = parse_benches(args.bench)
    # The build's facts are read before the timing, so that a build a record could not describe fails early.
    for build in ([args.build] if args.mode == "peak" else args.builds):
        if not args.no_record:
            records.build_facts(build)
    load_average = list(os.getloadavg())
    result = peak_shares(args) if args.mode == "peak" else ab(args)
    if not args.no_record:
        path = records.write(make_record(result, args, argv, load_average), args.mode, args.results_dir)
        print(f"wrote {path}", file=sys.stderr)


if __name__ == "__main__":
    try:
        main(sys.argv[1:])
    except records.RecordError as error:
        sys.exit(f"rounds.py: {error}")
