// A whole CT scan through a 3D ViT by sliding windows (models::sliding_window_inference), float, random
// weights:
//   "vit_s16_96/scan:512x512x300/overlap:0.25/<mode>/sw_batch:<n>/threads:<t>"
//       a ViT of width 384, depth 6, 6 heads, MLP 1536 on 96^3 windows of 16^3 patches (216 tokens, no
//       class token: MONAI's ViT at ViT-S width, half its depth) over a [1, 1, 512, 512, 300] volume:
//       7 x 7 x 4 = 196 windows, the token grid stitched to [1, 384, 32, 32, 18].
// Counters: s_per_scan, windows_per_s, peak_rss_bytes (the process's peak during the run: the volume, the
// weights and the run), held_rss_bytes (resident before the run: the volume and the weights), and
// run_rss_bytes = peak - held, what the sliding windows add (one batch of windows and its forward pass,
// the stitched output and its weights).
//
//   ./build/bench/bench_sliding_window --benchmark_counters_tabular=true

#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdint>
#include <fstream>
#include <string>
#include <vit3d.hpp>

#include "bench_support.hpp"

namespace {

using vit3d::Index;
using vit3d::Tensor;
namespace models = vit3d::models;

// Resident set now, in bytes (Linux; 0 elsewhere).
double current_rss_bytes() {
    std::ifstream status("/proc/self/status");
    std::string line;
    while (std::getline(status, line))
        if (line.rfind("VmRSS:", 0) == 0) return std::stod(line.substr(6)) * 1024.0;
    return 0.0;
}

void whole_scan(benchmark::State& state, models::BlendMode mode, Index sw_batch, int threads) {
    vit3d::set_num_threads(threads);
    models::VisionTransformerConfig<3> c;
    c.input_size = {96, 96, 96};
    c.patch_size = {16, 16, 16};
    c.channels = 1;
    c.dim = 384;
    c.depth = 6;
    c.heads = 6;
    c.mlp_dim = 1536;
    c.num_classes = 0;
    c.class_token = false;
    c.pool = models::Pooling::none;
    models::ViT3D<float> model(c);
    std::uint64_t seed = 1;
    model.visit_parameters([&](const std::string&, Tensor<float>& p) {
        p = Tensor<float>::randn(p.shape(), seed++, 0.f, 0.02f);
    });
    const Tensor<float> scan = Tensor<float>::randn({1, 1, 512, 512, 300}, 7);
    const auto grid = [&](const Tensor<float>& windows) {
        return model.patch_grid(model.forward(windows).tokens);
    };
    // The second call packs the linear layers' weights (nn/linear.hpp), as a loaded model's are.
    for (int warm_up = 0; warm_up < 2; ++warm_up)
        benchmark::DoNotOptimize(grid(Tensor<float>::zeros({1, 1, 96, 96, 96})).data());
    models::SlidingWindowConfig sw;
    sw.roi_size = {96, 96, 96};
    sw.overlap = {0.25};
    sw.mode = mode;
    sw.sw_batch_size = sw_batch;
    const Index windows = models::sliding_window_plan({512, 512, 300}, sw).windows();
    const double held = current_rss_bytes();
    vit3d::bench::reset_peak_rss();
    double seconds = 0;
    for (auto _ : state) {
        const auto start = std::chrono::steady_clock::now();
        const Tensor<float> out = models::sliding_window_inference<float>(scan, sw, grid);
        benchmark::DoNotOptimize(out.data());
        seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    }
    const double peak = vit3d::bench::peak_rss_bytes();
    state.counters["s_per_scan"] = seconds / double(state.iterations());
    state.counters["windows_per_s"] = vit3d::bench::rate(double(windows));
    state.counters["peak_rss_bytes"] = peak;
    state.counters["held_rss_bytes"] = held;
    state.counters["run_rss_bytes"] = peak - held;
    vit3d::set_num_threads(0);
}

void register_all() {
    for (int threads : {1, 2})
        for (Index sw_batch : {1, 4})
            for (models::BlendMode mode : {models::BlendMode::constant, models::BlendMode::gaussian}) {
                const std::string name = std::string("vit_s16_96/scan:512x512x300/overlap:0.25/") +
                                         vit3d::enum_name(mode) + "/sw_batch:" + std::to_string(sw_batch) +
                                         "/threads:" + std::to_string(threads);
                benchmark::RegisterBenchmark(
                    name.c_str(), [=](benchmark::State& s) { whole_scan(s, mode, sw_batch, threads); })
                    ->Iterations(1)
                    ->Unit(benchmark::kSecond)
                    ->UseRealTime();
            }
}

const bool registered = (register_all(), true);

}  // namespace

BENCHMARK_MAIN();
