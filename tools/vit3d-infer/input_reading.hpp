#pragma once
// One input file -> the model's input [B, C, spatial...] (float), as --help's conventions state:
//   .npy           taken as it is (shape checked against the model's input_shape; values as stored unless
//                  --npy-preprocess);
//   images         [C, H, W] with the model's channels, rescaled, resized to the input size (torchvision's
//                  Resize on tensors: antialiased; with resize_size the shorter side first, then
//                  CenterCrop), windowed, normalised;
//   NIfTI volumes  [C, z, y, x] as vit3d reads them, reversed to [C, x, y, z] for BCHWD models (MONAI's and
//                  nibabel's order), rescaled, resampled trilinearly to the input size, windowed, normalised.
// The preprocessing is the weights file's (io::Preprocessing) with the command line's overrides.

#include <algorithm>
#include <array>
#include <cmath>
#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "input_listing.hpp"
#include "options.hpp"
#include "vit3d/io/image.hpp"
#include "vit3d/io/loaded_model.hpp"
#include "vit3d/io/nifti.hpp"
#include "vit3d/io/npy.hpp"
#include "vit3d/io/preprocess.hpp"
#include "vit3d/io/read_file.hpp"
#include "vit3d/io/resample.hpp"
#include "vit3d/tensor/ops.hpp"

namespace vit3d_infer {

using vit3d::Shape;
using vit3d::Tensor;
namespace io = vit3d::io;

// An input that cannot be read, or does not fit the model: that file fails, the run goes on.
struct input_error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

struct ModelInput {
    Tensor<float> batch;     // [B, C, spatial...]: what forward() gets
    Shape read_shape;        // the file's array as read ([C, H, W] for an image, [z, y, x] for a volume)
    std::string read_dtype;  // the file's element type ("float32", "uint8", ...)
};

// What an input goes through: the model's input shape and layout, and the preprocessing in force.
struct Pipeline {
    Shape input_shape;  // [C, spatial...]
    io::Preprocessing preprocess;
    bool npy_values = false;  // --npy-preprocess
};

inline std::string join_numbers(const std::vector<double>& v) {
    std::string s;
    for (double x : v) {
        char buffer[32];
        std::snprintf(buffer, sizeof buffer, "%g", x);
        s += (s.empty() ? "" : ",") + std::string(buffer);
    }
    return s;
}

// The weights file's preprocessing with the command line's overrides; usage_error for overrides that do not
// fit the model.
inline Pipeline make_pipeline(const io::LoadedModel<float>& model, const Options& o) {
    Pipeline p;
    p.input_shape = model.input_shape();
    p.preprocess = model.preprocess();
    p.npy_values = o.npy_preprocess;
    io::Preprocessing& pre = p.preprocess;
    const auto channels = static_cast<std::size_t>(p.input_shape[0]);
    if (o.rescale) pre.rescale = *o.rescale;
    if (!o.mean.empty()) pre.mean = o.mean;
    if (!o.std.empty()) pre.std = o.std;
    if (pre.mean && !pre.std) pre.std = std::vector<double>(channels, 1.0);
    if (pre.std && !pre.mean) pre.mean = std::vector<double>(channels, 0.0);
    for (const auto* stat : {&pre.mean, &pre.std})
        if (*stat && (*stat)->size() != channels)
            throw usage_error(std::string(stat == &pre.mean ? "--mean" : "--std") + ": expected " +
                              std::to_string(channels) + " value(s), one per channel of the model's input " +
                              vit3d::shape_to_string(p.input_shape) + ", got " +
                              std::to_string((*stat)->size()) + " (" + join_numbers(**stat) + ")");
    if (!o.window.empty()) {
        io::IntensityWindow w = pre.intensity_window.value_or(io::IntensityWindow{});
        w.low = o.window[0];
        w.high = o.window[1];
        pre.intensity_window = w;
    }
    if (o.no_window) pre.intensity_window.reset();
    if (o.raw) {
        pre.rescale.reset();
        pre.mean.reset();
        pre.std.reset();
        pre.intensity_window.reset();
    }
    if (o.resize_size) {
        if (*o.resize_size == 0)
            pre.resize_size.reset();
        else
            pre.resize_size = *o.resize_size;
    }
    if (!o.interpolation.empty()) pre.interpolation = o.interpolation;
    if (pre.interpolation && *pre.interpolation != "bilinear" && *pre.interpolation != "bicubic")
        throw usage_error("the weights file asks for " + *pre.interpolation +
                          " interpolation, which vit3d-infer does not do; choose --interpolation bilinear or "
                          "bicubic");
    if (!o.channel_order.empty()) pre.channel_order = o.channel_order;
    return p;
}

namespace detail {

// x * rescale; 1/255 as x / 255 in float, which is torchvision's ToTensor bit for bit.
inline void rescale_values(Tensor<float>& x, double rescale) {
    if (std::abs(rescale * 255.0 - 1.0) < 1e-12) {
        for (float& v : x) v = v / 255.0f;
    } else {
        for (float& v : x) v = static_cast<float>(static_cast<double>(v) * rescale);
    }
}

// A window: clip (if asked) to [low, high], then map [low, high] linearly onto `to`.
inline void window_values(Tensor<float>& x, const io::IntensityWindow& w) {
    const double width = w.high - w.low, span = w.to[1] - w.to[0];
    for (float& v : x) {
        if (std::isnan(v)) continue;
        double d = static_cast<double>(v);
        if (w.clip) d = std::clamp(d, w.low, w.high);
        v = static_cast<float>((d - w.low) / width * span + w.to[0]);
    }
}

// The value steps after resizing: window, then (x - mean) / std along `channel_axis`.
inline Tensor<float> window_and_normalize(Tensor<float> x, const io::Preprocessing& pre,
                                          vit3d::Index channel_axis) {
    if (pre.intensity_window) window_values(x, *pre.intensity_window);
    if (pre.mean && pre.std) x = io::normalize(x, *pre.mean, *pre.std, channel_axis);
    return x;
}

inline std::string spatial_text(const Shape& input_shape) {
    return vit3d::shape_to_string(Shape(input_shape.begin() + 1, input_shape.end()));
}

inline io::ResizeFilter filter_of(const io::Preprocessing& pre) {
    return pre.interpolation && *pre.interpolation == "bicubic" ? io::ResizeFilter::bicubic
                                                                : io::ResizeFilter::bilinear;
}

inline ModelInput read_npy_input(const std::string& path, const Pipeline& p) {
    const io::NpyHeader header = io::read_npy_header(path);
    using D = io::NpyDType;
    const D dt = header.dtype;
    const bool accepted = dt == D::float16 || dt == D::float32 || dt == D::float64 || dt == D::uint8 ||
                          dt == D::int8 || dt == D::uint16 || dt == D::int16;
    if (!accepted)
        throw input_error(
            std::string("unsupported .npy dtype ") + io::npy_dtype_name(dt) +
            ": expected float16, float32, float64, uint8, int8, uint16 or int16 (values a float32 "
            "holds exactly)");
    const Shape& s = header.shape;
    const Shape& want = p.input_shape;
    const bool one = s == want;
    const bool batch =
        s.size() == want.size() + 1 && s[0] >= 1 && std::equal(want.begin(), want.end(), s.begin() + 1);
    if (!one && !batch)
        throw input_error("shape " + vit3d::shape_to_string(s) +
                          " does not fit the model: expected one sample " + vit3d::shape_to_string(want) +
                          " or a batch [B, " + vit3d::shape_to_string(want).substr(1) + " (layout " +
                          p.preprocess.layout + ")");
    ModelInput in;
    in.read_shape = s;
    in.read_dtype = io::npy_dtype_name(dt);
    in.batch = io::read_npy<float>(path);
    if (one) in.batch = in.batch.unsqueeze(0);
    if (p.npy_values) {
        if (p.preprocess.rescale) rescale_values(in.batch, *p.preprocess.rescale);
        in.batch = window_and_normalize(std::move(in.batch), p.preprocess, 1);
    }
    return in;
}

inline ModelInput read_image_input(const std::string& path, const Pipeline& p) {
    const io::Preprocessing& pre = p.preprocess;
    if (pre.layout != "BCHW")
        throw input_error("an image feeds a 2D model (layout BCHW); this model takes volumes (layout " +
                          pre.layout + ", input " + vit3d::shape_to_string(p.input_shape) + ")");
    const vit3d::Index channels = p.input_shape[0];
    io::ImageChannels wanted = io::ImageChannels::rgb;
    if (pre.channel_order)
        wanted = *pre.channel_order == "L" ? io::ImageChannels::gray : io::ImageChannels::rgb;
    else if (channels >= 1 && channels <= 4)
        wanted = static_cast<io::ImageChannels>(channels);
    if (static_cast<vit3d::Index>(wanted) != channels)
        throw input_error("the model takes " + std::to_string(channels) + " channel(s), but channel order " +
                          pre.channel_order.value_or("?") + " gives " +
                          std::to_string(static_cast<int>(wanted)));
    const std::string where = "vit3d-infer: reading " + vit3d::detail::quoted_path(path) + ": ";
    const std::vector<std::uint8_t> bytes = vit3d::detail::read_file_bytes(path, where);
    const io::ImageInfo info = io::image_info(bytes.data(), bytes.size(), path);
    ModelInput in;
    in.read_dtype = info.bits_per_channel == 16 ? "uint16" : "uint8";
    Tensor<float> x;
    if (info.bits_per_channel == 16) {
        // Brought to the 8-bit range (v / 257), where the exported rescale (1/255 for ToTensor) applies.
        const auto raw = io::decode_image<std::uint16_t>(bytes.data(), bytes.size(), wanted, path);
        x = Tensor<float>::empty(raw.shape());
        for (vit3d::Index i = 0; i < raw.size(); ++i)
            x.data()[i] = static_cast<float>(raw.data()[i]) / 257.0f;
    } else {
        const auto raw = io::decode_image<std::uint8_t>(bytes.data(), bytes.size(), wanted, path);
        x = Tensor<float>::empty(raw.shape());
        for (vit3d::Index i = 0; i < raw.size(); ++i) x.data()[i] = static_cast<float>(raw.data()[i]);
    }
    in.read_shape = {info.channels, info.height, info.width};
    if (pre.channel_order && *pre.channel_order == "BGR")
        x = vit3d::concat<float>({x.narrow(0, 2, 1), x.narrow(0, 1, 1), x.narrow(0, 0, 1)}, 0);
    if (pre.rescale) rescale_values(x, *pre.rescale);
    const vit3d::Index height = p.input_shape[1], width = p.input_shape[2];
    const io::ResizeFilter filter = filter_of(pre);
    if (pre.resize_size) {
        x = io::resize_shorter_side(x, *pre.resize_size, filter);
        x = io::center_crop(x, height, width);
    } else if (x.dim(1) != height || x.dim(2) != width) {
        x = io::resize(x, height, width, filter);
    }
    in.batch = window_and_normalize(std::move(x), pre, 0).unsqueeze(0);
    return in;
}

inline ModelInput read_nifti_input(const std::string& path, const Pipeline& p) {
    const io::Preprocessing& pre = p.preprocess;
    if (pre.layout != "BCDHW" && pre.layout != "BCHWD")
        throw input_error(
            "a NIfTI volume feeds a 3D model (layout BCDHW or BCHWD); this model takes images (layout " +
            pre.layout + ", input " + vit3d::shape_to_string(p.input_shape) + ")");
    io::Volume<float> volume = io::read_nifti<float>(path);
    ModelInput in;
    in.read_shape = volume.data.shape();
    in.read_dtype = io::nifti_datatype_name(volume.datatype);
    Tensor<float> x = std::move(volume.data);
    if (x.rank() == 3) x = x.unsqueeze(0);
    if (x.rank() != 4)
        throw input_error("expected a 3D volume [z, y, x] or a 4D one [t, z, y, x], got " +
                          vit3d::shape_to_string(in.read_shape));
    const vit3d::Index channels = p.input_shape[0];
    if (x.dim(0) != channels)
        throw input_error("the model takes " + std::to_string(channels) + " channel(s); the volume " +
                          vit3d::shape_to_string(in.read_shape) + " gives " + std::to_string(x.dim(0)) +
                          " (a 4D volume's t axis is the channel axis)");
    if (pre.layout == "BCHWD") x = x.permute({0, 3, 2, 1});  // [C, z, y, x] -> [C, x, y, z]
    if (pre.rescale) rescale_values(x, *pre.rescale);
    const std::array<vit3d::Index, 3> size{p.input_shape[1], p.input_shape[2], p.input_shape[3]};
    if (x.dim(1) != size[0] || x.dim(2) != size[1] || x.dim(3) != size[2])
        x = io::resample_trilinear(x, size);
    in.batch = window_and_normalize(std::move(x), pre, 0).unsqueeze(0);
    return in;
}

}  // namespace detail

inline ModelInput read_input(const std::string& path, const Pipeline& p) {
    std::error_code ec;
    const auto status = fs::status(path, ec);
    if (!fs::exists(status)) throw input_error("no such file");
    if (fs::is_directory(status)) throw input_error("is a folder, not a file");
    switch (format_of(path)) {
        case InputFormat::npy:
            return detail::read_npy_input(path, p);
        case InputFormat::image:
            return detail::read_image_input(path, p);
        case InputFormat::nifti:
            return detail::read_nifti_input(path, p);
        case InputFormat::unknown:
            break;
    }
    throw input_error(std::string("unknown input type: expected one of ") + known_extensions);
}

}  // namespace vit3d_infer
