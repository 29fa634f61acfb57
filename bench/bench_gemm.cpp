// The ceilings the other benches are read against: this CPU's FMA peak on one core (independent
// multiply-add chains on Eigen's widest packet), and the GEMM behind vit3d's linear layers
// (detail::gemm_abt: vit3d's packed kernel, or the BLAS when built with -DVIT3D_USE_BLAS=ON; "eigen" is
// Eigen's own product for reference) at the shapes of ViT-B. "vit3d" packs B on every call, as a weight's
// first call does; "vit3d_packed" reads a pack made once (GemmWeights), as nn::Linear does from its second
// call on; "vit3d_packed_cold" reads a different pack at every call, 384 MiB of them in all, so that B comes
// from memory as in a ViT-B forward (its 48 linear layers hold 340 MB of weights), not from the cache:
// tokens x 768 -> 2304 (qkv), 768 -> 3072 (MLP up), 3072 -> 768 (MLP down). Next to them, the LayerNorm
// that precedes each block's attention and MLP, on the same tokens x 768 rows (detail::layer_norm_rows, one
// thread); its GB/s counts the rows read once and written once.
//
//   ./build-bench/bench/bench_gemm --benchmark_counters_tabular=true

#include <benchmark/benchmark.h>

#include <cstring>
#include <string>
#include <vector>
#include <vit3d.hpp>
#include <vit3d/core/cpu.hpp>
#include <vit3d/detail/bf16_gemm.hpp>
#include <vit3d/detail/gemm.hpp>
#include <vit3d/detail/int8_gemm.hpp>
#include <vit3d/detail/layer_norm_kernel.hpp>
#include <vit3d/detail/packet_math.hpp>

#if VIT3D_ISA_DISPATCH
#include <immintrin.h>
#endif

#include "bench_support.hpp"

namespace {

using vit3d::Index;
using vit3d::Tensor;

// 12 independent accumulators hide the FMA latency; different starting values keep the compiler from
// merging the chains. The peak is measured at the best instruction-set level this CPU has (the kernels'
// runtime choice, core/cpu.hpp), whatever flags this bench was compiled with; fma_peak_baseline measures
// Eigen's widest packet for those flags.
constexpr int fma_chains = 12;
constexpr long fma_steps = 1 << 20;
// Read on every call, so that the compiler cannot run a loop without side effects once for all iterations.
volatile float fma_start = 1.0f;

template <class P>
void fma_chains_loop(benchmark::State& state, int width) {
    using namespace Eigen::internal;
    const P b = pset1<P>(0.9999999f), c = pset1<P>(1e-7f);
    for (auto _ : state) {
        P acc[fma_chains];
        for (int i = 0; i < fma_chains; ++i) acc[i] = pset1<P>(1.0f + float(i));
        for (long s = 0; s < fma_steps; ++s)
            for (int i = 0; i < fma_chains; ++i) acc[i] = pmadd(acc[i], b, c);
        for (int i = 0; i < fma_chains; ++i) benchmark::DoNotOptimize(acc[i]);
    }
    state.counters["GFLOPs"] = vit3d::bench::rate(2.0 * width * fma_chains * double(fma_steps) * 1e-9);
}

#if VIT3D_ISA_DISPATCH
#define VIT3D_FMA_LOOP(name, features, V, set1, fmadd, width)                                           \
    __attribute__((target(features))) double name(float start) {                                        \
        const V b = set1(0.9999999f), c = set1(1e-7f);                                                  \
        V acc[fma_chains];                                                                              \
        for (int i = 0; i < fma_chains; ++i) acc[i] = set1(start + float(i));                           \
        for (long s = 0; s < fma_steps; ++s)                                                            \
            _Pragma("GCC unroll 12") for (int i = 0; i < fma_chains; ++i) acc[i] = fmadd(acc[i], b, c); \
        float sum = 0, lanes[width];                                                                    \
        for (int i = 0; i < fma_chains; ++i) {                                                          \
            std::memcpy(lanes, &acc[i], sizeof lanes);                                                  \
            sum += lanes[0];                                                                            \
        }                                                                                               \
        return sum;                                                                                     \
    }
VIT3D_FMA_LOOP(fma_loop_avx512, "avx512f,fma", __m512, _mm512_set1_ps, _mm512_fmadd_ps, 16)
VIT3D_FMA_LOOP(fma_loop_avx2, "avx2,fma", __m256, _mm256_set1_ps, _mm256_fmadd_ps, 8)
#endif

void fma_peak(benchmark::State& state) {
#if VIT3D_ISA_DISPATCH
    const vit3d::Isa isa = vit3d::cpu_info().supported;
    if (isa != vit3d::Isa::generic) {
        const int width = isa == vit3d::Isa::avx512 ? 16 : 8;
        for (auto _ : state)
            benchmark::DoNotOptimize(isa == vit3d::Isa::avx512 ? fma_loop_avx512(fma_start)
                                                               : fma_loop_avx2(fma_start));
        state.counters["GFLOPs"] = vit3d::bench::rate(2.0 * width * fma_chains * double(fma_steps) * 1e-9);
        state.SetLabel(vit3d::isa_name(isa));
        return;
    }
#endif
    fma_chains_loop<vit3d::detail::Packet<float>>(state, vit3d::detail::packet_width<float>);
    state.SetLabel("generic");
}
BENCHMARK(fma_peak)->Unit(benchmark::kMillisecond)->UseRealTime();

#if VIT3D_ISA_DISPATCH
// The AVX2 peak of a CPU with AVX-512 too: what the AVX2 kernels are read against when VIT3D_ISA=avx2.
void fma_peak_avx2(benchmark::State& state) {
    if (vit3d::cpu_info().supported < vit3d::Isa::avx2) return state.SkipWithError("this CPU has no AVX2");
    for (auto _ : state) benchmark::DoNotOptimize(fma_loop_avx2(fma_start));
    state.counters["GFLOPs"] = vit3d::bench::rate(2.0 * 8 * fma_chains * double(fma_steps) * 1e-9);
}
BENCHMARK(fma_peak_avx2)->Unit(benchmark::kMillisecond)->UseRealTime();
#endif

void fma_peak_baseline(benchmark::State& state) {
    fma_chains_loop<vit3d::detail::Packet<float>>(state, vit3d::detail::packet_width<float>);
}
BENCHMARK(fma_peak_baseline)->Unit(benchmark::kMillisecond)->UseRealTime();

// The GEMM's register block alone, at the level the kernels choose, over `depth` steps on data in L1: what
// the GEMM would reach without waiting on L2 and memory. Read next to fma_peak it tells the core's limit on
// a block's loads and FMAs apart from the cache hierarchy's share, in the same run (on a shared VM both
// move).
void gemm_register_block(benchmark::State& state) {
    const Index depth = 256;
    const vit3d::Isa isa = vit3d::cpu_info().active;
    const vit3d::detail::KernelShape shape = vit3d::detail::kernel_shape<float>(isa);
    const Tensor<float> a = Tensor<float>::randn({shape.rows, depth}, 1),
                        bp = Tensor<float>::randn({depth, shape.columns()}, 2);
    Tensor<float> c = Tensor<float>::zeros({shape.rows, shape.columns()});
    vit3d::detail::with_kernels(isa, [&](auto kernels) {
        for (auto _ : state) {
            for (int repeat = 0; repeat < 64; ++repeat)
                decltype(kernels)::register_block(a.data(), depth, bp.data(), depth, c.data());
            benchmark::DoNotOptimize(c.data());
        }
    });
    state.counters["GFLOPs"] =
        vit3d::bench::rate(64 * 2.0 * double(shape.rows) * double(shape.columns()) * double(depth) * 1e-9);
    state.SetLabel(std::string(vit3d::isa_name(isa)) + " " + std::to_string(shape.rows) + "x" +
                   std::to_string(shape.columns()));
}
BENCHMARK(gemm_register_block)->Unit(benchmark::kMicrosecond)->UseRealTime();

enum class Backend { vit3d, vit3d_packed, vit3d_packed_cold, eigen };

const char* name_of(Backend backend, const std::string& linear_backend) {
    switch (backend) {
        case Backend::eigen:
            return "eigen";
        case Backend::vit3d_packed:
            return "vit3d_packed";
        case Backend::vit3d_packed_cold:
            return "vit3d_packed_cold";
        default:
            return linear_backend.c_str();
    }
}

void gemm(benchmark::State& state, Backend backend, Index M, Index N, Index K, int threads) {
    vit3d::set_num_threads(threads);
    const Tensor<float> a = Tensor<float>::randn({M, K}, 1), b = Tensor<float>::randn({N, K}, 2);
    Tensor<float> c = Tensor<float>::empty({M, N});
    using Weights = vit3d::detail::GemmWeights<float>;
    // One pack, or (cold) as many as make 384 MiB, read in turn.
    const bool packed = backend == Backend::vit3d_packed || backend == Backend::vit3d_packed_cold;
    const Index copies = backend == Backend::vit3d_packed_cold
                             ? (Index(384) << 20) / (N * K * Index(sizeof(float))) + 1
                             : Index(packed);
    std::vector<Weights> weights;
    for (Index i = 0; i < copies; ++i)
        weights.push_back(Weights::pack(b.data(), K, N, K, vit3d::cpu_info().active, threads));
    std::size_t next = 0;
    for (auto _ : state) {
        if (backend == Backend::eigen)
            vit3d::detail::eigen_gemm_abt(M, N, K, a.data(), K, b.data(), K, c.data(), N);
        else
            vit3d::detail::gemm_abt(M, N, K, a.data(), K, b.data(), K, c.data(), N,
                                    static_cast<const float*>(nullptr), packed ? &weights[next] : nullptr);
        if (packed) next = (next + 1) % weights.size();
        benchmark::DoNotOptimize(c.data());
    }
    state.counters["GFLOPs"] = vit3d::bench::rate(2.0 * double(M) * double(N) * double(K) * 1e-9);
    if (backend != Backend::eigen) state.SetLabel(vit3d::isa_name(vit3d::cpu_info().active));
    vit3d::set_num_threads(0);
}

// The int8 GEMM (detail/int8_gemm.hpp) on the same shapes, its weights quantised and packed once (as a
// layer keeps them) and the activations quantised in every call, as a layer's forward does: GOPs counts
// 2 M N K multiply-adds per second, to be read against the float GEMM's GFLOPs.
void gemm_int8(benchmark::State& state, Index M, Index N, Index K, int threads) {
    vit3d::set_num_threads(threads);
    const Tensor<float> a = Tensor<float>::randn({M, K}, 1), b = Tensor<float>::randn({N, K}, 2);
    Tensor<float> c = Tensor<float>::empty({M, N});
    const vit3d::detail::Int8Kernel kernel = vit3d::detail::active_int8_kernel();
    const auto weights = vit3d::detail::Int8Weights::quantize(b.data(), K, N, K, kernel, threads);
    for (auto _ : state) {
        vit3d::detail::int8_gemm_abt(M, a.data(), K, weights, nullptr, c.data(), N, threads);
        benchmark::DoNotOptimize(c.data());
    }
    state.counters["GOPs"] = vit3d::bench::rate(2.0 * double(M) * double(N) * double(K) * 1e-9);
    state.SetLabel(vit3d::enum_name(kernel));
    vit3d::set_num_threads(0);
}

// The bf16 GEMM (detail/bf16_gemm.hpp) on the same shapes, its weights converted and packed once and the
// activations rounded in every call: GFLOPs as the float GEMM's.
void gemm_bf16(benchmark::State& state, Index M, Index N, Index K, int threads) {
    vit3d::set_num_threads(threads);
    const Tensor<float> a = Tensor<float>::randn({M, K}, 1), b = Tensor<float>::randn({N, K}, 2);
    Tensor<float> c = Tensor<float>::empty({M, N});
    const auto weights =
        vit3d::detail::Bf16Weights::convert(b.data(), K, N, K, vit3d::cpu_info().active, threads);
    const vit3d::detail::Bf16Kernel kernel = weights.kernel;
    for (auto _ : state) {
        vit3d::detail::bf16_gemm_abt(M, a.data(), K, weights, nullptr, c.data(), N, threads);
        benchmark::DoNotOptimize(c.data());
    }
    state.counters["GFLOPs"] = vit3d::bench::rate(2.0 * double(M) * double(N) * double(K) * 1e-9);
    state.SetLabel(vit3d::enum_name(kernel));
    vit3d::set_num_threads(0);
}

// LayerNorm of M rows of 768 floats at the level the kernels choose (VIT3D_ISA caps it), on this thread.
void layer_norm(benchmark::State& state, Index M) {
    const Index d = 768;
    const Tensor<float> x = Tensor<float>::randn({M, d}, 1, 0.5f, 2.0f),
                        weight = Tensor<float>::randn({d}, 2), bias = Tensor<float>::randn({d}, 3);
    Tensor<float> y = Tensor<float>::empty({M, d});
    for (auto _ : state) {
        vit3d::detail::layer_norm_rows(x.data(), y.data(), 0, M, d, weight.data(), bias.data(), 1e-6);
        benchmark::DoNotOptimize(y.data());
    }
    state.counters["GB/s"] = vit3d::bench::rate(2.0 * double(M) * double(d) * sizeof(float) * 1e-9);
    state.SetLabel(vit3d::isa_name(vit3d::cpu_info().active));
}

const bool registered = [] {
#ifdef VIT3D_USE_BLAS
    const std::string linear_backend = "blas";  // what gemm_abt, and so nn::Linear, runs in this build
#else
    const std::string linear_backend = "vit3d";
#endif
    struct Shape {
        const char* name;
        Index N, K;
    };
    // M: one 224² image in 16-pixel patches with its class token; 256 patch tokens (SigLIP-B/16 at 256²),
    // just past one pass of rows over a prepacked B; eight images; 4,097 tokens.
    for (int threads : {1, 2})
        for (Index M : {197, 256, 1576, 4097})
            for (Shape s :
                 {Shape{"qkv", 2304, 768}, Shape{"mlp_up", 3072, 768}, Shape{"mlp_down", 768, 3072}})
                for (Backend backend :
                     {Backend::vit3d, Backend::vit3d_packed, Backend::vit3d_packed_cold, Backend::eigen}) {
                    const bool packs =
                        backend == Backend::vit3d_packed || backend == Backend::vit3d_packed_cold;
                    if (packs && linear_backend != "vit3d") continue;  // the BLAS build keeps no packs
                    if (backend == Backend::vit3d_packed_cold && M > 256) continue;  // B reused enough above
                    const std::string name = name_of(backend, linear_backend);
                    benchmark::RegisterBenchmark(("gemm/" + name + "/" + s.name + "/M:" + std::to_string(M) +
                                                  "/threads:" + std::to_string(threads))
                                                     .c_str(),
                                                 gemm, backend, M, s.N, s.K, threads)
                        ->Unit(benchmark::kMillisecond)
                        ->UseRealTime();
                }
    // The low-precision GEMMs, at one image's and eight images' tokens.
    struct LowPrecision {
        const char* name;
        void (*run)(benchmark::State&, Index, Index, Index, int);
    };
    for (LowPrecision precision :
         {LowPrecision{"gemm_int8", gemm_int8}, LowPrecision{"gemm_bf16", gemm_bf16}})
        for (int threads : {1, 2})
            for (Index M : {197, 1576})
                for (Shape s :
                     {Shape{"qkv", 2304, 768}, Shape{"mlp_up", 3072, 768}, Shape{"mlp_down", 768, 3072}})
                    benchmark::RegisterBenchmark((std::string(precision.name) + "/" + s.name + "/M:" +
                                                  std::to_string(M) + "/threads:" + std::to_string(threads))
                                                     .c_str(),
                                                 precision.run, M, s.N, s.K, threads)
                        ->Unit(benchmark::kMillisecond)
                        ->UseRealTime();
    for (Index M : {197, 4097})
        benchmark::RegisterBenchmark(("layer_norm/M:" + std::to_string(M) + "/D:768/threads:1").c_str(),
                                     layer_norm, M)
            ->Unit(benchmark::kMicrosecond)
            ->UseRealTime();
    return true;
}();

}  // namespace

BENCHMARK_MAIN();
