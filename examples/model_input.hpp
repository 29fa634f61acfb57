#pragma once
// Shared by the examples that run a model loaded with io::load_model: an image or a NIfTI volume turned into
// the model's input [1, C, spatial...] the way the file's description (io::Preprocessing) says, and the
// small argument-parsing helpers every example uses.
//
// vit3d's io headers have every step (resize, center_crop, normalize, resample_trilinear, ...) but no one
// call that applies a whole io::Preprocessing; until they do, this is it. The order of the steps is the one
// the description's fields are documented in (README, "The metadata schema"), which is torchvision's:
//   image:  Resize(resize_size) + CenterCrop(input_size), or a plain resize to input_size when the
//           description has no resize_size; then rescale, intensity window, (x - mean) / std per channel.
//   volume: the NIfTI data [nz, ny, nx] put in the layout's axis order, resampled trilinearly to input_size
//           (the whole field of view onto the model's grid; voxel spacing is not equalised); then rescale,
//           intensity window, mean / std.

#include <algorithm>
#include <array>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>
#include <vit3d.hpp>
#include <vit3d/io/image.hpp>
#include <vit3d/io/loaded_model.hpp>
#include <vit3d/io/nifti.hpp>
#include <vit3d/io/preprocess.hpp>
#include <vit3d/io/resample.hpp>

namespace vit3d_examples {

using vit3d::Index;
using vit3d::Shape;
using vit3d::Tensor;
namespace io = vit3d::io;

// A command-line mistake: main() prints "<example>: <message>" and exits with 2.
struct usage_error : std::invalid_argument {
    using std::invalid_argument::invalid_argument;
};

// The value after option argv[i] (advancing i), or a usage_error naming the option.
inline std::string option_value(int argc, char** argv, int& i) {
    if (i + 1 >= argc) throw usage_error(std::string(argv[i]) + " needs a value");
    return argv[++i];
}

// An integer in [low, high] from the value after option argv[i].
inline long option_integer(int argc, char** argv, int& i, long low, long high) {
    const std::string option = argv[i], text = option_value(argc, argv, i);
    std::size_t used = 0;
    long n = 0;
    try {
        n = std::stol(text, &used);
    } catch (const std::exception&) {
        used = 0;
    }
    if (used == 0 || used != text.size() || n < low || n > high)
        throw usage_error(option + " expects an integer in [" + std::to_string(low) + ", " +
                          std::to_string(high) + "], got \"" + text + "\"");
    return n;
}

// The spatial sizes of the model's input, in its layout's order.
inline Shape spatial_size(const io::LoadedModel<float>& model) {
    return Shape(model.input_shape().begin() + 1, model.input_shape().end());
}

// The interpolation the description names for resizing images.
inline io::ResizeFilter resize_filter(const io::Preprocessing& p) {
    if (!p.interpolation || *p.interpolation == "bilinear") return io::ResizeFilter::bilinear;
    if (*p.interpolation == "bicubic") return io::ResizeFilter::bicubic;
    throw std::runtime_error("preprocess.interpolation \"" + *p.interpolation +
                             "\": vit3d resizes images bilinear or bicubic only");
}

// rescale, intensity window and mean / std of the description, on x [C, spatial...] (channel axis 0).
inline Tensor<float> scale_intensities(Tensor<float> x, const io::Preprocessing& p) {
    if (p.rescale) x = x * static_cast<float>(*p.rescale);
    if (p.intensity_window) {
        // io::intensity_window maps onto [0, 1] and always clips; the description may ask for another
        // range or no clipping, so the window is applied here in full.
        const io::IntensityWindow& w = *p.intensity_window;
        const double scale = (w.to[1] - w.to[0]) / (w.high - w.low);
        for (float& v : x) {
            const double clipped = w.clip ? std::clamp<double>(v, w.low, w.high) : double(v);
            v = static_cast<float>(w.to[0] + (clipped - w.low) * scale);
        }
    }
    if (p.mean || p.std) {
        const std::vector<double> ones(static_cast<std::size_t>(x.dim(0)), 1.0);
        const std::vector<double> zeros(static_cast<std::size_t>(x.dim(0)), 0.0);
        x = io::normalize(x, p.mean ? *p.mean : zeros, p.std ? *p.std : ones, -x.rank());
    }
    return x;
}

// The channels to read an image file as, for a model taking `channels` channels.
inline io::ImageChannels image_channels(const io::Preprocessing& p, Index channels) {
    if (channels == 3 && (!p.channel_order || *p.channel_order != "L")) return io::ImageChannels::rgb;
    if (channels == 1 && (!p.channel_order || *p.channel_order == "L")) return io::ImageChannels::gray;
    throw std::runtime_error("the model takes " + std::to_string(channels) + " channel(s)" +
                             (p.channel_order ? " (" + *p.channel_order + ")" : std::string()) +
                             "; an image gives 1 (gray) or 3 (RGB)");
}

// The image as the model sees it before its intensities are scaled: read, channels converted, resized and
// cropped to the input size: [C, H, W] in [0, 1]. This is also what a picture of the input should show.
inline Tensor<float> image_view(const std::string& path, const io::LoadedModel<float>& model) {
    const io::Preprocessing& p = model.preprocess();
    if (p.layout != "BCHW")
        throw std::runtime_error(model.source() + " is a " + model.kind() + " model (layout " + p.layout +
                                 "); images need a 2D model (BCHW)");
    const Shape size = spatial_size(model);
    Tensor<float> image = io::read_image<float>(path, image_channels(p, model.input_shape()[0]));
    if (p.channel_order && *p.channel_order == "BGR")
        image =
            vit3d::concat<float>({image.narrow(0, 2, 1), image.narrow(0, 1, 1), image.narrow(0, 0, 1)}, 0);
    if (p.resize_size) {
        image = io::resize_shorter_side(image, *p.resize_size, resize_filter(p));
        image = io::center_crop(image, size[0], size[1]);
    } else if (image.dim(1) != size[0] || image.dim(2) != size[1]) {
        image = io::resize(image, size[0], size[1], resize_filter(p));
    }
    return image;
}

// The model's input [1, C, H, W] from an image file. read_image gives ToTensor's v / 255; a description's
// rescale applies to the stored 8-bit values v, so the view is scaled back to them first. Without a rescale
// the model gets ToTensor's [0, 1] (what vit-pytorch and MONAI 2D pipelines usually feed).
inline Tensor<float> image_input(const Tensor<float>& view, const io::Preprocessing& p) {
    Tensor<float> x = p.rescale ? view * 255.0f : view;
    return scale_intensities(std::move(x), p).unsqueeze(0);
}

// The NIfTI volume [nz, ny, nx] (= [D, H, W]) in the axis order of the model's layout: as it is for BCDHW
// (torch Conv3d, vit-pytorch: depth = z first), reversed to [nx, ny, nz] for BCHWD (MONAI and Reg2RG read
// NIfTI with nibabel, whose array is data[i, j, k] = [x, y, z]).
inline Tensor<float> volume_in_layout(const Tensor<float>& data, const std::string& layout) {
    if (layout == "BCDHW") return data;
    if (layout == "BCHWD") return data.permute({2, 1, 0});
    throw std::runtime_error("layout " + layout + ": volumes need a 3D model (BCDHW or BCHWD)");
}

// The model's input [1, 1, spatial...] from a 3D NIfTI volume.
inline Tensor<float> volume_input(const io::Volume<float>& volume, const io::LoadedModel<float>& model) {
    const io::Preprocessing& p = model.preprocess();
    if (volume.data.rank() != 3)
        throw std::runtime_error("expected a 3D volume [nz, ny, nx], got " +
                                 vit3d::shape_to_string(volume.data.shape()));
    if (model.input_shape().size() != 4)
        throw std::runtime_error(model.source() + " is a " + model.kind() + " model (layout " + p.layout +
                                 "); volumes need a 3D model");
    if (model.input_shape()[0] != 1)
        throw std::runtime_error("the model takes " + std::to_string(model.input_shape()[0]) +
                                 " channels; a NIfTI volume gives 1");
    const Shape size = spatial_size(model);
    const Tensor<float> oriented = volume_in_layout(volume.data, p.layout);
    const Tensor<float> resampled = io::resample_trilinear(oriented, {size[0], size[1], size[2]});
    return scale_intensities(resampled.unsqueeze(0), p).unsqueeze(0);
}

}  // namespace vit3d_examples
