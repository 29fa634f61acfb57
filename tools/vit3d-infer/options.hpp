#pragma once
// vit3d-infer's command line: the options (CLI11), the checks CLI11 cannot make, and the text --help shows.
// Every check that fails throws usage_error, which main() reports as one line and exit code 2.

#include <CLI/CLI.hpp>

#include <array>
#include <cmath>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "vit3d/core/config.hpp"
#include "vit3d/core/enum_names.hpp"
#include "vit3d/core/message.hpp"
#include "vit3d/core/precision.hpp"
#include "vit3d/io/loaded_model.hpp"
#include "vit3d/transforms/presets.hpp"
#include "vit3d/transforms/resample.hpp"

namespace vit3d_infer {

using vit3d::message;

using vit3d::Index;

// A bad command line: reported as one line, exit code 2.
struct usage_error : std::invalid_argument {
    using std::invalid_argument::invalid_argument;
};

// --shard K/N: this run takes the inputs whose index in the sorted list is K modulo N.
struct Shard {
    Index index = 0;
    Index count = 1;
};

struct Options {
    std::string weights;
    std::vector<std::string> inputs;       // files, folders, globs and @lists, as given
    std::vector<std::string> input_lists;  // --input-list files
    std::string output;
    std::string output_kind;     // empty: logits if the model has a head, else pooled, else tokens
    std::optional<int> threads;  // absent: vit3d's default (OMP_NUM_THREADS or every core)
    Index batch_size = 1;
    std::string shard_text;
    std::optional<Shard> shard;
    bool overwrite = false;
    bool recursive = false;
    bool quiet = false;
    bool json = false;
    std::string save_input;  // a folder for the model inputs, as .npy
    std::string precision_text = "f32";
    vit3d::Precision precision = vit3d::Precision::f32;  // of the linear layers (docs/precision.md)

    // Preprocessing: the weights file's, with these overrides.
    bool npy_preprocess = false;  // .npy inputs go through the value steps too
    bool raw = false;             // no value steps (rescale, window, mean/std) at all
    std::optional<double> rescale;
    std::vector<double> mean;
    std::vector<double> std;
    std::vector<double> window;  // {low, high}
    bool no_window = false;
    std::optional<Index> resize_size;  // 0: resize straight to the input size, no crop
    std::vector<Index> input_size;     // spatial sizes to run a dynamic_size model at; empty: the file's
    std::string interpolation;
    std::string channel_order;
    std::string steps;   // volumes: MONAI-style steps as JSON, or @FILE holding it
    std::string preset;  // volumes: a published pipeline's steps (transforms/presets.hpp)
    // OVERLAP[,gaussian]: volumes larger than the input run over windows (sliding_window.hpp)
    std::string sliding_window;
};

inline const char* conventions_text() {
    return R"(Inputs (--input, repeatable; each a file, a folder, a glob or @LIST):
  .npy          the model input as it is: one sample [C, spatial...] or a batch [B, C, spatial...], spatial
                axes in the model's layout and at its input size (or --input-size; no resizing); float16/32/64, (u)int8,
                (u)int16, C order. Values are used as stored unless --npy-preprocess.
  .png .jpg .jpeg .bmp .pgm .ppm
                2D models (layout BCHW): [C, H, W] with the model's channels (channel_order, or 1 = gray,
                3 = RGB), resized to the input size (resize_size: shorter side, then centre crop).
  .nii .nii.gz  3D models: the volume as vit3d reads it, [z, y, x] (data(k, j, i) is voxel (i, j, k)); a 4D
                volume [t, z, y, x] gives t channels. Layout BCDHW takes [C, z, y, x] (D = z, H = y, W = x);
                layout BCHWD (MONAI, Reg2RG) takes [C, x, y, z], nibabel's and MONAI's order (H = x, W = y,
                D = z). Then resampled (trilinear) to the input size.
  Value steps (images, volumes): rescale, resize, window, then (x - mean) / std per channel.
  Volumes with steps (the weights file's preprocess.steps, or --steps): MONAI's transforms in order on
                [C, x, y, z] with the file's affine (Orientation, Spacing, crops and pads, intensity), in
                place of the value steps; they must end at the model's input size. --preset NAME takes a
                published pipeline's steps (listed under --preset above; docs/inputs.md says where each is from).
                With --sliding-window, a volume larger than the model's input runs over windows of its
                input size, the output stitched (token_grid, cls_attention) or averaged (pooled, logits).
Outputs: one .npy per input file, [B, ...] with B the file's samples (1 for an image, a volume or a
  single-sample .npy). With one input file --output is the file if it ends in .npy, a folder if it is one
  or ends in /, and refused otherwise; with several it is a folder and each output is <stem>.npy
  (a.nii.gz -> a.npy). Next to each output, <output>.vit3d.json records what wrote it: the weights file's
  SHA-256, the output kind, the precision, the preprocessing in force and the input's SHA-256.
Existing outputs: skipped when their record names this run's weights, kind, precision, preprocessing and
  input; any other existing output (another model, kind, precision, preprocessing or input, no record,
  changed since it was written) stops the run before it computes anything (exit code 2). --overwrite
  rewrites them all.
Exit codes: 0 all done, 1 some inputs failed (the others were written), 2 bad arguments (an input file
  that does not exist too) or the run could not start, 130 interrupted.)";
}

inline void add_options(CLI::App& app, Options& o) {
    app.add_option("-w,--weights", o.weights,
                   "weights file with vit3d's model metadata (tools/export_weights.py), or a Hugging Face "
                   "model folder (config.json, model.safetensors)")
        ->required();
    app.add_option("-i,--input", o.inputs, "input file, folder, glob (quoted) or @LIST; repeatable");
    app.add_option("--input-list", o.input_lists, "file of inputs, one a line (# comments); repeatable");
    app.add_option("-o,--output", o.output, "output file ending in .npy (one input), or folder")->required();
    app.add_option("-k,--output-kind", o.output_kind,
                   "logits | pooled | tokens | token_grid | cls_attention (default: logits if the model "
                   "has a head, else pooled, else tokens)");
    app.add_option("-t,--threads", o.threads, "threads (default: OMP_NUM_THREADS or every core)");
    app.add_option("-b,--batch-size", o.batch_size, "samples per forward pass (default 1)");
    app.add_option("--shard", o.shard_text, "K/N: only the sorted inputs with index % N == K (0 <= K < N)");
    app.add_flag("--overwrite", o.overwrite,
                 "rewrite outputs that exist (default: skip those this model, kind, preprocessing and input "
                 "wrote, and stop at any other)");
    app.add_flag("-r,--recursive", o.recursive, "descend into sub-folders of input folders");
    app.add_flag("-q,--quiet", o.quiet, "print only errors");
    app.add_flag("--json", o.json, "print one JSON object with the run's facts on stdout");
    app.add_option("--save-input", o.save_input, "also write each model input (after preprocessing) here");
    app.add_option("--precision", o.precision_text,
                   "f32 | bf16 | int8: the arithmetic of the linear layers (bf16: weights and activations "
                   "rounded to bf16; int8: dynamic quantisation; docs/precision.md; default f32)");
    auto* pre = "Preprocessing (default: the weights file's)";
    app.add_flag("--npy-preprocess", o.npy_preprocess, "apply the value steps to .npy inputs too")
        ->group(pre);
    app.add_flag("--raw", o.raw, "no value steps: no rescale, window or mean/std")->group(pre);
    app.add_option("--rescale", o.rescale, "multiply raw values by this first (1/255: 0.00392156862745098)")
        ->group(pre);
    app.add_option("--mean", o.mean, "per-channel means, comma-separated")->delimiter(',')->group(pre);
    app.add_option("--std", o.std, "per-channel standard deviations, comma-separated")
        ->delimiter(',')
        ->group(pre);
    app.add_option("--window", o.window, "LOW,HIGH: clip to [LOW, HIGH], map onto [0, 1] (CT: -1000,400)")
        ->delimiter(',')
        ->group(pre);
    app.add_flag("--no-window", o.no_window, "drop the weights file's intensity window")->group(pre);
    app.add_option("--input-size", o.input_size,
                   "spatial sizes to run the model at, in its axis order, comma-separated (models with "
                   "dynamic_size: timm's; default: the weights file's input_size)")
        ->delimiter(',')
        ->group(pre);
    app.add_option("--resize-size", o.resize_size,
                   "images: resize the shorter side to this, then centre-crop (0: resize to the input size)")
        ->group(pre);
    app.add_option("--interpolation", o.interpolation, "images: bilinear | bicubic")->group(pre);
    app.add_option("--channel-order", o.channel_order, "images: RGB | BGR | L")->group(pre);
    app.add_option("--steps", o.steps,
                   "volumes: the steps (Orientation, Spacing, crops, intensity) as a JSON list, or @FILE; "
                   "replaces the weights file's preprocessing")
        ->group(pre);
    app.add_option(
           "--preset", o.preset,
           vit3d::message("volumes: a published pipeline's steps (", vit3d::transforms::preset_names(),
                          "); replaces the weights file's preprocessing"))
        ->group(pre);
    app.add_option("--sliding-window", o.sliding_window,
                   "OVERLAP[,gaussian]: volumes larger than the input run over windows of the input size, "
                   "--batch-size windows a pass, stitched (token_grid, cls_attention) or averaged (pooled, "
                   "logits), instead of being resized")
        ->group(pre);
}

inline Shard parse_shard(const std::string& text) {
    const auto slash = text.find('/');
    const auto whole_number = [](const std::string& s, Index& out) {
        if (s.empty() || s.size() > 9 || s.find_first_not_of("0123456789") != std::string::npos) return false;
        out = std::stol(s);
        return true;
    };
    Shard s;
    if (slash == std::string::npos || !whole_number(text.substr(0, slash), s.index) ||
        !whole_number(text.substr(slash + 1), s.count) || s.count < 1 || s.index >= s.count)
        throw usage_error(
            message("--shard: expected K/N with 0 <= K < N (e.g. 0/4 .. 3/4), got \"", text, "\""));
    return s;
}

// The checks of values that CLI11 took as they came.
inline void check_options(Options& o) {
    if (o.inputs.empty() && o.input_lists.empty())
        throw usage_error("no input: give --input or --input-list");
    if (o.output.empty()) throw usage_error("--output: expected a path, got an empty string");
    if (o.threads && *o.threads < 1)
        throw usage_error(message("--threads: expected a positive integer, got ", *o.threads));
    if (o.batch_size < 1)
        throw usage_error(message("--batch-size: expected a positive integer, got ", o.batch_size));
    if (!o.output_kind.empty() && !vit3d::enum_from_name<vit3d::io::ModelOutput>(o.output_kind))
        throw usage_error(message("--output-kind: expected one of ",
                                  vit3d::enum_name_list<vit3d::io::ModelOutput>(""), ", got \"",
                                  o.output_kind, "\""));
    if (!o.shard_text.empty()) o.shard = parse_shard(o.shard_text);
    if (const std::optional<vit3d::Precision> p = vit3d::enum_from_name<vit3d::Precision>(o.precision_text)) {
        o.precision = *p;
    } else {
        throw usage_error(message("--precision: expected ",
                                  vit3d::enum_name_list<vit3d::Precision>("", ", ", " or "), ", got \"",
                                  o.precision_text, "\""));
    }
    if (!o.window.empty()) {
        if (o.window.size() != 2 || !(o.window[0] < o.window[1]) || !std::isfinite(o.window[0]) ||
            !std::isfinite(o.window[1]))
            throw usage_error(
                message("--window: expected LOW,HIGH with LOW < HIGH, got ", o.window.size(), " value(s)",
                        o.window.size() == 2 ? message(" ", o.window[0], ",", o.window[1]) : std::string()));
        if (o.no_window) throw usage_error("--window and --no-window contradict each other");
    }
    for (double s : o.std)
        if (!(s > 0) || !std::isfinite(s))
            throw usage_error(message("--std: expected positive numbers, got ", s));
    for (double m : o.mean)
        if (!std::isfinite(m)) throw usage_error("--mean: expected finite numbers");
    if (o.rescale && (!(*o.rescale != 0) || !std::isfinite(*o.rescale)))
        throw usage_error(message("--rescale: expected a finite nonzero number, got ", *o.rescale));
    for (Index size : o.input_size)
        if (size < 1) throw usage_error(message("--input-size: expected positive integers, got ", size));
    if (o.resize_size && *o.resize_size < 0)
        throw usage_error(message("--resize-size: expected a non-negative integer, got ", *o.resize_size));
    if (!o.interpolation.empty() && !vit3d::enum_from_name<vit3d::transforms::ResizeFilter>(o.interpolation))
        throw usage_error(message("--interpolation: expected ",
                                  vit3d::enum_name_list<vit3d::transforms::ResizeFilter>("", ", ", " or "),
                                  ", got \"", o.interpolation, "\""));
    const char* chain = !o.steps.empty() ? "--steps" : !o.preset.empty() ? "--preset" : nullptr;
    if (!o.steps.empty() && !o.preset.empty()) throw usage_error("--steps and --preset: give one of them");
    if (chain && (o.rescale || !o.mean.empty() || !o.std.empty() || !o.window.empty()))
        throw usage_error(
            message(chain, " replaces the value steps: leave out --rescale, --mean, --std and --window"));
    if (!o.preset.empty()) {
        try {
            vit3d::transforms::preset(o.preset);
        } catch (const std::invalid_argument&) {
            throw usage_error(message("--preset: expected one of ", vit3d::transforms::preset_names(),
                                      ", got \"", o.preset, "\""));
        }
    }
    if (!o.channel_order.empty() && o.channel_order != "RGB" && o.channel_order != "BGR" &&
        o.channel_order != "L")
        throw usage_error(message("--channel-order: expected RGB, BGR or L, got \"", o.channel_order, "\""));
}

}  // namespace vit3d_infer
