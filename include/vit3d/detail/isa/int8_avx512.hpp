#pragma once
// The int8 GEMM's AVX512-VNNI variant: vpdpbusd sums four u8 x s8 products into each of 16 int32 lanes in
// one instruction, with no intermediate saturation, so weights use all 8 bits. A 6 x 4 block of sums (24
// registers, 4 weight vectors and the broadcast row bytes: 29 of 32), as the float GEMM's AVX-512 block.
// Compiled with target attributes whatever the translation unit's flags.

#include "vit3d/detail/isa/int8_avx2.hpp"

#if VIT3D_ISA_DISPATCH
#include <immintrin.h>

#include <cstring>

VIT3D_TARGET_BEGIN("avx,avx2,fma,f16c,popcnt,sse4.2,avx512f,avx512bw,avx512dq,avx512vl,avx512vnni")

// GCC 12's false uninitialised-merge-operand warnings on AVX-512 builtins, as in simd_avx512.hpp.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif

namespace vit3d::detail::int8_avx512 {

inline constexpr Int8Kernel int8_kernel_kind = Int8Kernel::vnni512;
inline constexpr Int8Shape int8_shape{16, 6, 4, int8_weight_max(Int8Kernel::vnni512)};

template <int Rows, int Vectors>
void int8_micro_kernel(const std::uint8_t* a, Index lda, const std::int8_t* bp, Index groups,
                       std::int32_t* c) {
    constexpr int W = 16;
    __m512i acc[Rows][Vectors];
    VIT3D_UNROLL
    for (int r = 0; r < Rows; ++r) {
        VIT3D_UNROLL
        for (int v = 0; v < Vectors; ++v) acc[r][v] = _mm512_setzero_si512();
    }
    for (Index g = 0; g < groups; ++g) {
        __m512i b[Vectors];
        VIT3D_UNROLL
        for (int v = 0; v < Vectors; ++v) b[v] = _mm512_loadu_si512(bp + (g * Vectors + v) * W * 4);
        VIT3D_UNROLL
        for (int r = 0; r < Rows; ++r) {
            std::int32_t four;
            std::memcpy(&four, a + r * lda + 4 * g, 4);
            const __m512i x = _mm512_set1_epi32(four);
            VIT3D_UNROLL
            for (int v = 0; v < Vectors; ++v) acc[r][v] = _mm512_dpbusd_epi32(acc[r][v], x, b[v]);
        }
    }
    VIT3D_UNROLL
    for (int r = 0; r < Rows; ++r) {
        VIT3D_UNROLL
        for (int v = 0; v < Vectors; ++v) _mm512_storeu_si512(c + (r * Vectors + v) * W, acc[r][v]);
    }
}

inline void int8_row_extremes(const float* x, Index n, float& lo, float& hi) {
    __m512 vlo = _mm512_set1_ps(lo), vhi = _mm512_set1_ps(hi);
    __mmask16 nan = 0;
    Index k = 0;
    for (; k + 16 <= n; k += 16) {
        const __m512 v = _mm512_loadu_ps(x + k);
        vlo = _mm512_min_ps(vlo, v);
        vhi = _mm512_max_ps(vhi, v);
        nan |= _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
    }
    lo = std::min(lo, _mm512_reduce_min_ps(vlo));
    hi = std::max(hi, _mm512_reduce_max_ps(vhi));
    if (nan != 0) {
        lo = std::numeric_limits<float>::quiet_NaN();
        return;
    }
    int8_generic::int8_row_extremes(x + k, n - k, lo, hi);
}

inline void int8_quantize_row(const float* x, Index n, float inv_scale, std::int32_t zero, std::uint8_t* q) {
    const __m512 inv = _mm512_set1_ps(inv_scale);
    const __m512i z = _mm512_set1_epi32(zero), low = _mm512_setzero_si512(), high = _mm512_set1_epi32(255);
    Index k = 0;
    for (; k + 16 <= n; k += 16) {
        const __m512i v = _mm512_add_epi32(_mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(x + k), inv)), z);
        _mm_storeu_si128(reinterpret_cast<__m128i*>(q + k),
                         _mm512_cvtepi32_epi8(_mm512_min_epi32(_mm512_max_epi32(v, low), high)));
    }
    int8_generic::int8_quantize_row(x + k, n - k, inv_scale, zero, q + k);
}

inline void int8_dequantize_row(const std::int32_t* acc, Index cols, float row_scale, std::int32_t row_zero,
                                const float* weight_scales, const std::int32_t* weight_sums,
                                const float* bias, bool accumulate, float* out) {
    const __m512 s = _mm512_set1_ps(row_scale);
    const __m512i z = _mm512_set1_epi32(row_zero);
    Index j = 0;
    for (; j + 16 <= cols; j += 16) {
        const __m512i corrected = _mm512_sub_epi32(
            _mm512_loadu_si512(acc + j), _mm512_mullo_epi32(z, _mm512_loadu_si512(weight_sums + j)));
        __m512 y = _mm512_mul_ps(_mm512_cvtepi32_ps(corrected),
                                 _mm512_mul_ps(s, _mm512_loadu_ps(weight_scales + j)));
        if (bias) y = _mm512_add_ps(y, _mm512_loadu_ps(bias + j));
        if (accumulate) y = _mm512_add_ps(_mm512_loadu_ps(out + j), y);
        _mm512_storeu_ps(out + j, y);
    }
    int8_generic::int8_dequantize_row(acc + j, cols - j, row_scale, row_zero, weight_scales + j,
                                      weight_sums + j, bias ? bias + j : nullptr, accumulate, out + j);
}

#include "vit3d/detail/isa/int8_kernels.inc"

}  // namespace vit3d::detail::int8_avx512

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

VIT3D_TARGET_END

#endif  // VIT3D_ISA_DISPATCH
