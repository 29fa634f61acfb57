#pragma once
// --sliding-window OVERLAP[,constant|gaussian]: volumes larger than the model's input run window by window
// (io::sliding_window_forward, MONAI's sliding_window_inference) instead of being resized to it.
//
// Which inputs: a NIfTI volume or DICOM series whose spatial size, in the model's axis order, exceeds the
// model's input on some axis, and a .npy [C, spatial...] or [B, C, spatial...] of another spatial size than
// the model's. Such an input goes through every step of the preprocessing but the resize (rescale, window,
// mean / std; for .npy only with --npy-preprocess), at its own size; with preprocess.steps (--steps,
// --preset), through the steps but the trailing ones that only size it to the input (SpatialPad,
// CenterSpatialCrop, ResizeWithPadOrCrop), and a volume the steps leave at any size (the monai_unetr_btcv
// preset) always runs over windows; the model then runs over windows of its input size
// (--input-size's for a dynamic_size model), --batch-size windows per forward pass, and the output is
// stitched over the whole input (token_grid, cls_attention) or averaged over the windows (pooled, logits).
// Smaller volumes, images, and .npy at the model's size run as without the option. tokens cannot be
// stitched and are refused at the start.

#include <nlohmann/json.hpp>

#include <optional>
#include <sstream>
#include <string>
#include <variant>
#include <vector>

#include "input_listing.hpp"
#include "input_reading.hpp"
#include "options.hpp"
#include "vit3d/core/enum_names.hpp"
#include "vit3d/formats/nifti.hpp"
#include "vit3d/formats/npy.hpp"
#include "vit3d/io/loaded_model.hpp"
#include "vit3d/io/model_input.hpp"
#include "vit3d/io/sliding_window_inference.hpp"
#include "vit3d/models/sliding_window.hpp"
#include "vit3d/transforms/compose.hpp"
#include "vit3d/transforms/preprocess.hpp"

namespace vit3d_infer {

namespace models = vit3d::models;

// --sliding-window's text -> the windows of the run (roi: the run's input size; sw_batch_size: --batch-size).
inline std::optional<models::SlidingWindowConfig> sliding_window_config(const Options& o, const Pipeline& p) {
    if (o.sliding_window.empty()) return std::nullopt;
    const std::string& text = o.sliding_window;
    const auto comma = text.find(',');
    const std::string number = text.substr(0, comma);
    const std::string mode = comma == std::string::npos ? "constant" : text.substr(comma + 1);
    const auto bad = [&](const std::string& why) {
        return usage_error(
            message("--sliding-window: expected OVERLAP[,constant|gaussian] with 0 <= OVERLAP < 1 "
                    "(e.g. 0.25 or 0.5,gaussian), got \"",
                    text, "\"", why.empty() ? "" : ": ", why));
    };
    double overlap = 0;
    std::istringstream in(number);
    in.imbue(std::locale::classic());
    if (number.empty() || !(in >> overlap) || !in.eof()) throw bad("");
    if (!(overlap >= 0 && overlap < 1)) throw bad(message("overlap ", overlap, " is outside [0, 1)"));
    const std::optional<models::BlendMode> blend = vit3d::enum_from_name<models::BlendMode>(mode);
    if (!blend) throw bad(message("unknown blend mode ", quote(mode)));
    if (p.preprocess.layout == "BCHW")
        throw usage_error(
            message("--sliding-window: this model takes images (layout BCHW); windows run over "
                    "volumes and .npy arrays of 3D models"));
    models::SlidingWindowConfig c;
    c.roi_size.assign(p.input_shape.begin() + 1, p.input_shape.end());
    c.overlap = {overlap};
    c.mode = *blend;
    c.sw_batch_size = o.batch_size;
    return c;
}

// The windows as the report and the outputs' records show them (so that a rerun with other windows does
// not take the outputs as its own).
inline nlohmann::json sliding_window_json(const models::SlidingWindowConfig& c) {
    return {{"roi_size", c.roi_size},
            {"overlap", c.overlap.at(0)},
            {"mode", vit3d::enum_name(c.mode)},
            {"sigma_scale", c.sigma_scale.at(0)},
            {"padding", "constant"},
            {"cval", c.cval}};
}

inline void check_sliding_window_output(const Pipeline& p, io::ModelOutput output) {
    if (p.windows && output == io::ModelOutput::tokens)
        throw usage_error(
            "--sliding-window: tokens cannot be stitched over windows (the class token belongs "
            "to no place); choose --output-kind token_grid, cls_attention, pooled or logits");
}

// Whether x [B, C, spatial...] runs over windows: its spatial size is not the model's.
inline bool runs_over_windows(const Tensor<float>& x, const Pipeline& p) {
    return p.windows && !std::equal(p.input_shape.begin() + 1, p.input_shape.end(), x.shape().begin() + 2,
                                    x.shape().end());
}

namespace detail {

inline bool exceeds(const Shape& spatial, const Shape& input_shape) {
    for (std::size_t a = 0; a < spatial.size() && a + 1 < input_shape.size(); ++a)
        if (spatial[a] > input_shape[a + 1]) return true;
    return false;
}

// Whether a step only brings the volume to the model's input size (what windows replace).
inline bool sizes_to_input(const transforms::Transform& step) {
    return std::holds_alternative<transforms::ResizeWithPadOrCrop>(step) ||
           std::holds_alternative<transforms::CenterSpatialCrop>(step) ||
           std::holds_alternative<transforms::SpatialPad>(step);
}

// [C, i, j, k] of a SpatialImage in the model's layout (as io::volume_input lays it out).
inline Tensor<float> in_layout(const transforms::SpatialImage<float>& image, const std::string& layout) {
    return layout == "BCHWD" ? image.data : image.data.permute({0, 3, 2, 1});
}

// With preprocess.steps: the steps but the trailing ones that only size the volume to the input (SpatialPad,
// CenterSpatialCrop, ResizeWithPadOrCrop); those too when the result is no larger than the input on any
// axis. Steps that leave the size free (the monai_unetr_btcv preset) always give the windowed input.
inline Tensor<float> steps_input(const io::Volume<float>& volume, const Pipeline& p) {
    const std::vector<transforms::Transform>& steps = *p.preprocess.steps;
    std::size_t head = steps.size();
    while (head > 0 && sizes_to_input(steps[head - 1])) --head;
    const std::vector<transforms::Transform> first(steps.begin(), steps.begin() + static_cast<long>(head));
    const std::vector<transforms::Transform> last(steps.begin() + static_cast<long>(head), steps.end());
    transforms::SpatialImage<float> image = transforms::apply(first, io::spatial_image(volume));
    Tensor<float> x = in_layout(image, p.preprocess.layout);
    const Shape spatial(x.shape().begin() + 1, x.shape().end());
    if (!last.empty() && !exceeds(spatial, p.input_shape))
        x = in_layout(transforms::apply(last, std::move(image)), p.preprocess.layout);
    if (x.dim(0) != p.input_shape[0])
        throw input_error(
            message("the model takes ", p.input_shape[0], " channel(s); the steps give ", x.shape()));
    return x.unsqueeze(0);
}

// A volume read from a NIfTI file or a DICOM series (stored_dtype: its stored type, for the report).
inline std::optional<ModelInput> whole_volume_input(const io::Volume<float>& volume,
                                                    const std::string& stored_dtype, const Pipeline& p) {
    const Shape& read = volume.data.shape();
    if (read.size() != 3 && read.size() != 4) return std::nullopt;  // the usual path says what is wrong
    ModelInput in;
    in.read_shape = read;
    in.read_dtype = stored_dtype;
    if (p.preprocess.steps) {
        in.batch = steps_input(volume, p);
        return in;
    }
    Shape spatial(read.end() - 3, read.end());  // [z, y, x]
    if (p.preprocess.layout == "BCHWD") std::reverse(spatial.begin(), spatial.end());
    if (!exceeds(spatial, p.input_shape)) {
        in.batch = io::volume_input(volume, p.input_shape, p.preprocess);
        return in;
    }
    // Every step at the volume's own size: the resize to it is none.
    Shape shape{p.input_shape[0]};
    shape.insert(shape.end(), spatial.begin(), spatial.end());
    transforms::Preprocessing at_own_size = p.preprocess;
    at_own_size.input_size.assign(spatial.begin(), spatial.end());
    in.batch = io::volume_input(volume, shape, at_own_size);
    return in;
}

inline std::optional<ModelInput> whole_npy_input(const std::string& path, const Pipeline& p) {
    const io::NpyHeader header = io::read_npy_header(path);
    const Shape& s = header.shape;
    const std::size_t rank = p.input_shape.size();
    const bool one = s.size() == rank, batch = s.size() == rank + 1;
    if (!one && !batch) return std::nullopt;
    const Shape sample(s.begin() + (batch ? 1 : 0), s.end());
    if (sample == p.input_shape || sample[0] != p.input_shape[0]) return std::nullopt;
    ModelInput in;
    in.read_shape = s;
    in.read_dtype = io::npy_dtype_name(header.dtype);
    Tensor<float> x = io::read_npy<float>(path);
    if (one) x = x.unsqueeze(0);
    if (p.npy_values) x = transforms::apply_value_steps(std::move(x), p.preprocess, 1);
    in.batch = std::move(x);
    return in;
}

}  // namespace detail

// read_input, but with --sliding-window a volume larger than the model's input, or a .npy of another size,
// at its own size (see the top of this file).
inline ModelInput read_model_input(const std::string& path, const Pipeline& p) {
    if (!p.windows) return read_input(path, p);
    std::error_code ec;
    const bool dicom = fs::is_directory(path, ec) && is_dicom_folder(path);
    if (!dicom && !fs::is_regular_file(path, ec)) return read_input(path, p);
    std::optional<ModelInput> in;
    try {
        if (dicom) {
            std::string stored;
            const io::Volume<float> volume = read_dicom_volume(path, stored);
            in = detail::whole_volume_input(volume, stored, p);
        } else if (format_of(path) == InputFormat::nifti) {
            const io::Volume<float> volume = io::read_nifti<float>(path);
            in = detail::whole_volume_input(volume, io::nifti_datatype_name(volume.datatype), p);
        } else if (format_of(path) == InputFormat::npy) {
            in = detail::whole_npy_input(path, p);
        }
    } catch (const std::exception& e) {
        throw input_error(e.what());
    }
    return in ? std::move(*in) : read_input(path, p);
}

// The model's output for x: over windows when x is not at the model's input size (and --sliding-window).
inline Tensor<float> forward_output(const io::LoadedModel<float>& model, const Tensor<float>& x,
                                    io::ModelOutput output, const Pipeline& p) {
    if (!runs_over_windows(x, p)) return model.forward(x, output);
    return io::sliding_window_forward(model, x, output, *p.windows);
}

}  // namespace vit3d_infer
