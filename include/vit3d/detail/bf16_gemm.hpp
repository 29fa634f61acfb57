#pragma once
// C = A W^T + bias with W stored in bf16 and A rounded to bf16 row by row at run time, products summed in
// float: the product behind a linear layer run in bf16. On CPUs with AVX512-BF16 (at the avx512 level of the
// float kernels, so VIT3D_ISA caps it too) vdpbf16ps computes it (detail/isa/bf16_avx512.hpp); elsewhere the
// float GEMM runs on the bf16-rounded weights and activations, the same values at float's speed
// (Bf16Kernel::emulated), so that a bf16 model gives the same answers, to float rounding, on any CPU.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

#include "vit3d/core/config.hpp"
#include "vit3d/core/cpu.hpp"
#include "vit3d/core/enum_names.hpp"
#include "vit3d/detail/aligned_buffer.hpp"
#include "vit3d/detail/gemm_kernel.hpp"
#include "vit3d/detail/isa/bf16_avx512.hpp"
#include "vit3d/detail/threading.hpp"

namespace vit3d::detail {

enum class Bf16Kernel { emulated = 0, avx512bf16 = 1 };

constexpr auto enum_names(Bf16Kernel) {
    return enum_table<Bf16Kernel>(
        {{Bf16Kernel::emulated, "emulated"}, {Bf16Kernel::avx512bf16, "avx512bf16"}});
}

// Whether the CPU has AVX512-BF16 (and the operating system saves the AVX-512 registers).
inline bool cpu_has_avx512_bf16() {
#if VIT3D_ISA_DISPATCH
    static const bool has = [] {
        __builtin_cpu_init();
        return cpu_supported_isa() == Isa::avx512 && __builtin_cpu_supports("avx512bf16");
    }();
    return has;
#else
    return false;
#endif
}

inline Bf16Kernel bf16_kernel_for(Isa isa) {
    return isa == Isa::avx512 && cpu_has_avx512_bf16() ? Bf16Kernel::avx512bf16 : Bf16Kernel::emulated;
}

inline Bf16Kernel active_bf16_kernel() { return bf16_kernel_for(active_isa()); }

// x rounded to bf16 as vcvtne2ps2bf16 rounds: to nearest, ties to even; a NaN stays a (quiet) NaN; a
// subnormal input becomes a zero of its sign (the instruction flushes them).
inline std::uint16_t bf16_bits(float x) {
    std::uint32_t u;
    std::memcpy(&u, &x, 4);
    if ((u & 0x7F800000u) == 0) return static_cast<std::uint16_t>((u >> 16) & 0x8000u);
    if ((u & 0x7FFFFFFFu) > 0x7F800000u) return static_cast<std::uint16_t>((u >> 16) | 0x40u);
    u += 0x7FFFu + ((u >> 16) & 1u);
    return static_cast<std::uint16_t>(u >> 16);
}

inline float bf16_value(std::uint16_t bits) {
    const std::uint32_t u = std::uint32_t(bits) << 16;
    float x;
    std::memcpy(&x, &u, 4);
    return x;
}

inline float round_to_bf16(float x) { return bf16_value(bf16_bits(x)); }

// W [N, K] in bf16, packed for the variant that runs.
struct Bf16Weights {
    Bf16Kernel kernel = Bf16Kernel::emulated;
    Isa isa = Isa::generic;  // the float kernels' level it was made at (emulated: its float pack's)
    Index N = 0, K = 0, padded_k = 0;
    AlignedBuffer<std::uint16_t> packed;  // avx512bf16: panels of 64 columns, pairs of k per column
    GemmWeights<float> rounded;           // emulated: W rounded to bf16, packed for the float GEMM

    // W for the bf16 variant of the float kernels' level `isa` on this CPU (bf16_kernel_for).
    static Bf16Weights convert(const float* W, Index ldw, Index N, Index K, Isa isa,
                               int threads = num_threads()) {
        Bf16Weights w;
        w.kernel = bf16_kernel_for(isa);
        w.isa = isa;
        const Bf16Kernel kernel = w.kernel;
        w.N = N;
        w.K = K;
        w.padded_k = round_up(std::max<Index>(K, 1), 2);
#if VIT3D_ISA_DISPATCH
        if (kernel == Bf16Kernel::avx512bf16) {
            constexpr Index P = bf16_avx512::panel_columns;
            const Index panels = ceil_div(N, P);
            w.packed = AlignedBuffer<std::uint16_t>(panels * w.padded_k * P);
            std::uint16_t* dst = w.packed.data();
            parallel_for(panels, 1, [&](Index first, Index last) {
                for (Index p = first; p < last; ++p) {
                    std::uint16_t* panel = dst + p * w.padded_k * P;
                    std::fill(panel, panel + w.padded_k * P, std::uint16_t(0));
                    for (Index j = 0; j < P && p * P + j < N; ++j) {
                        const float* row = W + (p * P + j) * ldw;
                        for (Index k = 0; k < K; ++k)
                            panel[((k / 2) * P + j) * 2 + k % 2] = bf16_bits(row[k]);
                    }
                }
            });
            return w;
        }
#endif
        std::vector<float> rounded(static_cast<std::size_t>(N * K));
        for (Index n = 0; n < N; ++n)
            for (Index k = 0; k < K; ++k) rounded[std::size_t(n * K + k)] = round_to_bf16(W[n * ldw + k]);
        w.rounded = GemmWeights<float>::pack(rounded.data(), K, N, K, isa, threads);
        return w;
    }

    Index bytes() const {
        return static_cast<Index>(packed.size() * sizeof(std::uint16_t)) + rounded.bytes();
    }
};

// C [M, N] = A [M, K] W^T + bias (bias may be null) in bf16, on up to `threads` threads; `epilogue` works on
// each block of C as it is finished.
inline void bf16_gemm_abt(Index M, const float* A, Index lda, const Bf16Weights& weights, const float* bias,
                          float* C, Index ldc, int threads, const GemmEpilogue<float>& epilogue = {}) {
    const Index N = weights.N, K = weights.K;
    if (M <= 0 || N <= 0) return;
#if VIT3D_ISA_DISPATCH
    if (weights.kernel == Bf16Kernel::avx512bf16) {
        constexpr Index P = bf16_avx512::panel_columns;
        const Index panels = ceil_div(N, P);
        AlignedBuffer<std::uint16_t> a(M * weights.padded_k);
        std::uint16_t* rows = a.data();
        parallel_for(M, 16, [&](Index first, Index last) {
            for (Index i = first; i < last; ++i)
                bf16_avx512::round_row(A + i * lda, K, weights.padded_k, rows + i * weights.padded_k);
        });
        const int used = gemm_threads(M, N, K, panels, threads);
        parallel_region(used, [&](int thread, int thread_count) {
            const ItemRange share = static_share(panels, thread, thread_count);
            bf16_avx512::gemm_panels(M, N, weights.padded_k, rows, weights.packed.data(), bias, C, ldc,
                                     epilogue, share.begin, share.end);
        });
        return;
    }
#endif
    AlignedBuffer<float> rounded(M * std::max<Index>(K, 1));
    float* rows = rounded.data();
    parallel_for(M, 16, [&](Index first, Index last) {
        for (Index i = first; i < last; ++i)
            for (Index k = 0; k < K; ++k) rows[i * K + k] = round_to_bf16(A[i * lda + k]);
    });
    packed_gemm_abt<float>(M, N, K, rows, K, nullptr, K, C, ldc, bias, threads, weights.rounded.isa,
                           &weights.rounded, epilogue);
}

}  // namespace vit3d::detail
