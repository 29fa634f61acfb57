// Throughput of einops rearrange on the ViT patchify patterns and their inverses, next to a plain
// memcpy of the same bytes. Bytes counted = tensor bytes (each element is read once and written once,
// as in memcpy), so the GB/s columns compare directly.
//
//   ./build/bench/bench_einops --benchmark_counters_tabular=true

#include <benchmark/benchmark.h>

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

void set_bytes(benchmark::State& state, Index bytes) {
    state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * bytes);
    state.counters["MB"] = benchmark::Counter(static_cast<double>(bytes) / 1e6);
}

// memcpy of the same bytes into a buffer that is reused (already faulted in), as rearrange_into does.
void BM_Memcpy(benchmark::State& state, Shape shape) {
    const auto src = Tensor<float>::randn(shape, 1);
    auto dst = Tensor<float>::zeros(shape);
    for (auto _ : state) {
        std::memcpy(dst.data(), src.data(), static_cast<std::size_t>(src.size()) * sizeof(float));
        benchmark::DoNotOptimize(dst.data());
        benchmark::ClobberMemory();
    }
    set_bytes(state, src.size() * static_cast<Index>(sizeof(float)));
}

// rearrange that returns a new tensor (allocates its output each call).
void BM_Rearrange(benchmark::State& state, const Case& c) {
    vit3d::set_num_threads(static_cast<int>(state.range(0)));
    const auto x = Tensor<float>::randn(c.input, 1);
    const vit3d::Rearrange op(c.pattern, c.lengths);
    for (auto _ : state) {
        auto y = op(x);
        benchmark::DoNotOptimize(y.data());
    }
    set_bytes(state, x.size() * static_cast<Index>(sizeof(float)));
    vit3d::set_num_threads(0);
}

// rearrange into a preallocated output (no allocation, no page faults): the kernel alone.
void BM_RearrangeInto(benchmark::State& state, const Case& c) {
    vit3d::set_num_threads(static_cast<int>(state.range(0)));
    const auto x = Tensor<float>::randn(c.input, 1);
    const vit3d::Rearrange op(c.pattern, c.lengths);
    auto y = op(x);
    for (auto _ : state) {
        op.into(x, y);
        benchmark::DoNotOptimize(y.data());
        benchmark::ClobberMemory();
    }
    set_bytes(state, x.size() * static_cast<Index>(sizeof(float)));
    vit3d::set_num_threads(0);
}

const bool registered = [] {
    for (const Case& c : cases()) {
        benchmark::RegisterBenchmark((std::string("memcpy/") + c.name).c_str(), BM_Memcpy, c.input)
            ->UseRealTime()
            ->Unit(benchmark::kMicrosecond);
        benchmark::RegisterBenchmark((std::string("rearrange/") + c.name).c_str(), BM_Rearrange, c)
            ->ArgName("threads")
            ->Arg(1)
            ->Arg(2)
            ->UseRealTime()
            ->Unit(benchmark::kMicrosecond);
        benchmark::RegisterBenchmark((std::string("rearrange_into/") + c.name).c_str(), BM_RearrangeInto, c)
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
