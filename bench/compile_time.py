#!/usr/bin/env python3
"""Compile time and compiler memory of translation units that use vit3d, with a CMake consumer's flags.

    python3 bench/compile_time.py                    # Release (-O3), 3 repetitions, a record in bench/results/
    python3 bench/compile_time.py --opt 2            # the same flags with -O2 in place of the build type's -O3
    python3 bench/compile_time.py --quick --no-record

The flags are those CMake gives a target linking vit3d::io: the compile command of src/vit3d_io.cpp in the
build directory's compile_commands.json (vit3d's and its dependencies' include directories, OpenMP, the
build type's flags), configured here when the directory has none. Every case compiles one file with that
command (-c, the object to a temporary file); its figures are the wall seconds of each compiler run and the
peak resident memory of the compiler's processes (driver, cc1plus, assembler) from wait4, over the
repetitions. Repetitions go round all the cases in turn, so that a busy minute touches every case alike.

Cases (the first four in bench/compile_time/):
  load_model_forward              README.md's C++ quickstart: load_model, read a .npy, forward, write
  umbrella                        #include <vit3d.hpp> and an empty main
  model_forward                   a preset ViT built in code and run, without vit3d::io
  load_model_forward_header_only  the first with -DVIT3D_HEADER_ONLY: every instance compiled in the file
  src/vit3d_*.cpp                 the implementation files, compiled once per project

Run it alone on the machine, like every bench. Standard library only.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

import make_performance_page
import records

# (id, source relative to the source tree, flags added to the consumer's command)
CASES = (
    ("load_model_forward", "bench/compile_time/load_model_forward.cpp", ()),
    ("umbrella", "bench/compile_time/umbrella.cpp", ()),
    ("model_forward", "bench/compile_time/model_forward.cpp", ()),
    ("load_model_forward_header_only", "bench/compile_time/load_model_forward.cpp", ("-DVIT3D_HEADER_ONLY",)),
    ("src/vit3d_float.cpp", "src/vit3d_float.cpp", ()),
    ("src/vit3d_double.cpp", "src/vit3d_double.cpp", ()),
    ("src/vit3d_io.cpp", "src/vit3d_io.cpp", ()),
)
REFERENCE_SOURCE = "src/vit3d_io.cpp"  # its command carries everything a vit3d::io consumer gets
OPT_FLAG = re.compile(r"^-O(\d*|s|z|g|fast)$")
COMPILER_NAMES = {"GNU": "g++", "Clang": "clang++"}


class CompileTimeError(RuntimeError):
    pass


def fail(message: str) -> NoReturn:
    raise CompileTimeError(message)


# ---------------------------------------------------------------------------------------------------------
# The build directory and its compile command.


def configure(build: Path, build_type: str) -> None:
    """Makes build a configured build directory of this source tree with compile_commands.json. An existing
    one is reused (only CMAKE_EXPORT_COMPILE_COMMANDS is turned on if it is off), and must be of build_type:
    its other options are someone's choice, not this script's."""
    if (build / "CMakeCache.txt").exists():
        current = records.read_cmake_cache(build).get("CMAKE_BUILD_TYPE", "")
        if current.lower() != build_type.lower():
            fail(f"{build} is configured with CMAKE_BUILD_TYPE={current!r}: give --build-type {current!r} "
                 f"or another --build")
        if (build / "compile_commands.json").exists():
            return
        command = ["cmake", "-B", str(build), "-DCMAKE_EXPORT_COMPILE_COMMANDS=ON"]
    else:
        # Only what the compile commands need: no tests, benches or examples to configure.
        command = ["cmake", "-S", str(records.REPO_ROOT), "-B", str(build), f"-DCMAKE_BUILD_TYPE={build_type}",
                   "-DCMAKE_EXPORT_COMPILE_COMMANDS=ON", "-DVIT3D_BUILD_TESTS=OFF", "-DVIT3D_BUILD_BENCH=OFF",
                   "-DVIT3D_BUILD_EXAMPLES=OFF"]
    print("configuring:", shlex.join(command), file=sys.stderr, flush=True)
    proc = subprocess.run(command, capture_output=True, text=True)
    if proc.returncode != 0:
        fail(f"cmake failed ({proc.returncode}):\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")


@dataclass
class Command:
    """A compile command without its source, object and dependency-file arguments."""

    arguments: list[str]  # the compiler, then its flags
    directory: Path       # where CMake runs it

    def flags(self) -> str:
        """The flags but the include directories (long, and the same for every case): what the page shows."""
        kept, skip = [], False
        for argument in self.arguments[1:]:
            if skip:
                skip = False
            elif argument in ("-I", "-isystem", "-iquote", "-idirafter"):
                skip = True
            elif not argument.startswith(("-I", "-isystem", "-iquote", "-idirafter")):
                kept.append(argument)
        return " ".join(kept)

    def opt_level(self) -> str:
        """The optimisation flag the compiler obeys: the last one, -O0 without any."""
        levels = [a for a in self.arguments[1:] if OPT_FLAG.match(a)]
        return levels[-1] if levels else "-O0"

    def with_opt(self, opt: str) -> Command:
        """The command with opt in place of every optimisation flag (added when there is none)."""
        arguments = [opt if OPT_FLAG.match(a) else a for a in self.arguments]
        if opt not in arguments[1:]:
            arguments.append(opt)
        return Command(arguments, self.directory)

    def for_case(self, source: Path, extra: tuple[str, ...], output: Path) -> list[str]:
        return [*self.arguments, *extra, "-c", str(source), "-o", str(output)]


def reference_command(build: Path, source_dir: Path) -> Command:
    """The compile command of REFERENCE_SOURCE in build/compile_commands.json."""
    path = build / "compile_commands.json"
    try:
        entries = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        fail(f"{path}: not readable ({error})")
    wanted = (source_dir / REFERENCE_SOURCE).resolve()
    for entry in entries:
        directory = Path(entry["directory"])
        if (directory / entry["file"]).resolve() != wanted:
            continue
        arguments = entry["arguments"] if "arguments" in entry else shlex.split(entry["command"])
        kept, index = [], 0
        while index < len(arguments):
            argument = arguments[index]
            # -o, -MT, -MF, -MQ take the next argument; -c, -MD, -MMD and the source stand alone.
            if argument in ("-o", "-MT", "-MF", "-MQ"):
                index += 2
                continue
            is_source = not argument.startswith("-") and (directory / argument).resolve() == wanted
            if argument not in ("-c", "-MD", "-MMD") and not is_source:
                kept.append(argument)
            index += 1
        return Command(kept, directory)
    fail(f"{path} has no command for {wanted}: vit3d::io is not configured there (it needs nlohmann/json)")


# ---------------------------------------------------------------------------------------------------------
# Measuring.


@dataclass
class Measurement:
    seconds: list[float] = field(default_factory=list)
    peak_rss_bytes: int = 0


def run_measured(arguments: list[str], directory: Path, log: Path) -> tuple[float, int, int]:
    """(wall seconds, peak RSS in bytes, exit code) of one run of arguments.

    wait4 reports the peak of the process and of every descendant it waited for, so the figure covers the
    compiler driver's cc1plus and assembler without sampling them. The output goes to a file: a pipe left
    unread would stall a compiler that writes much."""
    with open(log, "wb") as out:
        start = time.perf_counter()
        proc = subprocess.Popen(arguments, cwd=directory, stdin=subprocess.DEVNULL, stdout=out, stderr=out)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here: Popen must not wait for it again
    return seconds, usage.ru_maxrss * 1024, proc.returncode  # ru_maxrss is in KiB on Linux


def measure(command: Command, cases: list[tuple[str, Path, tuple[str, ...]]],
            repetitions: int) -> dict[str, Measurement]:
    results = {case_id: Measurement() for case_id, _, _ in cases}
    with tempfile.TemporaryDirectory(prefix="vit3d-compile-time-") as temporary:
        output, log = Path(temporary) / "case.o", Path(temporary) / "compiler.log"
        for repetition in range(repetitions):
            for case_id, source, extra in cases:
                seconds, rss, code = run_measured(command.for_case(source, extra, output), command.directory, log)
                if code != 0:
                    fail(f"{case_id}: the compiler failed ({code}):\n"
                         f"{shlex.join(command.for_case(source, extra, output))}\n{log.read_text()[-3000:]}")
                results[case_id].seconds.append(seconds)
                results[case_id].peak_rss_bytes = max(results[case_id].peak_rss_bytes, rss)
                print(f"  {case_id}: {seconds:.2f} s, {rss / 1e6:.0f} MB", file=sys.stderr, flush=True)
            print(f"repetition {repetition + 1}/{repetitions} done", file=sys.stderr, flush=True)
    return results


# ---------------------------------------------------------------------------------------------------------
# Table and record.


def case_entries(cases, results: dict[str, Measurement], impl: str, source_dir: Path) -> list[dict]:
    entries = []
    for case_id, source, extra in cases:
        result = results[case_id]
        entries.append({"id": case_id, "group": "compile", "impl": impl,
                        "label": " ".join([str(source.relative_to(source_dir)), *extra]), "threads": 1,
                        "isa": None, "unit": "s", "better": "lower", **records.stats(result.seconds),
                        "calls": len(result.seconds), "peak_rss_bytes": result.peak_rss_bytes})
    return entries


def print_table(entries: list[dict], opt_level: str) -> None:
    print(f"| case | seconds: median (range) | peak memory, MB | target ({opt_level}) |")
    print("|---|---:|---:|---|")
    for entry in entries:
        target = make_performance_page.compile_target(entry, opt_level)
        print(f"| {entry['id']} | {make_performance_page.with_range(entry)} | "
              f"{entry['peak_rss_bytes'] / 1e6:,.0f} | {target} |")


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--build", type=Path, default=records.REPO_ROOT / "build-compile-time",
                        help="build directory to configure or reuse (default: build-compile-time in this source tree)")
    parser.add_argument("--build-type", default="Release", help="CMAKE_BUILD_TYPE (default Release: -O3)")
    parser.add_argument("--opt", metavar="LEVEL", choices=("0", "1", "2", "3", "s", "z", "g", "fast"),
                        help="compile at -O<LEVEL> in place of the build type's level (2: -O2); the record and "
                             "the page name the flags compiled with")
    parser.add_argument("--repetitions", type=int, default=3)
    parser.add_argument("--quick", action="store_true",
                        help="a smoke test: one repetition, the record marked quick (never tabulated)")
    parser.add_argument("--results-dir", type=Path, default=records.RESULTS_DIR,
                        help="where the record goes (default bench/results)")
    parser.add_argument("--no-record", action="store_true", help="print the table only")
    args = parser.parse_args(argv)
    if args.repetitions < 1:
        parser.error(f"--repetitions: expected an integer >= 1, got {args.repetitions}")
    repetitions = 1 if args.quick else args.repetitions

    build = args.build.resolve()
    configure(build, args.build_type)
    # The build's facts are read before the timing, so that a build a record could not describe fails early.
    facts = records.build_facts(build)
    source_dir = Path(facts["source_dir"])
    command = reference_command(build, source_dir)
    opt = f"-O{args.opt}" if args.opt else None
    if opt:
        command = command.with_opt(opt)
    cases = [(case_id, source_dir / source, extra) for case_id, source, extra in CASES]
    for case_id, source, _ in cases:
        if not source.exists():
            fail(f"{case_id}: {source} does not exist in the build's source tree")

    load_average = list(os.getloadavg())
    print(f"compiling {len(cases)} files {repetitions} time(s) each with: {command.flags()}", file=sys.stderr)
    results = measure(command, cases, repetitions)
    impl = f"{COMPILER_NAMES.get(facts['compiler_id'], facts['compiler_id'])} {facts['compiler_version']}"
    entries = case_entries(cases, results, impl, source_dir)
    print_table(entries, command.opt_level())
    if args.no_record:
        return
    machine = records.machine_facts("", {}, load_average)
    machine["isa_supported"] = records.isa_of_flags(machine["cpu"]["flags"])
    record = {
        "schema": records.SCHEMA, "tool": records.COMPILE_TIME, "command": ["bench/compile_time.py", *argv],
        "created_utc": records.utc_now(), "quick": args.quick,
        "vit3d": {"commit": facts["commit"], "dirty": facts["dirty"]},
        "machine": machine,
        "build": facts,
        "settings": {"threads": [1], "repetitions": repetitions, "opt_level": command.opt_level(),
                     "opt_override": opt, "flags": command.flags(),
                     "compile_command": command.for_case(Path("<source>"), (), Path("<output>"))},
        "cases": entries,
    }
    what = f"compile-time-{args.build_type}-{command.opt_level()}"
    path = records.write(record, what, args.results_dir)
    print(f"wrote {path}", file=sys.stderr)


if __name__ == "__main__":
    try:
        main(sys.argv[1:])
    except (records.RecordError, CompileTimeError) as error:
        sys.exit(f"compile_time.py: {error}")
