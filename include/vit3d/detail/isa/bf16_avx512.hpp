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
// a time and per panel, chunks of `chunk_pairs` pairs of k (a 16 KiB slice of the panel, which stays in L1
// for all the pass's rows), sums in C itself; after a block's last chunk the epilogue runs on it.
inline void gemm_panels(Index M, Index N, Index padded_k, const std::uint16_t* a, const std::uint16_t* packed,
                        const float* bias, float* C, Index ldc, const GemmEpilogue<float>& epilogue,
                        Index first, Index last, float* edge) {
    constexpr Index P = panel_columns;
    const Index pairs_total = padded_k / 2, chunk_pairs = 16384 / (P * 4);
    const Index rows_per_pass = gemm_rows_per_pass(M, rows, true);
    alignas(64) float init[P];
    for (Index i0 = 0; i0 < M; i0 += rows_per_pass) {
        const Index i1 = std::min(M, i0 + rows_per_pass);
        for (Index p = first; p < last; ++p) {
            const Index j0 = p * P, cols = std::min(P, N - j0);
            // A partial last panel is computed whole in `edge` (rows_per_pass x P) and copied out.
            const bool full = cols == P;
            float* block = full ? C + i0 * ldc + j0 : edge;
            const Index ld = full ? ldc : P;
            std::fill(init, init + P, 0.0f);
            if (bias) std::copy(bias + j0, bias + j0 + cols, init);
            const std::uint16_t* panel = packed + p * padded_k * P;
            for (Index g0 = 0; g0 < pairs_total; g0 += chunk_pairs) {
                const Index pairs = std::min(chunk_pairs, pairs_total - g0);
                Index i = i0;
                for (; i + rows <= i1; i += rows)
                    micro_kernel<rows, vectors>(a + i * padded_k + 2 * g0, padded_k, panel + g0 * P * 2,
                                                pairs, block + (i - i0) * ld, ld, g0 > 0, init);
                if (i < i1)
                    micro_kernel_rows<rows - 1>(static_cast<int>(i1 - i), a + i * padded_k + 2 * g0, padded_k,
                                                panel + g0 * P * 2, pairs, block + (i - i0) * ld, ld, g0 > 0,
                                                init);
            }
            if (!full)
                for (Index i = i0; i < i1; ++i)
                    std::copy(edge + (i - i0) * P, edge + (i - i0) * P + cols, C + i * ldc + j0);
            if (epilogue)
                for (Index i = i0; i < i1; i += rows)
                    epilogue.apply(epilogue.context, C + i * ldc + j0, ldc, i, std::min<Index>(rows, i1 - i),
                                   j0, cols);
        }
    }
}

}  // namespace vit3d::detail::bf16_avx512

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

VIT3D_TARGET_END

#endif  // VIT3D_ISA_DISPATCH
