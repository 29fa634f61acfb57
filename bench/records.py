"""Speed records: one JSON file per run of bench/rounds.py, bench/compare_peers.py or bench/compile_time.py,
in bench/results/.

A record holds what a run measured together with what is needed to trust and trace it: the vit3d commit, the
machine, the build, and for the kernels' speed the FMA peak measured in the same run.
bench/make_performance_page.py turns the records into docs/performance.md. Standard library only, so that
the check of that page runs under a bare python3.

Schema "vit3d.bench/1", a JSON object:

  schema         "vit3d.bench/1"
  tool           "rounds.py peak", "rounds.py ab", "compare_peers.py" or "compile_time.py"
  command        the command line, a list of strings
  created_utc    when the run ended, "YYYY-MM-DDTHH:MM:SSZ"
  quick          true for a smoke run (--quick): short timings, never tabulated
  vit3d          {"commit": 40 hex digits, "dirty": tracked files modified} of the measured build's source
                 tree (build B's in an A/B)
  machine        cpu: {model_name, vendor, family, model, stepping (int or null), flags (the vector and
                       matrix ones, and "hypervisor" on a virtual machine), logical_cpus, cores, caches}
                 isa_supported: the best level vit3d's kernels have on this CPU ("avx512", "avx2", "generic";
                       compile_time.py, which runs no kernel, reads it from the CPU's flags)
                 fma_peak: {level: stats} the FMA peak of one core in GFLOP/s (bench_gemm's fma_peak for the
                       CPU's best level, fma_peak_avx2 for "avx2"), measured during the run; {} for
                       compile_time.py, which measures the compiler
                 load_average: [1, 5, 15 minutes] when the run started (a busy machine shows here)
  build          dir, source_dir, commit, dirty, compiler (path), compiler_id, compiler_version, build_type,
                 cxx_flags (CMAKE_CXX_FLAGS and those of the build type), options (VIT3D_BENCH_NATIVE: adds
                 -march=native; VIT3D_USE_BLAS; VIT3D_USE_OPENMP), all read from the build's CMakeCache.txt
  baseline_build (rounds.py ab) the same for build A
  settings       threads (every thread count measured), rounds, isa_cap (the VIT3D_ISA cap or null), and
                 what else the tool was given. compile_time.py: threads [1], repetitions, opt_level (the
                 optimisation flag the compiler got, "-O2"), opt_override (--opt, or null: the build type's),
                 flags (the compile command's flags but the include directories), compile_command (the
                 command every case ran, <source> and <output> standing for its files; a case's label
                 names the flags it adds)
  environment    (compare_peers.py) the peers' versions and settings
  cases          a list; each entry is one implementation measured on one case at one thread count:
     id            the case: a Google Benchmark name without its threads ("gemm/vit3d_packed/qkv/M:197"),
                   compare_peers.py's case ("attention/B:1/N:1024"), or compile_time.py's translation unit
                   ("load_model_forward", "src/vit3d_float.cpp")
     group         the table it belongs to ("gemm", "attention", "models", ...; "compile" for compile_time.py)
     impl          "vit3d", a variant of it ("vit3d-naive"), the peer ("torch-sdpa", "onnxruntime", ...), or
                   the compiler and its version ("g++ 12.2.0")
     label         what exactly ran (a benchmark name, a peer's call, the source file and the flags added)
     build         (rounds.py ab) "A" or "B"
     threads       int
     isa           the level vit3d's kernels ran (read from the bench's context), or the cap a peer ran
                   under; null for an uncapped peer
     unit          of samples, median, min and max: "GFLOP/s", "ms", "ms per image", ...
     better        "higher", "lower", or null when unknown
     samples       one value per round, in the order measured (a round's value: the mean over a Google
                   Benchmark run's iterations, the median of a Python peer's timed calls, or the wall
                   seconds of one compiler run; compile_time.py's unit is "s", better "lower")
     median, min, max, repetitions   of the samples (repetitions = how many)
     calls         timed calls (iterations) behind the samples, in all
     peak_rss_bytes  the highest peak resident memory of its processes, where measured (compile_time.py: of
                   the compiler's processes, driver, compiler proper and assembler, over the repetitions;
                   always there)
     note          instead of samples: why there are none ("skipped (...)", "failed: ...")
     share_of_peak {value, min, max}: the rate over threads x the FMA peak of its level in the same round
                   (value: median over rounds), where the unit is GFLOP/s
     vs_best_peer  {peer, value, min, max} (vit3d entries of compare_peers.py): the fastest peer's median
                   time over vit3d's (> 1: vit3d faster), and its range over rounds
     vs_baseline   {value, min, max} (build B's entries in an A/B): B / A per round, median and range

Records are written once, never overwritten: <date>-<cpu>-<what>.json, with -2, -3 ... when the name is taken.
"""

from __future__ import annotations

import datetime
import glob
import json
import math
import os
import re
import statistics
import subprocess
import tempfile
from pathlib import Path

SCHEMA = "vit3d.bench/1"
TOOLS = ("rounds.py peak", "rounds.py ab", "compare_peers.py", "compile_time.py")
COMPILE_TIME = "compile_time.py"  # measures the compiler, not the kernels: no FMA peak
REPO_ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = REPO_ROOT / "bench" / "results"

# The CPU flags a reader of a speed record needs: vector and matrix extensions, and whether it is a VM.
KEPT_FLAGS = re.compile(r"^(sse4_2|avx.*|fma|f16c|amx.*|hypervisor)$")


class RecordError(ValueError):
    """A record that does not follow the schema; the message lists every problem found."""


# ---------------------------------------------------------------------------------------------------------
# Building blocks of a record.


def utc_now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def stats(samples: list[float]) -> dict:
    """samples with their median, min, max and count: the form every measured figure takes."""
    values = [float(v) for v in samples]
    return {"samples": values, "median": statistics.median(values), "min": min(values), "max": max(values),
            "repetitions": len(values)}


def spread(values: list[float], value: float | None = None) -> dict:
    """A derived figure: value (the median of values unless given) and the range of values."""
    return {"value": statistics.median(values) if value is None else value, "min": min(values),
            "max": max(values)}


def git_state(path: Path) -> dict:
    """The commit checked out at path, and whether tracked files differ from it. Untracked files are left
    out: build directories and the records themselves live in the tree."""
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(path), *args], capture_output=True, text=True,
                              check=True).stdout.strip()

    try:
        commit = git("rev-parse", "HEAD")
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.CalledProcessError) as error:
        raise RecordError(f"{path} is not a git work tree, so the record would name no commit ({error})")
    return {"commit": commit, "dirty": dirty}


def cpu_facts() -> dict:
    """The CPU as /proc/cpuinfo and /sys describe it (Linux)."""
    blocks = []
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        text = ""
    for block in text.strip().split("\n\n"):
        fields = {}
        for line in block.splitlines():
            key, sep, value = line.partition(":")
            if sep:
                fields[key.strip()] = value.strip()
        if fields:
            blocks.append(fields)
    first = blocks[0] if blocks else {}

    def integer(key: str) -> int | None:
        value = first.get(key, "")
        return int(value) if value.isdigit() else None

    cores = {(b.get("physical id"), b.get("core id")) for b in blocks if "core id" in b}
    caches = {}
    for index in sorted(glob.glob("/sys/devices/system/cpu/cpu0/cache/index*")):
        try:
            level, kind, size = (Path(index, name).read_text().strip() for name in ("level", "type", "size"))
        except OSError:
            continue
        name = f"L{level}" + {"Data": "d", "Instruction": "i"}.get(kind, "")
        caches[name] = size
    return {
        "model_name": first.get("model name", "unknown"),
        "vendor": first.get("vendor_id", "unknown"),
        "family": integer("cpu family"),
        "model": integer("model"),
        "stepping": integer("stepping"),
        "flags": sorted(f for f in first.get("flags", "").split() if KEPT_FLAGS.match(f)),
        "logical_cpus": os.cpu_count() or 1,
        "cores": len(cores) or os.cpu_count() or 1,
        "caches": caches,
    }


def isa_of_flags(flags: list[str]) -> str:
    """The best level vit3d's kernels have on a CPU with these /proc/cpuinfo flags, by core/cpu.hpp's rule,
    for a record whose run executed no kernel to ask."""
    if not {"avx2", "fma"} <= set(flags):
        return "generic"
    return "avx512" if {"avx512f", "avx512bw", "avx512dq", "avx512vl"} <= set(flags) else "avx2"


def machine_facts(isa_supported: str, fma_peak: dict, load_average: list[float]) -> dict:
    return {"cpu": cpu_facts(), "isa_supported": isa_supported, "fma_peak": fma_peak,
            "load_average": [round(v, 2) for v in load_average]}


def read_cmake_cache(build_dir: Path) -> dict[str, str]:
    cache_file = build_dir / "CMakeCache.txt"
    try:
        lines = cache_file.read_text().splitlines()
    except OSError:
        raise RecordError(f"{cache_file} not found: a record needs the build's settings")
    cache = {}
    for line in lines:
        match = re.match(r"^([A-Za-z_][A-Za-z0-9_.-]*):[A-Z]+=(.*)$", line)
        if match:
            cache[match[1]] = match[2]
    return cache


def compiler_identity(build_dir: Path) -> tuple[str, str]:
    """(id, version) of the C++ compiler as CMake identified it when it configured the build."""
    for path in sorted(build_dir.glob("CMakeFiles/*/CMakeCXXCompiler.cmake")):
        text = path.read_text()
        found = {key: re.search(rf'set\(CMAKE_CXX_COMPILER_{key} "([^"]*)"\)', text) for key in ("ID", "VERSION")}
        if found["ID"] and found["VERSION"]:
            return found["ID"][1], found["VERSION"][1]
    return "unknown", "unknown"


def build_facts(build_dir: Path) -> dict:
    """The build's compiler, type, flags and options (CMakeCache.txt), and its source tree's commit."""
    build_dir = build_dir.resolve()
    cache = read_cmake_cache(build_dir)
    build_type = cache.get("CMAKE_BUILD_TYPE", "")
    flags = " ".join(f for f in (cache.get("CMAKE_CXX_FLAGS", ""),
                                 cache.get(f"CMAKE_CXX_FLAGS_{build_type.upper()}", "") if build_type else "")
                     if f.strip())
    compiler_id, compiler_version = compiler_identity(build_dir)
    source_dir = Path(cache.get("CMAKE_HOME_DIRECTORY", str(REPO_ROOT)))
    return {
        "dir": str(build_dir),
        "source_dir": str(source_dir),
        **git_state(source_dir),
        "compiler": cache.get("CMAKE_CXX_COMPILER", "unknown"),
        "compiler_id": compiler_id,
        "compiler_version": compiler_version,
        "build_type": build_type,
        "cxx_flags": flags,
        "options": {key: cache[key] for key in ("VIT3D_BENCH_NATIVE", "VIT3D_USE_BLAS", "VIT3D_USE_OPENMP")
                    if key in cache},
    }


# ---------------------------------------------------------------------------------------------------------
# Validation.

_COMMIT = re.compile(r"^[0-9a-f]{40}$")
_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-9 * max(abs(a), abs(b), 1e-300)


def _check_stats(where: str, entry, problems: list[str]) -> None:
    """samples, median, min, max, repetitions: present, positive, and consistent with each other."""
    if not isinstance(entry, dict):
        problems.append(f"{where}: expected an object")
        return
    samples = entry.get("samples")
    if not isinstance(samples, list) or not samples or not all(_number(v) and v > 0 for v in samples):
        problems.append(f"{where}: samples must be a non-empty list of positive numbers")
        return
    expected = stats(samples)
    for key in ("median", "min", "max"):
        if not _number(entry.get(key)) or not _close(entry[key], expected[key]):
            problems.append(f"{where}: {key} is {entry.get(key)!r}, its samples give {expected[key]!r}")
    if entry.get("repetitions") != len(samples):
        problems.append(f"{where}: repetitions is {entry.get('repetitions')!r}, there are {len(samples)} samples")


def _check_spread(where: str, entry, problems: list[str], extra: tuple[str, ...] = ()) -> None:
    if not isinstance(entry, dict) or not all(_number(entry.get(k)) and entry[k] > 0 for k in ("value", "min", "max")):
        problems.append(f"{where}: expected positive numbers value, min and max")
    elif entry["min"] > entry["max"]:
        problems.append(f"{where}: min {entry['min']} above max {entry['max']}")
    for key in extra:
        if not isinstance(entry, dict) or not isinstance(entry.get(key), str) or not entry.get(key):
            problems.append(f"{where}: {key} missing")


def _check_build(where: str, build, problems: list[str]) -> None:
    if not isinstance(build, dict):
        problems.append(f"{where}: expected an object")
        return
    for key in ("dir", "compiler", "compiler_id", "compiler_version", "build_type", "cxx_flags"):
        if not isinstance(build.get(key), str):
            problems.append(f"{where}.{key}: expected a string")
    if not isinstance(build.get("commit"), str) or not _COMMIT.match(build["commit"]):
        problems.append(f"{where}.commit: expected 40 hex digits")
    if not isinstance(build.get("dirty"), bool):
        problems.append(f"{where}.dirty: expected true or false")


def _check_compile_case(where: str, case: dict, problems: list[str]) -> None:
    """A compile_time.py case: seconds, lower is better, and the compiler's peak memory beside them."""
    if (case.get("group"), case.get("unit"), case.get("better")) != ("compile", "s", "lower"):
        problems.append(f"{where}: a compile time has group 'compile', unit 's' and better 'lower'")
    rss = case.get("peak_rss_bytes")
    if "samples" in case and (not isinstance(rss, int) or isinstance(rss, bool) or rss < 1):
        problems.append(f"{where}.peak_rss_bytes: expected a positive integer, the compiler's peak memory")


def validate(record) -> list[str]:
    """Every way record departs from the schema (an empty list: it follows it)."""
    problems: list[str] = []
    if not isinstance(record, dict):
        return ["a record is a JSON object"]
    if record.get("schema") != SCHEMA:
        problems.append(f"schema: expected {SCHEMA!r}, got {record.get('schema')!r}")
    if record.get("tool") not in TOOLS:
        problems.append(f"tool: expected one of {', '.join(TOOLS)}, got {record.get('tool')!r}")
    command = record.get("command")
    if not isinstance(command, list) or not command or not all(isinstance(c, str) for c in command):
        problems.append("command: expected a non-empty list of strings")
    if not isinstance(record.get("created_utc"), str) or not _UTC.match(record["created_utc"]):
        problems.append(f"created_utc: expected YYYY-MM-DDTHH:MM:SSZ, got {record.get('created_utc')!r}")
    if not isinstance(record.get("quick"), bool):
        problems.append("quick: expected true or false")

    vit3d = record.get("vit3d")
    if not isinstance(vit3d, dict) or not isinstance(vit3d.get("commit"), str) or not _COMMIT.match(vit3d["commit"]):
        problems.append("vit3d.commit: expected 40 hex digits (git rev-parse HEAD)")
    elif not isinstance(vit3d.get("dirty"), bool):
        problems.append("vit3d.dirty: expected true or false")

    machine = record.get("machine")
    if not isinstance(machine, dict):
        problems.append("machine: expected an object")
        machine = {}
    cpu = machine.get("cpu")
    if not isinstance(cpu, dict):
        problems.append("machine.cpu: expected an object")
    else:
        for key in ("model_name", "vendor"):
            if not isinstance(cpu.get(key), str) or not cpu.get(key):
                problems.append(f"machine.cpu.{key}: expected a string")
        for key in ("family", "model", "stepping"):
            if cpu.get(key) is not None and not isinstance(cpu.get(key), int):
                problems.append(f"machine.cpu.{key}: expected an integer or null")
        if not isinstance(cpu.get("flags"), list) or not all(isinstance(f, str) for f in cpu["flags"]):
            problems.append("machine.cpu.flags: expected a list of strings")
        for key in ("logical_cpus", "cores"):
            if not isinstance(cpu.get(key), int) or cpu[key] < 1:
                problems.append(f"machine.cpu.{key}: expected a positive integer")
    if not isinstance(machine.get("isa_supported"), str):
        problems.append("machine.isa_supported: expected a string")
    peaks = machine.get("fma_peak")
    if record.get("tool") == COMPILE_TIME and peaks == {}:
        pass  # a compiler's run has no kernel to set against the peak
    elif not isinstance(peaks, dict) or not peaks:
        problems.append("machine.fma_peak: the FMA peak measured in the run is missing")
    else:
        for level, peak in peaks.items():
            _check_stats(f"machine.fma_peak.{level}", peak, problems)

    _check_build("build", record.get("build"), problems)
    if record.get("tool") == "rounds.py ab":
        _check_build("baseline_build", record.get("baseline_build"), problems)
    if isinstance(record.get("build"), dict) and isinstance(vit3d, dict) and \
            record["build"].get("commit") != vit3d.get("commit"):
        problems.append("vit3d.commit differs from build.commit")

    settings = record.get("settings")
    threads = settings.get("threads") if isinstance(settings, dict) else None
    if not isinstance(threads, list) or not threads or not all(isinstance(t, int) and t >= 1 for t in threads):
        problems.append("settings.threads: expected a non-empty list of positive integers")
    if record.get("tool") == COMPILE_TIME:
        opt_level = settings.get("opt_level") if isinstance(settings, dict) else None
        if not isinstance(opt_level, str) or not re.match(r"^-O", opt_level):
            problems.append(f"settings.opt_level: expected the optimisation flag (\"-O2\"), got {opt_level!r}")
        if not isinstance(settings, dict) or not isinstance(settings.get("flags"), str):
            problems.append("settings.flags: expected the compile command's flags, a string")

    cases = record.get("cases")
    if not isinstance(cases, list) or not cases:
        problems.append("cases: expected a non-empty list")
        return problems
    seen = set()
    measured = 0
    for index, case in enumerate(cases):
        where = f"cases[{index}]"
        if not isinstance(case, dict):
            problems.append(f"{where}: expected an object")
            continue
        for key in ("id", "group", "impl", "unit"):
            if not isinstance(case.get(key), str) or not case.get(key):
                problems.append(f"{where}.{key}: expected a non-empty string")
        where = f"cases[{index}] ({case.get('id')}, {case.get('impl')})"
        if not isinstance(case.get("threads"), int) or case["threads"] < 1:
            problems.append(f"{where}.threads: expected a positive integer")
        if case.get("isa") is not None and not isinstance(case.get("isa"), str):
            problems.append(f"{where}.isa: expected a string or null")
        if case.get("better") not in ("higher", "lower", None):
            problems.append(f"{where}.better: expected 'higher', 'lower' or null")
        key = (case.get("id"), case.get("impl"), case.get("threads"), case.get("isa"), case.get("build"))
        if key in seen:
            problems.append(f"{where}: measured twice in one record (same threads, isa and build)")
        seen.add(key)
        if "samples" in case:
            measured += 1
            _check_stats(where, case, problems)
            if "note" in case:
                problems.append(f"{where}: has both samples and a note")
        elif not isinstance(case.get("note"), str) or not case.get("note"):
            problems.append(f"{where}: neither samples nor a note saying why not")
        if "share_of_peak" in case:
            _check_spread(f"{where}.share_of_peak", case["share_of_peak"], problems)
        if "vs_best_peer" in case:
            _check_spread(f"{where}.vs_best_peer", case["vs_best_peer"], problems, extra=("peer",))
        if "vs_baseline" in case:
            _check_spread(f"{where}.vs_baseline", case["vs_baseline"], problems)
        if record.get("tool") == COMPILE_TIME:
            _check_compile_case(where, case, problems)
    if not measured:
        problems.append("cases: no case has samples")
    return problems


def check(record: dict) -> None:
    problems = validate(record)
    if problems:
        raise RecordError("the record does not follow " + SCHEMA + ":\n  " + "\n  ".join(problems))


# ---------------------------------------------------------------------------------------------------------
# Files.


def slug(text: str) -> str:
    text = re.sub(r"\((r|tm)\)", "", text.lower())
    return re.sub(r"[^a-z0-9]+", "-", text).strip("-")[:40].strip("-") or "cpu"


def file_stem(record: dict, what: str) -> str:
    """<date>-<cpu>-<what>: the CPU's model name and, as virtual machines often name a CPU vaguely, its
    family and model."""
    cpu = record["machine"]["cpu"]
    name = slug(cpu["model_name"])
    if cpu.get("family") is not None and cpu.get("model") is not None:
        name += f"-f{cpu['family']}m{cpu['model']}"
    return f"{record['created_utc'][:10]}-{name}-{slug(what)}"


def write(record: dict, what: str, results_dir: Path = RESULTS_DIR) -> Path:
    """Validates record and writes it as a new file in results_dir; returns its path.

    The text goes to a temporary file first, which is then hard-linked to the final name: a reader never sees
    a partial record, and an existing record is never replaced (a taken name gets the next -N suffix)."""
    check(record)
    results_dir.mkdir(parents=True, exist_ok=True)
    stem = file_stem(record, what)
    fd, temporary = tempfile.mkstemp(prefix=".", suffix=".tmp", dir=results_dir)
    try:
        with os.fdopen(fd, "w") as out:
            out.write(json.dumps(record, indent=1, ensure_ascii=False) + "\n")
            out.flush()
            os.fsync(out.fileno())
        for n in range(1, 1000):
            path = results_dir / (stem + ("" if n == 1 else f"-{n}") + ".json")
            try:
                os.link(temporary, path)
                return path
            except FileExistsError:
                continue
        raise RecordError(f"{results_dir}: no free name for {stem}")
    finally:
        os.unlink(temporary)


def load(path: Path) -> dict:
    """A record file, validated (RecordError names the file)."""
    try:
        record = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise RecordError(f"{path}: not a readable JSON file ({error})")
    problems = validate(record)
    if problems:
        raise RecordError(f"{path}: does not follow {SCHEMA}:\n  " + "\n  ".join(problems))
    return record


def load_all(results_dir: Path = RESULTS_DIR) -> dict[str, dict]:
    """File name -> record, for every *.json in results_dir."""
    return {path.name: load(path) for path in sorted(Path(results_dir).glob("*.json"))}


# ---------------------------------------------------------------------------------------------------------
# Google Benchmark output, as both tools read it.

TIME_UNITS = ("ns", "us", "ms", "s")


def benchmark_isa(context: dict) -> tuple[str | None, str | None]:
    """(active, supported) instruction-set levels from a bench's context (bench/bench_support.hpp)."""
    return context.get("vit3d_isa"), context.get("vit3d_isa_supported")


def threads_of(name: str) -> tuple[str, int]:
    """A benchmark name without its '/threads:N' part, and N (1 when absent)."""
    match = re.search(r"/threads:(\d+)", name)
    if not match:
        return name, 1
    return name[:match.start()] + name[match.end():], int(match[1])


def fma_peaks(entries: dict[str, dict]) -> dict[str, float]:
    """level -> GFLOP/s from one bench_gemm run of fma_peak and fma_peak_avx2 (names without /real_time).
    fma_peak runs at the CPU's best level and says which in its label."""
    peaks = {}
    if "fma_peak" in entries and "GFLOPs" in entries["fma_peak"]:
        peaks[entries["fma_peak"].get("label") or "unknown"] = float(entries["fma_peak"]["GFLOPs"])
    if "fma_peak_avx2" in entries and "GFLOPs" in entries["fma_peak_avx2"]:
        peaks["avx2"] = float(entries["fma_peak_avx2"]["GFLOPs"])
    return peaks
