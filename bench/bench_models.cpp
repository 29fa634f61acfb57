// Whole models, end to end from pixels to logits, float, random weights:
//   "vit_b_16/B:<B>/threads:<t>"        torchvision's ViT-B/16 at 224x224 (197 tokens), B = 1 and 8;
//   "vit_b_16_<precision>/B:<B>/threads:<t>" the same with its linear layers in int8 or bf16
//   (nn::set_precision). "vit3d_b16x16x4/B:1/threads:<t>"    MONAI's ViT-B on a [1, 1, 256, 256, 64] volume,
//   16x16x4 patches
//                                        (4,096 patches + class token = 4,097 tokens).
//   "dinov2_s14_reg4_518/B:1/threads:<t>" timm's DINOv2 ViT-S/14 with 4 registers at 518x518 (1,374 tokens;
//                                        models::dinov2_vit_s14_reg4): LayerScale, registers.
//   "siglip_b16_256/B:1/threads:<t>"     timm's SigLIP ViT-B/16 at 256x256 (256 tokens, no class token;
//                                        models::siglip_vit_b16_256): the attention-pooling head.
//   "eva02_b14_224/B:1/threads:<t>"      timm's EVA-02 ViT-B/14 at 224x224 (257 tokens;
//                                        models::eva02_vit_b14_224): rotary embedding, split q/k/v, SwiGLU.
// Counters: ms_per_image, tokens_per_s, peak_rss_bytes (this benchmark's peak, weights and their packed
// copies included).
//   "ct_encoder/<size>/mask/threads:<t>" the anatomy-aware CT encoder (models::ct_encoder()) on a
//                                        [1, 1, 64, 512, 512] volume with a 20-region label mask: 16,385
//                                        tokens, 12 hybrid blocks of width 768 ("full"), or on [1, 1, 64,
//                                        256, 256] (4,097 tokens, "256"). One forward per iteration (one
//                                        iteration for full). Counters: s_per_volume, s_per_block (the
//                                        blocks' mean), embed_s (patches, positions, assignment, region
//                                        tokens), finish_s, tokens_per_s, peak_rss_bytes.
//
//   ./build-bench/bench/bench_models --benchmark_counters_tabular=true

#include <benchmark/benchmark.h>

#include <array>
#include <chrono>
#include <cstdint>
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
               int threads, vit3d::Precision precision) {
    vit3d::set_num_threads(threads);
    vit3d::bench::reset_peak_rss();
    vit3d::models::VisionTransformer<float, N> model(config);
    randomise(model);
    vit3d::nn::set_precision(model, precision);
    vit3d::Shape input{B, config.channels};
    for (Index s : config.input_size) input.push_back(s);
    const Tensor<float> x = Tensor<float>::randn(input, 7);
    const Index tokens = config.num_patches() + (config.class_token ? 1 : 0) + config.reg_tokens;
    // Steady state, as the peers are timed after a warm-up: the second call packs the linear layers' weights
    // (nn/linear.hpp). Skipped for the 3D ViT (4,097 tokens, 15 s a call), where a pack saves < 0.2%.
    if (B * tokens <= 4096)
        for (int warm_up = 0; warm_up < 2; ++warm_up)
            benchmark::DoNotOptimize(model.forward(x).tokens.data());
    double seconds = 0;
    for (auto _ : state) {
        const auto start = std::chrono::steady_clock::now();
        auto out = model.forward(x);
        benchmark::DoNotOptimize(out.tokens.data());
        seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    }
    state.counters["ms_per_image"] = 1e3 * seconds / double(state.iterations()) / double(B);
    state.SetLabel(vit3d::precision_name(precision));
    state.counters["tokens_per_s"] = vit3d::bench::rate(double(B * tokens));
    state.counters["peak_rss_bytes"] = vit3d::bench::peak_rss_bytes();
    vit3d::set_num_threads(0);
}

// A label mask of `regions` anatomical regions: axis-aligned boxes of each label tiling the middle of the
// volume, background around them (the work does not depend on the layout; the assignment reads every voxel).
Tensor<std::uint8_t> synthetic_mask(const std::array<Index, 3>& size, Index regions) {
    Tensor<std::uint8_t> mask({1, 1, size[0], size[1], size[2]});
    const Index cells = 5, rows = (regions + cells - 1) / cells;
    for (Index z = size[0] / 8; z < size[0] - size[0] / 8; ++z)
        for (Index y = size[1] / 8; y < size[1] - size[1] / 8; ++y)
            for (Index x = size[2] / 8; x < size[2] - size[2] / 8; ++x) {
                const Index r = (y * rows / size[1]) * cells + x * cells / size[2] + 1;
                if (r <= regions) mask(0, 0, z, y, x) = static_cast<std::uint8_t>(r);
            }
    return mask;
}

void run_ct_encoder(benchmark::State& state, vit3d::models::CTEncoderConfig config, int threads) {
    vit3d::set_num_threads(threads);
    vit3d::bench::reset_peak_rss();
    vit3d::models::CTEncoder<float> encoder(config);
    randomise(encoder);
    const auto& size = config.input_size;
    const Tensor<float> volume = Tensor<float>::randn({1, config.channels, size[0], size[1], size[2]}, 7);
    const Tensor<std::uint8_t> mask = synthetic_mask(size, config.regions);
    using Clock = std::chrono::steady_clock;
    auto seconds_since = [](Clock::time_point t) {
        return std::chrono::duration<double>(Clock::now() - t).count();
    };
    double total = 0, embed = 0, blocks = 0, finish = 0;
    for (auto _ : state) {
        // forward() is exactly these three stages; timing them apart gives the per-block figure.
        const auto start = Clock::now();
        auto stage = Clock::now();
        auto tokens = encoder.embed(volume, &mask);
        embed += seconds_since(stage);
        stage = Clock::now();
        for (std::size_t i = 0; i < encoder.blocks.size(); ++i) encoder.run_block(i, tokens);
        blocks += seconds_since(stage);
        stage = Clock::now();
        auto out = encoder.finish(std::move(tokens));
        finish += seconds_since(stage);
        benchmark::DoNotOptimize(out.region.data());
        total += seconds_since(start);
    }
    const double n = double(state.iterations());
    state.counters["s_per_volume"] = total / n;
    state.counters["s_per_block"] = blocks / n / double(config.depth);
    state.counters["embed_s"] = embed / n;
    state.counters["finish_s"] = finish / n;
    state.counters["tokens_per_s"] = vit3d::bench::rate(double(config.num_patches() + 1));
    state.counters["peak_rss_bytes"] = vit3d::bench::peak_rss_bytes();
    vit3d::set_num_threads(0);
}

const bool registered = [] {
    for (int threads : {1, 2}) {
        for (Index B : {1, 8})
            benchmark::RegisterBenchmark(
                ("vit_b_16/B:" + std::to_string(B) + "/threads:" + std::to_string(threads)).c_str(),
                run_model<2>, vit3d::models::vit_b_16(), B, threads, vit3d::Precision::f32)
                ->Unit(benchmark::kMillisecond)
                ->UseRealTime();
        for (vit3d::Precision precision : {vit3d::Precision::int8, vit3d::Precision::bf16})
            for (Index B : {1, 8})
                benchmark::RegisterBenchmark(
                    (std::string("vit_b_16_") + vit3d::precision_name(precision) + "/B:" + std::to_string(B) +
                     "/threads:" + std::to_string(threads))
                        .c_str(),
                    run_model<2>, vit3d::models::vit_b_16(), B, threads, precision)
                    ->Unit(benchmark::kMillisecond)
                    ->UseRealTime();
        benchmark::RegisterBenchmark(("dinov2_s14_reg4_518/B:1/threads:" + std::to_string(threads)).c_str(),
                                     run_model<2>, vit3d::models::dinov2_vit_s14_reg4(), Index(1), threads,
                                     vit3d::Precision::f32)
            ->Unit(benchmark::kMillisecond)
            ->UseRealTime();
        benchmark::RegisterBenchmark(("siglip_b16_256/B:1/threads:" + std::to_string(threads)).c_str(),
                                     run_model<2>, vit3d::models::siglip_vit_b16_256(), Index(1), threads,
                                     vit3d::Precision::f32)
            ->Unit(benchmark::kMillisecond)
            ->UseRealTime();
        benchmark::RegisterBenchmark(("eva02_b14_224/B:1/threads:" + std::to_string(threads)).c_str(),
                                     run_model<2>, vit3d::models::eva02_vit_b14_224(), Index(1), threads,
                                     vit3d::Precision::f32)
            ->Unit(benchmark::kMillisecond)
            ->UseRealTime();
        benchmark::RegisterBenchmark(("vit3d_b16x16x4/B:1/threads:" + std::to_string(threads)).c_str(),
                                     run_model<3>, vit3d::models::monai_vit_b_3d(), Index(1), threads,
                                     vit3d::Precision::f32)
            ->Unit(benchmark::kMillisecond)
            ->UseRealTime();
        benchmark::RegisterBenchmark(("ct_encoder/256/mask/threads:" + std::to_string(threads)).c_str(),
                                     run_ct_encoder, vit3d::models::ct_encoder_256(), threads)
            ->Unit(benchmark::kMillisecond)
            ->UseRealTime();
        // About 13 TFLOP per volume: one forward per repetition.
        benchmark::RegisterBenchmark(("ct_encoder/full/mask/threads:" + std::to_string(threads)).c_str(),
                                     run_ct_encoder, vit3d::models::ct_encoder(), threads)
            ->Unit(benchmark::kMillisecond)
            ->UseRealTime()
            ->Iterations(1);
    }
    return true;
}();

}  // namespace

BENCHMARK_MAIN();
