#pragma once
// Resampling images and volumes to a model's input size, as the Python pipelines a checkpoint was trained
// with do it:
//   - resize(): the last two axes of [..., H, W] (an image [C, H, W], a batch, a heat map [H, W]) with
//     torchvision's Resize / F.interpolate: bilinear or bicubic, align_corners=False, antialiased when
//     downsampling by default (antialias=True: PIL's filters, a triangle or Keys' cubic with a = -0.5,
//     stretched by the scale; without it torch's plain bilinear, and bicubic with a = -0.75). Float results
//     are not clamped (bicubic overshoots [0, 1] as torch's does).
//   - resize_shorter_side(): torchvision's Resize(int): the shorter side to `size`, the longer one to
//     int(size * long / short).
//   - resample_trilinear(): the last three axes of [..., D, H, W] as F.interpolate(mode="trilinear",
//     align_corners=False) (no antialiasing; torch has none for 3D).
//   - resample_nearest(): label masks, exactly as F.interpolate(mode="nearest-exact") (default: output voxel
//     centres mapped to input voxel centres, consistent with trilinear) or mode="nearest" (torch's older
//     rule, floor(o * in / out)), computed in float as torch computes the indices, so the labels chosen are
//     torch's, bit for bit.
// Source positions and weights are computed as torch computes them, in torch's arithmetic (float for float
// tensors, with torch's promotions to double), so they are torch's exactly; the weighted sums are then taken
// in double, one axis at a time, and rounded to T once per axis, where torch sums in T. What remains is
// torch's own rounding, measured against torch 2.14 / torchvision 0.29 on [0, 1] float data
// (tests/transforms/test_image_resample.cpp): max |error| 1.2e-7 (1 ulp) for bilinear, with or without
// antialiasing, and trilinear; 1.1e-6 for bicubic, whose 4 to 10 taps torch sums in float. Against PIL on
// 8-bit images (resizing v / 255 and rounding): within 1 level.

#include <algorithm>
#include <array>
#include <cmath>
#include <string>
#include <type_traits>
#include <vector>

#include "vit3d/core/enum_names.hpp"
#include "vit3d/core/error.hpp"
#include "vit3d/core/shape.hpp"
#include "vit3d/tensor/tensor.hpp"

namespace vit3d::detail {

struct ResampleTap {
    Index index;
    double weight;
};

}  // namespace vit3d::detail

namespace vit3d::transforms {

enum class ResizeFilter { bilinear, bicubic };

// The names a model description's preprocess.interpolation gives them.
constexpr auto enum_names(ResizeFilter) {
    return enum_table<ResizeFilter>(
        {{ResizeFilter::bilinear, "bilinear"}, {ResizeFilter::bicubic, "bicubic"}});
}

enum class NearestMode {
    nearest_exact,  // F.interpolate(mode="nearest-exact"): floor((o + 0.5) * in / out)
    nearest,        // F.interpolate(mode="nearest"): floor(o * in / out)
};

}  // namespace vit3d::transforms

namespace vit3d::detail {

// Keys' cubic convolution with parameter a in W arithmetic: torch's cubic_convolution1 (for |x| <= 1) and
// cubic_convolution2 (1 < |x| < 2), term for term.
template <class W>
W cubic_convolution1(W x, W a) {
    return ((a + W(2)) * x - (a + W(3))) * x * x + W(1);
}
template <class W>
W cubic_convolution2(W x, W a) {
    return ((a * x - W(5) * a) * x + W(8) * a) * x - W(4) * a;
}
// torch's antialiasing bicubic filter (a = -0.5, PIL's).
template <class W>
W keys_cubic(W x, W a) {
    x = std::abs(x);
    if (x < W(1)) return cubic_convolution1(x, a);
    if (x < W(2)) return cubic_convolution2(x, a);
    return W(0);
}

// The taps of torch's resampling kernels for one axis (aten/src/ATen/native/UpSample.h and
// cpu/UpSampleKernel.cpp), computed in torch's arithmetic: W is float for float tensors and double for
// double ones (torch's opmath), with the same promotions to double where torch's expressions have them,
// so that the source positions and weights are torch's bit for bit. Weights are returned as double.
template <class W>
std::vector<std::vector<ResampleTap>> torch_resampling_taps(Index in, Index out,
                                                            transforms::ResizeFilter filter, bool antialias) {
    std::vector<std::vector<ResampleTap>> taps(static_cast<std::size_t>(out));
    const W scale =
        static_cast<W>(in) / static_cast<W>(out);  // area_pixel_compute_scale, align_corners=False
    if (antialias) {
        // _compute_indices_min_size_weights_aa: the filter stretched by the scale when downsampling, taps
        // outside the input dropped, weights normalised. Support 1 (triangle) or 2 (Keys, a = -0.5).
        const W support = static_cast<W>((filter == transforms::ResizeFilter::bilinear ? 1.0 : 2.0) *
                                         (scale >= 1.0 ? scale : 1));
        const W invscale = scale >= 1.0 ? static_cast<W>(1.0 / scale) : W(1);
        for (Index o = 0; o < out; ++o) {
            const W center = static_cast<W>(scale * (static_cast<double>(o) + 0.5));
            const Index lo =
                std::max<Index>(static_cast<Index>(static_cast<double>(center - support) + 0.5), 0);
            const Index hi =
                std::min<Index>(static_cast<Index>(static_cast<double>(center + support) + 0.5), in);
            auto& t = taps[static_cast<std::size_t>(o)];
            W total = 0;
            std::vector<W> weights;
            for (Index i = lo; i < hi; ++i) {
                const W x =
                    static_cast<W>(static_cast<double>(static_cast<W>(i) - center + W(0.5)) * invscale);
                const W w = filter == transforms::ResizeFilter::bilinear
                                ? (std::abs(x) < W(1) ? W(1) - std::abs(x) : W(0))
                                : keys_cubic(x, W(-0.5));
                weights.push_back(w);
                total += w;
            }
            for (std::size_t k = 0; k < weights.size(); ++k)
                t.push_back({lo + static_cast<Index>(k),
                             static_cast<double>(total != W(0) ? weights[k] / total : W(0))});
        }
        return taps;
    }
    for (Index o = 0; o < out; ++o) {
        auto& t = taps[static_cast<std::size_t>(o)];
        if (in == out) {
            t.push_back({o, 1.0});
            continue;
        }
        // area_pixel_compute_source_index: scale * (o + 0.5) - 0.5 in double, stored in W; not clamped below
        // 0 for cubic. Then guard_index_and_lambda, with its floorf.
        W real = static_cast<W>(static_cast<double>(scale) * (static_cast<double>(o) + 0.5) - 0.5);
        if (filter == transforms::ResizeFilter::bilinear && real < W(0)) real = W(0);
        const Index first = std::min(static_cast<Index>(std::floor(static_cast<float>(real))), in - 1);
        const W lambda = std::min(std::max(real - static_cast<W>(first), W(0)), W(1));
        if (filter == transforms::ResizeFilter::bilinear) {
            t.push_back({first, static_cast<double>(W(1) - lambda)});
            t.push_back({first + (first < in - 1 ? 1 : 0), static_cast<double>(lambda)});
        } else {
            // get_cubic_upsample_coefficients, a = -0.75, indices clamped to the input.
            const W a = W(-0.75);
            const W x2 = static_cast<W>(1.0 - static_cast<double>(lambda));
            const W w[4] = {cubic_convolution2(static_cast<W>(static_cast<double>(lambda) + 1.0), a),
                            cubic_convolution1(lambda, a), cubic_convolution1(x2, a),
                            cubic_convolution2(static_cast<W>(static_cast<double>(x2) + 1.0), a)};
            for (Index k = 0; k < 4; ++k)
                t.push_back({std::clamp<Index>(first - 1 + k, 0, in - 1), static_cast<double>(w[k])});
        }
    }
    return taps;
}

// Applies per-output-index taps along `axis` of a contiguous tensor.
template <class T>
Tensor<T> apply_taps(const Tensor<T>& x, std::size_t axis,
                     const std::vector<std::vector<ResampleTap>>& taps) {
    Shape shape = x.shape();
    const Index in = shape[axis], out = static_cast<Index>(taps.size());
    Index outer = 1, inner = 1;
    for (std::size_t a = 0; a < axis; ++a) outer *= shape[a];
    for (std::size_t a = axis + 1; a < shape.size(); ++a) inner *= shape[a];
    shape[axis] = out;
    Tensor<T> y = Tensor<T>::empty(shape);
    std::vector<double> row(static_cast<std::size_t>(inner));
    for (Index o = 0; o < outer; ++o)
        for (Index n = 0; n < out; ++n) {
            std::fill(row.begin(), row.end(), 0.0);
            for (const ResampleTap& tap : taps[static_cast<std::size_t>(n)]) {
                const T* src = x.data() + (o * in + tap.index) * inner;
                for (Index k = 0; k < inner; ++k)
                    row[static_cast<std::size_t>(k)] += tap.weight * static_cast<double>(src[k]);
            }
            T* dst = y.data() + (o * out + n) * inner;
            for (Index k = 0; k < inner; ++k) dst[k] = static_cast<T>(row[static_cast<std::size_t>(k)]);
        }
    return y;
}

template <class T>
void check_resample_input(const char* op, const Tensor<T>& x, std::size_t spatial, const Index* size) {
    static_assert(std::is_floating_point_v<T>,
                  "vit3d::transforms resampling interpolates float or double tensors");
    const char* layout = spatial == 2 ? "[..., H, W]" : "[..., D, H, W]";
    if (x.rank() < static_cast<Index>(spatial))
        throw shape_error(message(op, ": expected a tensor ", layout, ", got ", x.shape()));
    for (std::size_t a = 0; a < spatial; ++a)
        if (size[a] < 1 || x.dim(static_cast<Index>(a) - static_cast<Index>(spatial)) < 1)
            throw shape_error(
                message(op, ": expected sizes >= 1, got ", x.shape(), " -> ", Shape(size, size + spatial)));
}

// The source index of output index o for torch's nearest modes, in torch's float arithmetic
// (aten/src/ATen/native/UpSample.h: nearest_idx, nearest_exact_idx).
inline Index torch_nearest_index(Index o, Index in, Index out, transforms::NearestMode mode) {
    if (mode == transforms::NearestMode::nearest) {
        if (out == in) return o;
        if (out == 2 * in) return o >> 1;
        const float scale = static_cast<float>(in) / static_cast<float>(out);
        return std::min(static_cast<Index>(std::floor(static_cast<float>(o) * scale)), in - 1);
    }
    const float scale = static_cast<float>(in) / static_cast<float>(out);
    const auto position = static_cast<float>((static_cast<double>(o) + 0.5) * static_cast<double>(scale));
    return std::min(static_cast<Index>(std::floor(position)), in - 1);
}

}  // namespace vit3d::detail

namespace vit3d::transforms {

// The last two axes of `image` ([..., H, W]) resized to height x width (see the top of this file).
template <class T>
Tensor<T> resize(const Tensor<T>& image, Index height, Index width,
                 ResizeFilter filter = ResizeFilter::bilinear, bool antialias = true) {
    const Index size[2] = {height, width};
    detail::check_resample_input("vit3d::transforms::resize", image, 2, size);
    const auto rank = static_cast<std::size_t>(image.rank());
    // Width first, then height, as torch's separable antialiased kernel.
    Tensor<T> x = image;
    if (image.dim(-1) != width)
        x = detail::apply_taps(x, rank - 1,
                               detail::torch_resampling_taps<T>(image.dim(-1), width, filter, antialias));
    if (image.dim(-2) != height)
        x = detail::apply_taps(x, rank - 2,
                               detail::torch_resampling_taps<T>(image.dim(-2), height, filter, antialias));
    return x;
}

// torchvision's Resize(size) with an int: the shorter of the last two axes becomes `size`, the longer one
// int(size * long / short); with max_size > 0 the longer one is then capped at max_size (the shorter one
// scaled down to int(max_size * short / long)), as torchvision does.
template <class T>
Tensor<T> resize_shorter_side(const Tensor<T>& image, Index size,
                              ResizeFilter filter = ResizeFilter::bilinear, bool antialias = true,
                              Index max_size = 0) {
    const char* op = "vit3d::transforms::resize_shorter_side";
    if (image.rank() < 2 || image.dim(-1) < 1 || image.dim(-2) < 1 || size < 1)
        throw shape_error(message(op, ": expected an image [..., H, W] and a size >= 1, got ", image.shape(),
                                  " and ", size));
    const Index h = image.dim(-2), w = image.dim(-1);
    const Index shorter = std::min(h, w), longer = std::max(h, w);
    if (max_size > 0 && max_size <= size)
        throw shape_error(message(op, ": max_size ", max_size, " must be larger than size ", size));
    Index new_short = size;
    auto new_long = static_cast<Index>(static_cast<double>(size * longer) / static_cast<double>(shorter));
    if (max_size > 0 && new_long > max_size) {
        new_short =
            static_cast<Index>(static_cast<double>(max_size * new_short) / static_cast<double>(new_long));
        new_long = max_size;
    }
    return w <= h ? resize(image, new_long, new_short, filter, antialias)
                  : resize(image, new_short, new_long, filter, antialias);
}

// The last three axes of `volume` ([..., D, H, W]) resampled to size = {d, h, w}, trilinear,
// align_corners=False, as F.interpolate(mode="trilinear").
template <class T>
Tensor<T> resample_trilinear(const Tensor<T>& volume, const std::array<Index, 3>& size) {
    detail::check_resample_input("vit3d::transforms::resample_trilinear", volume, 3, size.data());
    const auto rank = static_cast<std::size_t>(volume.rank());
    Tensor<T> x = volume;
    for (std::size_t a = 0; a < 3; ++a) {
        const std::size_t axis = rank - 3 + a;
        const Index in = volume.shape()[axis];
        if (in != size[a])
            x = detail::apply_taps(
                x, axis, detail::torch_resampling_taps<T>(in, size[a], ResizeFilter::bilinear, false));
    }
    return x;
}

// The last N axes (N = 2 or 3) of a label tensor resampled to `size` by nearest neighbour, with torch's
// index rule (see the top of this file); any element type, values copied exactly.
template <class T, std::size_t N>
Tensor<T> resample_nearest(const Tensor<T>& labels, const std::array<Index, N>& size,
                           NearestMode mode = NearestMode::nearest_exact) {
    static_assert(N == 2 || N == 3, "vit3d::transforms::resample_nearest resamples the last 2 or 3 axes");
    const char* op = "vit3d::transforms::resample_nearest";
    if (labels.rank() < static_cast<Index>(N))
        throw shape_error(message(op, ": expected a tensor of rank >= ", N, ", got ", labels.shape()));
    const auto rank = static_cast<std::size_t>(labels.rank());
    for (std::size_t a = 0; a < N; ++a)
        if (size[a] < 1 || labels.shape()[rank - N + a] < 1)
            throw shape_error(message(op, ": expected sizes >= 1, got ", labels.shape(), " -> ", size));
    Shape out_shape = labels.shape();
    std::array<std::vector<Index>, N> source;
    Index inner_out = 1;
    for (std::size_t a = 0; a < N; ++a) {
        const Index in = labels.shape()[rank - N + a];
        out_shape[rank - N + a] = size[a];
        inner_out *= size[a];
        for (Index o = 0; o < size[a]; ++o)
            source[a].push_back(detail::torch_nearest_index(o, in, size[a], mode));
    }
    const Shape in_strides = row_major_strides(labels.shape());
    Tensor<T> out = Tensor<T>::empty(out_shape);
    const Index batches = out.size() / inner_out;  // the leading axes
    const Index in_block = in_strides[rank - N] * labels.shape()[rank - N];
    for (Index b = 0; b < batches; ++b) {
        const T* src = labels.data() + b * in_block;
        T* dst = out.data() + b * inner_out;
        std::array<Index, N> o{};
        for (Index p = 0; p < inner_out; ++p) {
            Index offset = 0;
            for (std::size_t a = 0; a < N; ++a)
                offset += source[a][static_cast<std::size_t>(o[a])] * in_strides[rank - N + a];
            dst[p] = src[offset];
            for (std::size_t a = N; a-- > 0;) {  // next output index, last axis fastest
                if (++o[a] < size[a]) break;
                o[a] = 0;
            }
        }
    }
    return out;
}

}  // namespace vit3d::transforms
