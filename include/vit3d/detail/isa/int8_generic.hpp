#pragma once
// The int8 GEMM's portable variant (plain C++, int32 sums), which every CPU runs and the vector variants
// are tested against.

#include <algorithm>
#include <cstdint>

#include "vit3d/detail/isa/int8_shapes.hpp"

namespace vit3d::detail::int8_generic {

inline constexpr Int8Kernel int8_kernel_kind = Int8Kernel::generic;
inline constexpr Int8Shape int8_shape{4, 4, 2, int8_weight_max(Int8Kernel::generic)};

template <int Rows, int Vectors>
void int8_micro_kernel(const std::uint8_t* a, Index lda, const std::int8_t* bp, Index groups,
                       std::int32_t* c) {
    constexpr Index columns = Index(Vectors) * int8_shape.lanes;
    std::int32_t acc[Rows][columns] = {};
    for (Index g = 0; g < groups; ++g) {
        const std::int8_t* b = bp + g * columns * 4;
        for (int r = 0; r < Rows; ++r) {
            const std::uint8_t* x = a + r * lda + 4 * g;
            for (Index j = 0; j < columns; ++j)
                acc[r][j] += std::int32_t(x[0]) * b[j * 4] + std::int32_t(x[1]) * b[j * 4 + 1] +
                             std::int32_t(x[2]) * b[j * 4 + 2] + std::int32_t(x[3]) * b[j * 4 + 3];
        }
    }
    for (int r = 0; r < Rows; ++r)
        for (Index j = 0; j < columns; ++j) c[r * columns + j] = acc[r][j];
}

inline void int8_row_extremes(const float* x, Index n, float& lo, float& hi) {
    for (Index k = 0; k < n; ++k) {
        // A NaN fails both comparisons: it is looked for separately, as it must make the row non-finite.
        if (x[k] != x[k]) {
            lo = x[k];
            return;
        }
        lo = std::min(lo, x[k]);
        hi = std::max(hi, x[k]);
    }
}

inline void int8_quantize_row(const float* x, Index n, float inv_scale, std::int32_t zero, std::uint8_t* q) {
    for (Index k = 0; k < n; ++k) q[k] = int8_quantize_value(x[k], inv_scale, zero);
}

inline void int8_dequantize_row(const std::int32_t* acc, Index cols, float row_scale, std::int32_t row_zero,
                                const float* weight_scales, const std::int32_t* weight_sums,
                                const float* bias, bool accumulate, float* out) {
    for (Index j = 0; j < cols; ++j) {
        const float sum = static_cast<float>(acc[j] - row_zero * weight_sums[j]);
        const float scaled = sum * (row_scale * weight_scales[j]);
        const float biased = bias ? scaled + bias[j] : scaled;
        out[j] = accumulate ? out[j] + biased : biased;
    }
}

#include "vit3d/detail/isa/int8_kernels.inc"

}  // namespace vit3d::detail::int8_generic
