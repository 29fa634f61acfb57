#pragma once
// The rest of an image or volume pipeline before a model, as torchvision and MONAI define it:
// center_crop (torchvision's CenterCrop, zero padding when the crop is larger), normalize (Normalize: per
// channel (x - mean) / std, in T as torch computes it), rescale (x * factor; 1/255 as ToTensor's x / 255)
// and intensity_window (a CT window: clip to [lo, hi], then map linearly onto [0, 1] or another range, as
// MONAI's ScaleIntensityRange(a_min=lo, a_max=hi, b_min, b_max, clip)). Resizing is in
// vit3d/transforms/resample.hpp.
//
// Also transforms::Preprocessing, the description of what an input goes through that a weights file carries
// (model_description_json.hpp reads and writes it; docs/weights.md: "The metadata schema"), and
// apply_value_steps, which applies its value steps to a tensor. Whole inputs from image, NIfTI and .npy
// files, resized as well, are made by vit3d/io/model_input.hpp.

#include <algorithm>
#include <array>
#include <cmath>
#include <initializer_list>
#include <iterator>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "vit3d/core/config.hpp"
#include "vit3d/core/error.hpp"
#include "vit3d/core/shape.hpp"
#include "vit3d/tensor/tensor.hpp"
#include "vit3d/transforms/compose.hpp"

namespace vit3d::transforms {

// A CT-style intensity window: clip (if `clip`) to [low, high], then map [low, high] linearly onto `to`.
struct IntensityWindow {
    double low = 0;
    double high = 1;
    std::array<double, 2> to{0.0, 1.0};
    bool clip = true;
};

// What an input must go through before forward(), in this order: rescale, resize (images: resize_size or
// resize_shape and a center crop, else straight to input_size; volumes: trilinear to input_size), intensity
// window, (x - mean) / std; or, for volumes, `steps`. Absent values (std::nullopt, JSON null) mean the family
// defines none: that step is skipped, so without a rescale the model takes the raw values (0..255 for an
// 8-bit image).
struct Preprocessing {
    std::string layout;             // axes of the model input: "BCHW", "BCDHW" (torch Conv3d, vit-pytorch)
                                    // or "BCHWD" (MONAI, Reg2RG)
    std::vector<Index> input_size;  // spatial sizes in `layout` order (the model's input_size)
    std::optional<std::string> channel_order;  // "RGB", "BGR" or "L" (one grey channel)
    std::optional<double> rescale;             // multiply raw values by this first (1/255 for 8-bit images)
    std::optional<std::vector<double>> mean;   // subtract per channel (0 when only std is given) ...
    std::optional<std::vector<double>> std;    // ... and divide per channel (1 when only mean is given)
    std::optional<IntensityWindow> intensity_window;  // before mean / std
    std::optional<Index> resize_size;  // resize the shorter side to this, then center-crop input_size
    std::optional<std::vector<Index>> resize_shape;  // or resize to exactly [H, W], then center-crop
                                                     // input_size (Hugging Face's DeiT: 256 x 256, then 224)
    std::optional<std::string> interpolation;        // of that resize: "bilinear", "bicubic", ...
    // Volumes: MONAI's transforms in order (Orientation, Spacing, crops, intensity...) on the volume with
    // its affine, [C, i, j, k], in place of rescale, resize, window and mean / std, which must then be
    // absent; the result must have input_size (a final ResizeWithPadOrCrop ensures it) and is then put in
    // the model's layout.
    std::optional<std::vector<Transform>> steps;
    std::optional<std::string> preset;  // the published pipeline `steps` came from (transforms/presets.hpp)
};

// The ImageNet statistics torchvision's and timm's ImageNet weights expect after ToTensor (RGB order).
inline constexpr std::array<float, 3> imagenet_mean{0.485f, 0.456f, 0.406f};
inline constexpr std::array<float, 3> imagenet_std{0.229f, 0.224f, 0.225f};

}  // namespace vit3d::transforms

namespace vit3d::detail {

// Whether a rescale factor is 1/255, the one torchvision's ToTensor applies (as x / 255).
inline bool is_to_tensor_rescale(double factor) { return std::abs(factor * 255.0 - 1.0) < 1e-12; }

// Python's round() of half an integer d / 2: half to even.
inline Index half_rounded_to_even(Index d) {
    const Index q = d / 2;  // d >= 0
    return (d % 2 == 1 && q % 2 == 1) ? q + 1 : q;
}

}  // namespace vit3d::detail

namespace vit3d::transforms {

// The central height x width window of the last two axes of [..., H, W], as torchvision's CenterCrop: the
// top-left corner at round((H - height) / 2), round((W - width) / 2) with Python's round (half to even),
// and, for a crop larger than the image, zero padding of (crop - size) / 2 before (rounded down) and the
// rest after.
template <class T>
Tensor<T> center_crop(const Tensor<T>& image, Index height, Index width) {
    const char* op = "vit3d::transforms::center_crop";
    if (image.rank() < 2 || height < 1 || width < 1)
        throw shape_error(message(op, ": expected an image [..., H, W] and a crop size >= 1, got ",
                                  image.shape(), " and ", height, " x ", width));
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
    static_assert(std::is_floating_point_v<T>,
                  "vit3d::transforms::normalize works on float or double tensors");
    const char* op = "vit3d::transforms::normalize";
    const Index axis = normalize_axis(channel_axis, x.rank(), op);
    const Index channels = x.dim(axis);
    // Converted to T first, as torch.as_tensor(mean, dtype=x.dtype) converts them.
    std::vector<T> m, s;
    for (const auto& v : mean) m.push_back(static_cast<T>(v));
    for (const auto& v : stddev) s.push_back(static_cast<T>(v));
    if (static_cast<Index>(m.size()) != channels || static_cast<Index>(s.size()) != channels)
        throw shape_error(message(op, ": expected ", channels, " means and standard deviations for axis ",
                                  axis, " of ", x.shape(), ", got ", m.size(), " and ", s.size()));
    for (const T v : s)
        if (!(v != T(0)) || !std::isfinite(v))
            throw std::invalid_argument(
                message(op, ": expected finite nonzero standard deviations, got ", v));
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

// A CT (or any intensity) window: values clipped to [lo, hi], then mapped linearly onto [0, 1]; NaN stays
// NaN.
template <class T>
Tensor<T> intensity_window(const Tensor<T>& x, double lo, double hi) {
    static_assert(std::is_floating_point_v<T>,
                  "vit3d::transforms::intensity_window works on float or double tensors");
    if (!(lo < hi) || !std::isfinite(lo) || !std::isfinite(hi))
        throw std::invalid_argument(message(
            "vit3d::transforms::intensity_window: expected finite lo < hi, got [", lo, ", ", hi, "]"));
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

// A window as a weights file describes it: clipped to [w.low, w.high] if w.clip, then [w.low, w.high]
// mapped linearly onto [w.to[0], w.to[1]] (values outside the window beyond it when not clipped), computed
// in double and rounded to T once; NaN stays NaN. intensity_window(x, {lo, hi}) = intensity_window(x, lo,
// hi).
template <class T>
Tensor<T> intensity_window(const Tensor<T>& x, const IntensityWindow& w) {
    static_assert(std::is_floating_point_v<T>,
                  "vit3d::transforms::intensity_window works on float or double tensors");
    const bool finite =
        std::isfinite(w.low) && std::isfinite(w.high) && std::isfinite(w.to[0]) && std::isfinite(w.to[1]);
    if (!(w.low < w.high) || !finite)
        throw std::invalid_argument(
            message("vit3d::transforms::intensity_window: expected finite low < high and a finite target "
                    "range, got [",
                    w.low, ", ", w.high, "] -> [", w.to[0], ", ", w.to[1], "]"));
    const double width = w.high - w.low, span = w.to[1] - w.to[0];
    Tensor<T> out = Tensor<T>::empty(x.shape());
    for (Index i = 0; i < x.size(); ++i) {
        double v = static_cast<double>(x.data()[i]);
        if (std::isnan(v)) {
            out.data()[i] = x.data()[i];
            continue;
        }
        if (w.clip) v = std::clamp(v, w.low, w.high);
        out.data()[i] = static_cast<T>((v - w.low) / width * span + w.to[0]);
    }
    return out;
}

// x * factor, as torch and NumPy multiply a float tensor by a Python number: in T, the factor rounded to T.
// A factor of 1/255 is computed as x / 255, which is what torchvision's ToTensor does to 8-bit values, so
// that rescale 1/255 gives ToTensor's tensor bit for bit (x * float(1/255) is one float off for some values).
template <class T>
Tensor<T> rescale(const Tensor<T>& x, double factor) {
    static_assert(std::is_floating_point_v<T>, "vit3d::transforms::rescale works on float or double tensors");
    if (!std::isfinite(factor))
        throw std::invalid_argument(
            message("vit3d::transforms::rescale: expected a finite factor, got ", factor));
    Tensor<T> out = Tensor<T>::empty(x.shape());
    if (detail::is_to_tensor_rescale(factor)) {
        for (Index i = 0; i < x.size(); ++i) out.data()[i] = x.data()[i] / T(255);
    } else {
        const auto f = static_cast<T>(factor);
        for (Index i = 0; i < x.size(); ++i) out.data()[i] = x.data()[i] * f;
    }
    return out;
}

// The window and (x - mean) / std of p on x, along channel_axis: the value steps after resizing.
template <class T>
Tensor<T> window_and_normalize(Tensor<T> x, const Preprocessing& p, Index channel_axis) {
    if (p.intensity_window) x = intensity_window(x, *p.intensity_window);
    if (p.mean || p.std) {
        const Index axis = normalize_axis(channel_axis, x.rank(), "vit3d::transforms::window_and_normalize");
        const auto channels = static_cast<std::size_t>(x.dim(axis));
        x = normalize(x, p.mean.value_or(std::vector<double>(channels, 0.0)),
                      p.std.value_or(std::vector<double>(channels, 1.0)), axis);
    }
    return x;
}

// The value steps of p on x, in the schema's order: rescale, intensity window, (x - mean) / std per
// channel of channel_axis. For a tensor already at the model's input size (a .npy input); images and
// volumes of another size are resized between the rescale and the window (vit3d/io/model_input.hpp).
template <class T>
Tensor<T> apply_value_steps(Tensor<T> x, const Preprocessing& p, Index channel_axis) {
    if (p.rescale) x = rescale(x, *p.rescale);
    return window_and_normalize(std::move(x), p, channel_axis);
}

// The same with the channel axis found from p.input_size: the axis before the last input_size.size() axes,
// so x is [C, spatial...] or [B, C, spatial...].
template <class T>
Tensor<T> apply_value_steps(Tensor<T> x, const Preprocessing& p) {
    const auto spatial = static_cast<Index>(p.input_size.size());
    if (spatial == 0 || x.rank() < spatial + 1 || x.rank() > spatial + 2)
        throw shape_error(message(
            "vit3d::transforms::apply_value_steps: expected [C, spatial...] or [B, C, spatial...] with ",
            spatial, " spatial axes (preprocess.input_size ", p.input_size, ", layout ", p.layout, "), got ",
            x.shape()));
    const Index channel_axis = x.rank() - spatial - 1;
    return apply_value_steps(std::move(x), p, channel_axis);
}

}  // namespace vit3d::transforms
