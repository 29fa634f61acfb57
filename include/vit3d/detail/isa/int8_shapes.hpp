#pragma once
// What the int8 GEMM's variants share and its dispatcher needs to know about them: the variants, their
// register blocks and weight ranges, the per-row quantisation of the activations, and one call's problem.
//
// The arithmetic (int8 inference, detail/int8_gemm.hpp): a row x of A is quantised asymmetrically to u8,
// x ~ scale * (q - zero), with the row's range widened to hold 0; a row w of the weight symmetrically to
// s8, w ~ weight_scale * qw with |qw| <= weight_max. Then x . w ~ scale * weight_scale * (q . qw - zero *
// sum(qw)), q . qw summed exactly in int32.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>

#include "vit3d/core/config.hpp"
#include "vit3d/core/enum_names.hpp"
#include "vit3d/detail/isa/kernel_shapes.hpp"

namespace vit3d::detail {

// The int8 GEMM's variants: `vnni512` (AVX512-VNNI's vpdpbusd on 16 lanes), `avx2` (vpmaddubsw and vpmaddwd
// on 8 lanes: its 16-bit pair sums would saturate with 8-bit weights, so weights use 7 bits, |qw| <= 63) and
// `generic` (plain C++).
enum class Int8Kernel { generic = 0, avx2 = 1, vnni512 = 2 };

constexpr auto enum_names(Int8Kernel) {
    return enum_table<Int8Kernel>(
        {{Int8Kernel::generic, "generic"}, {Int8Kernel::avx2, "avx2"}, {Int8Kernel::vnni512, "vnni512"}});
}

// A variant's register block: `rows` rows of A times `vectors` vectors of `lanes` int32 columns.
struct Int8Shape {
    int lanes, rows, vectors, weight_max;
    constexpr Index columns() const { return Index(lanes) * vectors; }
};

inline constexpr int int8_weight_max(Int8Kernel kernel) { return kernel == Int8Kernel::avx2 ? 63 : 127; }

// A row's quantisation from its extremes lo <= 0 <= hi: scale = (hi - lo) / 255 (at least the smallest
// normal float), zero = round(-lo / scale). A row with a non-finite value is not quantised (finite false)
// and comes out NaN, as a float product with it would be.
struct Int8RowQuantization {
    float scale, inv_scale;
    std::int32_t zero;
    bool finite;
};

inline Int8RowQuantization int8_row_quantization(float lo, float hi) {
    if (!std::isfinite(lo) || !std::isfinite(hi))
        return {std::numeric_limits<float>::quiet_NaN(), 0.0f, 0, false};
    if (lo == hi) return {1.0f, 1.0f, 0, true};  // a row of zeros
    // hi / 255 - lo / 255 rather than (hi - lo) / 255, which overflows for extremes near the float range.
    const float scale = std::max(hi / 255.0f - lo / 255.0f, std::numeric_limits<float>::min());
    const float zero = std::clamp(std::nearbyint(-lo / scale), 0.0f, 255.0f);
    return {scale, 1.0f / scale, static_cast<std::int32_t>(zero), true};
}

// q = clamp(round(x * inv_scale) + zero, 0, 255), rounding to nearest even as the vector conversions do.
inline std::uint8_t int8_quantize_value(float x, float inv_scale, std::int32_t zero) {
    const float rounded = std::nearbyint(x * inv_scale);
    const float clamped = std::clamp(rounded + static_cast<float>(zero), 0.0f, 255.0f);
    return static_cast<std::uint8_t>(clamped);
}

// One call of the int8 GEMM: C [M, N] = dequantise(q [M, padded_k] * packed^T) + bias, then the epilogue.
struct Int8Problem {
    Index M, N, padded_k;
    const std::uint8_t* q;  // rows padded_k bytes apart
    const float* row_scales;
    const std::int32_t* row_zeros;
    const std::int8_t* packed;  // the variant's panels (int8_kernels.inc, int8_pack_weights)
    const float* weight_scales;
    const std::int32_t* weight_sums;
    const float* bias;
    float* C;
    Index ldc;
    bool accumulate;  // C += the product instead of C = it
    GemmEpilogue<float> epilogue;
};

}  // namespace vit3d::detail
