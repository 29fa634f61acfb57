#!/usr/bin/env python3
"""Tests of the speed records (bench/records.py), the page made from them (bench/make_performance_page.py)
and the records bench/rounds.py, bench/compare_peers.py and bench/compile_time.py build; and that
docs/performance.md is what the committed records in bench/results/ give. Standard library only (ctest
runs it as bench_records):

    python3 tests/tools/test_bench_records.py

The fixtures in tests/tools/fixtures/bench_records/ are synthetic records of a made-up CPU.
"""
import copy
import io
import json
import shutil
import subprocess
import sys
import tempfile
import unittest
import unittest.mock
from contextlib import redirect_stderr
from pathlib import Path

sys.dont_write_bytecode = True  # leave no __pycache__ in bench/ behind
ROOT = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "bench_records"
sys.path.insert(0, str(ROOT / "bench"))
import compare_peers  # noqa: E402
import compile_time  # noqa: E402
import make_performance_page  # noqa: E402
import records  # noqa: E402
import rounds  # noqa: E402

PEAK_FIXTURE = "2000-01-01-synthetic-test-cpu-f6m1-peak.json"
PEERS_FIXTURE = "2000-01-01-synthetic-test-cpu-f6m1-peers.json"
COMPILE_FIXTURE = "2000-01-01-synthetic-test-cpu-f6m1-compile-time.json"


def fixture(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


class Validate(unittest.TestCase):
    def assert_problem(self, record: dict, fragment: str) -> None:
        problems = records.validate(record)
        self.assertTrue(any(fragment in p for p in problems), f"no problem mentions {fragment!r}: {problems}")
        with self.assertRaises(records.RecordError):
            records.check(record)

    def test_the_fixtures_follow_the_schema(self):
        for name in (PEAK_FIXTURE, PEERS_FIXTURE, COMPILE_FIXTURE):
            self.assertEqual(records.validate(fixture(name)), [], name)

    def test_only_a_compile_time_record_goes_without_an_fma_peak(self):
        self.assertEqual(fixture(COMPILE_FIXTURE)["machine"]["fma_peak"], {})
        for name in (PEAK_FIXTURE, PEERS_FIXTURE):
            record = fixture(name)
            record["machine"]["fma_peak"] = {}
            self.assert_problem(record, "FMA peak")
        record = fixture(COMPILE_FIXTURE)
        del record["machine"]["fma_peak"]
        self.assert_problem(record, "FMA peak")

    def test_compile_time_problems_are_reported(self):
        for mutate, fragment in [
            (lambda r: r["cases"][0].update(unit="ms"), "unit 's'"),
            (lambda r: r["cases"][0].update(group="models"), "group 'compile'"),
            (lambda r: r["cases"][0].update(better="higher"), "better 'lower'"),
            (lambda r: r["cases"][1].pop("peak_rss_bytes"), "peak_rss_bytes"),
            (lambda r: r["cases"][1].update(peak_rss_bytes=0), "peak_rss_bytes"),
            (lambda r: r["cases"][1].update(peak_rss_bytes=1.5e8), "peak_rss_bytes"),
            (lambda r: r["settings"].pop("opt_level"), "settings.opt_level"),
            (lambda r: r["settings"].update(opt_level="O2"), "settings.opt_level"),
            (lambda r: r["settings"].pop("flags"), "settings.flags"),
        ]:
            broken = fixture(COMPILE_FIXTURE)
            mutate(broken)
            self.assert_problem(broken, fragment)

    def test_record_level_problems_are_reported(self):
        record = fixture(PEERS_FIXTURE)
        for mutate, fragment in [
            (lambda r: r.update(schema="vit3d.bench/0"), "schema"),
            (lambda r: r.update(tool="other.py"), "tool"),
            (lambda r: r.update(created_utc="2000-01-01 10:00"), "created_utc"),
            (lambda r: r.update(quick="no"), "quick"),
            (lambda r: r["vit3d"].update(commit="0123abc"), "vit3d.commit"),
            (lambda r: r.pop("vit3d"), "vit3d.commit"),
            (lambda r: r["build"].update(commit="f" * 40), "differs from build.commit"),
            (lambda r: r["build"].pop("compiler_version"), "build.compiler_version"),
            (lambda r: r["machine"].update(fma_peak={}), "FMA peak"),
            (lambda r: r["machine"]["cpu"].update(cores=0), "machine.cpu.cores"),
            (lambda r: r["settings"].update(threads=[]), "settings.threads"),
            (lambda r: r.update(cases=[]), "cases"),
        ]:
            broken = copy.deepcopy(record)
            mutate(broken)
            self.assert_problem(broken, fragment)

    def test_case_level_problems_are_reported(self):
        record = fixture(PEERS_FIXTURE)
        for mutate, fragment in [
            (lambda c: c.update(median=c["median"] * 1.01), "median"),
            (lambda c: c.update(max=c["max"] + 1), "max"),
            (lambda c: c.update(repetitions=7), "repetitions"),
            (lambda c: c.update(samples=[1.0, -2.0, 3.0]), "positive numbers"),
            (lambda c: c.update(samples=[]), "positive numbers"),
            (lambda c: c.update(threads=0), "threads"),
            (lambda c: c.update(better="faster"), "better"),
            (lambda c: c.update(note="also a note"), "both samples and a note"),
            (lambda c: c.pop("impl"), "impl"),
            (lambda c: c["vs_best_peer"].pop("peer"), "peer missing"),
            (lambda c: c["vs_best_peer"].update(min=2.0, max=1.0), "above max"),
            (lambda c: c["share_of_peak"].update(value=-0.5), "positive numbers value"),
        ]:
            broken = copy.deepcopy(record)
            mutate(broken["cases"][0])
            self.assert_problem(broken, fragment)

    def test_a_case_needs_samples_or_a_note_and_appears_once(self):
        record = fixture(PEERS_FIXTURE)
        broken = copy.deepcopy(record)
        del broken["cases"][2]["note"]
        self.assert_problem(broken, "neither samples nor a note")
        broken = copy.deepcopy(record)
        broken["cases"].append(copy.deepcopy(broken["cases"][0]))
        self.assert_problem(broken, "measured twice")
        broken = copy.deepcopy(record)
        broken["cases"] = [c for c in broken["cases"] if "note" in c]
        self.assert_problem(broken, "no case has samples")


class Write(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.results = Path(self.dir.name) / "results"

    def tearDown(self):
        self.dir.cleanup()

    def test_writes_a_new_file_and_never_overwrites(self):
        record = fixture(PEERS_FIXTURE)
        first = records.write(record, "peers", self.results)
        second = records.write(record, "peers", self.results)
        self.assertEqual(first.name, "2000-01-01-synthetic-test-cpu-f6m1-peers.json")
        self.assertEqual(second.name, "2000-01-01-synthetic-test-cpu-f6m1-peers-2.json")
        self.assertEqual(records.load(first), record)
        self.assertEqual(sorted(p.name for p in self.results.iterdir()), sorted([first.name, second.name]))

    def test_an_invalid_record_is_not_written(self):
        record = fixture(PEAK_FIXTURE)
        record["cases"][0]["samples"] = [1.0]
        with self.assertRaises(records.RecordError):
            records.write(record, "peak", self.results)
        self.assertEqual(list(self.results.iterdir()) if self.results.exists() else [], [])

    def test_load_names_the_file_of_an_invalid_record(self):
        self.results.mkdir()
        (self.results / "broken.json").write_text('{"schema": "vit3d.bench/1"}')
        with self.assertRaisesRegex(records.RecordError, "broken.json"):
            records.load_all(self.results)

    def test_file_names_carry_date_cpu_and_what(self):
        record = fixture(PEAK_FIXTURE)
        record["machine"]["cpu"].update(model_name="Intel(R) Xeon(R) Processor @ 2.60GHz", family=None)
        self.assertEqual(records.file_stem(record, "peers-avx2"), "2000-01-01-intel-xeon-processor-2-60ghz-peers-avx2")


class Page(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.results = Path(self.dir.name)
        for name in (PEAK_FIXTURE, PEERS_FIXTURE):
            shutil.copy(FIXTURES / name, self.results / name)

    def tearDown(self):
        self.dir.cleanup()

    def add(self, name: str, record: dict) -> None:
        (self.results / name).write_text(json.dumps(record))

    def test_tables_show_the_figures_and_their_records(self):
        page = make_performance_page.render(self.results)
        self.assertTrue(page.startswith("# Performance\n"))
        self.assertIn("`python3 bench/make_performance_page.py` writes it", page)
        self.assertIn("## Synthetic Test CPU (family 6, model 1, stepping 0)", page)
        self.assertIn("### avx512 kernels; GNU 12.2.0, Release, `-O3 -DNDEBUG`", page)
        # rounds.py peak: median (range) and share of the peak, from R1.
        self.assertIn("| `gemm/vit3d_packed/qkv/M:197` | 1 | float32 | 95.0 (81.0–99.0) | 90.0% (90.0–95.0%) | R1 |",
                      page)
        # compare_peers.py: every implementation, the note of the one not run, the ratio, from R2.
        self.assertIn("| `attention/B:1/N:1024` | 1 | 175.0 | 155.0 | skipped (N×N scores 12.9 GB) | "
                      "1.13× torch-sdpa (1.06–1.20) | 87.5% | R2 |", page)
        self.assertIn("| `vit_b_16/B:1` | 1 | 205.0 | 235.0 | 260.0 | 1.15× onnxruntime (1.14–1.15) | R2 |", page)
        self.assertIn("models (float32), ms per image, lower is better:", page)
        self.assertIn(f"| R1 | `{PEAK_FIXTURE}` | rounds.py peak | `0123456789ab` | 2000-01-01 10:00:00 |", page)
        self.assertIn(f"| R2 | `{PEERS_FIXTURE}` | compare_peers.py | `0123456789ab` | 2000-01-01 11:00:00 |", page)
        self.assertNotIn("Compile time", page)

    def test_int8_cases_state_their_precision_and_unit(self):
        record = fixture(PEAK_FIXTURE)
        case = dict(record["cases"][0], id="gemm_int8/qkv/M:197", label="gemm_int8/qkv/M:197/threads:1",
                    group="gemm_int8", unit="GOP/s")
        record["cases"] = [case]
        record["created_utc"] = "2000-01-01T12:00:00Z"
        self.add("2000-01-01-synthetic-test-cpu-f6m1-peak-int8.json", record)
        page = make_performance_page.render(self.results)
        self.assertIn("| `gemm_int8/qkv/M:197` | 1 | int8 | 95.0 (81.0–99.0) GOP/s | 90.0% (90.0–95.0%) |", page)

    def test_the_newest_record_of_a_case_wins(self):
        newer = fixture(PEERS_FIXTURE)
        newer["created_utc"] = "2000-01-02T09:00:00Z"
        newer["vit3d"]["commit"] = newer["build"]["commit"] = "fedcba9876543210fedcba9876543210fedcba98"
        newer["cases"] = [c for c in newer["cases"] if c["group"] == "models"]
        for case in newer["cases"]:
            case.update(records.stats([s * 2 for s in case["samples"]]))
        self.add("2000-01-02-newer-peers.json", newer)
        page = make_performance_page.render(self.results)
        self.assertIn("| `vit_b_16/B:1` | 1 | 410.0 | 470.0 | 520.0 | 1.15× onnxruntime (1.14–1.15) | R3 |", page)
        self.assertNotIn("| 205.0 | 235.0 |", page)
        # The older record still supplies the case the newer one did not measure.
        self.assertIn("| `attention/B:1/N:1024` | 1 | 175.0 |", page)
        self.assertIn("| R3 | `2000-01-02-newer-peers.json` | compare_peers.py | `fedcba987654` |", page)

    def test_smoke_runs_and_ab_runs_are_listed_not_tabulated(self):
        quick = fixture(PEAK_FIXTURE)
        quick.update(quick=True, created_utc="2000-01-03T00:00:00Z")
        quick["cases"][0].update(records.stats([500.0]))
        self.add("2000-01-03-quick-peak.json", quick)
        ab = fixture(PEAK_FIXTURE)
        ab.update(tool="rounds.py ab", created_utc="2000-01-04T00:00:00Z", baseline_build=ab["build"])
        ab["cases"][0].update(records.stats([600.0]))
        self.add("2000-01-04-ab.json", ab)
        page = make_performance_page.render(self.results)
        self.assertNotIn("500.0", page)
        self.assertNotIn("600.0", page)
        self.assertIn("| R3 | `2000-01-03-quick-peak.json` |", page)
        self.assertIn("smoke run (--quick): not tabulated", page)
        self.assertIn("A/B of two builds: not tabulated", page)

    def test_a_capped_level_gets_its_own_section(self):
        capped = fixture(PEERS_FIXTURE)
        capped["created_utc"] = "2000-01-05T00:00:00Z"
        capped["settings"]["isa_cap"] = "avx2"
        for case in capped["cases"]:
            case["isa"] = "avx2"
        self.add("2000-01-05-capped-peers-avx2.json", capped)
        page = make_performance_page.render(self.results)
        self.assertIn("### avx2 kernels; GNU 12.2.0", page)
        self.assertIn("Below this CPU's best level", page)
        self.assertLess(page.index("### avx512 kernels"), page.index("### avx2 kernels"))

    def test_compile_times_get_a_table_with_their_targets(self):
        shutil.copy(FIXTURES / COMPILE_FIXTURE, self.results / COMPILE_FIXTURE)
        page = make_performance_page.render(self.results)
        self.assertIn("Targets, set for a 2-core AMD Zen 3: `load_model_forward` under 15 s and 500 MB at `-O2`; "
                      "`umbrella` under 5 s at any optimisation level.", page)
        # Its own section on the machine of the other records, after their tables, named by the flags used.
        section = "### Compile time; GNU 12.2.0, Release, `-O2 -DNDEBUG -fPIC -fopenmp`"
        self.assertIn(section, page)
        self.assertLess(page.index("### avx512 kernels"), page.index(section))
        self.assertEqual(page.count("## Synthetic Test CPU"), 1)
        self.assertIn("| case | seconds | peak memory, MB | target | record |", page)
        rows = [line for line in page.splitlines() if line.startswith("| `") and line.endswith("| R3 |")]
        self.assertEqual(rows, [
            "| `load_model_forward` | 1.25 (1.00–1.50) | 215 | yes (< 15 s, < 500 MB) | R3 |",
            "| `umbrella` | 0.75 (0.7–0.8) | 180 | yes (< 5 s) | R3 |",
            "| `load_model_forward_header_only` | 28.0 (27.0–30.0) | 1,100 | – | R3 |",
            "| `src/vit3d_io.cpp` | 41.0 (40.0–42.0) | 1,235 | – | R3 |",
        ])
        self.assertIn(f"| R3 | `{COMPILE_FIXTURE}` | compile_time.py | `0123456789ab` | 2000-01-01 12:00:00 | – "
                      "| tabulated |", page)

    def test_compile_targets_missed_and_other_optimisation_levels(self):
        shutil.copy(FIXTURES / COMPILE_FIXTURE, self.results / COMPILE_FIXTURE)
        # A newer -O2 run whose load_model_forward misses both targets: it replaces that row only.
        missed = fixture(COMPILE_FIXTURE)
        missed["created_utc"] = "2000-01-02T00:00:00Z"
        missed["cases"] = [missed["cases"][0]]
        missed["cases"][0].update(records.stats([20.0, 21.0, 19.0]), peak_rss_bytes=600_000_000)
        self.add("2000-01-02-compile-time-o2.json", missed)
        # An -O3 run: a section of its own, where load_model_forward's target (-O2) does not apply.
        o3 = fixture(COMPILE_FIXTURE)
        o3["created_utc"] = "2000-01-03T00:00:00Z"
        o3["settings"].update(opt_level="-O3", opt_override=None, flags="-O3 -DNDEBUG -fPIC -fopenmp")
        o3["cases"][1].update(records.stats([6.0]))
        self.add("2000-01-03-compile-time-o3.json", o3)
        page = make_performance_page.render(self.results)
        o2_section = page.index("### Compile time; GNU 12.2.0, Release, `-O2 -DNDEBUG -fPIC -fopenmp`")
        o3_section = page.index("### Compile time; GNU 12.2.0, Release, `-O3 -DNDEBUG -fPIC -fopenmp`")
        self.assertLess(o2_section, o3_section)
        o2, o3 = page[o2_section:o3_section], page[o3_section:]
        self.assertIn("| `load_model_forward` | 20.0 (19.0–21.0) | 600 | no: 20.0 s, 600 MB | R4 |", o2)
        self.assertIn("| `umbrella` | 0.75 (0.7–0.8) | 180 | yes (< 5 s) | R3 |", o2)
        self.assertIn("| `load_model_forward` | 1.25 (1.00–1.50) | 215 | – | R5 |", o3)
        self.assertIn("| `umbrella` | 6.00 | 180 | no: 6.00 s | R5 |", o3)

    def test_without_records_the_page_says_so(self):
        page = make_performance_page.render(self.results / "empty")
        self.assertIn("No records are tabulated yet.", page)
        self.assertIn("None yet: `bench/results/` holds no record.", page)

    def test_check_fails_on_a_stale_page_and_passes_once_written(self):
        output = self.results / "page" / "performance.md"
        arguments = ["--results-dir", str(self.results), "--output", str(output)]
        with redirect_stderr(io.StringIO()) as stderr:
            self.assertEqual(make_performance_page.main(arguments + ["--check"]), 1)
        self.assertIn("run python3 bench/make_performance_page.py", stderr.getvalue())
        self.assertEqual(make_performance_page.main(arguments), 0)
        self.assertEqual(make_performance_page.main(arguments + ["--check"]), 0)
        output.write_text(output.read_text().replace("95.0", "96.0"))
        with redirect_stderr(io.StringIO()):
            self.assertEqual(make_performance_page.main(arguments + ["--check"]), 1)


def make_synthetic_build(test: unittest.TestCase) -> None:
    """A throwaway source tree (a git repository of one commit, test.commit) and a build directory of it
    (test.build) whose CMakeCache.txt says a GNU 12.2.0 RelWithDebInfo build; test.dir holds both."""
    test.dir = tempfile.TemporaryDirectory()
    tmp = Path(test.dir.name)
    source, test.build = tmp / "source", tmp / "build"
    source.mkdir()
    git = ["git", "-C", str(source), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run(["git", "init", "-q", str(source)], check=True)
    (source / "file").write_text("x")
    subprocess.run(git + ["add", "file"], check=True)
    subprocess.run(git + ["commit", "-q", "-m", "m"], check=True)
    test.commit = subprocess.run(git + ["rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    (test.build / "CMakeFiles" / "3.25.1").mkdir(parents=True)
    (test.build / "CMakeCache.txt").write_text(
        f"CMAKE_HOME_DIRECTORY:INTERNAL={source}\nCMAKE_CXX_COMPILER:FILEPATH=/usr/bin/c++\n"
        "CMAKE_BUILD_TYPE:STRING=RelWithDebInfo\nCMAKE_CXX_FLAGS:STRING=\n"
        "CMAKE_CXX_FLAGS_RELWITHDEBINFO:STRING=-O2 -g -DNDEBUG\nVIT3D_BENCH_NATIVE:BOOL=OFF\n")
    (test.build / "CMakeFiles" / "3.25.1" / "CMakeCXXCompiler.cmake").write_text(
        'set(CMAKE_CXX_COMPILER_ID "GNU")\nset(CMAKE_CXX_COMPILER_VERSION "12.2.0")\n')


@unittest.skipUnless(shutil.which("git"), "needs git, to give the synthetic build a commit")
class Tools(unittest.TestCase):
    """The records rounds.py and compare_peers.py build, from synthetic results, in a throwaway source tree
    and build directory."""

    def setUp(self):
        make_synthetic_build(self)

    def tearDown(self):
        self.dir.cleanup()

    def test_build_facts_come_from_the_cache_and_the_source_tree(self):
        facts = records.build_facts(self.build)
        self.assertEqual(facts["commit"], self.commit)
        self.assertFalse(facts["dirty"])
        self.assertEqual((facts["compiler_id"], facts["compiler_version"]), ("GNU", "12.2.0"))
        self.assertEqual((facts["build_type"], facts["cxx_flags"]), ("RelWithDebInfo", "-O2 -g -DNDEBUG"))
        (Path(facts["source_dir"]) / "file").write_text("changed")
        self.assertTrue(records.build_facts(self.build)["dirty"])

    def test_a_build_without_a_cache_cannot_be_recorded(self):
        with self.assertRaisesRegex(records.RecordError, "CMakeCache.txt"):
            records.build_facts(self.build / "missing")

    def test_rounds_peak_reads_each_result_against_its_rounds_peak(self):
        peaks = iter([200.0, 100.0])  # round 1, round 2

        def fake_run_bench(build, bench, pattern, min_time, env):
            context = {"vit3d_isa": env["VIT3D_ISA"], "vit3d_isa_supported": "avx512"}
            if bench == "bench_gemm":
                return {"fma_peak": {"GFLOPs": next(peaks), "label": "avx512"}}, context
            return {"attention/fused/B:1/N:1024/threads:2": {"GFLOPs": 160.0, "iterations": 10}}, context

        argv = ["peak", "--build", str(self.build), "--rounds", "2", "--bench", "bench_attention=x",
                "--results-dir", str(Path(self.dir.name) / "results")]
        with unittest.mock.patch.object(rounds, "run_bench", fake_run_bench), redirect_stderr(io.StringIO()), \
                unittest.mock.patch("sys.stdout", io.StringIO()):
            rounds.main(argv)
        [path] = (Path(self.dir.name) / "results").iterdir()
        record = records.load(path)
        self.assertEqual((record["tool"], record["vit3d"]["commit"]), ("rounds.py peak", self.commit))
        self.assertEqual(record["machine"]["fma_peak"]["avx512"]["samples"], [200.0, 100.0])
        [case] = record["cases"]
        self.assertEqual((case["id"], case["threads"], case["isa"]), ("attention/fused/B:1/N:1024", 2, "avx512"))
        # 160 GFLOP/s on 2 threads against peaks of 200 and 100: 40% and 80%.
        for key, share in (("value", 0.6), ("min", 0.4), ("max", 0.8)):
            self.assertAlmostEqual(case["share_of_peak"][key], share)

    def test_rounds_ab_records_both_builds_and_the_ratio_of_each_round(self):
        runs = iter([100.0, 110.0, 120.0, 90.0])  # round 1: A then B; round 2: B then A

        def fake_run_bench(build, bench, pattern, min_time, env):
            context = {"vit3d_isa": "avx2", "vit3d_isa_supported": "avx2"}
            if pattern.startswith("^fma_peak"):
                return {"fma_peak": {"GFLOPs": 100.0, "label": "avx2"}}, context
            return {"gemm/vit3d_packed/qkv/M:197/threads:1": {"GFLOPs": next(runs), "iterations": 5}}, context

        results = Path(self.dir.name) / "results"
        argv = ["ab", "--builds", str(self.build), str(self.build), "--rounds", "2", "--bench", "bench_gemm=x",
                "--results-dir", str(results)]
        with unittest.mock.patch.object(rounds, "run_bench", fake_run_bench), redirect_stderr(io.StringIO()), \
                unittest.mock.patch("sys.stdout", io.StringIO()):
            rounds.main(argv)
        [path] = results.iterdir()
        record = records.load(path)
        self.assertEqual(record["tool"], "rounds.py ab")
        by_build = {c["build"]: c for c in record["cases"]}
        self.assertEqual(by_build["A"]["samples"], [100.0, 90.0])
        self.assertEqual(by_build["B"]["samples"], [110.0, 120.0])
        self.assertEqual(by_build["B"]["vs_baseline"], {"value": (1.1 + 120.0 / 90.0) / 2, "min": 1.1,
                                                        "max": 120.0 / 90.0})
        self.assertNotIn("vs_baseline", by_build["A"])

    def test_compare_peers_records_every_implementation_and_the_ratio(self):
        case = compare_peers.Case("attention", 1, 1024)
        flops = case.flops()

        def m(rounds_gflops, **details):
            seconds = [flops / g / 1e9 for g in rounds_gflops]
            return compare_peers.Measurement(sorted(seconds)[1], min(seconds), 30, 1e6,
                                             details={"rounds": seconds, **details})

        row = compare_peers.Row(case, 1, {
            "vit3d": m([180.0, 170.0, 175.0], isa="avx512", benchmark="attention/fused/B:1/N:1024/threads:1"),
            "torch": m([150.0, 160.0, 155.0]),
            "torch_alt": compare_peers.Measurement(note="skipped (N×N scores 12.9 GB)")})
        args = compare_peers.parse_args(["--vit3d-build", str(self.build), "--rounds", "3"])
        record = compare_peers.make_record([row], [{"avx512": 200.0, "avx2": 100.0}], "avx512",
                                           {"torch": "2.14.1"}, args, [0.1, 0.2, 0.3])
        records.check(record)
        by_impl = {c["impl"]: c for c in record["cases"]}
        self.assertEqual(sorted(by_impl), ["torch-sdpa", "torch-sdpa-math", "vit3d"])
        vit3d = by_impl["vit3d"]
        self.assertAlmostEqual(vit3d["median"], 175.0)
        self.assertEqual((vit3d["unit"], vit3d["better"], vit3d["isa"]), ("GFLOP/s", "higher", "avx512"))
        self.assertAlmostEqual(vit3d["share_of_peak"]["value"], 175.0 / 200.0)
        self.assertEqual(vit3d["vs_best_peer"]["peer"], "torch-sdpa")
        self.assertAlmostEqual(vit3d["vs_best_peer"]["value"], 175.0 / 155.0)
        self.assertAlmostEqual(vit3d["vs_best_peer"]["max"], 180.0 / 150.0)
        self.assertEqual(by_impl["torch-sdpa-math"]["note"], "skipped (N×N scores 12.9 GB)")
        self.assertEqual(record["build"]["commit"], self.commit)


@unittest.skipUnless(shutil.which("git"), "needs git, to give the synthetic build a commit")
class CompileTime(unittest.TestCase):
    """compile_time.py on the synthetic build, with a stand-in compiler that logs how it was called."""

    def setUp(self):
        make_synthetic_build(self)
        tmp = Path(self.dir.name)
        self.source = tmp / "source"
        for _, source, _ in compile_time.CASES:
            (self.source / source).parent.mkdir(parents=True, exist_ok=True)
            (self.source / source).write_text("int main() {}\n")
        self.calls, self.fail_marker = tmp / "calls.jsonl", tmp / "fail"
        compiler = tmp / "fake-c++"
        compiler.write_text(
            f"#!{sys.executable}\n"
            "import json, os, sys\n"
            "args = sys.argv[1:]\n"
            f"with open({str(self.calls)!r}, 'a') as log:\n"
            "    log.write(json.dumps({'cwd': os.getcwd(), 'args': args}) + '\\n')\n"
            f"if '-DVIT3D_HEADER_ONLY' in args and os.path.exists({str(self.fail_marker)!r}):\n"
            "    sys.exit('error: out of memory')\n"
            "open(args[args.index('-o') + 1], 'w').write('object')\n")
        compiler.chmod(0o755)
        reference = self.source / "src" / "vit3d_io.cpp"
        (self.build / "compile_commands.json").write_text(json.dumps([{
            "directory": str(self.build), "file": str(reference),
            "command": f"{compiler} -I{self.source}/include -isystem /usr/include/eigen3 -O3 "
                       f"-DNDEBUG -fPIC -MD -MT x.o -MF x.o.d -o CMakeFiles/x.dir/src/vit3d_io.cpp.o -c {reference}",
        }]))
        self.results = tmp / "results"

    def tearDown(self):
        self.dir.cleanup()

    def run_tool(self, *extra: str) -> None:
        argv = ["--build", str(self.build), "--build-type", "RelWithDebInfo", "--results-dir", str(self.results),
                *extra]
        with redirect_stderr(io.StringIO()), unittest.mock.patch("sys.stdout", io.StringIO()):
            compile_time.main(argv)

    def test_every_case_compiles_with_the_consumers_command_in_turn(self):
        self.run_tool("--opt", "2", "--repetitions", "2")
        [path] = self.results.iterdir()
        record = records.load(path)
        self.assertEqual((record["tool"], record["vit3d"]["commit"]), ("compile_time.py", self.commit))
        self.assertEqual(record["machine"]["fma_peak"], {})
        self.assertEqual(record["settings"]["opt_level"], "-O2")
        self.assertEqual(record["settings"]["flags"], "-O2 -DNDEBUG -fPIC")
        ids = [case_id for case_id, _, _ in compile_time.CASES]
        self.assertEqual([c["id"] for c in record["cases"]], ids)
        for case in record["cases"]:
            self.assertEqual((case["impl"], case["unit"], case["repetitions"]), ("g++ 12.2.0", "s", 2))
            self.assertGreater(case["peak_rss_bytes"], 0)
        calls = [json.loads(line) for line in self.calls.read_text().splitlines()]
        # Round after round of every case, in the build directory, -O2 in place of -O3, no dependency files.
        self.assertEqual([Path(c["args"][c["args"].index("-c") + 1]) for c in calls],
                         [self.source / source for _ in range(2) for _, source, _ in compile_time.CASES])
        for call in calls:
            self.assertEqual(call["cwd"], str(self.build))
            self.assertIn("-O2", call["args"])
            self.assertFalse({"-O3", "-MD", "-MF", "-MT"} & set(call["args"]), call["args"])
        header_only = [c for c in calls if "-DVIT3D_HEADER_ONLY" in c["args"]]
        self.assertEqual(len(header_only), 2)

    def test_a_failed_compile_stops_the_run_without_a_record(self):
        self.fail_marker.write_text("")
        with self.assertRaisesRegex(compile_time.CompileTimeError, "(?s)load_model_forward_header_only.*out of memory"):
            self.run_tool("--quick")
        self.assertFalse(self.results.exists())

    def test_a_build_of_another_type_is_not_reconfigured(self):
        with self.assertRaisesRegex(compile_time.CompileTimeError, "CMAKE_BUILD_TYPE='RelWithDebInfo'"):
            self.run_tool("--build-type", "Release")
        self.assertFalse(self.calls.exists())

    def test_peak_memory_covers_the_compilers_children(self):
        # A parent of ~10 MB whose child holds 100 MiB, as the g++ driver and its cc1plus.
        child = "data = b'x' * (100 * 2**20)"
        parent = f"import subprocess, sys; subprocess.run([sys.executable, '-c', {child!r}], check=True)"
        seconds, rss, code = compile_time.run_measured([sys.executable, "-c", parent], Path(self.dir.name),
                                                       Path(self.dir.name) / "log")
        self.assertEqual(code, 0)
        self.assertGreater(seconds, 0)
        self.assertGreaterEqual(rss, 100 * 2**20)
        _, _, code = compile_time.run_measured([sys.executable, "-c", "raise SystemExit(3)"], Path(self.dir.name),
                                               Path(self.dir.name) / "log")
        self.assertEqual(code, 3)


class CommittedPage(unittest.TestCase):
    def test_docs_performance_md_is_what_the_committed_records_give(self):
        expected = make_performance_page.render(records.RESULTS_DIR)
        current = make_performance_page.PAGE.read_text() if make_performance_page.PAGE.exists() else ""
        self.assertTrue(current == expected, "docs/performance.md is stale: run python3 bench/make_performance_page.py")


if __name__ == "__main__":
    unittest.main()
