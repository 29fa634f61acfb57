#pragma once
// A model's input [B, C, spatial...] from an image, a NIfTI volume or a .npy array, prepared as the weights
// file's transforms::Preprocessing says (docs/weights.md: "The metadata schema"; docs/inputs.md: "Model
// inputs from files"). vit3d-infer and the examples both use these functions, so that a file gives the same
// input, and so the same outputs, from C++ and from the command line. Needs vit3d::io, vit3d::image and
// vit3d::nifti.
//
// The steps, in the schema's order:
//   images   decoded with the model's channels (channel_order, else 1 = gray, 2 = gray + alpha, 3 = RGB,
//            4 = RGBA; BGR is RGB reversed) as raw 8-bit values 0..255 (a 16-bit PNG is brought to that
//            range, v / 257); rescaled; resized as torchvision's Resize on tensors (antialiased): with
//            resize_size the shorter side to it (resize_shape: both sides to it), then
//            CenterCrop(input_size), else straight to input_size (nothing when the image has that size);
//            windowed; (x - mean) / std per channel. A rescale of 1/255 is ToTensor's x / 255 exactly (for 16
//            bits v / 65535), so a torchvision pipeline ToTensor, Resize, CenterCrop, Normalize is reproduced
//            bit for bit. No rescale: the model gets 0..255.
//   volumes  vit3d's [z, y, x] (a 4D [t, z, y, x]: t channels) kept for BCDHW (torch Conv3d, vit-pytorch:
//            D = z, H = y, W = x) and reversed to [x, y, z] for BCHWD (MONAI, Reg2RG: nibabel's
//            data[i, j, k]); rescaled; resampled trilinearly to input_size (F.interpolate, align_corners
//            False: the whole field of view onto the model's grid, voxel spacing not equalised); windowed;
//            mean / std. NIfTI scaling (scl_slope, scl_inter) is applied by the reader: an int16 CT comes
//            in Hounsfield units.
//   .npy     the model's input as it is: one sample [C, spatial...] or a batch [B, C, spatial...] at the
//            model's input shape, not resized; float16/32/64 or (u)int8/(u)int16 (values a float holds
//            exactly); as stored, or with the value steps (NpyValues::preprocessed).
// Bad input throws: io_error for a file that cannot be read (naming the file), shape_error for one that
// does not fit the model (naming the expected and the actual shape, channels or layout), config_error for a
// description these functions cannot follow (an interpolation other than bilinear or bicubic).

#include <algorithm>
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "vit3d/core/enum_names.hpp"
#include "vit3d/core/error.hpp"
#include "vit3d/core/shape.hpp"
#include "vit3d/formats/image.hpp"
#include "vit3d/formats/nifti.hpp"
#include "vit3d/formats/npy.hpp"
#include "vit3d/formats/read_file.hpp"
#include "vit3d/io/loaded_model.hpp"
#include "vit3d/tensor/ops.hpp"
#include "vit3d/tensor/tensor.hpp"
#include "vit3d/transforms/preprocess.hpp"
#include "vit3d/transforms/resample.hpp"

namespace vit3d::io {

// An image prepared for a model.
struct ImageInput {
    Tensor<float> batch;  // [1, C, H, W]: what forward() takes
    // [C, H, W], on [0, 1] (bicubic resizing can overshoot a little): the image after the channel order,
    // resize and crop, before the window and mean / std; what a picture of the model's input shows. With
    // rescale 1/255 it is the model's tensor before those steps; otherwise that tensor scaled onto [0, 1].
    Tensor<float> view;
    ImageInfo stored;  // what the file holds: size, channels, bits per channel
};

// How a .npy input's values are taken.
enum class NpyValues {
    as_stored,     // the model input as it is (what vit3d-infer --save-input writes)
    preprocessed,  // rescale, intensity window, mean / std applied (vit3d-infer --npy-preprocess)
};

}  // namespace vit3d::io

namespace vit3d::detail {

inline std::string spatial_text(const Shape& input_shape) {
    return message(Shape(input_shape.begin() + 1, input_shape.end()));
}

// input_shape [C, spatial...] agrees with p (a description and a model input shape that disagree are a
// programming error, not a bad file).
inline void check_input_shape(const std::string& where, const Shape& input_shape,
                              const transforms::Preprocessing& p) {
    const std::size_t spatial = p.layout == "BCHW" ? 2 : 3;
    const bool known = p.layout == "BCHW" || p.layout == "BCDHW" || p.layout == "BCHWD";
    bool fits = known && input_shape.size() == spatial + 1 && input_shape[0] >= 1;
    if (fits && !p.input_size.empty())
        fits =
            std::equal(p.input_size.begin(), p.input_size.end(), input_shape.begin() + 1, input_shape.end());
    for (std::size_t a = 1; fits && a < input_shape.size(); ++a) fits = input_shape[a] >= 1;
    if (!fits)
        throw shape_error(message(where,
                                  "expected a model input shape [C, spatial...] of layout BCHW (2 spatial "
                                  "axes), BCDHW or BCHWD (3) that agrees with preprocess.input_size ",
                                  p.input_size, ", got ", input_shape, " and layout \"", p.layout, "\""));
}

inline transforms::ResizeFilter image_resize_filter(const std::string& where,
                                                    const transforms::Preprocessing& p) {
    if (!p.interpolation) return transforms::ResizeFilter::bilinear;
    if (const std::optional<transforms::ResizeFilter> filter =
            enum_from_name<transforms::ResizeFilter>(*p.interpolation))
        return *filter;
    throw config_error(message(where, "preprocess.interpolation: expected ",
                               enum_name_list<transforms::ResizeFilter>("", ", ", " or "),
                               " (what vit3d resizes images with), got ", quoted_path(*p.interpolation)));
}

// The channels to decode an image with, for a model of `channels` channels and the description's order.
inline io::ImageChannels image_channels_for(const std::string& where, Index channels,
                                            const transforms::Preprocessing& p) {
    Index given = channels;
    io::ImageChannels wanted = io::ImageChannels::rgb;
    if (p.channel_order) {
        wanted = *p.channel_order == "L" ? io::ImageChannels::gray : io::ImageChannels::rgb;
        given = static_cast<Index>(wanted);
    } else if (channels >= 1 && channels <= 4) {
        wanted = static_cast<io::ImageChannels>(channels);
    } else {
        given = 0;
    }
    if (given != channels)
        throw shape_error(message(where, "the model takes ", channels, " channel(s), but ",
                                  p.channel_order
                                      ? message("channel order ", *p.channel_order, " gives ", given)
                                      : std::string("an image gives 1 (gray), 2 (gray + alpha), 3 (RGB) or 4 "
                                                    "(RGBA)")));
    return wanted;
}

// A SpatialImage [C, i, j, k] in the model's layout: as it is for BCHWD, [C, k, j, i] for BCDHW.
inline Tensor<float> in_layout(const transforms::SpatialImage<float>& image, const std::string& layout) {
    return layout == "BCHWD" ? image.data : image.data.permute({0, 3, 2, 1});
}

// The volume through p.steps, [C, spatial...] in the model's layout; it must come out at input_size.
inline Tensor<float> volume_steps_input(const io::Volume<float>& volume, const Shape& input_shape,
                                        const transforms::Preprocessing& p, const std::string& where) {
    const transforms::SpatialImage<float> image = transforms::apply(*p.steps, io::spatial_image(volume));
    Tensor<float> x = in_layout(image, p.layout);
    if (x.shape() != input_shape)
        throw shape_error(message(where, "preprocess.steps give ", x.shape(), " (layout ", p.layout,
                                  ") where the model takes ", input_shape,
                                  ": end the steps with ResizeWithPadOrCrop to the input size"));
    return x;
}

inline io::ImageInput image_input_at(const std::uint8_t* bytes, std::size_t size, const Shape& input_shape,
                                     const transforms::Preprocessing& p, const std::string& where) {
    if (p.layout != "BCHW")
        throw shape_error(
            message(where, "an image feeds a 2D model (layout BCHW); this model takes volumes (layout ",
                    p.layout, ", input ", input_shape, ")"));
    check_input_shape(where, input_shape, p);
    const io::ImageChannels channels = image_channels_for(where, input_shape[0], p);
    const transforms::ResizeFilter filter = image_resize_filter(where, p);
    io::ImageInput in;
    in.stored = stb_image_info(bytes, size, where);
    const bool to_tensor = p.rescale && is_to_tensor_rescale(*p.rescale);
    bool rescaled = false;
    Tensor<float> x;
    if (in.stored.bits_per_channel == 16) {
        const auto raw = decode_image_at<std::uint16_t>(bytes, size, channels, where);
        x = Tensor<float>::empty(raw.shape());
        // v / 65535 in one rounding rather than v / 257 / 255 in two: read_image<float>'s values.
        const float divisor = to_tensor ? 65535.0f : 257.0f;
        for (Index i = 0; i < raw.size(); ++i) x.data()[i] = static_cast<float>(raw.data()[i]) / divisor;
        rescaled = to_tensor;
    } else {
        const auto raw = decode_image_at<std::uint8_t>(bytes, size, channels, where);
        x = Tensor<float>::empty(raw.shape());
        for (Index i = 0; i < raw.size(); ++i) x.data()[i] = static_cast<float>(raw.data()[i]);
    }
    if (p.channel_order && *p.channel_order == "BGR")
        x = concat<float>({x.narrow(0, 2, 1), x.narrow(0, 1, 1), x.narrow(0, 0, 1)}, 0);
    if (p.rescale && !rescaled) x = transforms::rescale(x, *p.rescale);
    const Index height = input_shape[1], width = input_shape[2];
    if (p.resize_size) {
        x = transforms::center_crop(transforms::resize_shorter_side(x, *p.resize_size, filter), height,
                                    width);
    } else if (p.resize_shape) {
        x = transforms::center_crop(transforms::resize(x, (*p.resize_shape)[0], (*p.resize_shape)[1], filter),
                                    height, width);
    } else if (x.dim(1) != height || x.dim(2) != width) {
        x = transforms::resize(x, height, width, filter);
    }
    const double scale = p.rescale.value_or(1.0) * 255.0;
    if (to_tensor || scale == 0.0) {
        in.view = x;
    } else {
        in.view = Tensor<float>::empty(x.shape());
        for (Index i = 0; i < x.size(); ++i)
            in.view.data()[i] = static_cast<float>(static_cast<double>(x.data()[i]) / scale);
    }
    in.batch = transforms::window_and_normalize(std::move(x), p, 0).unsqueeze(0);
    return in;
}

inline Tensor<float> volume_input_at(const io::Volume<float>& volume, const Shape& input_shape,
                                     const transforms::Preprocessing& p, const std::string& where) {
    if (p.layout != "BCDHW" && p.layout != "BCHWD")
        throw shape_error(message(
            where,
            "a NIfTI volume feeds a 3D model (layout BCDHW or BCHWD); this model takes images (layout ",
            p.layout, ", input ", input_shape, ")"));
    check_input_shape(where, input_shape, p);
    const Shape& read = volume.data.shape();
    if (read.size() != 3 && read.size() != 4)
        throw shape_error(
            message(where, "expected a 3D volume [z, y, x] or a 4D one [t, z, y, x], got ", read));
    const Index channels = read.size() == 4 ? read[0] : 1;
    if (channels != input_shape[0])
        throw shape_error(message(where, "the model takes ", input_shape[0], " channel(s); the volume ", read,
                                  " gives ", channels, " (a 4D volume's t axis is the channel axis)"));
    if (p.steps) return volume_steps_input(volume, input_shape, p, where).unsqueeze(0);
    Tensor<float> x = read.size() == 3 ? volume.data.unsqueeze(0) : volume.data;
    if (p.layout == "BCHWD") x = x.permute({0, 3, 2, 1});  // [C, z, y, x] -> [C, x, y, z]
    if (p.rescale) x = transforms::rescale(x, *p.rescale);
    const std::array<Index, 3> size{input_shape[1], input_shape[2], input_shape[3]};
    if (x.dim(1) != size[0] || x.dim(2) != size[1] || x.dim(3) != size[2])
        x = transforms::resample_trilinear(x, size);
    return transforms::window_and_normalize(std::move(x), p, 0).unsqueeze(0);
}

inline Tensor<float> npy_input_at(const std::uint8_t* bytes, std::size_t size, const Shape& input_shape,
                                  const transforms::Preprocessing& p, io::NpyValues values,
                                  const std::string& where) {
    check_input_shape(where, input_shape, p);
    const io::NpyHeader header = parse_npy_header(bytes, size, size, where);
    using D = io::NpyDType;
    const D dt = header.dtype;
    const bool accepted = dt == D::float16 || dt == D::float32 || dt == D::float64 || dt == D::uint8 ||
                          dt == D::int8 || dt == D::uint16 || dt == D::int16;
    if (!accepted)
        throw io_error(message(where, "unsupported .npy dtype ", io::npy_dtype_name(dt),
                               ": expected float16, float32, float64, uint8, int8, uint16 or int16 (values a "
                               "float32 holds exactly)"));
    const Shape& s = header.shape;
    const bool one = s == input_shape;
    const bool batch = s.size() == input_shape.size() + 1 && s[0] >= 1 &&
                       std::equal(input_shape.begin(), input_shape.end(), s.begin() + 1);
    if (!one && !batch)
        throw shape_error(message(where, "shape ", s, " does not fit the model: expected one sample ",
                                  input_shape, " or a batch [B, ", shape_to_string(input_shape).substr(1),
                                  " (layout ", p.layout, ")"));
    Tensor<float> x = parse_npy_at<float>(bytes, size, where);
    if (one) x = x.unsqueeze(0);
    if (values == io::NpyValues::preprocessed) x = transforms::apply_value_steps(std::move(x), p, 1);
    return x;
}

inline std::string model_input_where(const char* op, const std::string& name) {
    return message("vit3d::io::", op, "(", quoted_path(name), "): ");
}

}  // namespace vit3d::detail

namespace vit3d::io {

// The input of a 2D model of input shape [C, H, W] (and layout BCHW) from an image held in memory (PNG,
// JPEG, BMP, PNM), prepared as p says (see the top of this file).
inline ImageInput image_input(const std::uint8_t* bytes, std::size_t size, const Shape& input_shape,
                              const transforms::Preprocessing& p,
                              const std::string& source_name = "<memory>") {
    return detail::image_input_at(bytes, size, input_shape, p,
                                  detail::model_input_where("image_input", source_name));
}

// ... for `model`, as its weights file describes.
inline ImageInput image_input(const std::uint8_t* bytes, std::size_t size, const LoadedModel<float>& model,
                              const std::string& source_name = "<memory>") {
    return image_input(bytes, size, model.input_shape(), model.preprocess(), source_name);
}

// ... from the image file at `path`.
inline ImageInput read_image_input(const std::string& path, const Shape& input_shape,
                                   const transforms::Preprocessing& p) {
    const std::string where = detail::model_input_where("read_image_input", path);
    const std::vector<std::uint8_t> bytes = detail::read_file_bytes(path, where);
    return detail::image_input_at(bytes.data(), bytes.size(), input_shape, p, where);
}

inline ImageInput read_image_input(const std::string& path, const LoadedModel<float>& model) {
    return read_image_input(path, model.input_shape(), model.preprocess());
}

// The input [1, C, spatial...] of a 3D model of input shape [C, spatial...] (layout BCDHW or BCHWD) from a
// volume as read_nifti gives it, prepared as p says (see the top of this file).
inline Tensor<float> volume_input(const Volume<float>& volume, const Shape& input_shape,
                                  const transforms::Preprocessing& p) {
    return detail::volume_input_at(volume, input_shape, p, "vit3d::io::volume_input: ");
}

inline Tensor<float> volume_input(const Volume<float>& volume, const LoadedModel<float>& model) {
    return volume_input(volume, model.input_shape(), model.preprocess());
}

// ... from the NIfTI file (.nii, .nii.gz) at `path`.
inline Tensor<float> read_nifti_input(const std::string& path, const Shape& input_shape,
                                      const transforms::Preprocessing& p) {
    const Volume<float> volume = read_nifti<float>(path);
    return detail::volume_input_at(volume, input_shape, p,
                                   detail::model_input_where("read_nifti_input", path));
}

inline Tensor<float> read_nifti_input(const std::string& path, const LoadedModel<float>& model) {
    return read_nifti_input(path, model.input_shape(), model.preprocess());
}

// The input [B, C, spatial...] of a model of input shape [C, spatial...] from a .npy array held in memory:
// one sample [C, spatial...] (B = 1) or a batch [B, C, spatial...] (see the top of this file).
inline Tensor<float> npy_input(const std::uint8_t* bytes, std::size_t size, const Shape& input_shape,
                               const transforms::Preprocessing& p, NpyValues values = NpyValues::as_stored,
                               const std::string& source_name = "<memory>") {
    return detail::npy_input_at(bytes, size, input_shape, p, values,
                                detail::model_input_where("npy_input", source_name));
}

// ... from the .npy file at `path`.
inline Tensor<float> read_npy_input(const std::string& path, const Shape& input_shape,
                                    const transforms::Preprocessing& p,
                                    NpyValues values = NpyValues::as_stored) {
    const std::string where = detail::model_input_where("read_npy_input", path);
    const std::vector<std::uint8_t> bytes = detail::read_file_bytes(path, where);
    return detail::npy_input_at(bytes.data(), bytes.size(), input_shape, p, values, where);
}

inline Tensor<float> read_npy_input(const std::string& path, const LoadedModel<float>& model,
                                    NpyValues values = NpyValues::as_stored) {
    return read_npy_input(path, model.input_shape(), model.preprocess(), values);
}

}  // namespace vit3d::io
