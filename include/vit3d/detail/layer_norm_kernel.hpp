#pragma once
// LayerNorm of contiguous rows: (x - mean) / sqrt(var + eps) * weight + bias with the biased variance, as
// PyTorch. Mean and variance of each row are accumulated in double (two passes), so that a float row of
// thousands of values loses nothing to the accumulation.

#include <Eigen/Core>
#include <cmath>

#include "vit3d/core/config.hpp"

namespace vit3d::detail {

// out[r, :] = layer_norm(in[r, :]) for r in [first, last); rows are d elements long.
template <class T>
void layer_norm_rows(const T* in_data, T* out_data, Index first, Index last, Index d, const T* weight,
                     const T* bias, double eps) {
    using Row = Eigen::Array<T, Eigen::Dynamic, 1>;
    const Eigen::Map<const Row> g(weight, d), b(bias, d);
    for (Index r = first; r < last; ++r) {
        const auto in = Eigen::Map<const Row>(in_data + r * d, d).template cast<double>();
        const double mean = in.sum() / static_cast<double>(d);
        const double var = (in - mean).square().sum() / static_cast<double>(d);
        const double inv = 1.0 / std::sqrt(var + eps);
        Eigen::Map<Row>(out_data + r * d, d) =
            ((in - mean) * inv * g.template cast<double>() + b.template cast<double>()).template cast<T>();
    }
}

}  // namespace vit3d::detail
