#pragma once
// C = A W^T + bias with W quantised to int8 once and A quantised to u8 row by row at run time (dynamic
// quantisation; the arithmetic is in detail/isa/int8_shapes.hpp): the product behind a linear layer run in
// int8. Sums are exact in int32; the result is float. Three variants (Int8Kernel), the best one the CPU runs
// chosen per call from the float kernels' level (core/cpu.hpp, so VIT3D_ISA caps it too) and CPUID: vnni512
// on CPUs with AVX512-VNNI at the avx512 level, avx2 from the avx2 level, generic below.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <vector>

#include "vit3d/core/config.hpp"
#include "vit3d/core/cpu.hpp"
#include "vit3d/core/message.hpp"
#include "vit3d/detail/aligned_buffer.hpp"
#include "vit3d/detail/isa/int8_avx512.hpp"
#include "vit3d/detail/isa/int8_generic.hpp"
#include "vit3d/detail/threading.hpp"

namespace vit3d::detail {

// Whether the CPU has AVX512-VNNI (and the operating system saves the AVX-512 registers).
inline bool cpu_has_avx512_vnni() {
#if VIT3D_ISA_DISPATCH
    static const bool has = [] {
        __builtin_cpu_init();
        return cpu_supported_isa() == Isa::avx512 && __builtin_cpu_supports("avx512vnni");
    }();
    return has;
#else
    return false;
#endif
}

// The variant for the float kernels' level `isa` on this CPU.
inline Int8Kernel int8_kernel_for(Isa isa) {
#if VIT3D_ISA_DISPATCH
    if (isa == Isa::avx512 && cpu_has_avx512_vnni()) return Int8Kernel::vnni512;
    if (isa >= Isa::avx2) return Int8Kernel::avx2;
#endif
    (void)isa;
    return Int8Kernel::generic;
}

inline Int8Kernel active_int8_kernel() { return int8_kernel_for(active_isa()); }

template <class F>
decltype(auto) with_int8_kernels(Int8Kernel kernel, F&& f) {
    switch (kernel) {
#if VIT3D_ISA_DISPATCH
        case Int8Kernel::vnni512:
            return f(int8_avx512::Int8Kernels{});
        case Int8Kernel::avx2:
            return f(int8_avx2::Int8Kernels{});
#endif
        default:
            return f(int8_generic::Int8Kernels{});
    }
}

inline Int8Shape int8_shape(Int8Kernel kernel) {
    return with_int8_kernels(kernel, [](auto kernels) { return decltype(kernels)::shape; });
}

// The reduction depth up to which int32 sums cannot overflow: 255 * 127 * K < 2^31.
inline constexpr Index int8_max_depth = 65536;

// W [N, K] quantised per output row (symmetric, |q| <= the variant's weight_max) and packed for one variant.
struct Int8Weights {
    Int8Kernel kernel = Int8Kernel::generic;
    Index N = 0, K = 0, padded_k = 0;
    AlignedBuffer<std::int8_t> packed;
    std::vector<float> scales;       // [panels * P]: weight_scale of each row, 0 past N
    std::vector<std::int32_t> sums;  // [panels * P]: sum of each row's quantised values, 0 past N

    // `quantized` [N, K] and `scales` [N] as the quantisation for `kernel` gives them (quantize_rows).
    static Int8Weights quantize(const float* W, Index ldw, Index N, Index K, Int8Kernel kernel,
                                int threads = num_threads()) {
        if (K > int8_max_depth)
            throw std::invalid_argument(message("vit3d::detail::Int8Weights::quantize: expected at most ",
                                                int8_max_depth, " input features, got ", K));
        Int8Weights w;
        w.kernel = kernel;
        w.N = N;
        w.K = K;
        w.padded_k = round_up(std::max<Index>(K, 1), 4);
        const Int8Shape shape = int8_shape(kernel);
        const Index P = shape.columns(), panels = ceil_div(N, P);
        std::vector<std::int8_t> quantized(static_cast<std::size_t>(N * K));
        w.scales.assign(static_cast<std::size_t>(panels * P), 0.0f);
        w.sums.assign(static_cast<std::size_t>(panels * P), 0);
        for (Index n = 0; n < N; ++n)
            quantize_row(W + n * ldw, K, shape.weight_max, quantized.data() + n * K, w.scales[std::size_t(n)],
                         w.sums[std::size_t(n)]);
        w.packed = AlignedBuffer<std::int8_t>(std::max<Index>(1, panels * w.padded_k * P));
        threads = static_cast<int>(std::max<Index>(1, std::min<Index>(threads, panels)));
        with_int8_kernels(kernel, [&](auto kernels) {
            parallel_region(threads, [&](int thread, int thread_count) {
                const ItemRange share = static_share(panels, thread, thread_count);
                decltype(kernels)::pack(quantized.data(), N, K, w.padded_k, share.begin, share.end,
                                        w.packed.data());
            });
        });
        return w;
    }

    // One row w [K]: scale = max |w| / weight_max (1 for a row of zeros), q = clamp(round(w / scale)).
    // A non-finite weight makes the scale NaN, and so every output of that row.
    static void quantize_row(const float* w, Index K, int weight_max, std::int8_t* q, float& scale,
                             std::int32_t& sum) {
        float amax = 0.0f;
        bool finite = true;
        for (Index k = 0; k < K; ++k) {
            finite = finite && std::isfinite(w[k]);
            amax = std::max(amax, std::abs(w[k]));
        }
        sum = 0;
        if (!finite) {
            std::fill(q, q + K, std::int8_t(0));
            scale = std::numeric_limits<float>::quiet_NaN();
            return;
        }
        scale = amax > 0.0f ? amax / static_cast<float>(weight_max) : 1.0f;
        const float limit = static_cast<float>(weight_max);
        for (Index k = 0; k < K; ++k) {
            q[k] = static_cast<std::int8_t>(std::clamp(std::nearbyint(w[k] / scale), -limit, limit));
            sum += q[k];
        }
    }

    Index bytes() const {
        return static_cast<Index>(packed.size() + scales.size() * sizeof(float) +
                                  sums.size() * sizeof(std::int32_t));
    }
};

// What an int8 product does besides C = A W^T + bias: `excluded` (K flags, or null) names columns of A taken
// as 0 (they are computed separately, in float: outlier channels); with `accumulate` the product is added to
// C as it is (that float part) rather than written over it; `epilogue` works on each block of C as it is
// finished (an activation).
struct Int8GemmOptions {
    const std::uint8_t* excluded = nullptr;
    bool accumulate = false;
    GemmEpilogue<float> epilogue = {};
};

// C [M, N] = A [M, K] W^T + bias (bias may be null) in int8, on up to `threads` threads, with the variant
// `weights` was packed for.
inline void int8_gemm_abt(Index M, const float* A, Index lda, const Int8Weights& weights, const float* bias,
                          float* C, Index ldc, int threads, const Int8GemmOptions& options = {}) {
    const GemmEpilogue<float>& epilogue = options.epilogue;
    const Index N = weights.N, K = weights.K;
    if (M <= 0 || N <= 0) return;
    if (epilogue && epilogue.replaces_output)
        throw std::logic_error(
            "vit3d::detail::int8_gemm_abt: an epilogue that replaces the output is not supported");
    const Int8Shape shape = int8_shape(weights.kernel);
    const Index P = shape.columns(), panels = ceil_div(N, P);
    AlignedBuffer<std::uint8_t> q(std::max<Index>(1, M * weights.padded_k));
    std::vector<float> row_scales(static_cast<std::size_t>(M));
    std::vector<std::int32_t> row_zeros(static_cast<std::size_t>(M));
    const Index by_work = std::max<Index>(1, 2 * M * N * std::max<Index>(K, 1) / (Index(4) << 20));
    const int gemm_threads =
        static_cast<int>(std::max<Index>(1, std::min<Index>({Index(threads), panels, by_work})));
    const int quantize_threads = static_cast<int>(std::max<Index>(1, std::min<Index>(threads, M / 16)));
    AlignedBuffer<float> row_scratch(options.excluded ? K * quantize_threads : 0);
    const Int8Problem problem{M,
                              N,
                              weights.padded_k,
                              q.data(),
                              row_scales.data(),
                              row_zeros.data(),
                              weights.packed.data(),
                              weights.scales.data(),
                              weights.sums.data(),
                              bias,
                              C,
                              ldc,
                              options.accumulate,
                              epilogue};
    with_int8_kernels(weights.kernel, [&](auto kernels) {
        using Kernels = decltype(kernels);
        parallel_region(quantize_threads, [&](int thread, int thread_count) {
            const ItemRange share = static_share(M, thread, thread_count);
            Kernels::quantize_rows(A, lda, K, weights.padded_k, share.begin, share.end, options.excluded,
                                   row_scratch.data() + K * thread, q.data(), row_scales.data(),
                                   row_zeros.data());
        });
        parallel_region(gemm_threads, [&](int thread, int thread_count) {
            const ItemRange share = static_share(panels, thread, thread_count);
            Kernels::gemm(problem, share.begin, share.end);
        });
    });
}

}  // namespace vit3d::detail
