// Features of a 3D ViT for a NIfTI volume, written as .npy: read the volume, put its axes in the model's
// layout, resample it to the model's grid, scale its intensities as the file's description says, run the
// model and write one output with io::write_npy (through a temporary file, so never half-written).
//
//   ./build/examples/encode_volume model.safetensors volume.nii[.gz] features.npy [--output pooled]
//   F=tests/fixtures/roundtrip   # tiny random-weight models of each family
//   ./build/examples/encode_volume $F/monai_vit_f32.safetensors examples/data/anatomical.nii pooled.npy
//
// --output: pooled [1, D] (the default when the model pools), tokens [1, prefix + N, D] (every token after
// the encoder), token_grid [1, D, g1, g2, g3] (the patch tokens on their grid, in the layout's axis order).
// --threads N sets the thread count.
//
// Axis order: vit3d reads a NIfTI file as [nz, ny, nx] (data(k, j, i) is voxel (i, j, k)), which is already
// [D, H, W] with D = z, the slices: the input of a BCDHW model (torch Conv3d, vit-pytorch). A BCHWD model
// (MONAI, Reg2RG) was trained on nibabel's array data[i, j, k], i.e. [x, y, z] = [H, W, D], so the volume
// is transposed to [nx, ny, nz] first. Either way the whole volume is resampled (trilinear,
// align_corners=False) onto the model's input size: its field of view is kept, its voxel spacing is not.

#include <chrono>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>
#include <vit3d.hpp>
#include <vit3d/formats/nifti.hpp>
#include <vit3d/formats/npy.hpp>
#include <vit3d/io/load_model.hpp>
#include <vit3d/io/model_input.hpp>

#include "command_line.hpp"

namespace {

using namespace vit3d_examples;
using vit3d::Index;
using vit3d::Shape;
using vit3d::Tensor;
namespace io = vit3d::io;
namespace transforms = vit3d::transforms;
using Clock = std::chrono::steady_clock;
using vit3d_examples::ms_since;

struct Options {
    std::string model, volume, features, output;
    int threads = 0;
};

Options parse(int argc, char** argv) {
    Options o;
    std::vector<std::string> positional;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--output")
            o.output = option_value(argc, argv, i);
        else if (a == "--threads")
            o.threads = static_cast<int>(option_integer(argc, argv, i, 1, 1024));
        else if (a.size() > 1 && a[0] == '-')
            throw usage_error("unknown option " + a);
        else
            positional.push_back(a);
    }
    if (positional.size() != 3)
        throw usage_error(
            "usage: encode_volume model.safetensors volume.nii[.gz] features.npy [--output "
            "pooled|tokens|token_grid]");
    o.model = positional[0];
    o.volume = positional[1];
    o.features = positional[2];
    if (!o.output.empty() && o.output != "pooled" && o.output != "tokens" && o.output != "token_grid")
        throw usage_error("--output expects pooled, tokens or token_grid, got \"" + o.output + "\"");
    return o;
}

int run(const Options& o) {
    if (o.threads > 0) vit3d::set_num_threads(o.threads);
    auto t = Clock::now();
    const auto model = io::load_model<float>(o.model);
    const double load_ms = ms_since(t);
    const std::string name = !o.output.empty()                      ? o.output
                             : model.gives(io::ModelOutput::pooled) ? "pooled"
                                                                    : "token_grid";
    const io::ModelOutput output = name == "pooled"   ? io::ModelOutput::pooled
                                   : name == "tokens" ? io::ModelOutput::tokens
                                                      : io::ModelOutput::token_grid;

    t = Clock::now();
    const auto volume = io::read_nifti<float>(o.volume);
    const Tensor<float> input = io::volume_input(volume, model);  // [1, 1, spatial in layout order]
    const double read_ms = ms_since(t);

    t = Clock::now();
    const Tensor<float> features = model.forward(input, output);
    const double forward_ms = ms_since(t);

    t = Clock::now();
    io::write_npy(o.features, features);
    const double write_ms = ms_since(t);

    const transforms::Preprocessing& p = model.preprocess();
    std::printf("model    %s: %s %s, %lld parameters, input %s, layout %s\n", o.model.c_str(),
                model.family().c_str(), model.kind().c_str(), static_cast<long long>(model.parameter_count()),
                vit3d::shape_to_string(model.input_shape()).c_str(), p.layout.c_str());
    std::printf("volume   %s: [nz, ny, nx] = %s, spacing [z, y, x] = [%.3g, %.3g, %.3g] mm\n",
                o.volume.c_str(), vit3d::shape_to_string(volume.data.shape()).c_str(), volume.spacing[0],
                volume.spacing[1], volume.spacing[2]);
    std::string steps;  // the description's value steps, in the order they ran
    for (const auto& [on, name] : {std::pair<bool, const char*>{p.rescale.has_value(), "rescale"},
                                   {p.intensity_window.has_value(), "intensity window"},
                                   {p.mean || p.std, "mean / std"}})
        if (on) steps += (steps.empty() ? "" : ", ") + std::string(name);
    std::printf(
        "input    %s (%s, resampled trilinear to the model's grid), %s\n",
        vit3d::shape_to_string(input.shape()).c_str(),
        p.layout == "BCHWD" ? "transposed to [x, y, z] for BCHWD" : "[z, y, x] as read for BCDHW",
        steps.empty() ? "raw values (no rescale, window or mean / std)" : (steps + " applied").c_str());
    std::printf("features %s %s -> %s\n", name.c_str(), vit3d::shape_to_string(features.shape()).c_str(),
                o.features.c_str());
    std::printf(
        "time     load %.1f ms, read + resample %.1f ms, forward %.1f ms (%d threads), write %.1f ms\n",
        load_ms, read_ms, forward_ms, vit3d::num_threads(), write_ms);
    return 0;
}

}  // namespace

int main(int argc, char** argv) { return vit3d_examples::run_main("encode_volume", argc, argv, parse, run); }
