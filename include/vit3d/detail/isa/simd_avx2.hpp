#pragma once
// The AVX2 + FMA kernel variant (16 vector registers of 8 floats / 4 doubles), compiled with target
// attributes whatever the translation unit's flags, and only when those flags give less than AVX2 (above
// that the generic variant is the same code or better).

#include "vit3d/detail/isa/simd_generic.hpp"

#if VIT3D_HAS_AVX2_VARIANT
#include <immintrin.h>

VIT3D_TARGET_BEGIN("avx,avx2,fma,f16c,popcnt,sse4.2")

namespace vit3d::detail::isa_avx2 {

inline constexpr Isa this_isa = Isa::avx2;

template <class T>
struct Simd;

template <>
struct Simd<float> {
    using V = __m256;
    static constexpr int width = 8;
    static constexpr int registers = 16;

    static V zero() { return _mm256_setzero_ps(); }
    static V set1(float x) { return _mm256_set1_ps(x); }
    static V loadu(const float* p) { return _mm256_loadu_ps(p); }
    static void storeu(float* p, V v) { _mm256_storeu_ps(p, v); }
    static V add(V a, V b) { return _mm256_add_ps(a, b); }
    static V sub(V a, V b) { return _mm256_sub_ps(a, b); }
    static V mul(V a, V b) { return _mm256_mul_ps(a, b); }
    static V fmadd(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
    static V max(V a, V b) { return _mm256_max_ps(a, b); }
    static V min(V a, V b) { return _mm256_min_ps(a, b); }
    static V div(V a, V b) { return _mm256_div_ps(a, b); }
    static float reduce_add(V v) {
        __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
        s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        s = _mm_add_ss(s, _mm_movehdup_ps(s));
        return _mm_cvtss_f32(s);
    }
    static float reduce_max(V v) {
        __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
        s = _mm_max_ps(s, _mm_movehl_ps(s, s));
        s = _mm_max_ss(s, _mm_movehdup_ps(s));
        return _mm_cvtss_f32(s);
    }
    // x rounded to the nearest integer (ties to even), for |x| < 2^22, by adding and subtracting 1.5 * 2^23:
    // the sum's low mantissa bits then hold the integer, which times_pow2 shifts into an exponent field. Two
    // additions, where vroundps is two micro-ops on Intel and the exponent needed a conversion besides.
    struct Rounded {
        V value, shifted;
    };
    static Rounded round_nearest(V x) {
        const V magic = _mm256_set1_ps(12582912.0f);  // 1.5 * 2^23
        const V shifted = _mm256_add_ps(x, magic);
        return {_mm256_sub_ps(shifted, magic), shifted};
    }
    // p * 2^n for p in [1/2, 2) and n in [-126, 127] whose product is a normal float: n added to p's exponent
    // field, exact, as the multiplication would be. shifted's bits are bits(1.5 * 2^23) + n, and shifting
    // them left by 23 leaves n << 23, because bits(1.5 * 2^23) << 23 is 0 modulo 2^32.
    static V times_pow2(V p, const Rounded& n) {
        const __m256i exponent = _mm256_slli_epi32(_mm256_castps_si256(n.shifted), 23);
        return _mm256_castsi256_ps(_mm256_add_epi32(_mm256_castps_si256(p), exponent));
    }
    // value where x >= threshold or x is NaN, 0 where x < threshold.
    static V zero_where_below(V value, V x, V threshold) {
        return _mm256_andnot_ps(_mm256_cmp_ps(x, threshold, _CMP_LT_OQ), value);
    }

    static constexpr bool has_transpose = true;
    static void transpose(V (&r)[8]) {
        const V t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
        const V t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
        const V t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
        const V t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
        const V u0 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(1, 0, 1, 0));
        const V u1 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(3, 2, 3, 2));
        const V u2 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(1, 0, 1, 0));
        const V u3 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(3, 2, 3, 2));
        const V u4 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(1, 0, 1, 0));
        const V u5 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(3, 2, 3, 2));
        const V u6 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(1, 0, 1, 0));
        const V u7 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(3, 2, 3, 2));
        r[0] = _mm256_permute2f128_ps(u0, u4, 0x20);
        r[1] = _mm256_permute2f128_ps(u1, u5, 0x20);
        r[2] = _mm256_permute2f128_ps(u2, u6, 0x20);
        r[3] = _mm256_permute2f128_ps(u3, u7, 0x20);
        r[4] = _mm256_permute2f128_ps(u0, u4, 0x31);
        r[5] = _mm256_permute2f128_ps(u1, u5, 0x31);
        r[6] = _mm256_permute2f128_ps(u2, u6, 0x31);
        r[7] = _mm256_permute2f128_ps(u3, u7, 0x31);
    }

    static V exp2_flushed(V x);
    static V erf(V x);
};

template <>
struct Simd<double> {
    using V = __m256d;
    static constexpr int width = 4;
    static constexpr int registers = 16;

    static V zero() { return _mm256_setzero_pd(); }
    static V set1(double x) { return _mm256_set1_pd(x); }
    static V loadu(const double* p) { return _mm256_loadu_pd(p); }
    static void storeu(double* p, V v) { _mm256_storeu_pd(p, v); }
    static V add(V a, V b) { return _mm256_add_pd(a, b); }
    static V sub(V a, V b) { return _mm256_sub_pd(a, b); }
    static V mul(V a, V b) { return _mm256_mul_pd(a, b); }
    static V fmadd(V a, V b, V c) { return _mm256_fmadd_pd(a, b, c); }
    static V max(V a, V b) { return _mm256_max_pd(a, b); }
    static double reduce_add(V v) {
        __m128d s = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
        return _mm_cvtsd_f64(_mm_add_sd(s, _mm_unpackhi_pd(s, s)));
    }
    static double reduce_max(V v) {
        __m128d s = _mm_max_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
        return _mm_cvtsd_f64(_mm_max_sd(s, _mm_unpackhi_pd(s, s)));
    }

    static constexpr bool has_transpose = true;
    static void transpose(V (&r)[4]) {
        const V t0 = _mm256_unpacklo_pd(r[0], r[1]), t1 = _mm256_unpackhi_pd(r[0], r[1]);
        const V t2 = _mm256_unpacklo_pd(r[2], r[3]), t3 = _mm256_unpackhi_pd(r[2], r[3]);
        r[0] = _mm256_permute2f128_pd(t0, t2, 0x20);
        r[1] = _mm256_permute2f128_pd(t1, t3, 0x20);
        r[2] = _mm256_permute2f128_pd(t0, t2, 0x31);
        r[3] = _mm256_permute2f128_pd(t1, t3, 0x31);
    }

    static V exp2_flushed(V x);
};

#include "vit3d/detail/isa/kernels.inc"
#include "vit3d/detail/isa/simd_math.inc"

}  // namespace vit3d::detail::isa_avx2

VIT3D_TARGET_END

#endif  // VIT3D_HAS_AVX2_VARIANT
