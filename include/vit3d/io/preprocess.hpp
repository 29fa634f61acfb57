#pragma once
// The rest of an image or volume pipeline before a model, as torchvision and MONAI define it:
// center_crop (torchvision's CenterCrop, zero padding when the crop is larger), normalize (Normalize: per
// channel (x - mean) / std, in T as torch computes it) and intensity_window (a CT window: clip to [lo, hi],
// then map linearly onto [0, 1], as MONAI's ScaleIntensityRange(a_min=lo, a_max=hi, b_min=0, b_max=1,
// clip=True)). Resizing is in vit3d/io/resample.hpp.

#include <algorithm>
#include <array>
#include <cmath>
#include <initializer_list>
#include <iterator>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "vit3d/core/error.hpp"
#include "vit3d/core/shape.hpp"
#include "vit3d/tensor/tensor.hpp"

namespace vit3d::io {

// The ImageNet statistics torchvision's and timm's ImageNet weights expect after ToTensor (RGB order).
inline constexpr std::array<float, 3> imagenet_mean{0.485f, 0.456f, 0.406f};
inline constexpr std::array<float, 3> imagenet_std{0.229f, 0.224f, 0.225f};

}  // namespace vit3d::io

namespace vit3d::detail {

// Python's round() of half an integer d / 2: half to even.
inline Index half_rounded_to_even(Index d) {
    const Index q = d / 2;  // d >= 0
    return (d % 2 == 1 && q % 2 == 1) ? q + 1 : q;
}

}  // namespace vit3d::detail

namespace vit3d::io {

// The central height x width window of the last two axes of [..., H, W], as torchvision's CenterCrop: the
// top-left corner at round((H - height) / 2), round((W - width) / 2) with Python's round (half to even),
// and, for a crop larger than the image, zero padding of (crop - size) / 2 before (rounded down) and the
// rest after.
template <class T>
Tensor<T> center_crop(const Tensor<T>& image, Index height, Index width) {
    const char* op = "vit3d::io::center_crop";
    if (image.rank() < 2 || height < 1 || width < 1)
        throw shape_error(std::string(op) + ": expected an image [..., H, W] and a crop size >= 1, got " +
                          shape_to_string(image.shape()) + " and " + std::to_string(height) + " x " +
                          std::to_string(width));
    const Index h = image.dim(-2), w = image.dim(-1);
    // Offset of the crop's first row / column in the image; negative where the crop starts in the padding.
    const auto first = [](Index size, Index crop) {
        return crop > size ? -((crop - size) / 2) : detail::half_rounded_to_even(size - crop);
    };
    const Index top = first(h, height), left = first(w, width);
    Shape shape = image.shape();
    shape[shape.size() - 2] = height;
    shape[shape.size() - 1] = width;
    Tensor<T> out(shape);
    const Index planes = h * w == 0 ? 0 : image.size() / (h * w);
    for (Index p = 0; p < planes; ++p)
        for (Index y = 0; y < height; ++y) {
            const Index sy = top + y;
            if (sy < 0 || sy >= h) continue;
            for (Index x = 0; x < width; ++x) {
                const Index sx = left + x;
                if (sx >= 0 && sx < w)
                    out.data()[(p * height + y) * width + x] = image.data()[(p * h + sy) * w + sx];
            }
        }
    return out;
}

// (x - mean[c]) / std[c] for each channel c of the axis `channel_axis` (default -3: [C, H, W] and
// [B, C, H, W]; -4 for volumes [C, D, H, W]), in T: torchvision's Normalize, bit for bit for float.
template <class T, class M, class S>
Tensor<T> normalize(const Tensor<T>& x, const M& mean, const S& stddev, Index channel_axis = -3) {
    static_assert(std::is_floating_point_v<T>, "vit3d::io::normalize works on float or double tensors");
    const char* op = "vit3d::io::normalize";
    const Index axis = normalize_axis(channel_axis, x.rank(), op);
    const Index channels = x.dim(axis);
    // Converted to T first, as torch.as_tensor(mean, dtype=x.dtype) converts them.
    std::vector<T> m, s;
    for (const auto& v : mean) m.push_back(static_cast<T>(v));
    for (const auto& v : stddev) s.push_back(static_cast<T>(v));
    if (static_cast<Index>(m.size()) != channels || static_cast<Index>(s.size()) != channels)
        throw shape_error(std::string(op) + ": expected " + std::to_string(channels) +
                          " means and standard deviations "
                          "for axis " +
                          std::to_string(axis) + " of " + shape_to_string(x.shape()) + ", got " +
                          std::to_string(m.size()) + " and " + std::to_string(s.size()));
    for (const T v : s)
        if (!(v != T(0)) || !std::isfinite(v))
            throw std::invalid_argument(
                std::string(op) + ": expected finite nonzero standard deviations, got " + std::to_string(v));
    Index inner = 1;
    for (Index a = axis + 1; a < x.rank(); ++a) inner *= x.dim(a);
    Tensor<T> out = Tensor<T>::empty(x.shape());
    for (Index i = 0; i < x.size(); ++i) {
        const auto c = static_cast<std::size_t>((i / inner) % channels);
        out.data()[i] = (x.data()[i] - m[c]) / s[c];
    }
    return out;
}

// normalize() with the statistics as lists: normalize(x, {0.5, 0.5, 0.5}, {0.5, 0.5, 0.5}).
template <class T>
Tensor<T> normalize(const Tensor<T>& x, std::initializer_list<double> mean,
                    std::initializer_list<double> stddev, Index channel_axis = -3) {
    return normalize(x, std::vector<double>(mean), std::vector<double>(stddev), channel_axis);
}

// A CT (or any intensity) window: values clipped to [lo, hi], then mapped linearly onto [0, 1].
template <class T>
Tensor<T> intensity_window(const Tensor<T>& x, double lo, double hi) {
    static_assert(std::is_floating_point_v<T>,
                  "vit3d::io::intensity_window works on float or double tensors");
    if (!(lo < hi) || !std::isfinite(lo) || !std::isfinite(hi))
        throw std::invalid_argument("vit3d::io::intensity_window: expected finite lo < hi, got [" +
                                    std::to_string(lo) + ", " + std::to_string(hi) + "]");
    Tensor<T> out = Tensor<T>::empty(x.shape());
    const double width = hi - lo;
    for (Index i = 0; i < x.size(); ++i) {
        const double v = static_cast<double>(x.data()[i]);
        out.data()[i] = std::isnan(v) ? x.data()[i] : static_cast<T>((std::clamp(v, lo, hi) - lo) / width);
    }
    return out;
}

// The window [level - width / 2, level + width / 2] of a radiologist's window level and width (e.g. soft
// tissue: level 40, width 400 HU), for intensity_window.
template <class T>
Tensor<T> intensity_window_level(const Tensor<T>& x, double level, double width) {
    return intensity_window(x, level - width / 2, level + width / 2);
}

}  // namespace vit3d::io
