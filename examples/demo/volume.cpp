// The demo's second part (examples/demo.cpp): a 3D ViT over an MRI volume, and a PNG of its class token's
// attention. In a translation unit of its own so that the two parts compile in parallel.

#include "volume.hpp"

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>
#include <vit3d/formats/colormap.hpp>
#include <vit3d/formats/image.hpp>
#include <vit3d/formats/nifti.hpp>
#include <vit3d/models/vision_transformer.hpp>
#include <vit3d/transforms/preprocess.hpp>
#include <vit3d/transforms/resample.hpp>

namespace {

using vit3d::Index;
using vit3d::Tensor;
namespace io = vit3d::io;
namespace transforms = vit3d::transforms;
namespace models = vit3d::models;
using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t) {
    return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

std::string shape_text(const vit3d::Shape& s) { return vit3d::shape_to_string(s); }

// The process's peak resident memory (VmHWM) in MiB, or -1 where /proc does not tell.
double peak_memory_mib() {
    std::ifstream status("/proc/self/status");
    for (std::string line; std::getline(status, line);)
        if (line.rfind("VmHWM:", 0) == 0) return std::stod(line.substr(6)) / 1024.0;
    return -1.0;
}

// Restarts VmHWM from the current resident size (Linux's clear_refs "5"), so that this part reports its own
// peak rather than the digits part's; false where the kernel does not allow it.
bool reset_peak_memory() {
    std::ofstream clear("/proc/self/clear_refs");
    return clear && (clear << "5").flush().good();
}

// ---- 2. volume
// ----------------------------------------------------------------------------------------------

// The q-quantile of a tensor's values.
float quantile(const Tensor<float>& x, double q) {
    std::vector<float> v(x.begin(), x.end());
    const auto k = static_cast<std::ptrdiff_t>(q * double(v.size() - 1));
    std::nth_element(v.begin(), v.begin() + k, v.end());
    return v[static_cast<std::size_t>(k)];
}

// A small 3D ViT (ViT-Tiny's width, half its depth) with random weights from a fixed seed: linear weights
// N(0, 1/fan_in), so that attention is neither flat nor saturated, the class token and positions N(0, 0.02),
// biases zero, LayerNorms the identity (as constructed).
models::ViT3D<float> random_volume_model(const std::array<Index, 3>& grid_size) {
    models::VisionTransformerConfig<3> config;
    config.input_size = grid_size;
    config.patch_size = {8, 8, 8};
    config.channels = 1;
    config.dim = 192;
    config.depth = 6;
    config.heads = 3;
    config.mlp_dim = 768;
    config.num_classes = 0;
    models::ViT3D<float> model(config);
    std::uint64_t seed = 1;
    model.visit_parameters([&](const std::string& name, Tensor<float>& p) {
        const bool norm = name.find("norm") != std::string::npos;
        if (norm || (p.rank() == 1 && name.find("bias") != std::string::npos)) return;
        const bool embedding =
            name.find("cls_token") != std::string::npos || name.find("pos_embed") != std::string::npos;
        const Index fan_in = p.rank() >= 2 ? p.size() / p.dim(0) : 1;
        const float stddev = embedding ? 0.02f : 1.0f / std::sqrt(float(fan_in));
        p = Tensor<float>::randn(p.shape(), seed++, 0.0f, stddev);
    });
    return model;
}

// A [rows, cols] slice to RGB [3, rows * zoom, cols * zoom] in [0, 1], flipped vertically (image row 0 at the
// top shows the slice's last row: anterior / superior up, as radiologists look at the brain).
Tensor<float> grey_panel(const Tensor<float>& slice, Index zoom) {
    const Tensor<float> up = transforms::resize(slice.unsqueeze(0), slice.dim(0) * zoom, slice.dim(1) * zoom,
                                                transforms::ResizeFilter::bilinear, false)
                                 .squeeze(0);
    const Index h = up.dim(0), w = up.dim(1);
    Tensor<float> rgb({3, h, w});
    for (Index c = 0; c < 3; ++c)
        for (Index y = 0; y < h; ++y)
            for (Index x = 0; x < w; ++x) rgb(c, y, x) = std::clamp(up(h - 1 - y, x), 0.0f, 1.0f);
    return rgb;
}

// The same slice with the heat map (already on [0, 1]) blended over it, as grey_panel lays it out.
Tensor<float> overlay_panel(const Tensor<float>& slice, const Tensor<float>& heat, Index zoom) {
    const Tensor<float> grey = grey_panel(slice, zoom);
    const Tensor<float> heat_rgb = grey_panel(heat, zoom);  // one channel of it is the heat, flipped alike
    const Tensor<std::uint8_t> blended =
        io::overlay_heatmap(grey.select(0, 0), heat_rgb.select(0, 0), 0.6f, io::HeatScaling::unit);
    Tensor<float> out = Tensor<float>::empty(blended.shape());
    for (Index i = 0; i < out.size(); ++i) out.data()[i] = float(blended.data()[i]) / 255.0f;
    return out;
}

// Panels [3, h, w] side by side (axis 2) or one above the other (axis 1) on a dark grey canvas, aligned to
// its top or left edge, `gap` pixels apart and `border` pixels from the canvas's edges.
Tensor<float> arrange(const std::vector<Tensor<float>>& panels, Index axis, Index gap, Index border) {
    const Index across = axis == 2 ? 1 : 2;  // the other image axis
    Index along = 2 * border - gap, extent = 0;
    for (const auto& p : panels) along += p.dim(axis) + gap, extent = std::max(extent, p.dim(across));
    extent += 2 * border;
    Tensor<float> canvas =
        Tensor<float>::full({3, axis == 2 ? extent : along, axis == 2 ? along : extent}, 0.15f);
    Index offset = border;
    for (const auto& p : panels) {
        const Index y0 = axis == 2 ? border : offset, x0 = axis == 2 ? offset : border;
        for (Index c = 0; c < 3; ++c)
            for (Index y = 0; y < p.dim(1); ++y)
                for (Index x = 0; x < p.dim(2); ++x) canvas(c, y0 + y, x0 + x) = p(c, y, x);
        offset += p.dim(axis) + gap;
    }
    return canvas;
}

// A horizontal viridis bar [3, height, width] from the least (left) to the most (right) attention.
Tensor<float> colour_bar(Index width, Index height) {
    Tensor<float> ramp({height, width});
    for (Index y = 0; y < height; ++y)
        for (Index x = 0; x < width; ++x) ramp(y, x) = float(x) / float(width - 1);
    const Tensor<std::uint8_t> bar = io::apply_viridis(ramp);
    Tensor<float> out = Tensor<float>::empty(bar.shape());
    for (Index i = 0; i < out.size(); ++i) out.data()[i] = float(bar.data()[i]) / 255.0f;
    return out;
}

}  // namespace

namespace demo {

void run_volume(const std::string& path, const std::string& out_dir) {
    const bool own_peak = reset_peak_memory();
    const auto start = Clock::now();
    const auto file = io::read_nifti<float>(path);
    if (file.data.rank() != 3)
        throw std::runtime_error(path + ": expected a 3D volume, got " + shape_text(file.data.shape()));
    // About 1 mm voxels from the file's 2 mm ones, every side a multiple of the 8-voxel patch: NIfTI data
    // are [nz, ny, nx], the model's [D, H, W].
    std::array<Index, 3> grid_size{};
    for (std::size_t a = 0; a < 3; ++a) {
        const double mm = double(file.data.dim(Index(a))) * file.spacing[a];
        grid_size[a] = std::max<Index>(8, static_cast<Index>(std::lround(mm / 8.0)) * 8);
    }
    const Tensor<float> resampled = transforms::resample_trilinear(file.data, grid_size);
    // An MRI has no Hounsfield units: window between the 1st and 99th percentiles instead.
    const Tensor<float> volume =
        transforms::intensity_window(resampled, quantile(resampled, 0.01), quantile(resampled, 0.99));
    const double read_ms = ms_since(start);

    auto t = Clock::now();
    const models::ViT3D<float> model = random_volume_model(grid_size);
    const double build_ms = ms_since(t);
    const auto& c = model.config;
    const auto g = c.grid();
    t = Clock::now();
    const auto output =
        model.forward(volume.reshape({1, 1, grid_size[0], grid_size[1], grid_size[2]}), false, true);
    const double forward_ms = ms_since(t);
    const double peak = peak_memory_mib();

    // The class token's attention to the patches [heads, N] (after the class token's own column), averaged
    // over the heads, on the patch grid, upsampled to the volume and stretched over [0, 1] as a whole, so the
    // three views share one colour scale.
    const Index patches = c.num_patches(), heads = c.heads;
    Tensor<float> grid_heat({g[0], g[1], g[2]});
    for (Index h = 0; h < heads; ++h)
        for (Index p = 0; p < patches; ++p)
            grid_heat.data()[p] += output.class_attention(0, h, 1 + p) / float(heads);
    Tensor<float> heat = transforms::resample_trilinear(grid_heat, grid_size);
    const auto [lo, hi] = std::minmax_element(heat.begin(), heat.end());
    const float low = *lo, range = std::max(*hi - *lo, 1e-30f);
    for (float& v : heat) v = (v - low) / range;

    // The middle slice along each axis, one row each: axial (fixed z: y up, x across), coronal (fixed y: z
    // up, x across), sagittal (fixed x: z up, y across); the MRI on the left, the attention over it on the
    // right; the colour scale at the bottom.
    const Index zoom = 4, gap = 6;
    const Index mz = grid_size[0] / 2, my = grid_size[1] / 2, mx = grid_size[2] / 2;
    auto sagittal = [](const Tensor<float>& v, Index x) {
        Tensor<float> s({v.dim(0), v.dim(1)});
        for (Index z = 0; z < v.dim(0); ++z)
            for (Index y = 0; y < v.dim(1); ++y) s(z, y) = v(z, y, x);
        return s;
    };
    const std::vector<Tensor<float>> slices = {volume.select(0, mz), volume.select(1, my),
                                               sagittal(volume, mx)};
    const std::vector<Tensor<float>> heats = {heat.select(0, mz), heat.select(1, my), sagittal(heat, mx)};
    std::vector<Tensor<float>> rows;
    for (std::size_t i = 0; i < slices.size(); ++i)
        rows.push_back(
            arrange({grey_panel(slices[i], zoom), overlay_panel(slices[i], heats[i], zoom)}, 2, gap, 0));
    Index width = 0;
    for (const auto& r : rows) width = std::max(width, r.dim(2));
    rows.push_back(colour_bar(width, 16));
    const Tensor<float> picture = arrange(rows, 1, gap, gap);
    std::filesystem::create_directories(out_dir);
    const std::string png = out_dir + "/mri_attention.png";
    io::write_png(png, picture);

    std::printf(
        "\nVolume: a 3D ViT over an MRI volume (random weights, seed 1: no trained model is shipped)\n");
    std::printf(
        "  volume    %s\n            %s voxels (z, y, x) of %.3g x %.3g x %.3g mm, resampled trilinearly to "
        "%s\n",
        path.c_str(), shape_text(file.data.shape()).c_str(), file.spacing[0], file.spacing[1],
        file.spacing[2], shape_text({grid_size[0], grid_size[1], grid_size[2]}).c_str());
    std::printf("  model     %lld parameters: %lld blocks of width %lld, %lld heads, 8x8x8 patches\n",
                static_cast<long long>(vit3d::nn::count_parameters(model)), static_cast<long long>(c.depth),
                static_cast<long long>(c.dim), static_cast<long long>(heads));
    std::printf("  tokens    %lld = %s patches + class token\n", static_cast<long long>(patches + 1),
                shape_text({g[0], g[1], g[2]}).c_str());
    std::printf("  time      read + resample %.1f ms, build %.1f ms, forward %.1f ms (%d threads)\n", read_ms,
                build_ms, forward_ms, vit3d::num_threads());
    std::printf("  memory    peak resident %.1f MiB (VmHWM%s)\n", peak,
                own_peak ? ", from the start of this part" : ", whole process");
    std::printf(
        "  picture   %s\n            the middle axial, coronal and sagittal slices, each beside the class "
        "token's\n"
        "            attention over it (mean of %lld heads; viridis: dark purple least, yellow most)\n",
        png.c_str(), static_cast<long long>(heads));
}

}  // namespace demo
