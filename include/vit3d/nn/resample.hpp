#pragma once
// Resampling a learned position table to another patch grid, so a model runs on other image or volume
// sizes. Prefix rows (the class token's) are kept as they are; the grid rows are interpolated
// separably, one grid axis at a time, with the kernel of the reference the checkpoint comes from:
//   - bicubic_align_corners: torchvision interpolate_embeddings (bicubic, align_corners=True, Keys A=-0.75,
//     edge taps clamped);
//   - bicubic:               MAE interpolate_pos_embed (bicubic, align_corners=False, no antialias, A=-0.75);
//   - bicubic_antialias:     timm resample_abs_pos_embed (bicubic, align_corners=False, antialias=True:
//     PIL-style kernel with A=-0.5 stretched when downsampling, weights normalised, taps outside dropped);
//   - linear:                bilinear / trilinear, align_corners=False (torch F.interpolate), the natural
//     choice for 3D tables, which no reference resamples.

#include <algorithm>
#include <array>
#include <cmath>
#include <string>
#include <vector>

#include "vit3d/core/enum_names.hpp"
#include "vit3d/core/error.hpp"
#include "vit3d/tensor/ops.hpp"

namespace vit3d::nn {

enum class Interpolation { bicubic_align_corners, bicubic, bicubic_antialias, linear };

constexpr auto enum_names(Interpolation) {
    return enum_table<Interpolation>({{Interpolation::bicubic_align_corners, "bicubic_align_corners"},
                                      {Interpolation::bicubic, "bicubic"},
                                      {Interpolation::bicubic_antialias, "bicubic_antialias"},
                                      {Interpolation::linear, "linear"}});
}

}  // namespace vit3d::nn

namespace vit3d::detail {

struct ResamplingTap {
    Index index;
    double weight;
};

// Keys' cubic convolution kernel with parameter a, |x| < 2.
inline double cubic_kernel(double x, double a) {
    x = std::abs(x);
    if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0;
    if (x < 2.0) return ((a * x - 5.0 * a) * x + 8.0 * a) * x - 4.0 * a;
    return 0.0;
}

// For each output index along one axis, the input indices and weights that produce it.
inline std::vector<std::vector<ResamplingTap>> resampling_taps(Index in, Index out, nn::Interpolation mode) {
    std::vector<std::vector<ResamplingTap>> taps(static_cast<std::size_t>(out));
    const double ratio = static_cast<double>(in) / static_cast<double>(out);
    for (Index o = 0; o < out; ++o) {
        auto& t = taps[static_cast<std::size_t>(o)];
        switch (mode) {
            case nn::Interpolation::bicubic_align_corners:
            case nn::Interpolation::bicubic: {
                const double src = mode == nn::Interpolation::bicubic_align_corners
                                       ? (out > 1 ? double(o) * double(in - 1) / double(out - 1) : 0.0)
                                       : (double(o) + 0.5) * ratio - 0.5;  // not clamped for cubic, as torch
                const Index x0 = static_cast<Index>(std::floor(src));
                const double f = src - double(x0);
                for (Index k = -1; k <= 2; ++k) {
                    const Index i = std::clamp<Index>(x0 + k, 0, in - 1);
                    t.push_back({i, cubic_kernel(f - double(k), -0.75)});
                }
                break;
            }
            case nn::Interpolation::bicubic_antialias: {
                const double support = ratio >= 1.0 ? 2.0 * ratio : 2.0;
                const double inv = ratio >= 1.0 ? 1.0 / ratio : 1.0;
                const double center = ratio * (double(o) + 0.5);
                const Index lo = std::max<Index>(static_cast<Index>(center - support + 0.5), 0);
                const Index hi = std::min<Index>(static_cast<Index>(center + support + 0.5), in);
                double total = 0;
                for (Index i = lo; i < hi; ++i) {
                    const double w = cubic_kernel((double(i) - center + 0.5) * inv, -0.5);
                    t.push_back({i, w});
                    total += w;
                }
                for (auto& tap : t) tap.weight = total != 0.0 ? tap.weight / total : 0.0;
                break;
            }
            case nn::Interpolation::linear: {
                const double src = std::max(0.0, (double(o) + 0.5) * ratio - 0.5);
                const Index x0 = std::min<Index>(static_cast<Index>(src), in - 1);
                const Index x1 = std::min<Index>(x0 + 1, in - 1);
                const double f = src - double(x0);
                t.push_back({x0, 1.0 - f});
                t.push_back({x1, f});
                break;
            }
        }
    }
    return taps;
}

}  // namespace vit3d::detail

namespace vit3d::nn {

// table: [1, prefix + prod(old_grid), D] -> [1, prefix + prod(new_grid), D]. The table's grid rows are
// row-major over old_grid (the token order of the model's patch embedding).
template <class T, std::size_t Axes>
Tensor<T> resample_pos_embed(const Tensor<T>& table, const std::array<Index, Axes>& old_grid,
                             const std::array<Index, Axes>& new_grid, Index prefix_tokens,
                             Interpolation mode) {
    const char* op = "vit3d::nn::resample_pos_embed";
    Index old_count = 1, new_count = 1;
    for (std::size_t a = 0; a < Axes; ++a) {
        if (old_grid[a] < 1 || new_grid[a] < 1)
            throw shape_error(message(op, ": grid sizes must be positive, got ", old_grid, " -> ", new_grid));
        old_count *= old_grid[a];
        new_count *= new_grid[a];
    }
    if (table.rank() != 3 || table.dim(0) != 1 || prefix_tokens < 0 ||
        table.dim(1) != prefix_tokens + old_count)
        throw shape_error(message(op, ": expected a table [1, ", prefix_tokens, " + ", old_count,
                                  ", D] for grid ", old_grid, ", got ", table.shape()));
    const Index D = table.dim(2);
    // Work in double on [g0, ..., g_{n-1}, D], one axis at a time.
    Shape shape(old_grid.begin(), old_grid.end());
    shape.push_back(D);
    std::vector<double> current(static_cast<std::size_t>(old_count * D));
    for (Index i = 0; i < old_count * D; ++i)
        current[static_cast<std::size_t>(i)] = static_cast<double>(table.data()[prefix_tokens * D + i]);
    for (std::size_t a = 0; a < Axes; ++a) {
        const auto taps = detail::resampling_taps(old_grid[a], new_grid[a], mode);
        Index outer = 1, inner = 1;
        for (std::size_t i = 0; i < a; ++i) outer *= shape[i];
        for (std::size_t i = a + 1; i < shape.size(); ++i) inner *= shape[i];
        std::vector<double> next(static_cast<std::size_t>(outer * new_grid[a] * inner), 0.0);
        for (Index o = 0; o < outer; ++o)
            for (Index n = 0; n < new_grid[a]; ++n) {
                double* dst = next.data() + (o * new_grid[a] + n) * inner;
                for (const auto& tap : taps[static_cast<std::size_t>(n)]) {
                    const double* src = current.data() + (o * old_grid[a] + tap.index) * inner;
                    for (Index k = 0; k < inner; ++k) dst[k] += tap.weight * src[k];
                }
            }
        current = std::move(next);
        shape[a] = new_grid[a];
    }
    Tensor<T> out = Tensor<T>::empty({1, prefix_tokens + new_count, D});
    std::copy_n(table.data(), prefix_tokens * D, out.data());
    for (Index i = 0; i < new_count * D; ++i)
        out.data()[prefix_tokens * D + i] = static_cast<T>(current[static_cast<std::size_t>(i)]);
    return out;
}

}  // namespace vit3d::nn
