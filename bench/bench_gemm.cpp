// The ceilings the other benches are read against: this CPU's FMA peak on one core (independent
// multiply-add chains on Eigen's widest packet), and the GEMM behind vit3d's linear layers
// (detail::gemm_abt: vit3d's packed kernel, or the BLAS when built with -DVIT3D_USE_BLAS=ON; "eigen" is
// Eigen's own product for reference) at the shapes of ViT-B:
// tokens x 768 -> 2304 (qkv), 768 -> 3072 (MLP up), 3072 -> 768 (MLP down).
//
//   ./build-bench/bench/bench_gemm --benchmark_counters_tabular=true

#include <benchmark/benchmark.h>

#include <string>
#include <vit3d.hpp>
#include <vit3d/detail/gemm.hpp>
#include <vit3d/detail/packet_math.hpp>

#include "bench_support.hpp"

namespace {

using vit3d::Index;
using vit3d::Tensor;

// 12 independent accumulators hide the FMA latency; different starting values keep the compiler from
// merging the chains.
void fma_peak(benchmark::State& state) {
    using namespace Eigen::internal;
    using P = vit3d::detail::Packet<float>;
    constexpr int W = vit3d::detail::packet_width<float>;
    constexpr int chains = 12;
    constexpr long steps = 1 << 20;
    const P b = pset1<P>(0.9999999f), c = pset1<P>(1e-7f);
    for (auto _ : state) {
        P acc[chains];
        for (int i = 0; i < chains; ++i) acc[i] = pset1<P>(1.0f + float(i));
        for (long s = 0; s < steps; ++s)
            for (int i = 0; i < chains; ++i) acc[i] = pmadd(acc[i], b, c);
        for (int i = 0; i < chains; ++i) benchmark::DoNotOptimize(acc[i]);
    }
    state.counters["GFLOPs"] = vit3d::bench::rate(2.0 * W * chains * double(steps) * 1e-9);
}
BENCHMARK(fma_peak)->Unit(benchmark::kMillisecond)->UseRealTime();

enum class Backend { vit3d, eigen };

void gemm(benchmark::State& state, Backend backend, Index M, Index N, Index K, int threads) {
    vit3d::set_num_threads(threads);
    const Tensor<float> a = Tensor<float>::randn({M, K}, 1), b = Tensor<float>::randn({N, K}, 2);
    Tensor<float> c = Tensor<float>::empty({M, N});
    for (auto _ : state) {
        if (backend == Backend::eigen)
            vit3d::detail::eigen_gemm_abt(M, N, K, a.data(), K, b.data(), K, c.data(), N);
        else
            vit3d::detail::gemm_abt(M, N, K, a.data(), K, b.data(), K, c.data(), N);
        benchmark::DoNotOptimize(c.data());
    }
    state.counters["GFLOPs"] = vit3d::bench::rate(2.0 * double(M) * double(N) * double(K) * 1e-9);
    vit3d::set_num_threads(0);
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
    for (int threads : {1, 2})
        for (Index M : {197, 1576, 4097})
            for (Shape s :
                 {Shape{"qkv", 2304, 768}, Shape{"mlp_up", 3072, 768}, Shape{"mlp_down", 768, 3072}})
                for (Backend backend : {Backend::vit3d, Backend::eigen})
                    benchmark::RegisterBenchmark(
                        ("gemm/" + (backend == Backend::eigen ? std::string("eigen") : linear_backend) + "/" +
                         s.name + "/M:" + std::to_string(M) + "/threads:" + std::to_string(threads))
                            .c_str(),
                        gemm, backend, M, s.N, s.K, threads)
                        ->Unit(benchmark::kMillisecond)
                        ->UseRealTime();
    return true;
}();

}  // namespace

BENCHMARK_MAIN();
