// Throughput of einops rearrange on the ViT patchify patterns and their inverses, next to a plain
// memcpy of the same bytes. GB/s counts tensor bytes (each element is read once and written once, as
// in memcpy), so the columns compare directly.
//
//   ./build/bench/bench_einops --benchmark_counters_tabular=true

#include <benchmark/benchmark.h>

#include <chrono>
#include <cstring>
#include <string>
#include <vector>
#include <vit3d.hpp>

namespace {

using vit3d::Index;
using vit3d::Shape;
using vit3d::Tensor;

struct Case {
    const char* name;
    Shape input;
    const char* pattern;
    vit3d::AxisLengths lengths;
};

// The inverse patterns take the forward pattern's output shape.
const std::vector<Case>& cases() {
    static const std::vector<Case> all = {
        {"vit2d_patchify_b1",
         {1, 3, 224, 224},
         "b c (h p1) (w p2) -> b (h w) (p1 p2 c)",
         {{"p1", 16}, {"p2", 16}}},
        {"vit2d_unpatchify_b1",
         {1, 196, 768},
         "b (h w) (p1 p2 c) -> b c (h p1) (w p2)",
         {{"h", 14}, {"p1", 16}, {"p2", 16}}},
        {"vit2d_patchify_b8",
         {8, 3, 224, 224},
         "b c (h p1) (w p2) -> b (h w) (p1 p2 c)",
         {{"p1", 16}, {"p2", 16}}},
        {"vit2d_unpatchify_b8",
         {8, 196, 768},
         "b (h w) (p1 p2 c) -> b c (h p1) (w p2)",
         {{"h", 14}, {"p1", 16}, {"p2", 16}}},
        {"vit3d_patchify_fhw",
         {1, 1, 64, 256, 256},
         "b c (f pf) (h p1) (w p2) -> b (f h w) (pf p1 p2 c)",
         {{"pf", 4}, {"p1", 16}, {"p2", 16}}},
        {"vit3d_unpatchify_fhw",
         {1, 4096, 1024},
         "b (f h w) (pf p1 p2 c) -> b c (f pf) (h p1) (w p2)",
         {{"f", 16}, {"h", 16}, {"pf", 4}, {"p1", 16}, {"p2", 16}}},
        {"vit3d_patchify_hwf",
         {1, 1, 256, 256, 64},
         "b c (h p1) (w p2) (f pf) -> b (h w f) (p1 p2 pf c)",
         {{"pf", 4}, {"p1", 16}, {"p2", 16}}},
        {"vit3d_unpatchify_hwf",
         {1, 4096, 1024},
         "b (h w f) (p1 p2 pf c) -> b c (h p1) (w p2) (f pf)",
         {{"h", 16}, {"w", 16}, {"pf", 4}, {"p1", 16}, {"p2", 16}}},
    };
    return all;
}

using Clock = std::chrono::steady_clock;

double seconds(Clock::time_point a, Clock::time_point b) {
    return std::chrono::duration<double>(b - a).count();
}

// rearrange into a preallocated output, alternating each iteration with a memcpy of the same bytes
// between two other preallocated buffers. Memory bandwidth on a shared machine drifts; measuring both
// side by side makes the ratio `vs_memcpy` (memcpy time / rearrange time) robust to that drift.
// The reported time is the rearrange's alone.
void BM_RearrangeVsMemcpy(benchmark::State& state, const Case& c) {
    vit3d::set_num_threads(static_cast<int>(state.range(0)));
    const auto x = Tensor<float>::randn(c.input, 1);
    const vit3d::Rearrange op(c.pattern, c.lengths);
    auto y = op(x);
    const auto copy_src = Tensor<float>::randn(c.input, 2);
    auto copy_dst = Tensor<float>::zeros(c.input);
    const std::size_t bytes = static_cast<std::size_t>(x.size()) * sizeof(float);
    double memcpy_seconds = 0, rearrange_seconds = 0;
    for (auto _ : state) {
        const auto t0 = Clock::now();
        std::memcpy(copy_dst.data(), copy_src.data(), bytes);
        benchmark::ClobberMemory();
        const auto t1 = Clock::now();
        op.into(x, y);
        benchmark::ClobberMemory();
        const auto t2 = Clock::now();
        memcpy_seconds += seconds(t0, t1);
        rearrange_seconds += seconds(t1, t2);
        state.SetIterationTime(seconds(t1, t2));
    }
    const double total = static_cast<double>(bytes) * static_cast<double>(state.iterations());
    state.counters["GB/s"] = total / rearrange_seconds / 1e9;
    state.counters["memcpy_GB/s"] = total / memcpy_seconds / 1e9;
    state.counters["vs_memcpy"] = memcpy_seconds / rearrange_seconds;
    state.counters["MB"] = static_cast<double>(bytes) / 1e6;
    vit3d::set_num_threads(0);
}

// rearrange that returns a new tensor each call (allocation and first-touch page faults included).
void BM_Rearrange(benchmark::State& state, const Case& c) {
    vit3d::set_num_threads(static_cast<int>(state.range(0)));
    const auto x = Tensor<float>::randn(c.input, 1);
    const vit3d::Rearrange op(c.pattern, c.lengths);
    for (auto _ : state) {
        auto y = op(x);
        benchmark::DoNotOptimize(y.data());
    }
    state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * x.size() *
                            static_cast<Index>(sizeof(float)));
    vit3d::set_num_threads(0);
}

const bool registered = [] {
    for (const Case& c : cases()) {
        benchmark::RegisterBenchmark((std::string("vs_memcpy/") + c.name).c_str(), BM_RearrangeVsMemcpy, c)
            ->ArgName("threads")
            ->Arg(1)
            ->Arg(2)
            ->UseManualTime()
            ->Unit(benchmark::kMicrosecond);
        benchmark::RegisterBenchmark((std::string("rearrange/") + c.name).c_str(), BM_Rearrange, c)
            ->ArgName("threads")
            ->Arg(1)
            ->Arg(2)
            ->UseRealTime()
            ->Unit(benchmark::kMicrosecond);
    }
    return true;
}();

}  // namespace

BENCHMARK_MAIN();
