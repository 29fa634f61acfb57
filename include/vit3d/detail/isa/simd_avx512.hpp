#pragma once
// The AVX-512 kernel variant (F/BW/DQ/VL: 32 vector registers of 16 floats / 8 doubles), compiled with target
// attributes whatever the translation unit's flags, and only when those flags give less than AVX-512.

#include "vit3d/detail/isa/simd_avx2.hpp"

#if VIT3D_HAS_AVX512_VARIANT
#include <immintrin.h>

VIT3D_TARGET_BEGIN("avx,avx2,fma,f16c,popcnt,sse4.2,avx512f,avx512bw,avx512dq,avx512vl")

// GCC 12 passes an undefined merge operand to many AVX-512 builtins (_mm512_undefined_ps) and, once they are
// inlined, warns (at -O2 as -Wuninitialized) that it is used uninitialised: a false positive, kept out of
// users' -Wall builds.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif

namespace vit3d::detail::isa_avx512 {

inline constexpr Isa this_isa = Isa::avx512;

template <class T>
struct Simd;

template <>
struct Simd<float> {
    using V = __m512;
    static constexpr int width = 16;
    static constexpr int registers = 32;

    static V zero() { return _mm512_setzero_ps(); }
    static V set1(float x) { return _mm512_set1_ps(x); }
    static V loadu(const float* p) { return _mm512_loadu_ps(p); }
    static void storeu(float* p, V v) { _mm512_storeu_ps(p, v); }
    static V add(V a, V b) { return _mm512_add_ps(a, b); }
    static V sub(V a, V b) { return _mm512_sub_ps(a, b); }
    static V mul(V a, V b) { return _mm512_mul_ps(a, b); }
    static V fmadd(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
    static V max(V a, V b) { return _mm512_max_ps(a, b); }
    static V min(V a, V b) { return _mm512_min_ps(a, b); }
    static V div(V a, V b) { return _mm512_div_ps(a, b); }
    static float reduce_add(V v) {
        const __m256 s = _mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1));
        __m128 q = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
        q = _mm_add_ps(q, _mm_movehl_ps(q, q));
        q = _mm_add_ss(q, _mm_movehdup_ps(q));
        return _mm_cvtss_f32(q);
    }
    static float reduce_max(V v) {
        const __m256 s = _mm256_max_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1));
        __m128 q = _mm_max_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
        q = _mm_max_ps(q, _mm_movehl_ps(q, q));
        q = _mm_max_ss(q, _mm_movehdup_ps(q));
        return _mm_cvtss_f32(q);
    }
    // x rounded to the nearest integer, kept as a float for scalef.
    struct Rounded {
        V value;
    };
    static Rounded round_nearest(V x) {
        return {_mm512_roundscale_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)};
    }
    // p * 2^n for integral n, in one instruction (AVX-512's scalef; the same product as p * float(2^n)).
    static V times_pow2(V p, const Rounded& n) { return _mm512_scalef_ps(p, n.value); }
    // value where x >= threshold or x is NaN, 0 where x < threshold.
    static V zero_where_below(V value, V x, V threshold) {
        return _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(x, threshold, _CMP_NLT_UQ), value);
    }

    // 16 x 16 in four rounds: pairs of rows interleaved, then pairs of pairs, then 128-bit lanes twice.
    static constexpr bool has_transpose = true;
    static void transpose(V (&r)[16]) {
        V t[16];
        VIT3D_UNROLL
        for (int i = 0; i < 16; i += 2) {
            t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
            t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
        }
        VIT3D_UNROLL
        for (int i = 0; i < 16; i += 4) {
            r[i] = _mm512_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(1, 0, 1, 0));
            r[i + 1] = _mm512_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(3, 2, 3, 2));
            r[i + 2] = _mm512_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(1, 0, 1, 0));
            r[i + 3] = _mm512_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(3, 2, 3, 2));
        }
        VIT3D_UNROLL
        for (int i = 0; i < 16; i += 8) {
            VIT3D_UNROLL
            for (int j = 0; j < 4; ++j) {
                t[i + j] = _mm512_shuffle_f32x4(r[i + j], r[i + j + 4], 0x88);
                t[i + j + 4] = _mm512_shuffle_f32x4(r[i + j], r[i + j + 4], 0xdd);
            }
        }
        VIT3D_UNROLL
        for (int j = 0; j < 8; ++j) {
            r[j] = _mm512_shuffle_f32x4(t[j], t[j + 8], 0x88);
            r[j + 8] = _mm512_shuffle_f32x4(t[j], t[j + 8], 0xdd);
        }
    }

    static V exp2_flushed(V x);
    static V erf(V x);
};

template <>
struct Simd<double> {
    using V = __m512d;
    static constexpr int width = 8;
    static constexpr int registers = 32;

    static V zero() { return _mm512_setzero_pd(); }
    static V set1(double x) { return _mm512_set1_pd(x); }
    static V loadu(const double* p) { return _mm512_loadu_pd(p); }
    static void storeu(double* p, V v) { _mm512_storeu_pd(p, v); }
    static V add(V a, V b) { return _mm512_add_pd(a, b); }
    static V sub(V a, V b) { return _mm512_sub_pd(a, b); }
    static V mul(V a, V b) { return _mm512_mul_pd(a, b); }
    static V fmadd(V a, V b, V c) { return _mm512_fmadd_pd(a, b, c); }
    static V max(V a, V b) { return _mm512_max_pd(a, b); }
    static double reduce_add(V v) {
        const __m256d s = _mm256_add_pd(_mm512_castpd512_pd256(v), _mm512_extractf64x4_pd(v, 1));
        const __m128d q = _mm_add_pd(_mm256_castpd256_pd128(s), _mm256_extractf128_pd(s, 1));
        return _mm_cvtsd_f64(_mm_add_sd(q, _mm_unpackhi_pd(q, q)));
    }
    static double reduce_max(V v) {
        const __m256d s = _mm256_max_pd(_mm512_castpd512_pd256(v), _mm512_extractf64x4_pd(v, 1));
        const __m128d q = _mm_max_pd(_mm256_castpd256_pd128(s), _mm256_extractf128_pd(s, 1));
        return _mm_cvtsd_f64(_mm_max_sd(q, _mm_unpackhi_pd(q, q)));
    }

    static constexpr bool has_transpose = false;  // packed element by element (double is the checking type)
    static void transpose(V (&)[8]) {}

    static V exp2_flushed(V x);
};

#include "vit3d/detail/isa/kernels.inc"
#include "vit3d/detail/isa/simd_math.inc"

}  // namespace vit3d::detail::isa_avx512

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

VIT3D_TARGET_END

#endif  // VIT3D_HAS_AVX512_VARIANT
