#pragma once
// The int8 GEMM's AVX2 variant: u8 x s8 products by vpmaddubsw (pairs summed in 16 bits, which 7-bit
// weights keep from saturating: 2 * 255 * 63 < 2^15) and vpmaddwd against ones (fours summed in 32 bits),
// a 4 x 2 block of 8-lane int32 sums: 8 sums, 2 weight vectors, the broadcast row bytes, the product and
// the ones (13 of 16 registers). Compiled with target attributes whatever the translation unit's flags.

#include "vit3d/detail/isa/int8_generic.hpp"
#include "vit3d/detail/isa/targets.hpp"

#if VIT3D_ISA_DISPATCH
#include <immintrin.h>

#include <cstring>

VIT3D_TARGET_BEGIN("avx,avx2,fma,f16c,popcnt,sse4.2")

namespace vit3d::detail::int8_avx2 {

inline constexpr Int8Kernel int8_kernel_kind = Int8Kernel::avx2;
inline constexpr Int8Shape int8_shape{8, 4, 2, int8_weight_max(Int8Kernel::avx2)};

inline __m256i int8_broadcast4(const std::uint8_t* p) {
    std::int32_t four;
    std::memcpy(&four, p, 4);
    return _mm256_set1_epi32(four);
}

template <int Rows, int Vectors>
void int8_micro_kernel(const std::uint8_t* a, Index lda, const std::int8_t* bp, Index groups,
                       std::int32_t* c) {
    constexpr int W = 8;
    __m256i acc[Rows][Vectors];
    VIT3D_UNROLL
    for (int r = 0; r < Rows; ++r) {
        VIT3D_UNROLL
        for (int v = 0; v < Vectors; ++v) acc[r][v] = _mm256_setzero_si256();
    }
    const __m256i ones = _mm256_set1_epi16(1);
    for (Index g = 0; g < groups; ++g) {
        __m256i b[Vectors];
        VIT3D_UNROLL
        for (int v = 0; v < Vectors; ++v)
            b[v] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(bp + (g * Vectors + v) * W * 4));
        VIT3D_UNROLL
        for (int r = 0; r < Rows; ++r) {
            const __m256i x = int8_broadcast4(a + r * lda + 4 * g);
            VIT3D_UNROLL
            for (int v = 0; v < Vectors; ++v) {
                const __m256i pairs = _mm256_maddubs_epi16(x, b[v]);
                acc[r][v] = _mm256_add_epi32(acc[r][v], _mm256_madd_epi16(pairs, ones));
            }
        }
    }
    VIT3D_UNROLL
    for (int r = 0; r < Rows; ++r) {
        VIT3D_UNROLL
        for (int v = 0; v < Vectors; ++v)
            _mm256_storeu_si256(reinterpret_cast<__m256i*>(c + (r * Vectors + v) * W), acc[r][v]);
    }
}

inline void int8_row_extremes(const float* x, Index n, float& lo, float& hi) {
    __m256 vlo = _mm256_set1_ps(lo), vhi = _mm256_set1_ps(hi);
    __m256 nan = _mm256_setzero_ps();
    Index k = 0;
    for (; k + 8 <= n; k += 8) {
        const __m256 v = _mm256_loadu_ps(x + k);
        vlo = _mm256_min_ps(vlo, v);
        vhi = _mm256_max_ps(vhi, v);
        nan = _mm256_or_ps(nan, _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
    }
    alignas(32) float l[8], h[8];
    _mm256_store_ps(l, vlo);
    _mm256_store_ps(h, vhi);
    for (int i = 0; i < 8; ++i) {
        lo = std::min(lo, l[i]);
        hi = std::max(hi, h[i]);
    }
    if (_mm256_movemask_ps(nan) != 0) {
        lo = std::numeric_limits<float>::quiet_NaN();
        return;
    }
    int8_generic::int8_row_extremes(x + k, n - k, lo, hi);
}

inline void int8_quantize_row(const float* x, Index n, float inv_scale, std::int32_t zero, std::uint8_t* q) {
    const __m256 inv = _mm256_set1_ps(inv_scale);
    const __m256i z = _mm256_set1_epi32(zero);
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    Index k = 0;
    for (; k + 32 <= n; k += 32) {
        __m256i v[4];
        for (int i = 0; i < 4; ++i)
            v[i] =
                _mm256_add_epi32(_mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + k + 8 * i), inv)), z);
        // packus saturates to [0, 65535] and then [0, 255]: the clamp; its in-lane order is put right by
        // the permutation.
        const __m256i words = _mm256_packus_epi32(v[0], v[1]), words2 = _mm256_packus_epi32(v[2], v[3]);
        const __m256i bytes = _mm256_permutevar8x32_epi32(_mm256_packus_epi16(words, words2), order);
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(q + k), bytes);
    }
    int8_generic::int8_quantize_row(x + k, n - k, inv_scale, zero, q + k);
}

inline void int8_dequantize_row(const std::int32_t* acc, Index cols, float row_scale, std::int32_t row_zero,
                                const float* weight_scales, const std::int32_t* weight_sums,
                                const float* bias, bool accumulate, float* out) {
    const __m256 s = _mm256_set1_ps(row_scale);
    const __m256i z = _mm256_set1_epi32(row_zero);
    Index j = 0;
    for (; j + 8 <= cols; j += 8) {
        const __m256i sums = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(weight_sums + j));
        const __m256i corrected = _mm256_sub_epi32(
            _mm256_loadu_si256(reinterpret_cast<const __m256i*>(acc + j)), _mm256_mullo_epi32(z, sums));
        __m256 y = _mm256_mul_ps(_mm256_cvtepi32_ps(corrected),
                                 _mm256_mul_ps(s, _mm256_loadu_ps(weight_scales + j)));
        if (bias) y = _mm256_add_ps(y, _mm256_loadu_ps(bias + j));
        if (accumulate) y = _mm256_add_ps(_mm256_loadu_ps(out + j), y);
        _mm256_storeu_ps(out + j, y);
    }
    int8_generic::int8_dequantize_row(acc + j, cols - j, row_scale, row_zero, weight_scales + j,
                                      weight_sums + j, bias ? bias + j : nullptr, accumulate, out + j);
}

#include "vit3d/detail/isa/int8_kernels.inc"

}  // namespace vit3d::detail::int8_avx2

VIT3D_TARGET_END

#endif  // VIT3D_ISA_DISPATCH
