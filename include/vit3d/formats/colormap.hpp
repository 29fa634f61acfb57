#pragma once
// Heat maps for the examples and the command-line tool: a scalar map [H, W] (an attention map resized to the
// image) coloured with matplotlib's viridis, alone or blended over the image it explains; write the result
// with write_png (vit3d/formats/image.hpp). Needs nothing but vit3d::vit3d.
//
// Why viridis: it is perceptually uniform (equal steps in value look like equal steps in colour, so no false
// edges appear, as they do with "jet"), stays readable for colour-blind viewers and in grayscale, and is
// matplotlib's default, so a PNG made here looks like the one a Python notebook makes of the same map. The
// table is matplotlib's own (vit3d/formats/viridis_table.hpp, CC0), looked up as matplotlib looks it up.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>

#include "vit3d/core/error.hpp"
#include "vit3d/core/shape.hpp"
#include "vit3d/formats/viridis_table.hpp"
#include "vit3d/tensor/tensor.hpp"

namespace vit3d::io {

// How heat values are mapped onto the colour map's [0, 1].
enum class HeatScaling {
    unit,     // as they are; below 0 takes the first colour, above 1 the last
    min_max,  // the smallest finite value to 0, the largest to 1 (a constant map to 0)
};

}  // namespace vit3d::io

namespace vit3d::detail {

inline void check_heat_shape(const char* op, const Tensor<float>& heat) {
    if (heat.rank() != 2 || heat.dim(0) < 1 || heat.dim(1) < 1)
        throw shape_error(message(op, ": expected a heat map [H, W] with H, W >= 1, got ", heat.shape()));
}

// offset and scale with which value * scale + offset maps the heat map onto [0, 1] for this scaling.
inline void heat_normalisation(const Tensor<float>& heat, io::HeatScaling scaling, float& offset,
                               float& scale) {
    offset = 0.0f;
    scale = 1.0f;
    if (scaling == io::HeatScaling::unit) return;
    float lo = std::numeric_limits<float>::infinity(), hi = -lo;
    for (const float v : heat)
        if (std::isfinite(v)) {
            lo = std::min(lo, v);
            hi = std::max(hi, v);
        }
    if (!(lo < hi)) {  // constant, or nothing finite
        scale = 0.0f;
        return;
    }
    scale = 1.0f / (hi - lo);
    offset = -lo * scale;
}

// A heat value on the colour map's [0, 1] (before clamping): infinities go to the ends under min_max.
inline float scaled_heat(float v, io::HeatScaling scaling, float offset, float scale) {
    if (scaling == io::HeatScaling::unit) return v;
    if (std::isinf(v)) return v > 0 ? 1.0f : 0.0f;
    return v * scale + offset;
}

// The viridis entry of a value on [0, 1], as matplotlib's Colormap.__call__ picks it: value * 256 truncated,
// 1.0 itself in the last bin, anything below 0 in the first and above 1 in the last. -1 for NaN ("bad").
inline int viridis_index(float unit_value) {
    if (std::isnan(unit_value)) return -1;
    const float x = unit_value * 256.0f;
    if (!(x < 256.0f)) return 255;
    if (!(x >= 0.0f)) return 0;
    return static_cast<int>(x);
}

}  // namespace vit3d::detail

namespace vit3d::io {

// heat [H, W] -> [3, H, W] 8-bit RGB coloured by viridis: the same bytes as matplotlib's
// colormaps["viridis"](heat, bytes=True)[..., :3] for HeatScaling::unit. NaN is black (matplotlib's "bad").
inline Tensor<std::uint8_t> apply_viridis(const Tensor<float>& heat,
                                          HeatScaling scaling = HeatScaling::unit) {
    detail::check_heat_shape("vit3d::io::apply_viridis", heat);
    float offset = 0.0f, scale = 1.0f;
    detail::heat_normalisation(heat, scaling, offset, scale);
    const Index plane = heat.size();
    Tensor<std::uint8_t> out = Tensor<std::uint8_t>::empty({3, heat.dim(0), heat.dim(1)});
    for (Index p = 0; p < plane; ++p) {
        const float v = heat.data()[p];
        const int i = detail::viridis_index(detail::scaled_heat(v, scaling, offset, scale));
        for (int c = 0; c < 3; ++c)
            out.data()[c * plane + p] =
                i < 0 ? std::uint8_t(0)
                      // matplotlib's bytes=True truncates lut * 255
                      : static_cast<std::uint8_t>(detail::viridis_table[static_cast<std::size_t>(i)][c] *
                                                  255.0);
    }
    return out;
}

// An image with a heat map blended over it, as 8-bit RGB [3, H, W] for write_png: each pixel is
// round(255 * ((1 - alpha) * image + alpha * viridis(heat))). `image` is a gray slice [H, W] or an RGB image
// [3, H, W], values in [0, 1] (clamped); `heat` is [H, W] (resize an attention map to the image first, e.g.
// with vit3d::transforms::resize), by default stretched over the whole colour map (HeatScaling::min_max).
// Where heat is NaN the image shows through unchanged. alpha in [0, 1].
inline Tensor<std::uint8_t> overlay_heatmap(const Tensor<float>& image, const Tensor<float>& heat,
                                            float alpha = 0.5f, HeatScaling scaling = HeatScaling::min_max) {
    const char* op = "vit3d::io::overlay_heatmap";
    detail::check_heat_shape(op, heat);
    const bool gray = image.rank() == 2;
    const Shape expected_hw{heat.dim(0), heat.dim(1)};
    if (!(gray && image.shape() == expected_hw) &&
        !(image.rank() == 3 && image.dim(0) == 3 && image.dim(1) == heat.dim(0) &&
          image.dim(2) == heat.dim(1)))
        throw shape_error(message(op, ": expected an image [H, W] or [3, H, W] of the heat map's size ",
                                  heat.shape(), ", got ", image.shape(),
                                  " (resize the heat map to the image first)"));
    if (!(alpha >= 0.0f && alpha <= 1.0f))
        throw std::invalid_argument(message(op, ": expected alpha in [0, 1], got ", alpha));
    float offset = 0.0f, scale = 1.0f;
    detail::heat_normalisation(heat, scaling, offset, scale);
    const Index plane = heat.size();
    Tensor<std::uint8_t> out = Tensor<std::uint8_t>::empty({3, heat.dim(0), heat.dim(1)});
    for (Index p = 0; p < plane; ++p) {
        const float v = heat.data()[p];
        const int i = detail::viridis_index(detail::scaled_heat(v, scaling, offset, scale));
        for (int c = 0; c < 3; ++c) {
            const float background = image.data()[gray ? p : c * plane + p];
            const double base = std::isnan(background) ? 0.0 : std::clamp<double>(background, 0.0, 1.0);
            const double a = i < 0 ? 0.0 : alpha;
            const double colour = i < 0 ? 0.0 : detail::viridis_table[static_cast<std::size_t>(i)][c];
            const double blended = (1.0 - a) * base + a * colour;
            out.data()[c * plane + p] =
                static_cast<std::uint8_t>(std::min(255.0, std::floor(blended * 255.0 + 0.5)));
        }
    }
    return out;
}

}  // namespace vit3d::io
