#pragma once
// The bf16 GEMM's AVX512-BF16 variant: vdpbf16ps multiplies pairs of bf16 values and adds both products to
// each of 16 float lanes, twice the multiply-adds of a float FMA per instruction. Weights are stored bf16,
// packed in pairs of k per column (panels of 64 columns, as the float GEMM's AVX-512 block); activations are
// rounded to bf16 row by row in each call; sums, the bias and the output are float. Compiled with target
// attributes whatever the translation unit's flags.

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "vit3d/detail/isa/kernel_shapes.hpp"
#include "vit3d/detail/isa/targets.hpp"

#if VIT3D_ISA_DISPATCH
#include <immintrin.h>

VIT3D_TARGET_BEGIN("avx,avx2,fma,f16c,popcnt,sse4.2,avx512f,avx512bw,avx512dq,avx512vl,avx512bf16")

// GCC 12's false uninitialised-merge-operand warnings on AVX-512 builtins, as in simd_avx512.hpp.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif

namespace vit3d::detail::bf16_avx512 {

inline constexpr int rows = 6, vectors = 4, lanes = 16;
inline constexpr Index panel_columns = Index(vectors) * lanes;

// C[Rows x Vectors * 16] (= or +=) A[Rows x 2 pairs] * Bp[2 pairs x Vectors * 16] (bf16 in, float out);
// `init` (the bias of the block, or null) starts fresh sums.
template <int Rows, int Vectors>
void micro_kernel(const std::uint16_t* a, Index lda, const std::uint16_t* bp, Index pairs, float* c,
                  Index ldc, bool accumulate, const float* init) {
    constexpr int W = lanes;
    __m512 acc[Rows][Vectors];
    VIT3D_UNROLL
    for (int r = 0; r < Rows; ++r) {
        VIT3D_UNROLL
        for (int v = 0; v < Vectors; ++v)
            acc[r][v] = accumulate ? _mm512_loadu_ps(c + r * ldc + v * W)
                                   : (init ? _mm512_loadu_ps(init + v * W) : _mm512_setzero_ps());
    }
    for (Index g = 0; g < pairs; ++g) {
        __m512bh b[Vectors];
        VIT3D_UNROLL
        for (int v = 0; v < Vectors; ++v) b[v] = (__m512bh)_mm512_loadu_si512(bp + (g * Vectors + v) * W * 2);
        VIT3D_UNROLL
        for (int r = 0; r < Rows; ++r) {
            std::int32_t two;
            std::memcpy(&two, a + r * lda + 2 * g, 4);
            const __m512bh x = (__m512bh)_mm512_set1_epi32(two);
            VIT3D_UNROLL
            for (int v = 0; v < Vectors; ++v) acc[r][v] = _mm512_dpbf16_ps(acc[r][v], x, b[v]);
        }
    }
    VIT3D_UNROLL
    for (int r = 0; r < Rows; ++r) {
        VIT3D_UNROLL
        for (int v = 0; v < Vectors; ++v) _mm512_storeu_ps(c + r * ldc + v * W, acc[r][v]);
    }
}

template <int Rows>
void micro_kernel_rows(int n, const std::uint16_t* a, Index lda, const std::uint16_t* bp, Index pairs,
                       float* c, Index ldc, bool accumulate, const float* init) {
    if constexpr (Rows >= 1) {
        if (n == Rows) return micro_kernel<Rows, vectors>(a, lda, bp, pairs, c, ldc, accumulate, init);
        micro_kernel_rows<Rows - 1>(n, a, lda, bp, pairs, c, ldc, accumulate, init);
    }
}

// x [n] rounded to bf16 (nearest, ties to even, as vcvtne2ps2bf16 rounds) into y [padded], zeros past n.
inline void round_row(const float* x, Index n, Index padded, std::uint16_t* y) {
    Index k = 0;
    for (; k + 32 <= n; k += 32) {
        const __m512bh two = _mm512_cvtne2ps_pbh(_mm512_loadu_ps(x + k + 16), _mm512_loadu_ps(x + k));
        _mm512_storeu_si512(y + k, (__m512i)two);
    }
    if (k < n) {
        alignas(64) float lanes_in[32] = {};
        std::copy(x + k, x + n, lanes_in);
        alignas(64) std::uint16_t lanes_out[32];
        const __m512bh two = _mm512_cvtne2ps_pbh(_mm512_load_ps(lanes_in + 16), _mm512_load_ps(lanes_in));
        _mm512_store_si512(lanes_out, (__m512i)two);
        std::copy(lanes_out, lanes_out + (n - k), y + k);
    }
    std::fill(y + n, y + padded, std::uint16_t(0));
}

// Panels [first, last) of the product C [M, N] = A [M, padded_k] (bf16) * packed^T + bias: about 240 rows at
// a time, and per panel every block of rows through the micro-kernel over all of K at once (a panel's bf16
// weights, 96 KiB at K = 768, stream from L2 fast enough: chunks of K kept in L1 measured 7-10% slower on
// Zen 4); after a block the epilogue runs on it.
inline void gemm_panels(Index M, Index N, Index padded_k, const std::uint16_t* a, const std::uint16_t* packed,
                        const float* bias, float* C, Index ldc, const GemmEpilogue<float>& epilogue,
                        Index first, Index last) {
    constexpr Index P = panel_columns;
    const Index pairs = padded_k / 2;
    const Index rows_per_pass = gemm_rows_per_pass(M, rows, true);
    alignas(64) float init[P];
    alignas(64) float edge[rows * P];  // a partial last panel's block, computed whole and copied out
    for (Index i0 = 0; i0 < M; i0 += rows_per_pass) {
        const Index i1 = std::min(M, i0 + rows_per_pass);
        for (Index p = first; p < last; ++p) {
            const Index j0 = p * P, cols = std::min(P, N - j0);
            const bool full = cols == P;
            std::fill(init, init + P, 0.0f);
            if (bias) std::copy(bias + j0, bias + j0 + cols, init);
            const std::uint16_t* panel = packed + p * padded_k * P;
            for (Index i = i0; i < i1; i += rows) {
                const int n = static_cast<int>(std::min<Index>(rows, i1 - i));
                float* block = full ? C + i * ldc + j0 : edge;
                const Index ld = full ? ldc : P;
                if (n == rows)
                    micro_kernel<rows, vectors>(a + i * padded_k, padded_k, panel, pairs, block, ld, false,
                                                init);
                else
                    micro_kernel_rows<rows - 1>(n, a + i * padded_k, padded_k, panel, pairs, block, ld, false,
                                                init);
                if (!full)
                    for (int r = 0; r < n; ++r)
                        std::copy(edge + r * P, edge + r * P + cols, C + (i + r) * ldc + j0);
                if (epilogue) epilogue.apply(epilogue.context, C + i * ldc + j0, ldc, i, n, j0, cols);
            }
        }
    }
}

}  // namespace vit3d::detail::bf16_avx512

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

VIT3D_TARGET_END

#endif  // VIT3D_ISA_DISPATCH
