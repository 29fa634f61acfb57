#!/usr/bin/env python3
"""Google Benchmark runs in interleaved rounds, for a shared machine whose speed moves from minute to minute.

Two uses, both printing medians over rounds:

  share of peak: each round runs bench_gemm's FMA peak and the chosen benches in the same minute, and every
  result is read against that round's peak (AVX-512 peak for the avx512 level, AVX2 peak for avx2):

    python3 bench/rounds.py peak --build build-bench-o3 --rounds 5 --isa avx512 avx2 \\
        --bench bench_gemm='vit3d_packed/.*threads:1' \\
        --bench bench_attention='attention/fused/B:1/N:(1024|4096)/threads:[12]/'

  A/B: the same benches from two build directories, alternating which goes first, and the ratio B/A of
  each round (for the counter given, GFLOPs by default; real_time if the bench has no such counter):

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


def run_bench(build: Path, bench: str, pattern: str, min_time: float, env: dict[str, str]) -> dict[str, dict]:
    exe = build / "bench" / bench
    if not exe.exists():
        sys.exit(f"rounds.py: {exe} does not exist (build the target {bench} in {build})")
    proc = subprocess.run([str(exe), f"--benchmark_filter={pattern}", "--benchmark_format=json",
                           f"--benchmark_min_time={min_time:g}"], env={**os.environ, **env},
                          capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"rounds.py: {exe.name} failed ({proc.returncode}): {proc.stderr.strip()[-400:]}")
    try:
        benchmarks = json.loads(proc.stdout)["benchmarks"]
    except (json.JSONDecodeError, KeyError):
        sys.exit(f"rounds.py: {exe.name} --benchmark_filter={pattern} printed no JSON results")
    return {b["name"].removesuffix("/real_time"): b for b in benchmarks}


def value(entry: dict, counter: str) -> float:
    return float(entry[counter]) if counter in entry else float(entry["real_time"])


def parse_benches(items: list[str]) -> list[tuple[str, str]]:
    benches = []
    for item in items:
        name, sep, pattern = item.partition("=")
        if not sep or not name or not pattern:
            sys.exit(f"rounds.py: --bench expects EXECUTABLE=REGEX, got {item!r}")
        benches.append((name, pattern))
    return benches


def peak_shares(args) -> None:
    peak_name = {"avx512": "fma_peak", "avx2": "fma_peak_avx2"}
    shares: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for round_index in range(args.rounds):
        for isa in args.isa:
            env = {"VIT3D_ISA": isa}
            peaks = run_bench(args.build, "bench_gemm", "fma_peak(_avx2)?/", args.min_time, env)
            if peak_name[isa] not in peaks:
                sys.exit(f"rounds.py: bench_gemm has no {peak_name[isa]}")
            peak = value(peaks[peak_name[isa]], "GFLOPs")
            for bench, pattern in args.bench:
                for name, entry in run_bench(args.build, bench, pattern, args.min_time, env).items():
                    gflops = value(entry, "GFLOPs")
                    shares.setdefault((isa, name), []).append((gflops, gflops / peak))
            shares.setdefault((isa, peak_name[isa]), []).append((peak, 1.0))
        print(f"round {round_index + 1}/{args.rounds} done", file=sys.stderr, flush=True)
    print("| level | bench | GFLOP/s, median | share of the same round's peak: median (range) |")
    print("|---|---|---:|---:|")
    for (isa, name), results in shares.items():
        rates = [r for r, _ in results]
        fractions = [f for _, f in results]
        print(f"| {isa} | {name} | {statistics.median(rates):.1f} | {100 * statistics.median(fractions):.1f}% "
              f"({100 * min(fractions):.1f}–{100 * max(fractions):.1f}%) |")


def ab(args) -> None:
    a, b = args.builds
    results: dict[str, dict[Path, list[float]]] = {}
    for round_index in range(args.rounds):
        for build in ((a, b) if round_index % 2 == 0 else (b, a)):
            for bench, pattern in args.bench:
                for name, entry in run_bench(build, bench, pattern, args.min_time, {}).items():
                    results.setdefault(name, {a: [], b: []})[build].append(value(entry, args.counter))
        print(f"round {round_index + 1}/{args.rounds} done", file=sys.stderr, flush=True)
    print(f"| bench | A = {a}, median | B = {b}, median | B / A per round: median (range) |")
    print("|---|---:|---:|---:|")
    for name, by_build in results.items():
        ratios = [y / x for x, y in zip(by_build[a], by_build[b])]
        print(f"| {name} | {statistics.median(by_build[a]):.2f} | {statistics.median(by_build[b]):.2f} | "
              f"{statistics.median(ratios):.3f} ({min(ratios):.3f}–{max(ratios):.3f}) |")


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="mode", required=True)
    for mode in ("peak", "ab"):
        p = sub.add_parser(mode)
        p.add_argument("--rounds", type=int, default=5)
        p.add_argument("--min-time", type=float, default=0.3, help="--benchmark_min_time per bench, seconds")
        p.add_argument("--bench", action="append", required=True, metavar="EXECUTABLE=REGEX",
                       help="an executable in BUILD/bench and a --benchmark_filter (repeatable)")
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
    args.bench = parse_benches(args.bench)
    peak_shares(args) if args.mode == "peak" else ab(args)


if __name__ == "__main__":
    main(sys.argv[1:])
