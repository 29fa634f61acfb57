// Attention throughput. "attention/<kernel>/B:<B>/N:<N>/threads:<t>": softmax(Q K^T / 8) V alone, 12 heads of
// 64, float, inputs [B, 12, N, 64] and output preallocated; "attention_slice_bias/fused/...": the same with
// the slice-distance bias of a 16 x 16 x 16 (N = 4096) or 16 x 32 x 32 (N = 16384) patch grid computed in the
// tile loop (nn::SliceDistanceBias, 32 levels), to compare with the unbiased case; "mha/<kernel>/...": the
// whole MultiHeadAttention module of width 768 (qkv projection, attention, output projection) on x [B, N,
// 768]. Counters: GFLOPs (attention alone: 4 B H N^2 d FLOP; module: that plus the projections' 8 B N D^2),
// tokens_per_s, workspace_bytes (scratch the kernel allocates), peak_rss_bytes (this benchmark's own peak).
//
//   ./build-bench/bench/bench_attention --benchmark_counters_tabular=true
// compare_peers.py runs one benchmark per process (--benchmark_filter) so peaks do not mix.

#include <benchmark/benchmark.h>

#include <array>
#include <cmath>
#include <string>
#include <vit3d.hpp>

#include "bench_support.hpp"

namespace {

using vit3d::Index;
using vit3d::Tensor;
using vit3d::nn::AttentionKernel;
using vit3d::nn::AttentionProblem;

constexpr Index kHeads = 12, kHeadDim = 64, kDim = kHeads * kHeadDim;

const char* name_of(AttentionKernel k) { return k == AttentionKernel::naive ? "naive" : "fused"; }

// The patch grid of N tokens along (slices, rows, columns), 16 slices.
std::array<Index, 3> grid_of(Index N) {
    const Index side = static_cast<Index>(std::lround(std::sqrt(double(N / 16))));
    return {16, side, side};
}

// slice_bias: with the slice-distance bias of the 16-slice grid of N tokens (32 levels), computed in the
// kernel's tile loop.
void attention_alone(benchmark::State& state, AttentionKernel kernel, Index B, Index N, int threads,
                     bool slice_bias, Index head_dim) {
    vit3d::set_num_threads(threads);
    vit3d::bench::reset_peak_rss();
    const Tensor<float> q = Tensor<float>::randn({B, kHeads, N, head_dim}, 1);
    const Tensor<float> k = Tensor<float>::randn({B, kHeads, N, head_dim}, 2);
    const Tensor<float> v = Tensor<float>::randn({B, kHeads, N, head_dim}, 3);
    Tensor<float> out = Tensor<float>::empty({B, kHeads, N, head_dim});
    AttentionProblem<float> p = vit3d::nn::bhnd_attention_problem(q, k, v, out, "bench_attention");
    vit3d::nn::SliceDistanceBiasConfig config;
    config.heads = kHeads;
    config.prefix_bias = true;
    vit3d::nn::SliceDistanceBias<float> slices(config);
    slices.table = Tensor<float>::randn(slices.table.shape(), 4);
    vit3d::nn::SliceDistanceTables<float> tables;
    vit3d::nn::DistanceBias<float> distance;
    if (slice_bias) {
        tables = slices.describe(grid_of(N), 0);
        distance = tables.view();
        p.set_distance_bias(&distance, "bench_attention");
    }
    for (auto _ : state) {
        vit3d::nn::attention(p, kernel);
        benchmark::DoNotOptimize(out.data());
        benchmark::ClobberMemory();
    }
    const double flops = 4.0 * double(B) * kHeads * double(N) * double(N) * double(head_dim);
    state.counters["GFLOPs"] = vit3d::bench::rate(flops * 1e-9);
    state.counters["tokens_per_s"] = vit3d::bench::rate(double(B * N));
    state.counters["workspace_bytes"] = double(vit3d::nn::attention_workspace_bytes(p, kernel, threads));
    state.counters["peak_rss_bytes"] = vit3d::bench::peak_rss_bytes();
    vit3d::set_num_threads(0);
}

void attention_module(benchmark::State& state, AttentionKernel kernel, Index B, Index N, int threads) {
    vit3d::set_num_threads(threads);
    vit3d::bench::reset_peak_rss();
    vit3d::nn::MultiHeadAttentionConfig config;
    config.dim = kDim;
    config.heads = kHeads;
    vit3d::nn::MultiHeadAttention<float> mha(config);
    mha.qkv.weight = Tensor<float>::randn(mha.qkv.weight.shape(), 1, 0.f, 0.02f);
    mha.proj->weight = Tensor<float>::randn(mha.proj->weight.shape(), 2, 0.f, 0.02f);
    mha.kernel = kernel;
    const Tensor<float> x = Tensor<float>::randn({B, N, kDim}, 3);
    // Steady state (the second call packs the projections' weights, nn/linear.hpp), where it matters.
    if (B * N <= 4096)
        for (int warm_up = 0; warm_up < 2; ++warm_up) benchmark::DoNotOptimize(mha.forward(x).data());
    for (auto _ : state) {
        Tensor<float> y = mha.forward(x);
        benchmark::DoNotOptimize(y.data());
    }
    const double flops = 4.0 * double(B) * kHeads * double(N) * double(N) * kHeadDim +
                         8.0 * double(B) * double(N) * kDim * kDim;
    state.counters["GFLOPs"] = vit3d::bench::rate(flops * 1e-9);
    state.counters["tokens_per_s"] = vit3d::bench::rate(double(B * N));
    state.counters["peak_rss_bytes"] = vit3d::bench::peak_rss_bytes();
    vit3d::set_num_threads(0);
}

struct Shape {
    Index B, N;
};
constexpr Shape kShapes[] = {{1, 197}, {8, 197}, {1, 1024}, {1, 4096}, {1, 16384}};

std::string case_name(const char* what, AttentionKernel k, Shape s, int threads) {
    return std::string(what) + "/" + name_of(k) + "/B:" + std::to_string(s.B) + "/N:" + std::to_string(s.N) +
           "/threads:" + std::to_string(threads);
}

const bool registered = [] {
    for (int threads : {1, 2})
        for (Shape s : kShapes) {
            for (AttentionKernel k : {AttentionKernel::fused, AttentionKernel::naive}) {
                // The naive kernel at N = 16384 holds a 1 GiB score matrix per thread and needs over a minute
                // per call (measured: 75.6 s on one thread, 10.9 GFLOP/s): not worth a bench slot.
                if (k == AttentionKernel::naive && s.N > 4096) continue;
                benchmark::RegisterBenchmark(case_name("attention", k, s, threads).c_str(), attention_alone,
                                             k, s.B, s.N, threads, false, kHeadDim)
                    ->Unit(benchmark::kMillisecond)
                    ->UseRealTime();
            }
            if (s.N == 4096 || s.N == 16384)
                benchmark::RegisterBenchmark(
                    case_name("attention_slice_bias", AttentionKernel::fused, s, threads).c_str(),
                    attention_alone, AttentionKernel::fused, s.B, s.N, threads, true, kHeadDim)
                    ->Unit(benchmark::kMillisecond)
                    ->UseRealTime();
            benchmark::RegisterBenchmark(case_name("mha", AttentionKernel::fused, s, threads).c_str(),
                                         attention_module, AttentionKernel::fused, s.B, s.N, threads)
                ->Unit(benchmark::kMillisecond)
                ->UseRealTime();
        }
    // Other head widths (ViT-H and SAM use 80, CLIP-bigG 104, DiT-XL and LLaMA-style blocks 128), 12 heads.
    for (int threads : {1, 2})
        for (Index d : {32, 48, 80, 96, 104, 128})
            benchmark::RegisterBenchmark(
                ("attention_dim/fused/d:" + std::to_string(d) + "/N:1024/threads:" + std::to_string(threads))
                    .c_str(),
                attention_alone, AttentionKernel::fused, Index(1), Index(1024), threads, false, d)
                ->Unit(benchmark::kMillisecond)
                ->UseRealTime();
    return true;
}();

}  // namespace

BENCHMARK_MAIN();
