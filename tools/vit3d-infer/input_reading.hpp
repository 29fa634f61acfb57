#pragma once
// One input file -> the model's input [B, C, spatial...] (float), as --help's conventions state, through
// vit3d/io/model_input.hpp (the library's functions, so that the tool and a C++ program give the same
// input for the same file): .npy taken as it is (values as stored unless --npy-preprocess); images and
// NIfTI volumes rescaled, resized, windowed and normalised. What this file adds: the command line's
// overrides of the weights file's transforms::Preprocessing, the file's type from its name, what the report
// shows of the file as read, and input_error (the file fails, the run goes on).

#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "input_listing.hpp"
#include "options.hpp"
#include "vit3d/core/enum_names.hpp"
#include "vit3d/core/message.hpp"
#include "vit3d/formats/nifti.hpp"
#include "vit3d/formats/npy.hpp"
#include "vit3d/io/loaded_model.hpp"
#include "vit3d/io/model_description_json.hpp"
#include "vit3d/io/model_input.hpp"
#include "vit3d/io/transform_json.hpp"
#include "vit3d/models/sliding_window.hpp"
#include "vit3d/transforms/resample.hpp"

namespace vit3d_infer {

using vit3d::message;

using vit3d::Shape;
using vit3d::Tensor;
namespace io = vit3d::io;
namespace transforms = vit3d::transforms;

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
    transforms::Preprocessing preprocess;
    bool npy_values = false;  // --npy-preprocess
    // --sliding-window: the windows larger volumes run over (sliding_window.hpp)
    std::optional<vit3d::models::SlidingWindowConfig> windows;
};

inline std::string join_numbers(const std::vector<double>& v) {
    std::string s;
    for (double x : v) s += message(s.empty() ? "" : ",", x);
    return s;
}

// --input-size: the model's input at these spatial sizes, which images and volumes are resized to; refused
// unless the model runs at other sizes (dynamic_size) and its patches divide them.
inline void set_input_size(const io::LoadedModel<float>& model, const std::vector<Index>& sizes,
                           Pipeline& p) {
    const Shape& trained = model.input_shape();
    if (!model.dynamic_size())
        throw usage_error(message("--input-size: this model runs at its input size ",
                                  Shape(trained.begin() + 1, trained.end()),
                                  " only (its weights file has no dynamic_size; timm models exported by "
                                  "tools/export_weights.py have it)"));
    if (sizes.size() + 1 != trained.size())
        throw usage_error(message("--input-size: expected ", trained.size() - 1, " spatial sizes (layout ",
                                  p.preprocess.layout, "), got ", sizes.size()));
    const nlohmann::json config = io::description_json_field(model.description().config, "config");
    const auto patch = config.find("patch_size");
    const auto drop = config.find("drop_remainder");
    const bool drop_remainder = drop != config.end() && drop->is_boolean() && drop->get<bool>();
    for (std::size_t a = 0; a < sizes.size(); ++a) {
        const Index k = patch != config.end() && patch->is_array() && patch->size() == sizes.size()
                            ? (*patch)[a].get<Index>()
                            : 1;
        if (sizes[a] < k || (sizes[a] % k != 0 && !drop_remainder))
            throw usage_error(message("--input-size: ", sizes[a], " on axis ", a, " is not ",
                                      drop_remainder ? "at least" : "a multiple of", " the patch size ", k,
                                      " (patch_size ", patch != config.end() ? patch->dump() : "?", ")"));
    }
    p.input_shape = Shape{trained[0]};
    p.input_shape.insert(p.input_shape.end(), sizes.begin(), sizes.end());
    p.preprocess.input_size = sizes;
}

// --steps JSON or @FILE: the volume steps in place of the weights file's preprocessing.
inline void set_steps(const std::string& text, Pipeline& p) {
    if (p.preprocess.layout == "BCHW")
        throw usage_error("--steps: the steps prepare volumes; this model takes images (layout BCHW)");
    std::string json = text;
    if (!text.empty() && text[0] == '@') {
        std::ifstream in(text.substr(1));
        if (!in) throw usage_error(message("--steps: cannot read ", text.substr(1)));
        json.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    }
    const nlohmann::json parsed = nlohmann::json::parse(json, nullptr, false);
    if (parsed.is_discarded())
        throw usage_error("--steps: expected a JSON list of steps, or @FILE holding one");
    try {
        p.preprocess.steps = io::transforms_from_json(parsed, "--steps", "");
    } catch (const std::exception& e) {
        throw usage_error(e.what());
    }
    p.preprocess.rescale.reset();
    p.preprocess.mean.reset();
    p.preprocess.std.reset();
    p.preprocess.intensity_window.reset();
    p.preprocess.preset.reset();
}

// --preset NAME: a published pipeline's steps in place of the weights file's preprocessing.
inline void set_preset(const std::string& name, Pipeline& p) {
    if (p.preprocess.layout == "BCHW")
        throw usage_error("--preset: the presets prepare volumes; this model takes images (layout BCHW)");
    p.preprocess.steps = transforms::preset(name).steps;
    p.preprocess.preset = name;
    p.preprocess.rescale.reset();
    p.preprocess.mean.reset();
    p.preprocess.std.reset();
    p.preprocess.intensity_window.reset();
}

// The weights file's preprocessing with the command line's overrides; usage_error for overrides that do not
// fit the model.
inline Pipeline make_pipeline(const io::LoadedModel<float>& model, const Options& o) {
    Pipeline p;
    p.input_shape = model.input_shape();
    p.preprocess = model.preprocess();
    p.npy_values = o.npy_preprocess;
    transforms::Preprocessing& pre = p.preprocess;
    const auto channels = static_cast<std::size_t>(p.input_shape[0]);
    if (o.rescale) pre.rescale = *o.rescale;
    if (!o.mean.empty()) pre.mean = o.mean;
    if (!o.std.empty()) pre.std = o.std;
    if (pre.mean && !pre.std) pre.std = std::vector<double>(channels, 1.0);
    if (pre.std && !pre.mean) pre.mean = std::vector<double>(channels, 0.0);
    for (const auto* stat : {&pre.mean, &pre.std})
        if (*stat && (*stat)->size() != channels)
            throw usage_error(message(stat == &pre.mean ? "--mean" : "--std", ": expected ", channels,
                                      " value(s), one per channel of the model's input ", p.input_shape,
                                      ", got ", (*stat)->size(), " (", join_numbers(**stat), ")"));
    if (!o.window.empty()) {
        transforms::IntensityWindow w = pre.intensity_window.value_or(transforms::IntensityWindow{});
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
    if (pre.interpolation && !vit3d::enum_from_name<transforms::ResizeFilter>(*pre.interpolation))
        throw usage_error(message("the weights file asks for ", *pre.interpolation,
                                  " interpolation, which vit3d-infer does not do; choose --interpolation ",
                                  vit3d::enum_name_list<transforms::ResizeFilter>("", ", ", " or ")));
    if (!o.channel_order.empty()) pre.channel_order = o.channel_order;
    if (!o.steps.empty()) set_steps(o.steps, p);
    if (!o.preset.empty()) set_preset(o.preset, p);
    if (!o.input_size.empty()) set_input_size(model, o.input_size, p);
    return p;
}

namespace detail {

inline ModelInput read_npy_input(const std::string& path, const Pipeline& p) {
    // The header first, for the report (and for its message, when it is not a .npy file at all).
    const io::NpyHeader header = io::read_npy_header(path);
    ModelInput in;
    in.read_shape = header.shape;
    in.read_dtype = io::npy_dtype_name(header.dtype);
    in.batch = io::read_npy_input(path, p.input_shape, p.preprocess,
                                  p.npy_values ? io::NpyValues::preprocessed : io::NpyValues::as_stored);
    return in;
}

inline ModelInput read_image_input(const std::string& path, const Pipeline& p) {
    io::ImageInput image = io::read_image_input(path, p.input_shape, p.preprocess);
    ModelInput in;
    in.read_shape = {image.stored.channels, image.stored.height, image.stored.width};
    in.read_dtype = image.stored.bits_per_channel == 16 ? "uint16" : "uint8";
    in.batch = std::move(image.batch);
    return in;
}

inline ModelInput read_nifti_input(const std::string& path, const Pipeline& p) {
    const io::Volume<float> volume = io::read_nifti<float>(path);
    ModelInput in;
    in.read_shape = volume.data.shape();
    in.read_dtype = io::nifti_datatype_name(volume.datatype);
    in.batch = io::volume_input(volume, p.input_shape, p.preprocess);
    return in;
}

inline ModelInput read_dicom_input(const std::string& folder, const Pipeline& p) {
    ModelInput in;
    const io::Volume<float> volume = read_dicom_volume(folder, in.read_dtype);
    in.read_shape = volume.data.shape();
    in.batch = io::volume_input(volume, p.input_shape, p.preprocess);
    return in;
}

inline ModelInput read_known_input(const std::string& path, InputFormat format, const Pipeline& p) {
    switch (format) {
        case InputFormat::npy:
            return read_npy_input(path, p);
        case InputFormat::image:
            return read_image_input(path, p);
        case InputFormat::nifti:
            return read_nifti_input(path, p);
        case InputFormat::unknown:
            break;
    }
    throw input_error(message("unknown input type: expected one of ", known_extensions));
}

}  // namespace detail

inline ModelInput read_input(const std::string& path, const Pipeline& p) {
    std::error_code ec;
    const auto status = fs::status(path, ec);
    if (!fs::exists(status)) throw input_error("no such file");
    const bool dicom = fs::is_directory(status) && is_dicom_folder(path);
    if (fs::is_directory(status) && !dicom) throw input_error("is a folder, not a file");
    try {
        if (dicom) return detail::read_dicom_input(path, p);
        return detail::read_known_input(path, format_of(path), p);
    } catch (const input_error&) {
        throw;
    } catch (const std::exception& e) {
        throw input_error(e.what());
    }
}

}  // namespace vit3d_infer
