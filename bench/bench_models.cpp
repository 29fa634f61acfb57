// Whole models, end to end from pixels to logits, float, random weights:
//   "vit_b_16/B:<B>/threads:<t>"        torchvision's ViT-B/16 at 224x224 (197 tokens), B = 1 and 8;
//   "vit3d_b16x16x4/B:1/threads:<t>"    MONAI's ViT-B on a [1, 1, 256, 256, 64] volume, 16x16x4 patches
//                                        (4,096 patches + class token = 4,097 tokens).
// Counters: ms_per_image, tokens_per_s, peak_rss_bytes (this benchmark's peak, weights included).
//
//   ./build-bench/bench/bench_models --benchmark_counters_tabular=true

#include <benchmark/benchmark.h>

#include <chrono>
#include <string>
#include <vit3d.hpp>

#include "bench_support.hpp"

namespace {

using vit3d::Index;
using vit3d::Tensor;

// Weights at the scale of a trained model's (the values do not change the work done).
template <class Model>
void randomise(Model& model) {
    std::uint64_t seed = 1;
    model.visit_parameters([&](const std::string&, Tensor<float>& p) {
        p = Tensor<float>::randn(p.shape(), seed++, 0.f, 0.02f);
    });
}

template <std::size_t N>
void run_model(benchmark::State& state, vit3d::models::VisionTransformerConfig<N> config, Index B,
               int threads) {
    vit3d::set_num_threads(threads);
    vit3d::bench::reset_peak_rss();
    vit3d::models::VisionTransformer<float, N> model(config);
    randomise(model);
    vit3d::Shape input{B, config.channels};
    for (Index s : config.input_size) input.push_back(s);
    const Tensor<float> x = Tensor<float>::randn(input, 7);
    const Index tokens = config.num_patches() + (config.class_token ? 1 : 0);
    double seconds = 0;
    for (auto _ : state) {
        const auto start = std::chrono::steady_clock::now();
        auto out = model.forward(x);
        benchmark::DoNotOptimize(out.logits.data());
        seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    }
    state.counters["ms_per_image"] = 1e3 * seconds / double(state.iterations()) / double(B);
    state.counters["tokens_per_s"] = vit3d::bench::rate(double(B * tokens));
    state.counters["peak_rss_bytes"] = vit3d::bench::peak_rss_bytes();
    vit3d::set_num_threads(0);
}

const bool registered = [] {
    for (int threads : {1, 2}) {
        for (Index B : {1, 8})
            benchmark::RegisterBenchmark(
                ("vit_b_16/B:" + std::to_string(B) + "/threads:" + std::to_string(threads)).c_str(),
                run_model<2>, vit3d::models::vit_b_16(), B, threads)
                ->Unit(benchmark::kMillisecond)
                ->UseRealTime();
        benchmark::RegisterBenchmark(("vit3d_b16x16x4/B:1/threads:" + std::to_string(threads)).c_str(),
                                     run_model<3>, vit3d::models::monai_vit_b_3d(), Index(1), threads)
            ->Unit(benchmark::kMillisecond)
            ->UseRealTime();
    }
    return true;
}();

}  // namespace

BENCHMARK_MAIN();
